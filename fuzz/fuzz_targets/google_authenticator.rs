#![no_main]
// See otpgate::fuzzing::google_authenticator for what it checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otpgate::fuzzing::google_authenticator(data));
