//! The fleet object: the PostgreSQL client (tokio, rustls, the AEAD) is
//! half the size of everything else together, and the module is mapped,
//! relocated and unmapped on every login. So `pam_otpgate.so` holds the
//! file store only, and a login whose site store is a database is handed
//! whole to a second object beside it, loaded for that login and closed
//! after it: `pam_otpgate_fleet.so` (the module's own file name with
//! `_fleet` before `.so`), which runs the same login with both stores.
//! (Closed, not always unloaded: once its runtime has run on a thread, its
//! thread-local destructors keep it mapped while that thread lives, which
//! matters only to a PAM client that lives on; see [`stale`].)
//!
//! The contract between the two is this file's: two symbols, and the same
//! build on both sides, checked before the login is handed over.

use libc::{c_char, c_int, c_void};
use pam_bindings::constants::PamFlag;
use pam_bindings::module::PamHandle;
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The build both objects must be: a module and a fleet object of
/// different releases, or of one version built from different trees, may
/// disagree on the store's formats. The version and a hash of the sources
/// and features (build.rs).
pub const RELEASE: &CStr = match CStr::from_bytes_with_nul(
    concat!(
        "otpgate ",
        env!("CARGO_PKG_VERSION"),
        " (",
        env!("OTPGATE_SOURCE_ID"),
        ")\0"
    )
    .as_bytes(),
) {
    Ok(s) => s,
    Err(_) => c"otpgate",
};
const VERSION_SYMBOL: &CStr = c"otpgate_fleet_release";
const ENTRY_SYMBOL: &CStr = c"otpgate_fleet_authenticate";

type ReleaseFn = unsafe extern "C" fn() -> *const c_char;
type EntryFn = unsafe extern "C" fn(*mut PamHandle, PamFlag, c_int, *const *const c_char) -> c_int;

/// The fleet object's two symbols, for its crate root:
/// `otpgate::fleet_object!();` (see `fleet/`).
#[macro_export]
macro_rules! fleet_object {
    () => {
        /// The release this object is, for `pam_otpgate.so` to compare with its own.
        #[unsafe(no_mangle)]
        pub extern "C" fn otpgate_fleet_release() -> *const ::std::os::raw::c_char {
            $crate::pam::fleet::RELEASE.as_ptr()
        }

        /// One `pam_sm_authenticate`, handed over by `pam_otpgate.so`.
        ///
        /// # Safety
        /// The arguments are the ones libpam passed to `pam_sm_authenticate`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn otpgate_fleet_authenticate(
            pamh: *mut $crate::pam::fleet::Handle,
            flags: $crate::pam::fleet::Flag,
            argc: ::std::os::raw::c_int,
            argv: *const *const ::std::os::raw::c_char,
        ) -> ::std::os::raw::c_int {
            // SAFETY: the caller's contract is pam_sm_authenticate's, which
            // is what `entry` requires.
            unsafe { $crate::pam::fleet::entry(pamh, flags, argc, argv) }
        }
    };
}

/// The PAM handle and flags types, for the macro's signature.
pub type Handle = PamHandle;
pub type Flag = PamFlag;

/// Runs a login handed over by `pam_otpgate.so`, panics stopped here.
///
/// # Safety
/// As `pam_sm_authenticate`: `pamh` is libpam's live handle, `argv` holds
/// `argc` NUL-terminated strings that outlive the call.
pub unsafe fn entry(
    pamh: *mut PamHandle,
    flags: PamFlag,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded from our caller's contract (see above).
    let code = unsafe {
        pam_bindings::macros::invoke_hook(pamh, argc, argv, |pamh, args| {
            super::module::authenticate_here(pamh, &args, flags)
        })
    };
    code as c_int
}

