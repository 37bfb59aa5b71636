#![no_main]
// See otpgate::fuzzing::oath_users for what it checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otpgate::fuzzing::oath_users(data));
