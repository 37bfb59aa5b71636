#![no_main]
// See otpgate::fuzzing::record for what it checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otpgate::fuzzing::record(data));
