//! The protected store: one TOML record per user in a root-only directory,
//! and beside it the user's login state (see `core::state`).
//!
//! The directory is opened once (see `dir`), its parents and itself checked,
//! and every later operation is relative to that handle. Every change is one
//! transaction under a flock of the per-user lock file `.USER.lock` (a lock
//! on the record itself would be lost by the rename), which also holds the
//! login state: read the record and the state, decide, then make the change
//! durable. What a login changes is one `pwrite` of a state slot and one
//! `fdatasync`; what an administrator changes replaces the record (temp
//! file, fsync, rename, directory fsync) under a new state id. Only then may
//! the caller report success.
#![forbid(unsafe_code)]

use nix::fcntl::OFlag;
use nix::sys::stat::fstat;
use std::fmt;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use zeroize::Zeroizing;

use crate::core::record::{MAX_RECORD_BYTES, Record, RecordError};
use crate::core::state::{self, LoginState, StateError, applied};

mod any;
mod checks;
mod dir;
mod names;
pub mod pg;
mod state_file;
#[cfg(test)]
mod tests;

pub use any::{AnyStore, UserStore};
pub use checks::FILE_FORBIDDEN;
use checks::{WRITE_FORBIDDEN, check_mode, check_owner, check_private_file, check_regular};
use dir::StoreDir;
pub use names::{MAX_USER_BYTES, is_format_char, validate_user};
use names::{RECORD_SUFFIX, lock_name, record_name, temp_name};

/// The decoy record's name: a leading dot, so never a user's.
const DECOY: &str = ".decoy";

/// A fresh random state id, different from `old` (and from 0, which
/// records written before state ids existed carry).
pub(crate) fn new_state_id(old: u64) -> u64 {
    loop {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            // No randomness: still different from the old id.
            return old.wrapping_add(1).max(1);
        }
        // TOML integers are i64: 63 random bits.
        let id = u64::from_le_bytes(b) >> 1;
        if id != 0 && id != old {
            return id;
        }
    }
}

/// Why the store refused. Display names the path and the reason; never contents.
#[derive(Debug)]
pub enum StoreError {
    /// The user name cannot be used as a file name.
    BadUser(String),
    /// The directory or a file fails an ownership/mode/type check.
    Unsafe { path: PathBuf, why: String },
    /// The record exists but does not parse or validate.
    Corrupt { path: PathBuf, err: RecordError },
    /// The login state is corrupt (refused, never reset).
    State { path: PathBuf, err: StateError },
    /// An admin replaced or removed an enrollment whose login state is
    /// corrupt, but that state could not be emptied (`err`), or was left
    /// as it was because the change is not yet durable: every login of the
    /// user is still refused, so the codes just shown do not work.
    StateLeft { path: PathBuf, err: io::Error },
    /// The database cannot be reached or refused a statement.
    Unavailable(String),
    /// The answer to the COMMIT never came (the connection closed or the
    /// wait ran out after it was sent): the change may or may not be in
    /// force. Callers must say exactly that, never "nothing was saved".
    CommitUnknown(String),
    /// The store's settings are wrong (URL, TLS, schema version).
    Config(String),
    /// An operating-system error.
    Io {
        path: PathBuf,
        op: &'static str,
        err: io::Error,
    },
    /// The change was made (every login already sees it) but could not be
    /// synced to disk (`op`: the state's fdatasync, or the directory fsync
    /// after a rename or unlink), so a crash may still undo it. Callers
    /// must not claim that nothing was saved.
    NotDurable {
        path: PathBuf,
        op: &'static str,
        err: io::Error,
    },
}

impl StoreError {
    /// Whether this error is a broken enrollment, which `replace_broken`
    /// may replace or remove: a record (at `record`) that does not parse,
    /// open or pass its mode check, or a login state that does not read.
    /// An unsafe lock file or any other path is for the admin to look at.
    pub fn breaks_enrollment(&self, record: &Path) -> bool {
        match self {
            StoreError::Corrupt { .. } | StoreError::State { .. } => true,
            StoreError::Unsafe { path, .. } => path == record,
            _ => false,
        }
    }

    /// Whether the change is in force although the call failed (see
    /// [`StoreError::NotDurable`]).
    pub fn change_in_force(&self) -> bool {
        matches!(self, StoreError::NotDurable { .. })
    }

