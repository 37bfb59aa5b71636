//! The store directory, opened once and then used only through its handle.
//!
//! The path is walked from `/` one component at a time without following
//! symbolic links (a trailing slash included), and every parent is checked
//! before the next step. After that, every open, rename, unlink, stat, fsync
//! and listing is relative to the handle: swapping a directory on the path
//! later redirects nothing.

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use super::checks::{check_parent, check_store_dir, is_dir};
use super::{StoreError, Trust, unsafe_path};

const AT_NOFOLLOW: nix::fcntl::AtFlags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;

fn nix_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(Errno) -> StoreError + 'a {
    move |e| StoreError::Io {
        path: path.to_path_buf(),
        op,
        err: e.into(),
    }
}

/// An open, checked store directory.
#[derive(Debug)]
pub(super) struct StoreDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl StoreDir {
    /// Walks to `path`, checking each parent and the directory itself.
    /// With `create`, missing directories are made (0700).
    pub(super) fn open(path: &Path, trust: Trust, create: bool) -> Result<StoreDir, StoreError> {
        let names = components(path)?;
        let mut here = PathBuf::from("/");
        let root = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut fd = nix::fcntl::open("/", root, Mode::empty()).map_err(nix_err(&here, "open"))?;
        check_parent(&here, &stat_fd(&fd, &here)?, trust)?;
        for (i, name) in names.iter().enumerate() {
            here.push(name);
            let last = i + 1 == names.len();
            fd = step(&fd, name, &here, last, create)?;
            let st = stat_fd(&fd, &here)?;
            if last {
                check_store_dir(&here, &st, trust)?;
            } else {
                check_parent(&here, &st, trust)?;
            }
        }
        Ok(StoreDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The path as given (for messages; never opened again).
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn path_of(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens `name` in the store (O_NOFOLLOW is the caller's to pass).
    /// `Ok(None)` when it does not exist; a symbolic link is refused.
    pub(super) fn open_file(
        &self,
        name: &str,
        flags: OFlag,
        op: &'static str,
    ) -> Result<Option<File>, StoreError> {
        let mode = Mode::from_bits_truncate(0o600);
        match openat(&self.fd, name, flags | OFlag::O_CLOEXEC, mode) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::ELOOP) => Err(unsafe_path(&self.path_of(name), "is a symbolic link")),
            Err(e) => Err(nix_err(&self.path_of(name), op)(e)),
        }
    }

    /// `lstat` of `name` in the store; `Ok(None)` when it does not exist.
    pub(super) fn stat(&self, name: &str) -> Result<Option<FileStat>, StoreError> {
        match fstatat(&self.fd, name, AT_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(nix_err(&self.path_of(name), "stat")(e)),
        }
    }

    /// Removes `name` (never a directory); `Ok(false)` when it was not there.
    pub(super) fn unlink(&self, name: &str, op: &'static str) -> Result<bool, StoreError> {
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(nix_err(&self.path_of(name), op)(e)),
        }
    }

    pub(super) fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        renameat(&self.fd, from, &self.fd, to).map_err(nix_err(&self.path_of(to), "rename"))
    }

    /// Makes renames and unlinks in the directory durable. Called only
    /// after one succeeded: a failure here leaves that change in force.
    pub(super) fn sync(&self) -> Result<(), StoreError> {
        fsync(&self.fd).map_err(|e| StoreError::NotDurable {
            path: self.path.clone(),
            op: "fsync directory",
            err: e.into(),
        })
    }

    /// Every name in the directory that is valid UTF-8.
    pub(super) fn names(&self) -> Result<Vec<String>, StoreError> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut dir = Dir::openat(&self.fd, ".", flags, Mode::empty())
            .map_err(nix_err(&self.path, "list"))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(nix_err(&self.path, "list"))?;
            if let Ok(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }
}

/// The names to walk from `/`: an absolute path (a relative one is taken
/// from the working directory), without `..`.
fn components(path: &Path) -> Result<Vec<std::ffi::OsString>, StoreError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir().map_err(|err| StoreError::Io {
            path: path.to_path_buf(),
            op: "find the working directory",
            err,
        })?;
        cwd.join(path)
    };
    let mut names = Vec::new();
    for c in abs.components() {
        match c {
            Component::Normal(n) => names.push(n.to_os_string()),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(unsafe_path(path, "store path contains `..`"));
            }
        }
    }
    if names.is_empty() {
        return Err(unsafe_path(path, "the store cannot be /"));
    }
    Ok(names)
}

fn stat_fd(fd: &OwnedFd, path: &Path) -> Result<FileStat, StoreError> {
    fstat(fd).map_err(nix_err(path, "stat"))
}

/// Opens one component below `parent`; the store itself readable (for
/// listing and fsync), its parents only as a path handle.
fn step(
    parent: &OwnedFd,
    name: &OsStr,
    here: &Path,
    last: bool,
    create: bool,
) -> Result<OwnedFd, StoreError> {
    let access = if last { OFlag::O_RDONLY } else { OFlag::O_PATH };
    let flags = access | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(parent, name, flags, Mode::empty()) {
        Err(Errno::ENOENT) if create => {
            make_dir(parent, name, here)?;
            let fd = openat(parent, name, flags, Mode::empty())
                .map_err(|e| open_error(parent, name, here, e))?;
            if last {
                fchmod(&fd, Mode::from_bits_truncate(0o700)).map_err(nix_err(here, "chmod"))?;
            }
            Ok(fd)
        }
        r => r.map_err(|e| open_error(parent, name, here, e)),
    }
}

fn make_dir(parent: &OwnedFd, name: &OsStr, here: &Path) -> Result<(), StoreError> {
    match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(nix_err(here, "create directory")(e)),
    }
}

/// O_NOFOLLOW|O_DIRECTORY fails with ENOTDIR (or ELOOP) on a symbolic
/// link: say which it was.
fn open_error(parent: &OwnedFd, name: &OsStr, here: &Path, e: Errno) -> StoreError {
    if e != Errno::ENOTDIR && e != Errno::ELOOP {
        return nix_err(here, "open directory")(e);
    }
    match fstatat(parent, name, AT_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => unsafe_path(
            here,
            "is a symbolic link (the store path must not contain one)",
        ),
        Ok(st) if !is_dir(&st) => unsafe_path(here, "is not a directory"),
        _ => nix_err(here, "open directory")(e),
    }
}
