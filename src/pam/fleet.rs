//! The fleet object: the PostgreSQL client (tokio, rustls, the AEAD) is
//! half the size of everything else together, and the module is mapped,
//! relocated and unmapped on every login. So `pam_otpgate.so` holds the
//! file store only, and a login whose site store is a database is handed
//! whole to a second object beside it, loaded for that login and closed
//! after it: `pam_otpgate_fleet.so` (the module's own file name with
//! `_fleet` before `.so`), which runs the same login with both stores.
//!
//! The contract between the two is this file's: two symbols, checked for
//! the same release before the login is handed over.

use libc::{c_char, c_int, c_void};
use pam_bindings::constants::PamFlag;
use pam_bindings::module::PamHandle;
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The release both objects must be: a module and a fleet object of
/// different releases may disagree on the store's formats.
pub const RELEASE: &CStr = match CStr::from_bytes_with_nul(
    concat!("otpgate ", env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
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
    let path = fleet_path()?;
    trusted(&path)?;
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{}: a NUL in the path", path.display()))?;
    // SAFETY: `c_path` is a valid NUL-terminated string; RTLD_LOCAL keeps
    // the object's symbols out of the host's namespace.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(format!("cannot load {}: {}", path.display(), dl_error()));
    }
    let result = call(handle, pamh, flags, args, &path);
    // SAFETY: `handle` came from dlopen above, and no pointer into the
    // object (its functions, its release string) is used after this.
    unsafe { libc::dlclose(handle) };
    result
}

fn call(
    handle: *mut c_void,
    pamh: &mut PamHandle,
    flags: PamFlag,
    args: &[&CStr],
    path: &Path,
) -> Result<c_int, String> {
    // SAFETY: `handle` is a live dlopen handle; the name is NUL-terminated.
    let release = unsafe { libc::dlsym(handle, VERSION_SYMBOL.as_ptr()) };
    // SAFETY: likewise.
    let entry = unsafe { libc::dlsym(handle, ENTRY_SYMBOL.as_ptr()) };
    if release.is_null() || entry.is_null() {
        return Err(format!("{} is not otpgate's fleet object", path.display()));
    }
    // SAFETY: the symbol is the fleet_object! function of this signature
    // (checked by name; a look-alike would need root to be put there).
    let release: ReleaseFn = unsafe { std::mem::transmute::<*mut c_void, ReleaseFn>(release) };
    // SAFETY: it returns a pointer to a static NUL-terminated string in the
    // object, read here while the object is loaded.
    let theirs = unsafe { CStr::from_ptr(release()) };
    if theirs != RELEASE {
        return Err(format!(
            "{} is {}, this module is {}: install both from one release",
            path.display(),
            theirs.to_string_lossy(),
            RELEASE.to_string_lossy()
        ));
    }
    // SAFETY: as above, the fleet_object! entry of this signature.
    let entry: EntryFn = unsafe { std::mem::transmute::<*mut c_void, EntryFn>(entry) };
    let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    let argc = c_int::try_from(argv.len()).map_err(|_| "too many module options".to_string())?;
    // SAFETY: `pamh` is the live handle libpam passed to this hook, and
    // `argv` holds `argc` pointers to the NUL-terminated options libpam
    // gave us, all valid for the call: pam_sm_authenticate's contract.
    Ok(unsafe { entry(pamh, flags, argc, argv.as_ptr()) })
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

/// Code that runs in sshd and sudo: a regular file owned by root in a
/// directory owned by root, neither writable by group or others.
fn trusted(path: &Path) -> Result<(), String> {
    let show = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{show}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{show}: not a regular file"));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let dir_meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (what, m) in [(path, &meta), (dir, &dir_meta)] {
        if m.uid() != 0 {
            return Err(format!("{}: not owned by root", what.display()));
        }
        if m.permissions().mode() & 0o022 != 0 {
            return Err(format!("{}: writable by group or others", what.display()));
        }
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
    fn the_release_names_this_version() {
        assert_eq!(
            RELEASE.to_str().unwrap(),
            format!("otpgate {}", env!("CARGO_PKG_VERSION"))
        );
    }
}
