//! One login as the module runs it, generic over a [`PamHandler`] so that
//! every prompt, message and log line is pinned by tests without libpam.
//!
//! Order: options -> user -> store -> look at the record -> ask -> read the
//! clock once -> locked transaction (read, decide, write, fsync) -> tell.

use std::fmt::Write as _;
use std::path::Path;

use zeroize::Zeroizing;

use crate::config::{ConfigError, ModuleOptions, SITE_CONFIG, SiteConfig, TokenSource};
use crate::core::decide::{Lock, lock_state};
use crate::core::input::Attempt;
use crate::core::{Failure, Method, Reason, Success, classify, decide_login};
use crate::store::{Change, Store, StoreError, validate_user};

/// Recovery codes left at or below this number turn the notice into a warning.
pub const LOW_RECOVERY_CODES: usize = 2;

/// What the host application (via libpam) provides to the module.
pub trait PamHandler {
    /// PAM_USER (may prompt for it).
    fn user(&mut self) -> Option<String>;
    fn service(&self) -> String;
    fn rhost(&self) -> String;
    /// PAM_AUTHTOK set by an earlier module.
    fn authtok(&self) -> Option<Zeroizing<Vec<u8>>>;
    fn set_authtok(&mut self, token: &[u8]) -> bool;
    /// Asks the user; `None` when the conversation failed.
    fn prompt(&mut self, text: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>>;
    fn info(&mut self, text: &str);
    fn error(&mut self, text: &str);
    /// One syslog line (LOG_AUTHPRIV). `notice` for results, `err` for faults.
    fn log(&mut self, level: LogLevel, line: &str);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Err,
    Notice,
    Debug,
}

/// The module's answer, mapped to a PAM code in one place (`src/pam`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure,
    Ignore,
    ConversationError,
}

/// Everything a login needs from outside besides the handler.
pub struct LoginEnv<'a> {
    pub site_config: &'a Path,
    /// PAM_SILENT: no informational messages.
    pub silent: bool,
}

impl Default for LoginEnv<'_> {
    fn default() -> Self {
        LoginEnv {
            site_config: Path::new(SITE_CONFIG),
            silent: false,
        }
    }
}

/// Fields of the one log line written per attempt.
struct Attempted<'a> {
    user: &'a str,
    service: String,
    rhost: String,
}

impl Attempted<'_> {
    fn line(
        &self,
        result: &str,
        method: Option<Method>,
        reason: Option<Reason>,
        offset: Option<i64>,
        detail: Option<&str>,
    ) -> String {
        let mut s = String::from("otpgate:");
        let _ = write!(
            s,
            " user={} service={} rhost={} result={result}",
            escape(self.user),
            escape(&self.service),
            escape(&self.rhost)
        );
        if let Some(m) = method {
            let _ = write!(s, " method={}", m.as_str());
        }
        if let Some(r) = reason {
            let _ = write!(s, " reason={r}");
        }
        if let Some(o) = offset {
            let _ = write!(s, " offset={o:+}");
        }
        if let Some(d) = detail {
            let _ = write!(
                s,
                " detail=\"{}\"",
                d.replace(['"', '\\'], "'")
                    .replace(|c: char| c.is_control(), "?")
            );
        }
        s
    }
}

