//! otpgate: a one-time-code second factor for PAM logins.
//!
//! Module map:
//! - [`core`]: pure logic — OTP math, recovery codes, records, the login
//!   decision. No I/O and no clock.
//! - [`store`]: the protected per-user record files (checks, locking,
//!   atomic durable writes).
//! - [`pam`]: the PAM module hooks and the application-side client used by
//!   tests; the only place with `unsafe`.
//! - [`cli`]: the `otpgate` command.
//! - [`account`]: user names resolved through NSS to one canonical account.
//! - [`logline`]: escaping for syslog fields.
//! - `fuzzing` (feature `fuzzing`, never shipped): the fuzz harnesses.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    unsafe_op_in_unsafe_fn
)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

// The test-only panic switch never ships: a release build refuses it.
#[cfg(all(feature = "panic-test", not(debug_assertions)))]
compile_error!("the `panic-test` feature is for tests only, never for a release build");

pub mod account;
pub mod cli;
pub mod config;
pub mod core;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod import;
pub mod login;
pub mod logline;
pub mod pam;
pub mod store;
