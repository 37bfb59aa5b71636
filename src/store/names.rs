//! User names and the file names derived from them.
//!
//! A name is checked before it becomes part of any path, and bounded so that
//! every file name the store derives from it fits in NAME_MAX: a name that is
//! too long is refused up front, never half-way through a transaction.

use super::StoreError;

/// Longest file name a Linux file system accepts (bytes).
const NAME_MAX: usize = 255;
pub(super) const RECORD_SUFFIX: &str = ".toml";
const LOCK_SUFFIX: &str = ".lock";
const TEMP_SUFFIX: &str = ".toml.tmp";
/// Kept free for a later per-user file (`.NAME.state`); the login state
/// itself lives in the lock file. Shorter than the temp suffix, so the
/// longest user name does not depend on it.
const STATE_SUFFIX: &str = ".state";

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// The most bytes any derived name adds to the user name (the leading dot
/// of hidden files included).
const LONGEST_ADDITION: usize = 1 + max(
    max(RECORD_SUFFIX.len(), LOCK_SUFFIX.len()),
    max(TEMP_SUFFIX.len(), STATE_SUFFIX.len()),
);

/// Longest user name accepted (bytes): 245, still long enough for
/// `user@example.com` realms.
pub const MAX_USER_BYTES: usize = NAME_MAX - LONGEST_ADDITION;

/// `NAME.toml`: the record.
pub(super) fn record_name(user: &str) -> String {
    format!("{user}{RECORD_SUFFIX}")
}

/// `.NAME.lock`: the per-user lock file.
pub(super) fn lock_name(user: &str) -> String {
    format!(".{user}{LOCK_SUFFIX}")
}

/// `.NAME.toml.tmp`: the record being written.
pub(super) fn temp_name(user: &str) -> String {
    format!(".{user}{TEMP_SUFFIX}")
}

/// Unicode general categories Cf (format), Zl and Zp (line and paragraph
/// separators), as of Unicode 15: invisible characters that make two names
/// look alike or reorder a log line.
const FORMAT_CHARS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{2028}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// A format or separator character (see [`FORMAT_CHARS`]).
pub fn is_format_char(c: char) -> bool {
    FORMAT_CHARS.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

/// Checks a user name before it becomes part of a path.
pub fn validate_user(user: &str) -> Result<(), StoreError> {
    let why = if user.is_empty() {
        "empty".to_string()
    } else if user.len() > MAX_USER_BYTES {
        format!("longer than {MAX_USER_BYTES} bytes")
    } else if user.starts_with('.') {
        "starts with a dot".to_string()
    } else if user.contains('/') {
        "contains a slash".to_string()
    } else if user.chars().any(char::is_control) {
        "contains control characters".to_string()
    } else if user.chars().any(is_format_char) {
        "contains invisible format characters".to_string()
    } else {
        return Ok(());
    };
    Err(StoreError::BadUser(why))
}
