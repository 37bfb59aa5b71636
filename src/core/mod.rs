//! Pure logic: no files, no clock, no PAM. Every function here takes the
//! current time as an argument so each policy rule has a plain unit test.
#![forbid(unsafe_code)]

pub mod checksum;
pub mod decide;
pub mod grace;
pub mod input;
pub mod otp;
pub mod record;
pub mod record_text;
pub mod recovery;
pub mod state;

pub use decide::{Decision, Failure, Method, Policy, Reason, Success, decide_login};
pub use input::{Attempt, MAX_INPUT_BYTES, classify};
pub use otp::{Algorithm, Kind, OtpParams};
pub use record::{Record, RecordError};
pub use recovery::{RecoveryCodes, RecoveryHashes};
