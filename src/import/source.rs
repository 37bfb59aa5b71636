//! Reading a file to import, as root, from places other users control: the
//! last path component is never followed (O_NOFOLLOW), FIFOs never block
//! (O_NONBLOCK), and the open file itself is checked before a byte is read:
//! a regular file with one link, the expected owner and mode, at most
//! 64 KiB (and no more is read even if it grows meanwhile).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

use super::MAX_SOURCE_BYTES;

/// Who must own the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Exactly this uid (a user's own `~/.google_authenticator`).
    User(u32),
    /// This uid or root (a google-authenticator file kept elsewhere).
    UserOrRoot(u32),
    /// Root (pam_oath's users file).
    Root,
}

/// Which mode bits refuse the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// google-authenticator's own rule: nothing beyond 0600.
    Private,
    /// Not writable by group or others (anyone could have planted a token).
    NotWritableByOthers,
}

/// Why a file was not read: the path and the reason, never contents.
#[derive(Debug)]
pub struct SourceError {
    pub path: PathBuf,
    pub why: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.why)
    }
}

impl std::error::Error for SourceError {}

fn refuse(path: &Path, why: impl Into<String>) -> SourceError {
    SourceError {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// An I/O error in words, without `(os error N)`.
fn words(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_lowercase(),
        _ => text.to_lowercase(),
    }
}

fn name_of(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(
            || format!("uid {uid}"),
            |u| format!("{} (uid {uid})", u.name),
        )
}

/// Reads `path` under the rules above; `Ok(None)` when it does not exist.
pub fn read(
    path: &Path,
    owner: Owner,
    mode: Mode,
) -> Result<Option<Zeroizing<Vec<u8>>>, SourceError> {
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refuse(path, "is a symbolic link; not followed, not read"));
        }
        Err(e) => return Err(refuse(path, words(&e))),
    };
    check(&file, path, owner, mode)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(4096));
    file.take(MAX_SOURCE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(path, words(&e)))?;
    if bytes.len() > MAX_SOURCE_BYTES {
        return Err(refuse(
            path,
            "grew beyond 64 KiB while being read; not imported",
        ));
    }
    Ok(Some(bytes))
}

fn check(file: &File, path: &Path, owner: Owner, mode: Mode) -> Result<(), SourceError> {
    let st = file.metadata().map_err(|e| refuse(path, words(&e)))?;
    if !st.file_type().is_file() {
        return Err(refuse(path, "is not a regular file; not read"));
    }
    if st.nlink() > 1 {
        return Err(refuse(
            path,
            format!(
                "has {} hard links (it may be another file); not read",
                st.nlink()
            ),
        ));
    }
    let uid = st.uid();
    match owner {
        Owner::User(want) if uid != want => {
            return Err(refuse(
                path,
                format!(
                    "is owned by {}, not by {}; not read",
                    name_of(uid),
                    name_of(want)
                ),
            ));
        }
        Owner::UserOrRoot(want) if uid != want && uid != 0 => {
            return Err(refuse(
                path,
                format!(
                    "is owned by {}, not by {} or root; not read",
                    name_of(uid),
                    name_of(want)
                ),
            ));
        }
        Owner::Root if uid != 0 => {
            return Err(refuse(
                path,
                format!("is not owned by root (owner: {}); not read", name_of(uid)),
            ));
        }
        _ => {}
    }
    let bits = st.mode() & 0o7777;
    match mode {
        Mode::Private if bits & 0o7177 != 0 => {
            return Err(refuse(
                path,
                format!(
                    "has mode {bits:04o}, more than 0600: google-authenticator itself refuses it (and others may know the secret)"
                ),
            ));
        }
        Mode::NotWritableByOthers if bits & 0o022 != 0 => {
            return Err(refuse(
                path,
                format!(
                    "has mode {bits:04o}: writable by group or others, anyone could have added a token; not read"
                ),
            ));
        }
        _ => {}
    }
    if st.len() > MAX_SOURCE_BYTES as u64 {
        return Err(refuse(
            path,
            format!(
                "is {} bytes, more than 64 KiB: not such a file; not read",
                st.len()
            ),
        ));
    }
    Ok(())
}
