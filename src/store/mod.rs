//! The protected store: one TOML record per user in a root-only directory.
//!
//! Every change is one transaction: flock a per-user lock file (a lock on
//! the record itself would be lost by the rename), read, decide, write a
//! temporary file in the same directory, fsync it, rename it over the record,
//! fsync the directory, unlock. Only then may the caller report success.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::core::record::{MAX_RECORD_BYTES, Record, RecordError};

mod names;

pub use names::{MAX_USER_BYTES, is_format_char, validate_user};
use names::{RECORD_SUFFIX, lock_name, record_name, temp_name};

/// Why the store refused. Display names the path and the reason; never contents.
#[derive(Debug)]
pub enum StoreError {
    /// The user name cannot be used as a file name.
    BadUser(String),
    /// The directory or a file fails an ownership/mode/type check.
    Unsafe { path: PathBuf, why: String },
    /// The record exists but does not parse or validate.
    Corrupt { path: PathBuf, err: RecordError },
    /// An operating-system error.
    Io {
        path: PathBuf,
        op: &'static str,
        err: io::Error,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::BadUser(why) => write!(f, "invalid user name ({why})"),
            StoreError::Unsafe { path, why } => write!(f, "{}: {why}", path.display()),
            StoreError::Corrupt { path, err } => write!(f, "{}: {err}", path.display()),
            StoreError::Io { path, op, err } => write!(f, "{}: {op}: {err}", path.display()),
        }
    }
}

impl std::error::Error for StoreError {}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |err| StoreError::Io {
        path: path.to_path_buf(),
        op,
        err,
    }
}

fn unsafe_path(path: &Path, why: impl Into<String>) -> StoreError {
    StoreError::Unsafe {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// Who may own the store directory, its parents and its files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trust {
    /// Root only (the default: a service account that calls PAM for other
    /// users must not be able to forge their records).
    #[default]
    RootOnly,
    /// Root or the process's own effective user (module option `owner_ok`).
    RootOrEuid,
}

impl Trust {
    /// Whether a file owned by `uid` is trusted by a process running as `euid`.
    pub fn trusts(self, uid: u32, euid: u32) -> bool {
        uid == 0 || (self == Trust::RootOrEuid && uid == euid)
    }

    fn trusts_owner(self, uid: u32) -> bool {
        self.trusts(uid, nix::unistd::geteuid().as_raw())
    }
}

/// Records and lock files: no bit beyond 0600 (no group/other access, no
/// execute, setuid, setgid or sticky bit).
const FILE_FORBIDDEN: u32 = 0o7777 & !0o600;
/// Directories and settings files: not writable by group/other.
const WRITE_FORBIDDEN: u32 = 0o022;

/// Mode bits printed the way `ls`/`chmod` users read them.
fn mode_str(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// The one ownership rule: a trusted owner, and none of the `forbidden`
/// mode bits ([`FILE_FORBIDDEN`] or [`WRITE_FORBIDDEN`]).
fn check_owner_mode(
    path: &Path,
    meta: &fs::Metadata,
    trust: Trust,
    subject: &str,
    forbidden: u32,
    want: &str,
) -> Result<(), StoreError> {
    if !trust.trusts_owner(meta.uid()) {
        return Err(unsafe_path(
            path,
            format!("{subject}owned by uid {}, not root", meta.uid()),
        ));
    }
    if meta.mode() & forbidden != 0 {
        let problem = if meta.mode() & forbidden & 0o077 == 0 {
            "has bits beyond 0600 (execute, setuid, setgid or sticky)"
        } else if forbidden & 0o044 != 0 {
            "gives group/other access"
        } else {
            "is writable by group/other"
        };
        return Err(unsafe_path(
            path,
            format!(
                "{subject}mode {} {problem} (want {want})",
                mode_str(meta.mode())
            ),
        ));
    }
    Ok(())
}

/// A regular file with a single link.
fn check_regular(path: &Path, meta: &fs::Metadata) -> Result<(), StoreError> {
    if !meta.file_type().is_file() {
        return Err(unsafe_path(path, "not a regular file"));
    }
    if meta.nlink() != 1 {
        return Err(unsafe_path(
            path,
            format!("has {} hard links", meta.nlink()),
        ));
    }
    Ok(())
}

/// A protected file: regular, single link, trusted owner, mode 0600 at most.
fn check_private_file(path: &Path, meta: &fs::Metadata, trust: Trust) -> Result<(), StoreError> {
    check_regular(path, meta)?;
    check_owner_mode(path, meta, trust, "", FILE_FORBIDDEN, "0600")
}

/// Opens an existing file without following symlinks or blocking on FIFOs.
/// `Ok(None)` when it does not exist.
fn open_nofollow(path: &Path, write: bool) -> Result<Option<File>, StoreError> {
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    match OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(flags)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            Err(unsafe_path(path, "is a symbolic link"))
        }
        Err(e) => Err(StoreError::Io {
            path: path.to_path_buf(),
            op: "open",
            err: e,
        }),
    }
}

/// Reads a file that decides security settings (e.g. `/etc/otpgate.toml`):
/// owned by root or this process's user, not a symlink, not writable by
/// group/other. `Ok(None)` if absent.
pub fn read_trusted_file(path: &Path, max: usize) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(file) = open_nofollow(path, false)? else {
        return Ok(None);
    };
    let meta = file.metadata().map_err(io_err(path, "stat"))?;
    check_regular(path, &meta)?;
    check_owner_mode(path, &meta, Trust::RootOrEuid, "", WRITE_FORBIDDEN, "0644")?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path, "read"))?;
    if bytes.len() > max {
        return Err(unsafe_path(path, format!("larger than {max} bytes")));
    }
    Ok(Some(bytes))
}

