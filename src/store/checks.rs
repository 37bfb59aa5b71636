//! Ownership, mode and type rules for the store directory, its parents and
//! its files. Each takes the `fstat` of an open handle (or an `fstatat`
//! without following links), never a path looked up again.

use nix::sys::stat::FileStat;
use std::path::Path;

use super::{StoreError, Trust, unsafe_path};

/// Records and lock files: no bit beyond 0600 (no group/other access, no
/// execute, setuid, setgid or sticky bit). `otpgate doctor` holds lock files
/// to the same rule.
pub const FILE_FORBIDDEN: u32 = 0o7777 & !0o600;
/// Directories and settings files: not writable by group/other.
pub(super) const WRITE_FORBIDDEN: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Mode bits printed the way `ls`/`chmod` users read them.
pub(super) fn mode_str(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn file_type(st: &FileStat) -> u32 {
    st.st_mode & libc::S_IFMT
}

pub(super) fn is_dir(st: &FileStat) -> bool {
    file_type(st) == libc::S_IFDIR
}

/// What a non-regular file is, in words.
fn kind(st: &FileStat) -> &'static str {
    match file_type(st) {
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR | libc::S_IFBLK => "a device",
        _ => "of an unknown type",
    }
}

/// A trusted owner (root, or this process's user with `owner_ok`).
pub(super) fn check_owner(
    path: &Path,
    st: &FileStat,
    trust: Trust,
    subject: &str,
) -> Result<(), StoreError> {
    if trust.trusts_owner(st.st_uid) {
        return Ok(());
    }
    Err(unsafe_path(
        path,
        format!("{subject}owned by uid {}, not root", st.st_uid),
    ))
}

/// None of the `forbidden` mode bits ([`FILE_FORBIDDEN`] or [`WRITE_FORBIDDEN`]).
pub(super) fn check_mode(
    path: &Path,
    st: &FileStat,
    subject: &str,
    forbidden: u32,
    want: &str,
) -> Result<(), StoreError> {
    let bad = st.st_mode & forbidden;
    if bad == 0 {
        return Ok(());
    }
    let problem = if bad & 0o077 == 0 {
        "has bits beyond 0600 (execute, setuid, setgid or sticky)"
    } else if forbidden & 0o044 != 0 {
        "gives group/other access"
    } else {
        "is writable by group/other"
    };
    let mode = mode_str(st.st_mode);
    Err(unsafe_path(
        path,
        format!("{subject}mode {mode} {problem} (want {want})"),
    ))
}

/// A regular file with a single link.
pub(super) fn check_regular(path: &Path, st: &FileStat) -> Result<(), StoreError> {
    if file_type(st) == libc::S_IFLNK {
        return Err(unsafe_path(path, "is a symbolic link"));
    }
    if file_type(st) != libc::S_IFREG {
        return Err(unsafe_path(
            path,
            format!("not a regular file (it is {})", kind(st)),
        ));
    }
    // No link at all is fine: a record opened just before a concurrent
    // writer renamed a new one over it is a complete earlier version (only
    // the unlocked first look can see this).
    if st.st_nlink > 1 {
        return Err(unsafe_path(path, format!("has {} hard links", st.st_nlink)));
    }
    Ok(())
}

/// A protected file: regular, single link, trusted owner, mode 0600 at most.
pub(super) fn check_private_file(
    path: &Path,
    st: &FileStat,
    trust: Trust,
) -> Result<(), StoreError> {
    check_regular(path, st)?;
    check_owner(path, st, trust, "")?;
    check_mode(path, st, "", FILE_FORBIDDEN, "0600")
}

/// The store directory itself: trusted owner, not writable by group/other.
pub(super) fn check_store_dir(path: &Path, st: &FileStat, trust: Trust) -> Result<(), StoreError> {
    check_owner(path, st, trust, "store directory ")?;
    check_mode(path, st, "store directory ", WRITE_FORBIDDEN, "0700")
}

/// A parent of the store, as sshd's StrictModes checks a home directory:
/// whoever can write to it can swap the store for another directory.
/// A root-owned sticky directory (like /tmp) is fine: nobody else can
/// rename or remove what root put there.
pub(super) fn check_parent(path: &Path, st: &FileStat, trust: Trust) -> Result<(), StoreError> {
    check_owner(path, st, trust, "parent directory ")?;
    if st.st_uid == 0 && st.st_mode & STICKY != 0 {
        return Ok(());
    }
    check_mode(
        path,
        st,
        "parent directory ",
        WRITE_FORBIDDEN,
        "0755, or a root-owned sticky directory like /tmp",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{Mode, lstat};

    #[test]
    fn every_kind_of_file_is_named_and_only_a_directory_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::S_IRWXU).unwrap();
        let socket = dir.path().join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("elsewhere", &link).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let st = |p: &Path| lstat(p).unwrap();
        assert_eq!(kind(&st(&fifo)), "a FIFO");
        assert_eq!(kind(&st(&socket)), "a socket");
        assert_eq!(kind(&st(&link)), "a symbolic link");
        assert_eq!(kind(&st(Path::new("/dev/null"))), "a device");
        assert_eq!(kind(&st(dir.path())), "a directory");
        assert!(is_dir(&st(dir.path())));
        for p in [&fifo, &socket, &link, &file] {
            assert!(!is_dir(&st(p)), "{}", p.display());
        }
    }

    #[test]
    fn a_bad_mode_is_refused_with_what_is_wrong_with_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let why = |mode: u32, forbidden: u32| {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            match check_mode(&file, &lstat(&file).unwrap(), "", forbidden, "x") {
                Ok(()) => String::new(),
                Err(e) => e.to_string(),
            }
        };
        assert_eq!(why(0o600, FILE_FORBIDDEN), "");
        assert!(why(0o640, FILE_FORBIDDEN).contains("gives group/other access"));
        assert!(why(0o700, FILE_FORBIDDEN).contains("has bits beyond 0600"));
        assert_eq!(why(0o755, WRITE_FORBIDDEN), "");
        assert!(why(0o775, WRITE_FORBIDDEN).contains("is writable by group/other"));
    }
}
