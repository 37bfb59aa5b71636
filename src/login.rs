//! One login as the module runs it, generic over a [`PamHandler`] so that
//! every prompt, message and log line is pinned by tests without libpam.
//!
//! Order: options and site config -> account (NSS) -> store -> a first look
//! at the record -> ask -> read the clock once -> locked transaction (read,
//! decide, write, fsync) -> tell.

use std::fmt::Write as _;
use std::path::Path;

use zeroize::Zeroizing;

use crate::config::StoreLocation;
use crate::config::{ConfigError, ModuleOptions, SITE_CONFIG, SiteConfig, TokenSource};
use crate::core::decide::{Lock, lock_state};
use crate::core::grace;
use crate::core::input::Attempt;
use crate::core::otp::OtpParams;
use crate::core::{
    Failure, Method, Policy, Reason, Record, RecoveryHashes, Success, classify, decide_login,
};
use crate::logline::{escape, escape_detail};
use crate::store::{AnyStore, Change, Store, StoreError, Trust, UserStore, validate_user};

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
    /// Hands this whole login to the fleet object (see [`Opened::Fleet`])
    /// and returns its PAM code, or why it could not be run.
    fn fleet(&mut self) -> Result<i32, String> {
        Err("the fleet store is not available here".into())
    }
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
    /// The fleet object ran this login and answered with this PAM code.
    Fleet(i32),
}

/// A store as a login's [`StoreOpener`] found it.
pub enum Opened<S> {
    Here(S),
    /// The site's store is the fleet database, whose client is not part of
    /// this object: the whole login goes to the fleet object
    /// ([`PamHandler::fleet`]).
    Fleet,
}

/// Opens the store a login uses: the site's `store`, unless the module's
/// `store=` names a directory.
pub type StoreOpener<S> = fn(&SiteConfig, Option<&Path>, Trust) -> Result<Opened<S>, StoreError>;

/// Either store, as the fleet object (and the tests) run a login.
pub fn open_any(
    site: &SiteConfig,
    explicit: Option<&Path>,
    trust: Trust,
) -> Result<Opened<AnyStore>, StoreError> {
    AnyStore::open(site, explicit, trust, false).map(Opened::Here)
}

/// The file store only, as `pam_otpgate.so` runs a login: a site whose
/// store is a database is the fleet object's. Nothing here reaches the
/// PostgreSQL client, so the module that every login loads leaves it out.
pub fn open_files(
    site: &SiteConfig,
    explicit: Option<&Path>,
    trust: Trust,
) -> Result<Opened<Store>, StoreError> {
    match site.store_location_for(explicit) {
        StoreLocation::Dir(dir) => Store::open(&dir, trust).map(Opened::Here),
        StoreLocation::Postgres(_) => Ok(Opened::Fleet),
    }
}

/// Resolves a user name to its account's canonical name (see [`crate::account`]).
pub type AccountLookup = fn(&str) -> Result<Option<String>, String>;

/// Everything a login needs from outside besides the handler.
pub struct LoginEnv<'a> {
    /// The site file, unless the `config=` option names another.
    pub site_config: &'a Path,
    /// PAM_SILENT: no informational messages.
    pub silent: bool,
    pub accounts: AccountLookup,
    /// This machine's name, read only when a grace period is on.
    pub host_name: fn() -> Option<String>,
}

impl Default for LoginEnv<'_> {
    fn default() -> Self {
        LoginEnv {
            site_config: Path::new(SITE_CONFIG),
            silent: false,
            accounts: crate::account::canonical_name,
            host_name: crate::account::host_name,
        }
    }
}

/// Fields of the one log line written per attempt.
struct Attempted {
    user: String,
    /// The account's canonical name, when it differs from `user`.
    account: Option<String>,
    service: String,
    rhost: String,
}

impl Attempted {
    fn line(
        &self,
        result: &str,
        method: Option<Method>,
        reason: Option<Reason>,
        offset: Option<i64>,
        detail: Option<&str>,
    ) -> String {
        let mut s = String::from("otpgate:");
        let _ = write!(s, " user={}", escape(&self.user));
        if let Some(a) = &self.account {
            let _ = write!(s, " account={}", escape(a));
        }
        let _ = write!(
            s,
            " service={} rhost={} result={result}",
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
            let _ = write!(s, " detail=\"{}\"", escape_detail(d));
        }
        s
    }
}

/// Why a login stopped before a decision: logged once, then a verdict.
struct Stop {
    reason: Reason,
    detail: String,
}

impl Stop {
    fn new(reason: Reason, detail: impl ToString) -> Stop {
        Stop {
            reason,
            detail: detail.to_string(),
        }
    }

    /// A store fault: `store_unavailable` when the database cannot be
    /// reached, `config_error` for its settings, else `store_error`.
    fn store(e: StoreError) -> Stop {
        let reason = match &e {
            StoreError::Unavailable(_) | StoreError::CommitUnknown(_) => Reason::StoreUnavailable,
            StoreError::Config(_) => Reason::ConfigError,
            _ => Reason::StoreError,
        };
        Stop::new(reason, e)
    }
}

