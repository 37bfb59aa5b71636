#![no_main]
// See otpgate::fuzzing::state for what it checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otpgate::fuzzing::state(data));