    /// Whether the change may or may not be in force (see
    /// [`StoreError::CommitUnknown`]).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, StoreError::CommitUnknown(_))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::BadUser(why) => write!(f, "invalid user name ({why})"),
            StoreError::Unsafe { path, why } => write!(f, "{}: {why}", path.display()),
            StoreError::Corrupt { path, err } => write!(f, "{}: {err}", path.display()),
            StoreError::State { path, err } => write!(f, "{}: {err}", path.display()),
            StoreError::StateLeft { path, err } => {
                write!(f, "{}: {}", path.display(), state_left_words(err))
            }
            StoreError::Unavailable(why) => write!(f, "database unavailable: {why}"),
            StoreError::CommitUnknown(why) => write!(
                f,
                "database unavailable: {why}; whether the change took effect is unknown (see otpgate status)"
            ),
            StoreError::Config(why) => write!(f, "database settings: {why}"),
            StoreError::Io { path, op, err } => write!(f, "{}: {op}: {err}", path.display()),
            StoreError::NotDurable { path, op, err } => write!(
                f,
                "{}: {op}: {err} (the change is in force, but a crash may undo it)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// What [`StoreError::StateLeft`] means, with its cause in `why`'s words.
pub fn state_left_words(why: impl fmt::Display) -> String {
    format!(
        "the broken login state is still there ({why}), so every login is refused; run the command again once the disk is fixed"
    )
}

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

/// Opens an existing file without following symlinks or blocking on FIFOs.
/// `Ok(None)` when it does not exist.
fn open_nofollow(path: &Path) -> Result<Option<File>, StoreError> {
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    match OpenOptions::new().read(true).custom_flags(flags).open(path) {
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

/// Reads at most `max` bytes of `file`; more is refused.
fn read_bounded(file: File, path: &Path, max: usize) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(1024);
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path, "read"))?;
    if bytes.len() > max {
        return Err(unsafe_path(path, format!("larger than {max} bytes")));
    }
    Ok(bytes)
}

/// Reads a file that decides security settings (e.g. `/etc/otpgate.toml`):
/// owned by root or this process's user, not a symlink, not writable by
/// group/other. `Ok(None)` if absent.
pub fn read_trusted_file(path: &Path, max: usize) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(file) = open_nofollow(path)? else {
        return Ok(None);
    };
    let st = fstat(&file).map_err(|e| io_err(path, "stat")(e.into()))?;
    check_regular(path, &st)?;
    check_owner(path, &st, Trust::RootOrEuid, "")?;
    check_mode(path, &st, "", WRITE_FORBIDDEN, "0644")?;
    read_bounded(file, path, max).map(Some)
}

/// Reads a secret file (the database key or password): a regular file, not
/// a symlink, owned per `trust`, no group/other access. `Ok(None)` if absent.
pub fn read_private_file(
    path: &Path,
    max: usize,
    trust: Trust,
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let Some(file) = open_nofollow(path)? else {
        return Ok(None);
    };
    let st = fstat(&file).map_err(|e| io_err(path, "stat")(e.into()))?;
    check_private_file(path, &st, trust)?;
    read_bounded(file, path, max).map(|b| Some(Zeroizing::new(b)))
}

/// Reads a file that is public but decides trust (a CA certificate): owned
/// per `trust`, not writable by group/other, not a symlink.
pub fn read_trusted_public_file(
    path: &Path,
    max: usize,
    trust: Trust,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(file) = open_nofollow(path)? else {
        return Ok(None);
    };
    let st = fstat(&file).map_err(|e| io_err(path, "stat")(e.into()))?;
    check_regular(path, &st)?;
    check_owner(path, &st, trust, "")?;
    check_mode(path, &st, "", WRITE_FORBIDDEN, "0644")?;
    read_bounded(file, path, max).map(Some)
}

/// What a transaction wants done with the record.
#[derive(Debug)]
// One value per transaction, moved once: boxing the record buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Change {
    Keep,
    Put(Record),
    Remove,
}

/// A checked store directory, held open.
#[derive(Debug)]
pub struct Store {
    dir: StoreDir,
    trust: Trust,
    /// A login reads its state twice: a look before prompting, then again
    /// under the lock; the second read skips the checksums when the bytes
    /// are the same. (Not the record: a parsed record holds the secret,
    /// and a login drops it before prompting.)
    states: StateMemo,
}

