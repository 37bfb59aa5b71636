//! libpam functions that pam-bindings does not wrap.

use libc::{c_char, c_int, c_void};
use pam_bindings::module::PamHandle;
use std::ffi::CString;

/// PAM_AUTHTOK item type (security/_pam_types.h).
const PAM_AUTHTOK: c_int = 6;

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
}

/// Logs one line through `pam_syslog` (facility LOG_AUTHPRIV, prefixed with
/// the service and module by libpam). A NUL byte is written as `\x00`, so
/// the line is never dropped.
pub fn syslog(pamh: &PamHandle, priority: c_int, line: &str) {
    let Ok(line) = CString::new(line.replace('\0', "\\x00")) else {
        return;
    };
    // SAFETY: `pamh` is the live handle libpam passed to this hook; the format
    // is a constant "%s" and its one argument a valid NUL-terminated string
    // that outlives the call.
    unsafe { pam_syslog(pamh, priority, c"%s".as_ptr(), line.as_ptr()) };
}

/// Sets PAM_AUTHTOK for the modules after this one (`forward_pass`).
/// libpam copies the string, so ours is wiped right after.
pub fn set_authtok(pamh: &mut PamHandle, token: &[u8]) -> bool {
    let Ok(c) = CString::new(token) else {
        return false;
    };
    let mut bytes = c.into_bytes_with_nul();
    // SAFETY: `pamh` is the live handle for this hook; `bytes` is a
    // NUL-terminated buffer valid for the call; libpam strdup()s the item.
    let rc = unsafe { pam_set_item(pamh, PAM_AUTHTOK, bytes.as_ptr().cast()) };
    zeroize::Zeroize::zeroize(&mut bytes);
    rc == 0
}