/// Hands this login to the fleet object and returns its PAM code, or why
/// it could not (no such file, not root's, another release ...): the
/// caller refuses and logs that.
pub fn delegate(pamh: &mut PamHandle, flags: PamFlag, args: &[&CStr]) -> Result<c_int, String> {
    let loaded = Loaded::open(&fleet_path()?)?;
    let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    let argc = c_int::try_from(argv.len()).map_err(|_| "too many module options".to_string())?;
    // SAFETY: `entry` is the fleet object's otpgate_fleet_authenticate (see
    // Loaded::open), alive while `loaded` is; `pamh` is the live handle
    // libpam passed to this hook, and `argv` holds `argc` pointers to the
    // NUL-terminated options libpam gave us, all valid for the call:
    // pam_sm_authenticate's contract.
    Ok(unsafe { (loaded.entry)(pamh, flags, argc, argv.as_ptr()) })
}

/// What a login would check before handing over, without handing over:
/// for `otpgate doctor`. `Ok` names the file that would be loaded.
pub fn probe(fleet: &Path) -> Result<PathBuf, String> {
    Loaded::open(fleet).map(|l| l.path)
}

/// A dlopen handle, closed on drop.
struct DlHandle(*mut c_void);

impl Drop for DlHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and is closed once, here; no
        // pointer into the object (its functions, its release string) is
        // used after this (`Loaded` keeps its entry only beside its handle).
        unsafe { libc::dlclose(self.0) };
    }
}

/// The fleet object, loaded and checked; closed on drop.
struct Loaded {
    entry: EntryFn,
    path: PathBuf,
    _handle: DlHandle,
}

impl Loaded {
    /// Resolves `path`, checks the file and every directory above it,
    /// loads it, and checks that it is otpgate's of this build and the
    /// very file on disk (not an older one this process still has mapped).
    fn open(path: &Path) -> Result<Loaded, String> {
        let real = trusted(path)?;
        let show = real.display();
        let c_path = CString::new(real.as_os_str().as_bytes())
            .map_err(|_| format!("{show}: a NUL in the path"))?;
        // SAFETY: `c_path` is a valid NUL-terminated string; RTLD_LOCAL
        // keeps the object's symbols out of the host's namespace.
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("cannot load {show}: {}", dl_error()));
        }
        let handle = DlHandle(handle);
        if let Some(why) = stale(&real) {
            return Err(why);
        }
        // SAFETY: `handle` is a live dlopen handle; the name is NUL-terminated.
        let release = unsafe { libc::dlsym(handle.0, VERSION_SYMBOL.as_ptr()) };
        // SAFETY: likewise.
        let entry = unsafe { libc::dlsym(handle.0, ENTRY_SYMBOL.as_ptr()) };
        if release.is_null() || entry.is_null() {
            return Err(format!("{show} is not otpgate's fleet object"));
        }
        // SAFETY: the symbol is the fleet_object! function of this signature
        // (checked by name; a look-alike would need root to be put there).
        let release: ReleaseFn = unsafe { std::mem::transmute::<*mut c_void, ReleaseFn>(release) };
        // SAFETY: it returns a pointer to a static NUL-terminated string in
        // the object, read (and compared) here while the object is loaded.
        let theirs = unsafe { CStr::from_ptr(release()) };
        if theirs != RELEASE {
            return Err(format!(
                "{show} is {}, this module is {}: install both from one build",
                theirs.to_string_lossy(),
                RELEASE.to_string_lossy()
            ));
        }
        // SAFETY: as above, the fleet_object! entry of this signature.
        let entry = unsafe { std::mem::transmute::<*mut c_void, EntryFn>(entry) };
        Ok(Loaded {
            entry,
            path: real,
            _handle: handle,
        })
    }
}

/// Whether this process has an older `path` mapped than the file now on
/// disk: glibc hands out a loaded object by its name, and one that could
/// not be unloaded (a thread-local destructor of its runtime keeps it, in
/// a host that lives on: a VPN or mail server's PAM client) would run the
/// old code after an upgrade.
fn stale(path: &Path) -> Option<String> {
    let on_disk = std::fs::metadata(path).ok()?;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let name = path.as_os_str().to_str()?;
    let mapped_other = maps.lines().any(|line| {
        let mut f = line.split_whitespace();
        let inode = f.nth(4).and_then(|i| i.parse::<u64>().ok());
        let rest: Vec<&str> = f.collect();
        let file = rest.join(" ");
        let file = file.strip_suffix(" (deleted)").unwrap_or(&file);
        file == name && inode.is_some_and(|i| i != on_disk.ino())
    });
    mapped_other.then(|| {
        format!(
            "this process (pid {}) still has an older {name} loaded than the file on disk (replaced since): restart it",
            std::process::id()
        )
    })
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message valid until
    // the next dl* call on this thread; it is copied at once.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        return "unknown error".into();
    }
    // SAFETY: non-null, NUL-terminated (see above).
    unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
}

