#![no_main]
// See otpgate::fuzzing::site_config for what it checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otpgate::fuzzing::site_config(data));
