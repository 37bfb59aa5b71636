#![no_main]
// See otpgate::fuzzing::decide for what it checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otpgate::fuzzing::decide(data));