/// The file this module was loaded from (as libpam named it to dlopen),
/// with `_fleet` before its `.so`.
fn fleet_path() -> Result<PathBuf, String> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let here = fleet_path as fn() -> Result<PathBuf, String>;
    // SAFETY: the address is a function of this object; `info` is a valid
    // out-parameter that dladdr fills on success.
    let found = unsafe { libc::dladdr(here as *const c_void, info.as_mut_ptr()) };
    // SAFETY: dladdr succeeded (non-zero), so `info` is initialised.
    let info = unsafe { info.assume_init() };
    if found == 0 || info.dli_fname.is_null() {
        return Err("cannot find the module's own file (dladdr)".into());
    }
    // SAFETY: dli_fname is the loader's NUL-terminated name of the object.
    let own = Path::new(OsStr::from_bytes(
        unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes(),
    ))
    .to_path_buf();
    if own
        .file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|s| s.ends_with("_fleet"))
    {
        return Err(format!(
            "{} is the fleet object, not the module: the PAM stack must name pam_otpgate.so",
            own.display()
        ));
    }
    sibling(&own).ok_or_else(|| {
        format!(
            "the module's own path {} is not an absolute path to a .so",
            own.display()
        )
    })
}

/// `/dir/name.so` -> `/dir/name_fleet.so`.
pub fn sibling(module: &Path) -> Option<PathBuf> {
    if !module.is_absolute() {
        return None;
    }
    let name = module.file_name()?.to_str()?;
    let stem = name.strip_suffix(".so").filter(|s| !s.is_empty())?;
    Some(module.with_file_name(format!("{stem}_fleet.so")))
}

/// Code that runs in sshd and sudo: the path resolved (symbolic links
/// followed), then a regular file owned by root, in directories owned by
/// root all the way up, none of them writable by group or others (a
/// root-owned sticky directory, such as /tmp, is fine: no one else can
/// rename what is in it). Returns the resolved path, the one to load.
fn trusted(path: &Path) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = std::fs::symlink_metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", real.display()));
    }
    root_only(&real, &meta, false)?;
    for dir in real.ancestors().skip(1) {
        let m = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        root_only(dir, &m, true)?;
    }
    Ok(real)
}

fn root_only(path: &Path, m: &std::fs::Metadata, dir: bool) -> Result<(), String> {
    let show = path.display();
    if m.uid() != 0 {
        return Err(format!("{show}: not owned by root"));
    }
    let sticky = dir && m.permissions().mode() & 0o1000 != 0;
    if m.permissions().mode() & 0o022 != 0 && !sticky {
        return Err(format!("{show}: writable by group or others"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_object_sits_beside_the_module() {
        let s = |p: &str| sibling(Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(
            s("/usr/lib/x86_64-linux-gnu/security/pam_otpgate.so").as_deref(),
            Some("/usr/lib/x86_64-linux-gnu/security/pam_otpgate_fleet.so")
        );
        assert_eq!(
            s("/src/target/debug/deps/libotpgate.so").as_deref(),
            Some("/src/target/debug/deps/libotpgate_fleet.so")
        );
        assert_eq!(s("pam_otpgate.so"), None);
        assert_eq!(s("/lib/security/pam_otpgate"), None);
        assert_eq!(s("/lib/security/.so"), None);
    }

    #[test]
    fn the_release_names_this_version_and_build() {
        let release = RELEASE.to_str().unwrap();
        let id = release
            .strip_prefix(&format!("otpgate {} (", env!("CARGO_PKG_VERSION")))
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{release}"));
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{release}"
        );
    }
}