/// What the login found before asking anything.
struct Setup<S> {
    opts: ModuleOptions,
    policy: Policy,
    /// The canonical account name; `None` for a name NSS does not know.
    account: Option<String>,
    store: S,
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
    clock: impl FnMut() -> Option<u64>,
) -> Verdict {
    authenticate_with(h, args, env, clock, open_any)
}

/// [`authenticate`] on the store `open` gives.
pub fn authenticate_with<S: UserStore>(
    h: &mut impl PamHandler,
    args: Result<ModuleOptions, ConfigError>,
    env: &LoginEnv<'_>,
    mut clock: impl FnMut() -> Option<u64>,
    open: StoreOpener<S>,
) -> Verdict {
    let user = h.user().unwrap_or_default();
    let mut who = Attempted {
        user: user.clone(),
        account: None,
        service: h.service(),
        rhost: h.rhost(),
    };
    let setup = match prepare(h, &user, args, env, open) {
        Ok(Opened::Here(s)) => s,
        Ok(Opened::Fleet) => {
            return match h.fleet() {
                Ok(code) => Verdict::Fleet(code),
                Err(why) => fault(h, &who, Stop::new(Reason::ConfigError, why)),
            };
        }
        Err(stop) => return fault(h, &who, stop),
    };
    who.account = setup.account.clone().filter(|a| *a != user);
    let Some(account) = setup.account.clone() else {
        // NSS does not know the name: fail closed, never PAM_IGNORE, and
        // cost what refusing an enrolled user costs.
        return refuse_unenrolled(h, &who, &setup, &mut clock, "no such account");
    };
    // A first look, unlocked, so a broken record or a missing enrollment is
    // found before the user is asked anything.
    let record = match setup.store.load(&account) {
        Err(e) => return fault(h, &who, Stop::store(e)),
        Ok(Some(r)) => r,
        Ok(None) if setup.opts.nullok => return ignore_unenrolled(h, &who, &setup.opts),
        Ok(None) => return refuse_unenrolled(h, &who, &setup, &mut clock, ""),
    };
    let lock_told = tell_lock_before_prompt(h, &record, &setup.policy, &mut clock);
    // grace_period: a recent code login from this host and service lets
    // the user in without asking (read-only: nothing is written).
    // A server whose name cannot be read gets none, and says why.
    let grace_key = if setup.policy.grace_period > 0 {
        let server = (env.host_name)();
        if server.is_none() {
            h.log(
                LogLevel::Err,
                "otpgate: grace_period is off: this server's host name cannot be read (/proc/sys/kernel/hostname)",
            );
        }
        server.and_then(|server| grace::key(&server, &who.service, &who.rhost))
    } else {
        None
    };
    if let Some(k) = &grace_key
        && !lock_told
        && !record.grace.is_empty()
        && let Some(now) = clock()
        && grace::granted(&record, k, now, setup.policy.grace_period)
    {
        h.log(
            LogLevel::Notice,
            &who.line("success", Some(Method::Grace), None, None, None),
        );
        return Verdict::Success;
    }
    let mut login = Login {
        who: &who,
        setup: &setup,
        account: &account,
        digits: record.digits,
        numeric_recovery: record.recovery.numeric_digits,
        lock_told,
        now: None,
        grace_key,
    };
    drop(record);
    login.run(h, env, &mut clock)
}

/// Options, site config, policy, account and store, in that order.
fn prepare<S: UserStore>(
    h: &mut impl PamHandler,
    user: &str,
    args: Result<ModuleOptions, ConfigError>,
    env: &LoginEnv<'_>,
    open: StoreOpener<S>,
) -> Result<Opened<Setup<S>>, Stop> {
    let opts = args.map_err(|e| Stop::new(Reason::ConfigError, e))?;
    let site = SiteConfig::load(opts.site_config(env.site_config))
        .map_err(|e| Stop::new(Reason::ConfigError, e))?;
    let mut policy = opts.policy.over(&site.policy());
    // forward_pass checks the code before the next module checks the
    // password: its failures must never bring anyone to the hard lock.
    policy.confirmed = opts.token != TokenSource::ForwardPass;
    let store = match open(&site, opts.store.as_deref(), opts.store_trust()) {
        Ok(Opened::Here(s)) => s,
        Ok(Opened::Fleet) => return Ok(Opened::Fleet),
        Err(e) => {
            if opts.debug {
                // The settings still, before the fault line; the store as
                // configured (a database's URL is in the fault line).
                let where_ = match site.store_location_for(opts.store.as_deref()) {
                    StoreLocation::Dir(d) => d.display().to_string(),
                    StoreLocation::Postgres(_) => "(database)".to_string(),
                };
                debug_line(h, user, &opts, &policy, &where_);
            }
            return Err(Stop::store(e));
        }
    };
    if opts.debug {
        // Only for this line: a database's description parses its URL.
        debug_line(h, user, &opts, &policy, &store.describe());
    }
    let account = (env.accounts)(user).map_err(|e| Stop::new(Reason::StoreError, e))?;
    if let Some(a) = &account {
        validate_user(a).map_err(|e| Stop::new(Reason::StoreError, e))?;
    }
    Ok(Opened::Here(Setup {
        opts,
        policy,
        account,
        store,
    }))
}

