#![no_main]
// See otpgate::fuzzing::module_options for what it checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otpgate::fuzzing::module_options(data));
