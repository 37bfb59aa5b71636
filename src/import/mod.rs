//! Moving users from google-authenticator-libpam (`~/.google_authenticator`)
//! and pam_oath (a users file) to otpgate without re-enrolling anyone.
//!
//! Pure and fuzz-friendly: [`google::parse_google_authenticator`] and
//! [`oath::parse_oath_users`] take the file's bytes and nothing else; the
//! mapping (`plan`) takes the clock as a parameter. Reading the files
//! safely is [`source`]'s job; saving is the store's, through the command.
//!
//! A plan says, per user, what becomes what (`mapped`) and what otpgate has
//! no place for (`skipped`), in words fit for the admin's report. Nothing
//! here ever puts a secret, a code or a password into a message.
#![forbid(unsafe_code)]

use std::fmt;
use zeroize::Zeroizing;

use crate::core::Record;
use crate::core::otp::{Kind, OtpParams};
use crate::core::recovery::{KdfParams, RecoveryHashes};

pub mod google;
pub mod oath;
pub mod source;
#[cfg(test)]
mod tests;

/// Both tools' files are small; google-authenticator refuses larger ones.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// Why a whole file was refused. Never contains file contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    TooLarge(usize),
    /// NUL bytes, control characters or not UTF-8.
    Binary,
    /// The last line has no newline: both tools end every line with one.
    Truncated,
    Line {
        line: usize,
        what: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("the file is empty"),
            ParseError::TooLarge(n) => write!(f, "the file is {n} bytes, more than 64 KiB"),
            ParseError::Binary => f.write_str(
                "binary data, not a text file (NUL bytes, control characters or not UTF-8)",
            ),
            ParseError::Truncated => {
                f.write_str("the last line has no newline: the file looks truncated")
            }
            ParseError::Line { line, what } => write!(f, "line {line}: {what}"),
        }
    }
}

impl std::error::Error for ParseError {}

fn at(line: usize, what: impl Into<String>) -> ParseError {
    ParseError::Line {
        line,
        what: what.into(),
    }
}

/// The file's lines (numbered from 1, `\r` removed), once the whole file
/// has passed the checks every text file of both tools passes.
fn text_lines(bytes: &[u8]) -> Result<Vec<(usize, &str)>, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    if bytes.len() > MAX_SOURCE_BYTES {
        return Err(ParseError::TooLarge(bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::Binary)?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ParseError::Binary);
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err(ParseError::Truncated);
    };
    Ok(body
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .collect())
}

/// One user's enrollment as otpgate will hold it, and the report.
pub struct Plan {
    pub kind: Kind,
    pub params: OtpParams,
    pub secret: Zeroizing<Vec<u8>>,
    /// The record's `last_step`: for TOTP the newest used time step, for
    /// HOTP the next counter (see `Record::last_step`).
    pub replay_guard: u64,
    /// Numeric recovery codes (google-authenticator's scratch codes).
    pub scratch: Vec<Zeroizing<String>>,
    /// What was carried over, and as what.
    pub mapped: Vec<String>,
    /// What otpgate keeps no equivalent of, and why.
    pub skipped: Vec<String>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("kind", &self.kind)
            .field("params", &self.params)
            .field("secret", &"[redacted]")
            .field("replay_guard", &self.replay_guard)
            .field("scratch", &self.scratch.len())
            .field("mapped", &self.mapped)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Plan {
    /// The record to save: scratch codes hashed with `kdf` (the slow part).
    pub fn record(&self, kdf: KdfParams, now: u64) -> Result<Record, String> {
        let recovery = if self.scratch.is_empty() {
            RecoveryHashes::default()
        } else {
            RecoveryHashes::create_numeric(&self.scratch, kdf)?
        };
        let mut record = Record::new(&self.secret, self.params, recovery, now);
        record.kind = self.kind;
        record.last_step = self.replay_guard;
        record.validate().map_err(|e| e.to_string())?;
        Ok(record)
    }

    /// "time-based, SHA1, 6 digits, 30 s" / "counter-based, SHA1, 6 digits".
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Totp => format!(
                "time-based, {}, {} digits, {} s",
                self.params.algorithm, self.params.digits, self.params.period
            ),
            Kind::Hotp => format!(
                "counter-based, {}, {} digits, next counter {}",
                self.params.algorithm, self.params.digits, self.replay_guard
            ),
        }
    }
}