/// The settings a login runs with (option `debug`): never a code or secret.
fn debug_line(
    h: &mut impl PamHandler,
    user: &str,
    opts: &ModuleOptions,
    policy: &Policy,
    store: &str,
) {
    h.log(
        LogLevel::Debug,
        &format!(
            "otpgate: debug: user={} store={} window={} hotp_window={} deny={} unlock_time={} hard_deny={} recovery={} token={:?} nullok={}",
            escape(user),
            escape(store),
            policy.window,
            policy.hotp_window,
            policy.deny,
            policy.unlock_time,
            policy.hard_deny,
            policy.recovery,
            opts.token,
            opts.nullok
        ),
    );
}

/// Tells the user of a lock with the prompt; true when it did.
fn tell_lock_before_prompt(
    h: &mut impl PamHandler,
    record: &Record,
    policy: &Policy,
    clock: &mut impl FnMut() -> Option<u64>,
) -> bool {
    // A hard lock needs no clock; a lock end does.
    let lock = if record.locked_until == 0 {
        lock_state(record, policy, 0).map(|l| (l, 0))
    } else {
        let Some(t) = clock() else { return false };
        lock_state(record, policy, t).map(|l| (l, t))
    };
    match lock {
        Some((l, t)) => {
            tell_lock(h, l, t);
            true
        }
        None => false,
    }
}

/// `nullok` and no enrollment: let the stack decide (forward_pass passes
/// the whole answer on as the password).
fn ignore_unenrolled(h: &mut impl PamHandler, who: &Attempted, opts: &ModuleOptions) -> Verdict {
    if opts.token == TokenSource::ForwardPass {
        let Some(raw) = h.prompt(&opts.prompt, opts.echo) else {
            return Verdict::ConversationError;
        };
        if !h.set_authtok(&raw) {
            return fault(
                h,
                who,
                Stop::new(Reason::ConfigError, "cannot set PAM_AUTHTOK"),
            );
        }
    }
    h.log(
        LogLevel::Notice,
        &who.line("ignore", None, Some(Reason::NotEnrolled), None, None),
    );
    Verdict::Ignore
}

/// No enrollment (or no such account): ask anyway, so the prompt does not
/// reveal who is enrolled, do the work a wrong answer of an enrolled user
/// costs, and refuse.
fn refuse_unenrolled(
    h: &mut impl PamHandler,
    who: &Attempted,
    setup: &Setup<impl UserStore>,
    clock: &mut impl FnMut() -> Option<u64>,
    detail: &str,
) -> Verdict {
    let answer = match setup.opts.token {
        TokenSource::UseFirstPass => h.authtok(),
        _ => h.prompt(&setup.opts.prompt, setup.opts.echo),
    };
    if let (Some(answer), Some(now)) = (answer, clock()) {
        decoy_attempt(&setup.store, &answer, &setup.policy, now);
    }
    let detail = (!detail.is_empty()).then_some(detail);
    h.log(
        LogLevel::Notice,
        &who.line("fail", None, Some(Reason::NotEnrolled), None, detail),
    );
    Verdict::Failure
}

/// The decision and durable write of a refused attempt, on a decoy record.
fn decoy_attempt(store: &impl UserStore, answer: &[u8], policy: &Policy, now: u64) {
    const DECOY_SECRET: [u8; 20] = [0x5a; 20];
    let record = Record::new(
        &DECOY_SECRET,
        OtpParams::default(),
        RecoveryHashes::decoy(),
        0,
    );
    if let Ok(decision) = decide_login(&record, answer, policy, now, "") {
        let next = decision.new_record.unwrap_or(record);
        let _ = store.decoy_write(&next);
    }
}

/// One enrolled user's login: answers, transactions, messages.
struct Login<'a, S> {
    who: &'a Attempted,
    setup: &'a Setup<S>,
    account: &'a str,
    digits: u8,
    /// Length of imported numeric recovery codes, if the record has them.
    numeric_recovery: Option<u8>,
    lock_told: bool,
    now: Option<u64>,
    /// This (service, host) pair, when a code login opens a grace period.
    grace_key: Option<[u8; 16]>,
}

/// How one attempt ended.
enum Outcome {
    Done(Verdict),
    /// A quiet attempt (try_first_pass token) failed: ask the user.
    AskUser,
}