/// What a transaction wants done with the record.
#[derive(Debug)]
pub enum Change {
    Keep,
    Put(Record),
    Remove,
}

/// A checked store directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    trust: Trust,
}

impl Store {
    /// Opens the store at `dir` after checking the directory itself.
    pub fn open(dir: &Path, trust: Trust) -> Result<Store, StoreError> {
        let meta = fs::symlink_metadata(dir).map_err(io_err(dir, "stat"))?;
        if meta.file_type().is_symlink() {
            return Err(unsafe_path(dir, "store directory is a symbolic link"));
        }
        if !meta.is_dir() {
            return Err(unsafe_path(dir, "store is not a directory"));
        }
        check_owner_mode(
            dir,
            &meta,
            trust,
            "store directory ",
            WRITE_FORBIDDEN,
            "0700",
        )?;
        Ok(Store {
            dir: dir.to_path_buf(),
            trust,
        })
    }

    /// Creates the directory (0700) if it is missing, then opens it.
    pub fn create(dir: &Path, trust: Trust) -> Result<Store, StoreError> {
        match fs::symlink_metadata(dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io_err(dir, "create directory"))?;
                fs::set_permissions(dir, Permissions::from_mode(0o700))
                    .map_err(io_err(dir, "chmod"))?;
            }
            Err(e) => {
                return Err(StoreError::Io {
                    path: dir.to_path_buf(),
                    op: "stat",
                    err: e,
                });
            }
        }
        Store::open(dir, trust)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn record_path(&self, user: &str) -> PathBuf {
        self.dir.join(record_name(user))
    }

    fn lock_path(&self, user: &str) -> PathBuf {
        self.dir.join(lock_name(user))
    }

    fn temp_path(&self, user: &str) -> PathBuf {
        self.dir.join(temp_name(user))
    }

    /// Whether `user` has a record (without reading or checking it).
    pub fn is_enrolled(&self, user: &str) -> Result<bool, StoreError> {
        validate_user(user)?;
        let path = self.record_path(user);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::Io {
                path,
                op: "stat",
                err: e,
            }),
        }
    }

    /// Reads and checks a record without locking (for a look before prompting
    /// and for `status`). `Ok(None)` when the user is not enrolled.
    pub fn load(&self, user: &str) -> Result<Option<Record>, StoreError> {
        validate_user(user)?;
        let path = self.record_path(user);
        let Some(file) = open_nofollow(&path, false)? else {
            return Ok(None);
        };
        let meta = file.metadata().map_err(io_err(&path, "stat"))?;
        check_private_file(&path, &meta, self.trust)?;
        let mut bytes = Zeroizing::new(Vec::with_capacity(1024));
        file.take(MAX_RECORD_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path, "read"))?;
        Record::parse(&bytes)
            .map(Some)
            .map_err(|err| StoreError::Corrupt { path, err })
    }

    /// Runs one locked transaction on `user`'s record. `decide` sees the
    /// current record (or `None`) and returns the change to make plus a
    /// result; the result is returned only once the change is durable.
    pub fn update<R, E>(
        &self,
        user: &str,
        decide: impl FnOnce(Option<&Record>) -> Result<(Change, R), E>,
    ) -> Result<Result<R, E>, StoreError> {
        validate_user(user)?;
        let lock = self.lock(user)?;
        let current = self.load(user)?;
        let (change, result) = match decide(current.as_ref()) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        match change {
            Change::Keep => {}
            Change::Put(record) => self.write(user, &record)?,
            Change::Remove => self.remove(user)?,
        }
        drop(lock);
        Ok(Ok(result))
    }

    fn lock(&self, user: &str) -> Result<File, StoreError> {
        let path = self.lock_path(user);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    unsafe_path(&path, "is a symbolic link")
                } else {
                    StoreError::Io {
                        path: path.clone(),
                        op: "open lock",
                        err: e,
                    }
                }
            })?;
        let meta = file.metadata().map_err(io_err(&path, "stat"))?;
        check_private_file(&path, &meta, self.trust)?;
        file.lock().map_err(io_err(&path, "flock"))?;
        Ok(file)
    }

    fn write(&self, user: &str, record: &Record) -> Result<(), StoreError> {
        let text = record.to_toml().map_err(|err| StoreError::Corrupt {
            path: self.record_path(user),
            err,
        })?;
        let tmp = self.temp_path(user);
        let result = self.write_replace(&tmp, &self.record_path(user), text.as_bytes());
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn write_replace(&self, tmp: &Path, target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        // A temp file left by a crash is ours (we hold the lock): replace it.
        match fs::remove_file(tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Io {
                    path: tmp.to_path_buf(),
                    op: "remove stale temp",
                    err: e,
                });
            }
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(tmp)
            .map_err(io_err(tmp, "create temp"))?;
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(io_err(tmp, "chmod"))?;
        file.write_all(bytes).map_err(io_err(tmp, "write"))?;
        file.sync_all().map_err(io_err(tmp, "fsync"))?;
        drop(file);
        fs::rename(tmp, target).map_err(io_err(target, "rename"))?;
        self.sync_dir()
    }

    fn remove(&self, user: &str) -> Result<(), StoreError> {
        let path = self.record_path(user);
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io {
                path,
                op: "remove",
                err: e,
            }),
        }
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.dir, "fsync directory"))
    }

    /// Every enrolled user name, sorted.
    pub fn users(&self) -> Result<Vec<String>, StoreError> {
        let mut users = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir, "list"))? {
            let entry = entry.map_err(io_err(&self.dir, "list"))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(user) = name.strip_suffix(RECORD_SUFFIX)
                && validate_user(user).is_ok()
            {
                users.push(user.to_string());
            }
        }
        users.sort();
        Ok(users)
    }
}

#[cfg(test)]
mod tests;