/// Makes a value safe for a space-separated log line.
pub fn escape(value: &str) -> String {
    if value.is_empty() {
        return "-".to_string();
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_alphanumeric() || "@._+:-".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// Runs one `pam_sm_authenticate`. The decision uses one clock reading,
/// taken after the answer (a user may sit at the prompt for a while). Only
/// a record that carries a lock end is also checked against the clock before
/// the prompt, so the user learns of the lock where every client shows it:
/// with the prompt (sshd drops messages sent after the last prompt).
pub fn authenticate(
    h: &mut impl PamHandler,
    args: Result<ModuleOptions, ConfigError>,
    env: &LoginEnv<'_>,
    mut clock: impl FnMut() -> u64,
) -> Verdict {
    let user = h.user().unwrap_or_default();
    let who = Attempted {
        user: &user,
        service: h.service(),
        rhost: h.rhost(),
    };
    let opts = match args {
        Ok(o) => o,
        Err(e) => return fault(h, &who, Reason::ConfigError, &e.to_string()),
    };
    if let Err(e) = validate_user(&user) {
        return fault(h, &who, Reason::StoreError, &e.to_string());
    }
    let dir = match &opts.store {
        Some(d) => d.clone(),
        None => match SiteConfig::load(env.site_config) {
            Ok(c) => c.store_dir(),
            Err(e) => return fault(h, &who, Reason::ConfigError, &e.to_string()),
        },
    };
    if opts.debug {
        let p = &opts.policy;
        h.log(
            LogLevel::Debug,
            &format!(
                "otpgate: debug: user={} store={} window={} deny={} unlock_time={} hard_deny={} recovery={} token={:?} nullok={}",
                escape(&user),
                escape(&dir.display().to_string()),
                p.window,
                p.deny,
                p.unlock_time,
                p.hard_deny,
                p.recovery,
                opts.token,
                opts.nullok
            ),
        );
    }
    let store = match Store::open(&dir, opts.store_trust()) {
        Ok(s) => s,
        Err(e) => return fault(h, &who, Reason::StoreError, &e.to_string()),
    };
    let mut lock_told = false;
    // A first look, unlocked, so a broken record or a missing enrollment is
    // found before the user is asked anything.
    let digits = match store.load(&user) {
        Err(e) => return fault(h, &who, Reason::StoreError, &e.to_string()),
        Ok(Some(record)) => {
            // A hard lock needs no clock; a lock end does.
            let lock = if record.locked_until == 0 {
                lock_state(&record, &opts.policy, 0).map(|l| (l, 0))
            } else {
                let t = clock();
                lock_state(&record, &opts.policy, t).map(|l| (l, t))
            };
            if let Some((l, t)) = lock {
                tell_lock(h, l, t);
                lock_told = true;
            }
            record.digits
        }
        Ok(None) if opts.nullok => {
            // forward_pass: someone not yet enrolled types only the password;
            // pass it on whole so the next module can check it.
            if opts.token == TokenSource::ForwardPass {
                let Some(raw) = h.prompt(&opts.prompt, opts.echo) else {
                    return Verdict::ConversationError;
                };
                if !h.set_authtok(&raw) {
                    return fault(h, &who, Reason::ConfigError, "cannot set PAM_AUTHTOK");
                }
            }
            h.log(
                LogLevel::Notice,
                &who.line("ignore", None, Some(Reason::NotEnrolled), None, None),
            );
            return Verdict::Ignore;
        }
        Ok(None) => {
            // Ask anyway, so the prompt does not reveal who is enrolled.
            if opts.token != TokenSource::UseFirstPass {
                let _ = h.prompt(&opts.prompt, opts.echo);
            }
            h.log(
                LogLevel::Notice,
                &who.line("fail", None, Some(Reason::NotEnrolled), None, None),
            );
            return Verdict::Failure;
        }
    };

    // An answer from an earlier module first, when the options say so.
    let mut pending = match opts.token {
        TokenSource::UseFirstPass => match h.authtok() {
            Some(t) => Some(t),
            None => {
                h.log(
                    LogLevel::Notice,
                    &who.line(
                        "fail",
                        None,
                        Some(Reason::BadCode),
                        None,
                        Some("use_first_pass without PAM_AUTHTOK"),
                    ),
                );
                return Verdict::Failure;
            }
        },
        // A password that does not even look like a code is not an attempt.
        TokenSource::TryFirstPass => h
            .authtok()
            .filter(|t| classify(t, digits) != Attempt::Malformed),
        TokenSource::Prompt | TokenSource::ForwardPass => None,
    };
    let may_prompt = opts.token != TokenSource::UseFirstPass;
    let mut now = None;
    loop {
        let from_prompt = pending.is_none();
        let answer = match pending.take() {
            Some(a) => a,
            None => {
                let Some(raw) = h.prompt(&opts.prompt, opts.echo) else {
                    h.log(
                        LogLevel::Notice,
                        &who.line("fail", None, None, None, Some("conversation failed")),
                    );
                    return Verdict::ConversationError;
                };
                if opts.token == TokenSource::ForwardPass {
                    let (password, code) = split_forward(&raw, digits);
                    if !h.set_authtok(&password) {
                        return fault(h, &who, Reason::ConfigError, "cannot set PAM_AUTHTOK");
                    }
                    code
                } else {
                    raw
                }
            }
        };
        let now = *now.get_or_insert_with(&mut clock);
        let outcome = store.update(&user, |current| {
            let current = current.ok_or(None)?;
            let decision =
                decide_login(current, &answer, &opts.policy, now, &who.rhost).map_err(Some)?;
            let change = decision.new_record.map_or(Change::Keep, Change::Put);
            Ok((change, decision.result))
        });
        drop(answer);
        let failure = match outcome {
            Err(e) => return fault(h, &who, Reason::StoreError, &e.to_string()),
            Ok(Err(None)) => {
                h.log(
                    LogLevel::Notice,
                    &who.line(
                        "fail",
                        None,
                        Some(Reason::NotEnrolled),
                        None,
                        Some("record removed during login"),
                    ),
                );
                return Verdict::Failure;
            }
            Ok(Err(Some(e))) => {
                let e = StoreError::Corrupt {
                    path: store.record_path(&user),
                    err: e,
                };
                return fault(h, &who, Reason::StoreError, &e.to_string());
            }
            Ok(Ok(Ok(success))) => {
                h.log(
                    LogLevel::Notice,
                    &who.line("success", Some(success.method), None, success.offset, None),
                );
                tell_success(h, &success, env.silent);
                return Verdict::Success;
            }
            Ok(Ok(Err(failure))) => failure,
        };
        h.log(
            LogLevel::Notice,
            &who.line(
                "fail",
                failure.method,
                Some(failure.reason),
                failure.offset,
                None,
            ),
        );
        if !(lock_told && failure.reason == Reason::Locked) {
            tell_failure(h, &failure, now, env.silent);
        }
        // try_first_pass: a failed token from the stack earns one prompt.
        if from_prompt || !may_prompt || failure.locked.is_some() {
            return Verdict::Failure;
        }
    }
}

/// Logs a fault (configuration, store) and fails closed.
fn fault(h: &mut impl PamHandler, who: &Attempted<'_>, reason: Reason, detail: &str) -> Verdict {
    h.log(
        LogLevel::Err,
        &who.line("fail", None, Some(reason), None, Some(detail)),
    );
    Verdict::Failure
}

/// `forward_pass`: the trailing `digits` digits are the code, the rest the password.
fn split_forward(raw: &[u8], digits: u8) -> (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>) {
    let n = usize::from(digits);
    if raw.len() >= n && raw[raw.len() - n..].iter().all(u8::is_ascii_digit) {
        let (p, c) = raw.split_at(raw.len() - n);
        (Zeroizing::new(p.to_vec()), Zeroizing::new(c.to_vec()))
    } else {
        // No code at the end: pass everything on and let the check fail.
        (Zeroizing::new(raw.to_vec()), Zeroizing::new(Vec::new()))
    }
}

fn tell_success(h: &mut impl PamHandler, success: &Success, silent: bool) {
    if success.method != Method::Recovery {
        return;
    }
    let left = success.recovery_left;
    let text = format!(
        "Recovery code accepted. {left} recovery code{} left; make new ones with: sudo otpgate recovery",
        if left == 1 { "" } else { "s" }
    );
    if left <= LOW_RECOVERY_CODES {
        // A warning gets through even PAM_SILENT: running out locks the user out.
        h.error(&format!("Warning: {text}"));
    } else if !silent {
        h.info(&text);
    }
}

fn tell_lock(h: &mut impl PamHandler, lock: Lock, now: u64) {
    match lock {
        Lock::Until(t) => h.error(&format!(
            "Too many failed attempts: verification locked, retry in {} s.",
            t.saturating_sub(now)
        )),
        Lock::UntilUnlocked => h.error(
            "Too many failed attempts: verification locked until an administrator unlocks it.",
        ),
    }
}

fn tell_failure(h: &mut impl PamHandler, failure: &Failure, now: u64, silent: bool) {
    // Only the lock is named; a wrong code, a replay and a missing enrollment
    // look the same to the person at the prompt.
    match failure.locked {
        Some(Lock::Until(t)) => h.error(&format!(
            "Too many failed attempts: verification locked, retry in {} s.",
            t.saturating_sub(now)
        )),
        Some(Lock::UntilUnlocked) => h.error(
            "Too many failed attempts: verification locked until an administrator unlocks it.",
        ),
        None => {}
    }
    if failure.reason == Reason::ClockDrift && !silent {
        h.info("That code was for a different time. Check that your phone's clock is set automatically.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Record;
    use crate::core::otp::{Generator, OtpParams};
    use crate::core::recovery::{KdfParams, RecoveryCodes, RecoveryHashes};
    use std::collections::VecDeque;
    use std::os::unix::fs::PermissionsExt;

    /// What the module is expected to do next, in order.
    #[derive(Debug)]
    enum Step {
        Prompt(&'static str, String),
        Info(String),
        Error(String),
    }

    /// A handler that plays a script and checks, on drop, that all of it ran.
    struct Scripted {
        steps: VecDeque<Step>,
        logs: Vec<String>,
    }

    impl Scripted {
        fn new(steps: Vec<Step>) -> Scripted {
            Scripted {
                steps: steps.into(),
                logs: Vec::new(),
            }
        }
    }

    impl Drop for Scripted {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                assert!(self.steps.is_empty(), "never happened: {:?}", self.steps);
            }
        }
    }

    impl PamHandler for Scripted {
        fn user(&mut self) -> Option<String> {
            Some("alice".into())
        }
        fn service(&self) -> String {
            "sshd".into()
        }
        fn rhost(&self) -> String {
            "192.0.2.4".into()
        }
        fn authtok(&self) -> Option<Zeroizing<Vec<u8>>> {
            None
        }
        fn set_authtok(&mut self, _: &[u8]) -> bool {
            true
        }
        fn prompt(&mut self, text: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>> {
            match self.steps.pop_front() {
                Some(Step::Prompt(want, answer)) if want == text && !echo => {
                    Some(Zeroizing::new(answer.into_bytes()))
                }
                other => panic!("prompt {text:?} (echo {echo}) but expected {other:?}"),
            }
        }
        fn info(&mut self, text: &str) {
            match self.steps.pop_front() {
                Some(Step::Info(want)) if want == text => {}
                other => panic!("info {text:?} but expected {other:?}"),
            }
        }
        fn error(&mut self, text: &str) {
            match self.steps.pop_front() {
                Some(Step::Error(want)) if want == text => {}
                other => panic!("error {text:?} but expected {other:?}"),
            }
        }
        fn log(&mut self, _: LogLevel, line: &str) {
            self.logs.push(line.to_string());
        }
    }

    const NOW: u64 = 1_700_000_010;
    const SECRET: &[u8] = b"12345678901234567890";

    fn store_with_alice(codes: usize) -> (tempfile::TempDir, RecoveryCodes) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let rc = RecoveryCodes::generate(codes).unwrap();
        let cheap = KdfParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        };
        let record = Record::new(
            SECRET,
            OtpParams::default(),
            RecoveryHashes::create(&rc, cheap).unwrap(),
            NOW,
        );
        let store = Store::open(dir.path(), test_trust()).unwrap();
        store
            .update("alice", |_| Ok::<_, ()>((Change::Put(record), ())))
            .unwrap()
            .unwrap();
        (dir, rc)
    }

    /// As root (CI) the defaults; a non-root run trusts its own stores.
    fn test_trust() -> crate::store::Trust {
        if nix::unistd::geteuid().is_root() {
            crate::store::Trust::RootOnly
        } else {
            crate::store::Trust::RootOrEuid
        }
    }

    fn options(dir: &Path, extra: &[&str]) -> Result<ModuleOptions, ConfigError> {
        let mut args = vec![format!("store={}", dir.display())];
        if test_trust() == crate::store::Trust::RootOrEuid {
            args.push("owner_ok".to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        ModuleOptions::parse(&args)
    }

    fn login(h: &mut Scripted, opts: Result<ModuleOptions, ConfigError>, now: u64) -> Verdict {
        authenticate(h, opts, &LoginEnv::default(), || now)
    }

    fn code(offset: i64) -> String {
        let step = (NOW / 30).checked_add_signed(offset).unwrap();
        Generator::new(SECRET, OtpParams::default())
            .code_at_step(step)
            .to_string()
    }

    #[test]
    fn a_login_prompts_once_reads_the_clock_once_and_logs_once() {
        let (dir, _) = store_with_alice(3);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(0))]);
        let mut reads = 0;
        let v = authenticate(
            &mut h,
            options(dir.path(), &[]),
            &LoginEnv::default(),
            || {
                reads += 1;
                NOW
            },
        );
        assert_eq!(v, Verdict::Success);
        assert_eq!(reads, 1);
        assert_eq!(
            h.logs,
            [
                "otpgate: user=alice service=sshd rhost=192.0.2.4 result=success method=totp offset=+0"
            ]
        );
    }

    #[test]
    fn a_lock_is_announced_before_the_prompt_and_not_repeated() {
        let (dir, _) = store_with_alice(3);
        let opts = || options(dir.path(), &["deny=1", "unlock_time=90"]);
        let mut h = Scripted::new(vec![
            Step::Prompt("Verification code: ", "000000x".into()),
            Step::Error("Too many failed attempts: verification locked, retry in 90 s.".into()),
        ]);
        assert_eq!(login(&mut h, opts(), NOW), Verdict::Failure);
        let mut h = Scripted::new(vec![
            Step::Error("Too many failed attempts: verification locked, retry in 60 s.".into()),
            Step::Prompt("Verification code: ", code(1)),
        ]);
        assert_eq!(login(&mut h, opts(), NOW + 30), Verdict::Failure);
        assert!(
            h.logs[0].ends_with("result=fail reason=locked"),
            "{:?}",
            h.logs
        );
    }

    #[test]
    fn recovery_and_drift_messages() {
        let (dir, rc) = store_with_alice(4);
        let mut h = Scripted::new(vec![
            Step::Prompt("Verification code: ", rc.display()[0].to_string()),
            Step::Info("Recovery code accepted. 3 recovery codes left; make new ones with: sudo otpgate recovery".into()),
        ]);
        assert_eq!(
            login(&mut h, options(dir.path(), &[]), NOW),
            Verdict::Success
        );
        let mut h = Scripted::new(vec![
            Step::Prompt("Verification code: ", code(4)),
            Step::Info("That code was for a different time. Check that your phone's clock is set automatically.".into()),
        ]);
        assert_eq!(
            login(&mut h, options(dir.path(), &[]), NOW),
            Verdict::Failure
        );
        assert!(
            h.logs[0].ends_with("result=fail method=totp reason=clock_drift offset=+4"),
            "{:?}",
            h.logs
        );
    }

    #[test]
    fn config_errors_fail_closed_without_asking() {
        let (dir, _) = store_with_alice(1);
        let mut h = Scripted::new(vec![]);
        let v = login(&mut h, options(dir.path(), &["bogus"]), NOW);
        assert_eq!(v, Verdict::Failure);
        assert!(
            h.logs[0].contains("reason=config_error detail=\"unknown or malformed option"),
            "{:?}",
            h.logs
        );
    }

    #[test]
    fn log_values_are_escaped() {
        assert_eq!(escape("alice@example.com"), "alice@example.com");
        assert_eq!(escape("a b=c"), "a\\x20b\\x3dc");
        assert_eq!(escape(""), "-");
        assert_eq!(escape("é"), "\\xc3\\xa9");
    }
}