impl<S: UserStore> Login<'_, S> {
    fn run(
        &mut self,
        h: &mut impl PamHandler,
        env: &LoginEnv<'_>,
        clock: &mut impl FnMut() -> Option<u64>,
    ) -> Verdict {
        let opts = &self.setup.opts;
        match opts.token {
            TokenSource::UseFirstPass => {
                let Some(token) = h.authtok() else {
                    h.log(
                        LogLevel::Notice,
                        &self.who.line(
                            "fail",
                            None,
                            Some(Reason::BadCode),
                            None,
                            Some("use_first_pass without PAM_AUTHTOK"),
                        ),
                    );
                    return Verdict::Failure;
                };
                return finish(self.attempt(h, env, clock, &token, false));
            }
            TokenSource::TryFirstPass => {
                // A password from the stack is not an attempt of the user's:
                // a token that fails is neither counted nor logged (its shape
                // alone would tell auth.log something about the password).
                let token = h.authtok().filter(|t| {
                    classify(t, self.digits, self.numeric_recovery) != Attempt::Malformed
                });
                if let Some(token) = token {
                    match self.attempt(h, env, clock, &token, true) {
                        Outcome::AskUser => {}
                        done => return finish(done),
                    }
                }
            }
            TokenSource::Prompt | TokenSource::ForwardPass => {}
        }
        let Some(raw) = h.prompt(&opts.prompt, opts.echo) else {
            h.log(
                LogLevel::Notice,
                &self
                    .who
                    .line("fail", None, None, None, Some("conversation failed")),
            );
            return Verdict::ConversationError;
        };
        if opts.token != TokenSource::ForwardPass {
            return finish(self.attempt(h, env, clock, &raw, false));
        }
        // forward_pass: the password goes on only once the code is right, so
        // even a mistaken stack (this line `sufficient` or `optional` before
        // `pam_unix.so use_first_pass`) never lets a wrong code through.
        let (password, code) = split_forward(&raw, self.digits);
        drop(raw);
        let verdict = finish(self.attempt(h, env, clock, &code, false));
        if verdict == Verdict::Success && !h.set_authtok(&password) {
            return fault(
                h,
                self.who,
                Stop::new(Reason::ConfigError, "cannot set PAM_AUTHTOK"),
            );
        }
        verdict
    }

    /// One locked transaction on the record. `quiet`: a failure changes
    /// nothing, logs nothing and asks the user instead.
    fn attempt(
        &mut self,
        h: &mut impl PamHandler,
        env: &LoginEnv<'_>,
        clock: &mut impl FnMut() -> Option<u64>,
        answer: &[u8],
        quiet: bool,
    ) -> Outcome {
        let now = match self.now {
            Some(t) => t,
            None => match clock() {
                Some(t) => *self.now.insert(t),
                None => {
                    let stop = Stop::new(Reason::ConfigError, "cannot read the clock");
                    return Outcome::Done(fault(h, self.who, stop));
                }
            },
        };
        let policy = &self.setup.policy;
        let rhost = &self.who.rhost;
        let grace_key = self.grace_key.as_ref();
        let outcome = self.setup.store.update(self.account, |current| {
            let current = current.ok_or(None)?;
            let decision = decide_login(current, answer, policy, now, rhost).map_err(Some)?;
            let change = match (&decision.result, decision.new_record) {
                (Err(_), _) if quiet => Change::Keep,
                (Ok(s), Some(mut next)) => {
                    // A code (not a recovery code) opens a grace period.
                    if let Some(k) = grace_key
                        && matches!(s.method, Method::Totp | Method::Hotp)
                    {
                        grace::remember(&mut next, k, now);
                    }
                    Change::Put(next)
                }
                (_, Some(next)) => Change::Put(next),
                (_, None) => Change::Keep,
            };
            Ok((change, decision.result))
        });
        let failure = match outcome {
            Err(e) => {
                return Outcome::Done(fault(h, self.who, Stop::store(e)));
            }
            Ok(Err(None)) => {
                h.log(
                    LogLevel::Notice,
                    &self.who.line(
                        "fail",
                        None,
                        Some(Reason::NotEnrolled),
                        None,
                        Some("record removed during login"),
                    ),
                );
                return Outcome::Done(Verdict::Failure);
            }
            Ok(Err(Some(e))) => {
                let e = StoreError::Corrupt {
                    path: self.setup.store.record_path(self.account),
                    err: e,
                };
                return Outcome::Done(fault(h, self.who, Stop::new(Reason::StoreError, e)));
            }
            Ok(Ok(Ok(success))) => {
                h.log(
                    LogLevel::Notice,
                    &self
                        .who
                        .line("success", Some(success.method), None, success.offset, None),
                );
                // forward_pass: the password is checked after us, so a
                // success must show nothing (it would tell someone with a
                // wrong password that the code was right).
                let forward = self.setup.opts.token == TokenSource::ForwardPass;
                tell_success(h, &success, env.silent || forward);
                return Outcome::Done(Verdict::Success);
            }
            Ok(Ok(Err(failure))) => failure,
        };
        if quiet && failure.reason != Reason::Locked {
            return Outcome::AskUser;
        }
        h.log(
            LogLevel::Notice,
            &self.who.line(
                "fail",
                failure.method,
                Some(failure.reason),
                failure.offset,
                None,
            ),
        );
        if !(self.lock_told && failure.reason == Reason::Locked) {
            tell_failure(h, &failure, now);
        }
        Outcome::Done(Verdict::Failure)
    }
}

fn finish(outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::Done(v) => v,
        Outcome::AskUser => Verdict::Failure,
    }
}

