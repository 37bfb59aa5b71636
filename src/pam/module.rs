//! The module's hooks: gather what libpam offers, run [`crate::login`],
//! map the verdict to a PAM code. Panics are caught by pam-bindings'
//! hook wrapper (`catch_unwind`) and become PAM_ABORT, never a crash.

use libc::c_int;
use pam_bindings::constants::{
    PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_SILENT, PAM_TEXT_INFO, PamFlag,
    PamResultCode,
};
use pam_bindings::conv::Conv;
use pam_bindings::items::{AuthTok, RHost, Service};
use pam_bindings::module::{PamHandle, PamHooks};
use std::ffi::CStr;
use zeroize::Zeroizing;

use super::{ffi, fleet};
use crate::config::ModuleOptions;
use crate::login::{self, LogLevel, LoginEnv, PamHandler, Verdict};
use crate::store::UserStore;

struct OtpGate;
pam_bindings::pam_hooks!(OtpGate);

/// The one place a verdict becomes a PAM return code.
pub fn verdict_code(v: Verdict) -> PamResultCode {
    match v {
        Verdict::Success => PamResultCode::PAM_SUCCESS,
        Verdict::Failure => PamResultCode::PAM_AUTH_ERR,
        Verdict::Ignore => PamResultCode::PAM_IGNORE,
        Verdict::ConversationError => PamResultCode::PAM_CONV_ERR,
        // What the fleet object answered, when it is one of the answers
        // this function gives (or PAM_ABORT, a panic it stopped).
        Verdict::Fleet(code) => match PamResultCode::try_from(code) {
            Ok(
                c @ (PamResultCode::PAM_SUCCESS
                | PamResultCode::PAM_AUTH_ERR
                | PamResultCode::PAM_IGNORE
                | PamResultCode::PAM_CONV_ERR
                | PamResultCode::PAM_ABORT),
            ) => c,
            _ => PamResultCode::PAM_AUTH_ERR,
        },
    }
}

impl PamHooks for OtpGate {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        run(pamh, &args, flags, login::open_files, true)
    }

    fn sm_setcred(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }
}

/// A login handed over to the fleet object, run there with both stores.
pub fn authenticate_here(pamh: &mut PamHandle, args: &[&CStr], flags: PamFlag) -> PamResultCode {
    run(pamh, args, flags, login::open_any, false)
}

/// One login: on the file store, handing a database's to the fleet object
/// (the module), or on either store (the fleet object). Generic, so the
/// module never links the database client.
fn run<S: UserStore>(
    pamh: &mut PamHandle,
    args: &[&CStr],
    flags: PamFlag,
    open: login::StoreOpener<S>,
    delegate: bool,
) -> PamResultCode {
    let options = ModuleOptions::from_pam_args(args);
    #[cfg(feature = "panic-test")]
    panic_for_test(&options, delegate);
    let debug = options.as_ref().is_ok_and(|o| o.debug);
    let env = LoginEnv {
        silent: flags & PAM_SILENT != 0,
        ..LoginEnv::default()
    };
    let mut handler = Handler {
        pamh,
        debug,
        flags,
        args,
        delegate,
    };
    verdict_code(login::authenticate_with(
        &mut handler,
        options,
        &env,
        unix_now,
        open,
    ))
}

/// A bug on demand (feature `panic-test`, option `panic_for_test`): the
/// panic must end at pam-bindings' `catch_unwind` as PAM_ABORT.
#[cfg(feature = "panic-test")]
#[allow(clippy::panic)]
fn panic_for_test(options: &Result<ModuleOptions, crate::config::ConfigError>, module: bool) {
    if options.as_ref().is_ok_and(|o| {
        if module {
            o.panic_for_test
        } else {
            o.panic_in_fleet
        }
    }) {
        panic!("otpgate: panic_for_test");
    }
}

/// The login's single clock read; `None` (a clock before 1970) fails closed.
#[allow(clippy::disallowed_methods)]
fn unix_now() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

struct Handler<'a> {
    pamh: &'a mut PamHandle,
    debug: bool,
    flags: PamFlag,
    args: &'a [&'a CStr],
    /// The module hands database logins to the fleet object; the fleet
    /// object runs them itself.
    delegate: bool,
}

impl Handler<'_> {
    fn send(&mut self, style: c_int, text: &str) -> Option<Zeroizing<Vec<u8>>> {
        let conv = self.pamh.get_item::<Conv>().ok()??;
        match conv.send(style, text) {
            Ok(Some(reply)) => Some(Zeroizing::new(reply.as_bytes().to_vec())),
            Ok(None) => Some(Zeroizing::new(Vec::new())),
            Err(_) => None,
        }
    }

    fn item_string(&self, f: impl FnOnce(&PamHandle) -> Option<String>) -> String {
        f(self.pamh).unwrap_or_default()
    }
}

impl PamHandler for Handler<'_> {
    fn user(&mut self) -> Option<String> {
        self.pamh.get_user(None).ok()
    }

    fn service(&self) -> String {
        self.item_string(|p| {
            Some(
                p.get_item::<Service>()
                    .ok()??
                    .0
                    .to_string_lossy()
                    .into_owned(),
            )
        })
    }

    fn rhost(&self) -> String {
        self.item_string(|p| {
            Some(
                p.get_item::<RHost>()
                    .ok()??
                    .0
                    .to_string_lossy()
                    .into_owned(),
            )
        })
    }

    fn authtok(&self) -> Option<Zeroizing<Vec<u8>>> {
        let tok = self.pamh.get_item::<AuthTok>().ok()??;
        Some(Zeroizing::new(tok.as_bytes().to_vec()))
    }

    fn set_authtok(&mut self, token: &[u8]) -> bool {
        ffi::set_authtok(self.pamh, token)
    }

    fn prompt(&mut self, text: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        self.send(style, text)
    }

    fn info(&mut self, text: &str) {
        let _ = self.send(PAM_TEXT_INFO, text);
    }

    fn error(&mut self, text: &str) {
        let _ = self.send(PAM_ERROR_MSG, text);
    }

    fn log(&mut self, level: LogLevel, line: &str) {
        let priority = match level {
            LogLevel::Err => libc::LOG_ERR,
            LogLevel::Notice => libc::LOG_NOTICE,
            LogLevel::Debug if self.debug => libc::LOG_DEBUG,
            LogLevel::Debug => return,
        };
        ffi::syslog(self.pamh, priority, line);
    }

    fn fleet(&mut self) -> Result<i32, String> {
        if !self.delegate {
            return Err("the fleet object was handed a login it cannot run".into());
        }
        fleet::delegate(self.pamh, self.flags, self.args)
    }
}
