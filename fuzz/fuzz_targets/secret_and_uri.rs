#![no_main]
// See otpgate::fuzzing::secret_and_uri for what it checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otpgate::fuzzing::secret_and_uri(data));
