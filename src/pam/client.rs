//! The application side of PAM, for tests and diagnostics: start a
//! transaction from a private service directory (`pam_start_confdir`),
//! answer the conversation from a closure, and record every message.

use libc::{c_char, c_int, c_void};
use std::ffi::{CStr, CString};
use std::path::Path;

use pam_bindings::module::PamHandle;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn =
    extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;

#[repr(C)]
struct PamConv {
    conv: ConvFn,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_end(pamh: *mut PamHandle, status: c_int) -> c_int;
}

pub const PAM_SUCCESS: i32 = 0;
pub const PAM_AUTH_ERR: i32 = 7;
pub const PAM_IGNORE: i32 = 25;
pub const PAM_CONV_ERR: i32 = 19;
pub const PAM_SILENT: i32 = 0x8000;
const PAM_RHOST: c_int = 4;
const PAM_CONV_ERR_C: c_int = 19;

/// Loads the shared object at `path` the way libpam loads a module
/// (`dlopen`, `RTLD_NOW`) and unloads it again: what a process that runs
/// one PAM transaction (sshd's session, sudo) pays for the module's size,
/// measured apart by the benchmark.
pub fn load_and_unload(path: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| "NUL in the path".to_string())?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call. Loading
    // runs the object's initialisers, which for a PAM module (ours or a
    // peer's, as libpam itself would load it) are made to run in any process.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns NULL or a NUL-terminated message owned by
        // libc, valid until the next dl* call on this thread; copied at once.
        let why = unsafe { libc::dlerror() };
        return Err(if why.is_null() {
            "dlopen failed".to_string()
        } else {
            // SAFETY: non-NULL, NUL-terminated (see above).
            unsafe { CStr::from_ptr(why) }
                .to_string_lossy()
                .into_owned()
        });
    }
    // SAFETY: `handle` came from the dlopen above, nothing from the object
    // is in use, and it is closed exactly once.
    unsafe { libc::dlclose(handle) };
    Ok(())
}

/// A message style as the application sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    PromptEchoOff,
    PromptEchoOn,
    ErrorMsg,
    TextInfo,
    Other(i32),
}

impl Style {
    fn from_raw(v: c_int) -> Style {
        match v {
            1 => Style::PromptEchoOff,
            2 => Style::PromptEchoOn,
            3 => Style::ErrorMsg,
            4 => Style::TextInfo,
            o => Style::Other(o),
        }
    }

    pub fn is_prompt(self) -> bool {
        matches!(self, Style::PromptEchoOff | Style::PromptEchoOn)
    }
}

/// Answers prompts; `None` fails the conversation.
pub type Responder<'a> = dyn FnMut(Style, &str) -> Option<String> + 'a;

/// One authentication: service `service` read from `confdir`.
pub struct Login<'a> {
    pub confdir: &'a Path,
    pub service: &'a str,
    pub user: &'a str,
    pub rhost: Option<&'a str>,
    pub flags: i32,
}

/// Every message the module sent, in order, and the PAM result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub code: i32,
    pub messages: Vec<(Style, String)>,
}

struct ConvState<'r, 'a> {
    responder: &'r mut Responder<'a>,
    messages: Vec<(Style, String)>,
}

extern "C" fn conversation(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let run = std::panic::AssertUnwindSafe(|| {
        let Ok(n) = usize::try_from(num_msg) else {
            return PAM_CONV_ERR_C;
        };
        if n == 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
            return PAM_CONV_ERR_C;
        }
        // SAFETY: appdata is the `ConvState` that `authenticate` placed in the
        // pam_conv for the duration of pam_authenticate; libpam passes it back
        // unchanged and calls us on the same thread.
        let state = unsafe { &mut *appdata.cast::<ConvState<'_, '_>>() };
        // SAFETY: calloc of n zeroed responses; libpam (the module) frees them.
        let replies =
            unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
        if replies.is_null() {
            return PAM_CONV_ERR_C;
        }
        for i in 0..n {
            // SAFETY: Linux-PAM passes an array of `n` pointers to messages
            // that stay valid during this call.
            let m = unsafe { &**msg.add(i) };
            let text = if m.msg.is_null() {
                String::new()
            } else {
                // SAFETY: msg is a NUL-terminated string owned by the module.
                unsafe { CStr::from_ptr(m.msg) }
                    .to_string_lossy()
                    .into_owned()
            };
            let style = Style::from_raw(m.msg_style);
            state.messages.push((style, text.clone()));
            let answer = (state.responder)(style, &text);
            if style.is_prompt() {
                let Some(answer) = answer.and_then(|a| CString::new(a).ok()) else {
                    free_replies(replies, i);
                    return PAM_CONV_ERR_C;
                };
                // SAFETY: strdup copies into malloc'd memory that the module frees;
                // `replies` has n slots and i < n.
                unsafe { (*replies.add(i)).resp = libc::strdup(answer.as_ptr()) };
            }
        }
        // SAFETY: resp is the out-pointer libpam gave us.
        unsafe { *resp = replies };
        0
    });
    std::panic::catch_unwind(run).unwrap_or(PAM_CONV_ERR_C)
}

fn free_replies(replies: *mut PamResponse, filled: usize) {
    for j in 0..filled {
        // SAFETY: slots 0..filled were initialised above (null or strdup'd).
        unsafe { libc::free((*replies.add(j)).resp.cast()) };
    }
    // SAFETY: allocated by calloc above and not handed to libpam.
    unsafe { libc::free(replies.cast()) };
}

/// Runs `pam_authenticate` for `login`, answering prompts with `responder`.
pub fn authenticate(
    login: &Login<'_>,
    responder: &mut Responder<'_>,
) -> Result<Transcript, String> {
    let service = CString::new(login.service).map_err(|_| "service has NUL")?;
    let user = CString::new(login.user).map_err(|_| "user has NUL")?;
    let confdir = CString::new(login.confdir.as_os_str().as_encoded_bytes())
        .map_err(|_| "confdir has NUL")?;
    let rhost = login
        .rhost
        .map(CString::new)
        .transpose()
        .map_err(|_| "rhost has NUL")?;
    let mut state = ConvState {
        responder,
        messages: Vec::new(),
    };
    let conv = PamConv {
        conv: conversation,
        appdata_ptr: (&raw mut state).cast(),
    };
    let mut handle: *mut PamHandle = std::ptr::null_mut();
    // SAFETY: all strings are NUL-terminated and outlive the transaction;
    // `conv` and `state` live on this stack frame until pam_end below.
    let rc = unsafe {
        pam_start_confdir(
            service.as_ptr(),
            user.as_ptr(),
            &conv,
            confdir.as_ptr(),
            &mut handle,
        )
    };
    if rc != PAM_SUCCESS || handle.is_null() {
        return Err(format!("pam_start_confdir failed with {rc}"));
    }
    if let Some(rhost) = &rhost {
        // SAFETY: live handle; libpam copies the string.
        unsafe { pam_set_item(handle, PAM_RHOST, rhost.as_ptr().cast()) };
    }
    // SAFETY: live handle from pam_start_confdir.
    let code = unsafe { pam_authenticate(handle, login.flags) };
    // SAFETY: ends the transaction started above; the handle is not used again.
    unsafe { pam_end(handle, code) };
    Ok(Transcript {
        code,
        messages: state.messages,
    })
}
