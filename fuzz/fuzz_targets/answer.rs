#![no_main]
// See otpgate::fuzzing::answer for what it checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otpgate::fuzzing::answer(data));