/// Logs a fault (configuration, store) and fails closed.
fn fault(h: &mut impl PamHandler, who: &Attempted, stop: Stop) -> Verdict {
    h.log(
        LogLevel::Err,
        &who.line("fail", None, Some(stop.reason), None, Some(&stop.detail)),
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
    if let Some(d) = success.drift_before
        && !silent
    {
        h.info(&format!(
            "Note: an earlier code from your app was {} time steps {}. Check that your phone's clock is set automatically.",
            d.unsigned_abs(),
            if d > 0 { "ahead" } else { "behind" }
        ));
    }
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

/// Only a lock is named: a wrong code, a replay, a code for another time
/// (that would be a near-miss oracle) and a missing enrollment all look
/// the same to the person at the prompt.
fn tell_failure(h: &mut impl PamHandler, failure: &Failure, now: u64) {
    if let Some(lock) = failure.locked {
        tell_lock(h, lock, now);
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
        user: &'static str,
        authtok: Option<&'static str>,
        rhost: &'static str,
        /// What a fleet object would answer; `None`: the trait's default
        /// (no fleet object here).
        fleet: Option<i32>,
        fleet_calls: usize,
    }

    impl Scripted {
        fn new(steps: Vec<Step>) -> Scripted {
            Scripted {
                steps: steps.into(),
                logs: Vec::new(),
                user: "alice",
                authtok: None,
                rhost: "192.0.2.4",
                fleet: None,
                fleet_calls: 0,
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
            Some(self.user.into())
        }
        fn service(&self) -> String {
            "sshd".into()
        }
        fn rhost(&self) -> String {
            self.rhost.into()
        }
        fn authtok(&self) -> Option<Zeroizing<Vec<u8>>> {
            self.authtok.map(|t| Zeroizing::new(t.as_bytes().to_vec()))
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
        fn fleet(&mut self) -> Result<i32, String> {
            self.fleet_calls += 1;
            self.fleet.ok_or_else(|| "scripted: no fleet answer".into())
        }
    }

    /// A host that knows nothing of a fleet object (the trait's default),
    /// and must never get as far as asking.
    struct NoFleet(Vec<String>);

    impl PamHandler for NoFleet {
        fn user(&mut self) -> Option<String> {
            Some("alice".into())
        }
        fn service(&self) -> String {
            "sudo".into()
        }
        fn rhost(&self) -> String {
            String::new()
        }
        fn authtok(&self) -> Option<Zeroizing<Vec<u8>>> {
            None
        }
        fn set_authtok(&mut self, _: &[u8]) -> bool {
            panic!("set_authtok")
        }
        fn prompt(&mut self, text: &str, _: bool) -> Option<Zeroizing<Vec<u8>>> {
            panic!("asked {text:?}")
        }
        fn info(&mut self, text: &str) {
            panic!("told {text:?}")
        }
        fn error(&mut self, text: &str) {
            panic!("told {text:?}")
        }
        fn log(&mut self, _: LogLevel, line: &str) {
            self.0.push(line.to_string());
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
        let store = crate::store::Store::open(dir.path(), test_trust()).unwrap();
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

    /// Accounts as NSS would show them: `ALICE` is another spelling of alice.
    fn accounts(name: &str) -> Result<Option<String>, String> {
        Ok(match name {
            "alice" | "ALICE" => Some("alice".into()),
            "bob" => Some("bob".into()),
            _ => None,
        })
    }

    /// No site file (a path in no one's way), the test accounts.
    fn env() -> LoginEnv<'static> {
        LoginEnv {
            site_config: Path::new("/nonexistent-otpgate-test-dir/otpgate.toml"),
            silent: false,
            accounts,
            host_name: || Some("server-a".into()),
        }
    }

    fn login(h: &mut Scripted, opts: Result<ModuleOptions, ConfigError>, now: u64) -> Verdict {
        authenticate(h, opts, &env(), || Some(now))
    }

    fn code(offset: i64) -> String {
        let step = (NOW / 30).checked_add_signed(offset).unwrap();
        Generator::new(SECRET, OtpParams::default())
            .code_at_step(step)
            .to_string()
    }

    /// The lock notice for `secs` seconds left.
    fn lock_notice(secs: u64) -> Step {
        Step::Error(format!(
            "Too many failed attempts: verification locked, retry in {secs} s."
        ))
    }

    /// A wrong code at NOW with `deny=1, unlock_time=90` in `opts`: locked
    /// for 90 s, and told so.
    fn fail_into_a_lock(opts: Result<ModuleOptions, ConfigError>) {
        let mut h = Scripted::new(vec![
            Step::Prompt("Verification code: ", "000000x".into()),
            lock_notice(90),
        ]);
        assert_eq!(login(&mut h, opts, NOW), Verdict::Failure);
    }

    /// An opener that finds the site's store to be the fleet database.
    fn fleet_site(_: &SiteConfig, _: Option<&Path>, _: Trust) -> Result<Opened<Store>, StoreError> {
        Ok(Opened::Fleet)
    }

    #[test]
    fn a_database_login_goes_whole_to_the_fleet_object_before_anything_is_asked() {
        let (dir, _) = store_with_alice(1);
        let opts = || options(dir.path(), &[]);
        // The fleet object's answer is the login's, and nothing else is done.
        let mut h = Scripted::new(vec![]);
        h.fleet = Some(7);
        let v = authenticate_with(&mut h, opts(), &env(), || None, fleet_site);
        assert_eq!(v, Verdict::Fleet(7));
        assert_eq!(h.fleet_calls, 1);
        assert!(h.logs.is_empty(), "{:?}", h.logs);
        // A host without one (the trait's default) refuses, and says why.
        let mut h = NoFleet(Vec::new());
        let v = authenticate_with(&mut h, opts(), &env(), || None, fleet_site);
        assert_eq!(v, Verdict::Failure);
        assert_eq!(
            h.0,
            [
                "otpgate: user=alice service=sudo rhost=- result=fail reason=config_error detail=\"the fleet store is not available here\""
            ]
        );
    }

    #[test]
    fn the_module_opens_the_file_store_and_leaves_a_database_to_the_fleet_object() {
        let (dir, _) = store_with_alice(1);
        let database = SiteConfig::parse("store = \"postgresql://u@db1/otpgate\"\n").unwrap();
        let files = SiteConfig::parse(&format!("store = \"{}\"\n", dir.path().display())).unwrap();
        let here = |r: Result<Opened<Store>, StoreError>| match r {
            Ok(Opened::Here(s)) => Some(s.describe()),
            Ok(Opened::Fleet) => None,
            Err(e) => panic!("{e}"),
        };
        let want = Some(dir.path().display().to_string());
        assert_eq!(here(open_files(&database, None, test_trust())), None);
        assert_eq!(here(open_files(&files, None, test_trust())), want);
        // The module's store= wins over the site's database.
        assert_eq!(
            here(open_files(&database, Some(dir.path()), test_trust())),
            want
        );
        // open_any opens the directory the same way.
        assert!(matches!(
            open_any(&files, None, test_trust()),
            Ok(Opened::Here(AnyStore::Files(_)))
        ));
    }

    #[test]
    fn a_login_prompts_once_reads_the_clock_once_and_logs_once() {
        let (dir, _) = store_with_alice(3);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(0))]);
        let mut reads = 0;
        let v = authenticate(&mut h, options(dir.path(), &[]), &env(), || {
            reads += 1;
            Some(NOW)
        });
        assert_eq!(v, Verdict::Success, "{:?}", h.logs);
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
        fail_into_a_lock(opts());
        let mut h = Scripted::new(vec![
            lock_notice(60),
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
    fn a_locked_user_with_a_try_first_pass_token_is_told_once_and_never_asked() {
        let (dir, _) = store_with_alice(1);
        let opts = || options(dir.path(), &["deny=1", "unlock_time=90", "try_first_pass"]);
        fail_into_a_lock(opts());
        // Even the right code as the token: the lock notice, no prompt (a
        // re-prompt would only collect a code the lock refuses anyway).
        let mut h = Scripted::new(vec![lock_notice(60)]);
        h.authtok = Some(Box::leak(code(1).into_boxed_str()));
        assert_eq!(login(&mut h, opts(), NOW + 30), Verdict::Failure);
        assert_eq!(h.logs.len(), 1, "{:?}", h.logs);
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
        // A code for another time fails exactly like any wrong code: no
        // hint at the prompt (that would tell a guesser "nearly").
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(4))]);
        assert_eq!(
            login(&mut h, options(dir.path(), &[]), NOW),
            Verdict::Failure
        );
        assert!(
            h.logs[0].ends_with("result=fail method=totp reason=clock_drift offset=+4"),
            "{:?}",
            h.logs
        );
        // The next success tells the user, once.
        let mut h = Scripted::new(vec![
            Step::Prompt("Verification code: ", code(0)),
            Step::Info("Note: an earlier code from your app was 4 time steps ahead. Check that your phone's clock is set automatically.".into()),
        ]);
        assert_eq!(
            login(&mut h, options(dir.path(), &[]), NOW),
            Verdict::Success
        );
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(1))]);
        assert_eq!(
            login(&mut h, options(dir.path(), &[]), NOW),
            Verdict::Success
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
    fn another_spelling_of_an_account_reaches_its_record() {
        let (dir, _) = store_with_alice(1);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(0))]);
        h.user = "ALICE";
        // nullok: a spelling that found no record would be waved through.
        assert_eq!(
            login(&mut h, options(dir.path(), &["nullok"]), NOW),
            Verdict::Success
        );
        assert!(
            h.logs[0].starts_with("otpgate: user=ALICE account=alice service=sshd"),
            "{:?}",
            h.logs
        );
        // The code is spent for the account, whatever the spelling.
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(0))]);
        assert_eq!(
            login(&mut h, options(dir.path(), &[]), NOW),
            Verdict::Failure
        );
    }

    #[test]
    fn a_name_nss_does_not_know_fails_closed_even_with_nullok() {
        let (dir, _) = store_with_alice(1);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(0))]);
        h.user = "mallory";
        assert_eq!(
            login(&mut h, options(dir.path(), &["nullok"]), NOW),
            Verdict::Failure
        );
        assert_eq!(
            h.logs,
            [
                "otpgate: user=mallory service=sshd rhost=192.0.2.4 result=fail reason=not_enrolled detail=\"no such account\""
            ]
        );
    }

    #[test]
    fn refusing_someone_not_enrolled_does_the_same_work_and_creates_nothing_for_them() {
        let (dir, _) = store_with_alice(1);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", "123456".into())]);
        h.user = "bob";
        assert_eq!(
            login(&mut h, options(dir.path(), &[]), NOW),
            Verdict::Failure
        );
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        // The decoy's state took the durable write alice's failure would have.
        assert_eq!(names, ["..decoy.lock", ".alice.lock", "alice.toml"]);
        let decoy = std::fs::metadata(dir.path().join("..decoy.lock")).unwrap();
        assert!(decoy.len() > 0, "no durable write was made for the refusal");
        assert!(!names.iter().any(|n| n.contains("bob")));
    }

    #[test]
    fn a_failing_token_from_try_first_pass_is_not_counted_or_logged() {
        let (dir, _) = store_with_alice(1);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(0))]);
        h.authtok = Some("654321"); // a password that happens to look like a code
        assert_eq!(
            login(&mut h, options(dir.path(), &["try_first_pass"]), NOW),
            Verdict::Success
        );
        assert_eq!(h.logs.len(), 1, "{:?}", h.logs);
        assert!(h.logs[0].contains("result=success"));
        // Right after a failed token and a wrong answer: one failure, not two.
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", "000000x".into())]);
        h.authtok = Some("654321");
        assert_eq!(
            login(&mut h, options(dir.path(), &["try_first_pass"]), NOW),
            Verdict::Failure
        );
        assert_eq!(h.logs.len(), 1, "{:?}", h.logs);
        let store = crate::store::Store::open(dir.path(), test_trust()).unwrap();
        assert_eq!(store.load("alice").unwrap().unwrap().failures, 1);
    }

    #[test]
    fn a_clock_that_cannot_be_read_fails_closed() {
        let (dir, _) = store_with_alice(1);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(0))]);
        let v = authenticate(&mut h, options(dir.path(), &[]), &env(), || None);
        assert_eq!(v, Verdict::Failure);
        assert!(
            h.logs[0].ends_with("reason=config_error detail=\"cannot read the clock\""),
            "{:?}",
            h.logs
        );
    }

    #[test]
    fn the_site_policy_is_used_and_options_override_it() {
        let (dir, _) = store_with_alice(1);
        let site = dir.path().join("site.toml");
        std::fs::write(&site, "[policy]\ndeny = 1\nunlock_time = 90\n").unwrap();
        let config = format!("config={}", site.display());
        let mut h = Scripted::new(vec![
            Step::Prompt("Verification code: ", "000000x".into()),
            lock_notice(90),
        ]);
        assert_eq!(
            login(&mut h, options(dir.path(), &[&config]), NOW),
            Verdict::Failure
        );
        let mut h = Scripted::new(vec![
            Step::Prompt("Verification code: ", "000000x".into()),
            lock_notice(30),
        ]);
        assert_eq!(
            login(
                &mut h,
                options(dir.path(), &[&config, "unlock_time=30"]),
                NOW + 100
            ),
            Verdict::Failure
        );
    }

    #[test]
    fn a_code_login_opens_a_grace_period_for_its_host_and_service_only() {
        let (dir, rc) = store_with_alice(2);
        let opts = || options(dir.path(), &["grace_period=300"]);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(0))]);
        assert_eq!(login(&mut h, opts(), NOW), Verdict::Success);
        // Within the period, from the same host: no prompt, logged as grace.
        let mut h = Scripted::new(vec![]);
        assert_eq!(login(&mut h, opts(), NOW + 300), Verdict::Success);
        assert!(
            h.logs[0].ends_with("result=success method=grace"),
            "{:?}",
            h.logs
        );
        // Another host, or the period over: asked.
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", "000000x".into())]);
        h.rhost = "192.0.2.99";
        assert_eq!(login(&mut h, opts(), NOW + 10), Verdict::Failure);
        // ...and that failure ended every grace period of the user.
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(1))]);
        assert_eq!(login(&mut h, opts(), NOW + 20), Verdict::Success);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(11))]);
        assert_eq!(login(&mut h, opts(), NOW + 20 + 301), Verdict::Success);
        // A local login never gets one; a recovery code never opens one.
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", "000000x".into())]);
        h.rhost = "127.0.0.1";
        assert_eq!(login(&mut h, opts(), NOW + 330), Verdict::Failure);
        let mut h = Scripted::new(vec![
            Step::Prompt("Verification code: ", rc.display()[0].to_string()),
            Step::Error("Warning: Recovery code accepted. 1 recovery code left; make new ones with: sudo otpgate recovery".into()),
        ]);
        h.rhost = "192.0.2.7";
        assert_eq!(login(&mut h, opts(), NOW + 340), Verdict::Success);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", "000000x".into())]);
        h.rhost = "192.0.2.7";
        assert_eq!(login(&mut h, opts(), NOW + 341), Verdict::Failure);
        // Off by default.
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", "000000x".into())]);
        assert_eq!(
            login(&mut h, options(dir.path(), &[]), NOW + 342),
            Verdict::Failure
        );
    }

    #[test]
    fn a_grace_period_is_for_the_server_that_opened_it() {
        let (dir, _) = store_with_alice(1);
        let opts = || options(dir.path(), &["grace_period=300"]);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(0))]);
        assert_eq!(login(&mut h, opts(), NOW), Verdict::Success);
        // Another server on the same store (a fleet), or one whose name
        // cannot be read: asked, from the same host and service.
        let others: [fn() -> Option<String>; 2] = [|| Some("server-b".into()), || None];
        for (i, host_name) in others.into_iter().enumerate() {
            let env = LoginEnv { host_name, ..env() };
            let offset = 10 * (i as i64 + 1);
            let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(offset))]);
            let now = NOW + 30 * offset as u64;
            assert_eq!(
                authenticate(&mut h, opts(), &env, || Some(now)),
                Verdict::Success
            );
            assert!(
                h.logs.last().unwrap().contains("method=totp"),
                "{:?}",
                h.logs
            );
            // No name: the admin is told why grace_period does nothing.
            let told = h
                .logs
                .iter()
                .any(|l| l.contains("host name cannot be read"));
            assert_eq!(told, i == 1, "{:?}", h.logs);
        }
        // The server that opened it still lets the host in (the period was
        // renewed by none of the others' logins, and ended by no failure).
        let mut h = Scripted::new(vec![]);
        assert_eq!(login(&mut h, opts(), NOW + 300), Verdict::Success);
        assert!(h.logs[0].ends_with("method=grace"), "{:?}", h.logs);
    }

    #[test]
    fn store_faults_are_logged_by_kind() {
        let reason = |e| Stop::store(e).reason;
        assert_eq!(
            reason(StoreError::Unavailable("down".into())),
            Reason::StoreUnavailable
        );
        assert_eq!(
            reason(StoreError::CommitUnknown("commit: closed".into())),
            Reason::StoreUnavailable
        );
        assert_eq!(
            reason(StoreError::Config("no key".into())),
            Reason::ConfigError
        );
        assert_eq!(
            reason(StoreError::BadUser("a/b".into())),
            Reason::StoreError
        );
    }

    #[test]
    fn with_debug_a_store_that_does_not_open_still_gets_the_settings_line() {
        let (dir, _) = store_with_alice(1);
        let missing = dir.path().join("no-such-store");
        let mut h = NoFleet(Vec::new());
        let v = authenticate(&mut h, options(&missing, &["debug"]), &env(), || None);
        assert_eq!(v, Verdict::Failure);
        assert_eq!(h.0.len(), 2, "{:?}", h.0);
        let path = escape(&missing.display().to_string());
        assert!(
            h.0[0].starts_with(&format!("otpgate: debug: user=alice store={path} window=")),
            "{:?}",
            h.0
        );
        assert!(
            h.0[1].contains("result=fail reason=store_error"),
            "{:?}",
            h.0
        );
    }

    #[test]
    fn with_grace_off_a_code_login_remembers_no_host() {
        let (dir, _) = store_with_alice(2);
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(0))]);
        assert_eq!(
            login(&mut h, options(dir.path(), &[]), NOW),
            Verdict::Success
        );
        let store = crate::store::Store::open(dir.path(), test_trust()).unwrap();
        let record = store.load("alice").unwrap().unwrap();
        assert!(record.grace.is_empty(), "{:?}", record.grace.len());
        // Turned on later, it does not reach back to that login.
        let mut h = Scripted::new(vec![Step::Prompt("Verification code: ", code(1))]);
        assert_eq!(
            login(&mut h, options(dir.path(), &["grace_period=300"]), NOW + 30),
            Verdict::Success
        );
    }

    #[test]
    fn use_first_pass_for_someone_not_enrolled_takes_the_token_and_never_asks() {
        let (dir, _) = store_with_alice(2);
        let mut h = Scripted::new(vec![]);
        h.user = "bob";
        h.authtok = Some("123456");
        assert_eq!(
            login(&mut h, options(dir.path(), &["use_first_pass"]), NOW),
            Verdict::Failure
        );
        assert!(h.logs[0].contains("reason=not_enrolled"), "{:?}", h.logs);
    }

    #[test]
    fn a_lock_that_ran_out_at_the_prompt_is_not_taken_for_the_new_one() {
        let (dir, _) = store_with_alice(1);
        let opts = || options(dir.path(), &["deny=1", "unlock_time=90"]);
        fail_into_a_lock(opts());
        // Told of the lock with the prompt; the answer comes after it ended
        // and is wrong: the new lock it starts is told too.
        let mut h = Scripted::new(vec![
            lock_notice(60),
            Step::Prompt("Verification code: ", "000000x".into()),
            lock_notice(90),
        ]);
        let mut reads = [NOW + 30, NOW + 200].into_iter();
        assert_eq!(
            authenticate(&mut h, opts(), &env(), || reads.next()),
            Verdict::Failure
        );
        assert!(h.logs[0].contains("reason=bad_code"), "{:?}", h.logs);
    }

    #[test]
    fn forward_pass_with_an_answer_shorter_than_a_code_is_a_wrong_code() {
        let (dir, _) = store_with_alice(1);
        for answer in ["", "1", "12345", "pw"] {
            let mut h = Scripted::new(vec![Step::Prompt(
                crate::config::FORWARD_PROMPT,
                answer.into(),
            )]);
            assert_eq!(
                login(&mut h, options(dir.path(), &["forward_pass"]), NOW),
                Verdict::Failure,
                "{answer:?}"
            );
            assert!(h.logs[0].contains("reason=bad_code"), "{:?}", h.logs);
        }
        // The split itself: digits at the end are the code, else no code.
        let (p, c) = split_forward(b"secret123456", 6);
        assert_eq!((&p[..], &c[..]), (&b"secret"[..], &b"123456"[..]));
        let (p, c) = split_forward(b"secret12345x", 6);
        assert_eq!((&p[..], &c[..]), (&b"secret12345x"[..], &b""[..]));
        let (p, c) = split_forward(b"123", 6);
        assert_eq!((&p[..], &c[..]), (&b"123"[..], &b""[..]));
    }
}