/// The last state bytes read and what `state::current` made of them. That
/// depends on the bytes alone (no clock, no file name, no trust setting),
/// so the same bytes give the same state; keep it that way.
#[derive(Debug, Default)]
struct StateMemo {
    last: Mutex<Option<(Vec<u8>, Option<LoginState>)>>,
}

impl StateMemo {
    fn current(&self, bytes: Vec<u8>) -> Result<Option<LoginState>, StateError> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, state)) = last.as_ref()
            && *seen == bytes
        {
            return Ok(state.clone());
        }
        let state = state::current(&bytes)?;
        *last = Some((bytes, state.clone()));
        Ok(state)
    }
}

impl Store {
    /// Opens the store at `dir` after checking every parent and the
    /// directory itself (see the module docs).
    pub fn open(dir: &Path, trust: Trust) -> Result<Store, StoreError> {
        Ok(Store {
            dir: StoreDir::open(dir, trust, false)?,
            trust,
            states: StateMemo::default(),
        })
    }

    /// Like [`Store::open`], creating missing directories (0700) on the way;
    /// refuses, creating nothing, under an unsafe parent.
    pub fn create(dir: &Path, trust: Trust) -> Result<Store, StoreError> {
        Ok(Store {
            dir: StoreDir::open(dir, trust, true)?,
            trust,
            states: StateMemo::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the store is, for messages.
    pub fn describe(&self) -> String {
        self.dir().display().to_string()
    }

    /// Where `user`'s record is, for messages (the store never opens it by path).
    pub fn record_path(&self, user: &str) -> PathBuf {
        self.dir.path_of(&record_name(user))
    }

    /// Whether `user` has a record (without reading or checking it).
    pub fn is_enrolled(&self, user: &str) -> Result<bool, StoreError> {
        validate_user(user)?;
        Ok(self.dir.stat(&record_name(user))?.is_some())
    }

    /// Reads and checks a record, with the logins' state applied, without
    /// locking (for a look before prompting and for `status`). `Ok(None)`
    /// when the user is not enrolled.
    pub fn load(&self, user: &str) -> Result<Option<Record>, StoreError> {
        validate_user(user)?;
        let Some(record) = self.load_record(user)? else {
            return Ok(None);
        };
        let name = lock_name(user);
        let path = self.dir.path_of(&name);
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
        let state = match self.dir.open_file(&name, flags, "open state")? {
            Some(file) => {
                let st = fstat(&file).map_err(|e| io_err(&path, "stat")(e.into()))?;
                check_private_file(&path, &st, self.trust)?;
                state_file::read(&file, &path, &self.states)?
            }
            None => None,
        };
        Ok(Some(applied(&record, state.as_ref())))
    }

    /// The record file alone, as the command line last wrote it.
    fn load_record(&self, user: &str) -> Result<Option<Record>, StoreError> {
        let path = self.record_path(user);
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
        let Some(file) = self.dir.open_file(&record_name(user), flags, "open")? else {
            return Ok(None);
        };
        let st = fstat(&file).map_err(|e| io_err(&path, "stat")(e.into()))?;
        check_private_file(&path, &st, self.trust)?;
        // Room for the whole file and one byte more, so the buffer never
        // grows (a grown buffer leaves an unwiped copy of the secret in
        // freed memory); one byte more than allowed, so the parser sees an
        // oversized record.
        let size =
            usize::try_from(st.st_size).map_or(MAX_RECORD_BYTES, |n| n.min(MAX_RECORD_BYTES));
        let mut bytes = Zeroizing::new(Vec::with_capacity(size + 1));
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
        let lock_path = self.dir.path_of(&lock_name(user));
        let stored = self.load_record(user)?;
        let state = match &stored {
            Some(_) => state_file::read(&lock, &lock_path, &self.states)?,
            None => None,
        };
        let current = stored.as_ref().map(|r| applied(r, state.as_ref()));
        let (change, result) = match decide(current.as_ref()) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        // What only a login changes is one slot of the state.
        if let (Change::Put(next), Some(stored)) = (&change, &stored)
            && let Some(next_state) = state::next_state(stored, state.as_ref(), next)
        {
            state_file::write(&lock, &lock_path, &next_state)?;
        } else {
            if stored.is_none() && matches!(change, Change::Put(_)) {
                // A state with no record (left by a removal, perhaps broken)
                // belongs to nothing: emptied before the new record exists,
                // so it can never refuse that record's logins.
                state_file::clear(&lock).map_err(io_err(&lock_path, "empty the login state"))?;
            }
            self.apply(user, change)?;
        }
        drop(lock);
        Ok(Ok(result))
    }

    /// Replaces (`Put`) or removes (`Remove`) `user`'s broken enrollment: a
    /// record that does not parse or has a bad mode, or a login state that
    /// does not read (`enroll --force`, `disable --yes`). Under the user's
    /// lock like [`Store::update`]: only if it is still broken there, and
    /// only once `before` (the command's last output) has succeeded. The
    /// old record is never edited in place (a new one is renamed over it,
    /// or it is unlinked). `Ok(Ok(false))`, nothing changed: the enrollment
    /// reads now or is gone (another run repaired, replaced or removed it
    /// meanwhile, and that one must not be lost). Still refused, with the
    /// reason and "not replaced": a record path that is a symbolic link, a
    /// FIFO, a directory or any other non-regular file, has hard links, or
    /// has an untrusted owner.
    pub fn replace_broken<E>(
        &self,
        user: &str,
        change: Change,
        before: impl FnOnce() -> Result<(), E>,
    ) -> Result<Result<bool, E>, StoreError> {
        validate_user(user)?;
        let lock = self.lock(user)?;
        self.replaceable(user)?;
        match self.load(user) {
            Err(e) if e.breaks_enrollment(&self.record_path(user)) => {}
            Err(e) => return Err(e),
            Ok(_) => return Ok(Ok(false)),
        }
        if let Err(e) = before() {
            return Ok(Err(e));
        }
        if matches!(change, Change::Keep) {
            return Ok(Ok(true));
        }
        // A login state that does not read refuses every login of any
        // record, so it goes with the one it belonged to; one that reads no
        // longer applies to the next (a new state id) and is left alone.
        let path = self.dir.path_of(&lock_name(user));
        let broken_state = matches!(
            state_file::read(&lock, &path, &self.states),
            Err(StoreError::State { .. })
        );
        // Whether the old record would serve logins again if a crash undid
        // a change that is not yet durable: then its state stays as it is
        // until the change is, since a record back with no state would have
        // its used recovery codes back and its replay guard's step lost.
        let old_usable = broken_state && matches!(self.load_record(user), Ok(Some(_)));
        let result = self.apply(user, change);
        if broken_state {
            let clear_now = match &result {
                Ok(()) => true,
                Err(e) => e.change_in_force() && !old_usable,
            };
            if clear_now {
                // Emptied, the state is in force even if its sync fails.
                lock.set_len(0).map_err(|err| StoreError::StateLeft {
                    path: path.clone(),
                    err,
                })?;
                lock.sync_data().map_err(|err| StoreError::NotDurable {
                    path,
                    op: "fdatasync",
                    err,
                })?;
            } else if let Err(StoreError::NotDurable { err, .. }) = result {
                return Err(StoreError::StateLeft { path, err });
            }
        }
        result?;
        drop(lock);
        Ok(Ok(true))
    }

    /// Whether there is a record that [`Store::replace_broken`] may replace.
    fn replaceable(&self, user: &str) -> Result<bool, StoreError> {
        let path = self.record_path(user);
        let Some(st) = self.dir.stat(&record_name(user))? else {
            return Ok(false);
        };
        check_regular(&path, &st)
            .and_then(|()| check_owner(&path, &st, self.trust, ""))
            .map_err(|e| match e {
                StoreError::Unsafe { path, why } => StoreError::Unsafe {
                    path,
                    why: format!("{why}; not replaced (look at it, then remove it by hand)"),
                },
                other => other,
            })?;
        Ok(true)
    }

    /// A read-only look (for `doctor`) at the other paths a login of `user`
    /// opens: the lock file and the temp file. Reports each that makes every
    /// login of the user fail or that only someone else could have put
    /// there: a symbolic link, FIFO, directory or other non-regular file,
    /// hard links, an untrusted owner, a mode beyond 0600. Absent is fine;
    /// so is a private temp file left by a crash (the next write replaces it).
    pub fn check_paths(&self, user: &str) -> Vec<(PathBuf, String)> {
        if let Err(e) = validate_user(user) {
            return vec![(self.dir().to_path_buf(), e.to_string())];
        }
        [lock_name(user), temp_name(user)]
            .iter()
            .filter_map(|name| self.check_path(name).err())
            .map(|e| match e {
                StoreError::Unsafe { path, why } => (path, why),
                StoreError::Io { path, op, err } => (path, format!("{op}: {err}")),
                other => (self.dir().to_path_buf(), other.to_string()),
            })
            .collect()
    }

    fn check_path(&self, name: &str) -> Result<(), StoreError> {
        match self.dir.stat(name)? {
            Some(st) => check_private_file(&self.dir.path_of(name), &st, self.trust),
            None => Ok(()),
        }
    }

    /// Makes an administrative `change` durable (the caller holds the
    /// user's lock): a replaced record gets a new state id, so the login
    /// state of the one before no longer applies (the record carries it).
    fn apply(&self, user: &str, change: Change) -> Result<(), StoreError> {
        match change {
            Change::Keep => Ok(()),
            Change::Put(mut record) => {
                record.state_id = new_state_id(record.state_id);
                self.write(user, &record)
            }
            Change::Remove => self.remove(user),
        }
    }

    /// The durable write a refused attempt of an enrolled user costs (one
    /// state slot), done on a shared decoy for a name with no enrollment,
    /// so refusing either costs the same and nothing is created for it.
    pub fn decoy_write(&self, record: &Record) -> Result<(), StoreError> {
        let lock = self.lock(DECOY)?;
        let path = self.dir.path_of(&lock_name(DECOY));
        let seq = match state_file::read(&lock, &path, &self.states) {
            Ok(s) => s.map_or(0, |s| s.seq),
            Err(_) => 0,
        };
        let mut next = LoginState::of_record(record);
        next.seq = seq + 1;
        state_file::write(&lock, &path, &next)?;
        drop(lock);
        Ok(())
    }

    /// Opens (creating it 0600 if needed), checks and flocks the user's lock file.
    fn lock(&self, user: &str) -> Result<File, StoreError> {
        let name = lock_name(user);
        let path = self.dir.path_of(&name);
        let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
        let Some(file) = self.dir.open_file(&name, flags, "open lock")? else {
            return Err(unsafe_path(&path, "lock file vanished while being created"));
        };
        let st = fstat(&file).map_err(|e| io_err(&path, "stat")(e.into()))?;
        check_private_file(&path, &st, self.trust)?;
        file.lock().map_err(io_err(&path, "flock"))?;
        Ok(file)
    }

    fn write(&self, user: &str, record: &Record) -> Result<(), StoreError> {
        let text = record.to_toml().map_err(|err| StoreError::Corrupt {
            path: self.record_path(user),
            err,
        })?;
        let tmp = temp_name(user);
        let result = self.write_replace(&tmp, &record_name(user), text.as_bytes());
        if result.is_err() {
            let _ = self.dir.unlink(&tmp, "remove temp");
        }
        result
    }

    /// Writes `bytes` to a fresh `tmp`, makes it durable, renames it over
    /// `target` and makes the rename durable.
    fn write_replace(&self, tmp: &str, target: &str, bytes: &[u8]) -> Result<(), StoreError> {
        // A temp file left by a crash is ours (we hold the lock): replace it.
        self.dir.unlink(tmp, "remove stale temp")?;
        let path = self.dir.path_of(tmp);
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
        let Some(mut file) = self.dir.open_file(tmp, flags, "create temp")? else {
            return Err(unsafe_path(&path, "temp file vanished while being created"));
        };
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(io_err(&path, "chmod"))?;
        file.write_all(bytes).map_err(io_err(&path, "write"))?;
        file.sync_all().map_err(io_err(&path, "fsync"))?;
        drop(file);
        self.dir.rename(tmp, target)?;
        self.dir.sync()
    }

    fn remove(&self, user: &str) -> Result<(), StoreError> {
        if self.dir.unlink(&record_name(user), "remove")? {
            self.dir.sync()?;
        }
        Ok(())
    }

    /// Every enrolled user name, sorted.
    pub fn users(&self) -> Result<Vec<String>, StoreError> {
        let mut users: Vec<String> = self
            .dir
            .names()?
            .into_iter()
            .filter_map(|name| name.strip_suffix(RECORD_SUFFIX).map(str::to_string))
            .filter(|user| validate_user(user).is_ok())
            .collect();
        users.sort();
        Ok(users)
    }
}
