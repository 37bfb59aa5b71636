//! The login decision: (record, answer, policy, now) -> outcome + new record.
//! Pure: the caller owns locking, reading, writing and the clock.

use std::fmt;

use super::input::{Attempt, classify};
use super::otp::{Generator, Kind};
use super::record::{MAX_TIME, Record, RecordError, clean_source};

/// Module options that shape the decision (parsed in `config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Accepted steps either side of now.
    pub window: u32,
    /// Consecutive failures that trigger a temporary lock.
    pub deny: u32,
    /// Seconds a temporary lock lasts.
    pub unlock_time: u64,
    /// Consecutive failures after which only `otpgate unlock` helps.
    pub hard_deny: u32,
    /// Whether recovery codes are accepted at the prompt.
    pub recovery: bool,
    /// Steps beyond the window searched only to diagnose clock drift.
    pub drift_steps: u32,
    /// Whether a failure here counts toward `hard_deny`. False where the
    /// password is checked only after the code (`forward_pass`): someone
    /// who knows only a user name must never lock that user out for good.
    pub confirmed: bool,
    /// HOTP look-ahead: counters `next..next + hotp_window` are accepted.
    pub hotp_window: u32,
    /// Seconds a code login from a remote host lets the same host and
    /// service in without a code (0: off; see `core::grace`).
    pub grace_period: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            window: 1,
            deny: 10,
            unlock_time: 600,
            hard_deny: 100,
            recovery: true,
            drift_steps: 10,
            confirmed: true,
            grace_period: 0,
            hotp_window: 10,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Totp,
    Hotp,
    Recovery,
    /// Let in without a code inside a `grace_period`.
    Grace,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::Hotp => "hotp",
            Method::Recovery => "recovery",
            Method::Grace => "grace",
        }
    }
}

/// Why a login was refused; the names are the syslog `reason=` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    BadCode,
    Replay,
    Locked,
    ClockDrift,
    /// The newest accepted step is ahead of the clock (it was set back).
    ClockBehind,
    NotEnrolled,
    StoreError,
    /// The fleet database could not be reached in time.
    StoreUnavailable,
    ConfigError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadCode => "bad_code",
            Reason::Replay => "replay",
            Reason::Locked => "locked",
            Reason::ClockDrift => "clock_drift",
            Reason::ClockBehind => "clock_behind",
            Reason::NotEnrolled => "not_enrolled",
            Reason::StoreError => "store_error",
            Reason::StoreUnavailable => "store_unavailable",
            Reason::ConfigError => "config_error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Success {
    pub method: Method,
    /// TOTP: matched step minus current step. HOTP: counters skipped
    /// (matched counter minus the next expected one).
    pub offset: Option<i64>,
    pub recovery_left: usize,
    /// The clock drift an earlier failed code showed, now cleared: told to
    /// the user only after a success, never after a failure (an oracle).
    pub drift_before: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub method: Option<Method>,
    pub offset: Option<i64>,
    /// Set when the second factor is locked after this attempt:
    /// `Some(seconds)` for a temporary lock, `None` inside for a hard lock.
    pub locked: Option<Lock>,
}

/// A lock on the second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// Until unix time `until`.
    Until(u64),
    /// Until an admin runs `otpgate unlock`.
    UntilUnlocked,
}

impl Lock {
    /// Seconds left, or `None` for a lock only an admin can lift.
    pub fn seconds_left(self, now: u64) -> Option<u64> {
        match self {
            Lock::Until(t) => Some(t.saturating_sub(now)),
            Lock::UntilUnlocked => None,
        }
    }
}

#[derive(Debug)]
pub struct Decision {
    pub result: Result<Success, Failure>,
    /// The record to write back, when the attempt changed it.
    pub new_record: Option<Record>,
}

/// The lock in force at `now`, if any.
pub fn lock_state(record: &Record, policy: &Policy, now: u64) -> Option<Lock> {
    if record.hard_locked
        || (policy.hard_deny > 0 && record.confirmed_failures() >= policy.hard_deny)
    {
        Some(Lock::UntilUnlocked)
    } else if record.locked_until > now {
        Some(Lock::Until(record.locked_until))
    } else {
        None
    }
}

/// The widest `window=` any service may have (steps either side of now).
pub const MAX_WINDOW: u32 = 10;

/// Seconds the newest accepted TOTP step of `record` is ahead of `now`,
/// when it is more than `beyond` steps ahead (an HOTP counter is no time):
/// with `beyond` = the window, every code is refused as `clock_behind`;
/// with `beyond` = [`MAX_WINDOW`], the clock was set back (not a phone a
/// step ahead). The one rule for the login, `unlock`, `status` and `doctor`.
pub fn seconds_ahead(record: &Record, beyond: u32, now: u64) -> Option<u64> {
    if record.kind != Kind::Totp {
        return None;
    }
    let step_now = record.params().step_at(now);
    (record.last_step > step_now.saturating_add(u64::from(beyond))).then(|| {
        record
            .last_step
            .saturating_mul(u64::from(record.period))
            .saturating_sub(now)
    })
}

/// What `otpgate unlock` makes of `record` at `now`: failures, locks and
/// grace periods cleared; a TOTP step further ahead of the clock than any
/// window reaches (the clock was set back) pulled back to now, so the
/// current codes work again. A step within the window stays: it is a code
/// accepted a little early (a phone a step ahead), and pulling it back
/// would let that very code in again. Returns the new record and whether
/// the step was pulled back. An HOTP counter has nothing to do with the
/// clock and stays.
pub fn unlock(record: &Record, now: u64) -> (Record, bool) {
    let mut next = record.clone();
    next.failures = 0;
    next.unconfirmed = 0;
    next.locked_until = 0;
    next.hard_locked = false;
    next.grace.clear();
    let pulled_back = seconds_ahead(&next, MAX_WINDOW, now).is_some();
    if pulled_back {
        next.last_step = next.params().step_at(now);
    }
    (next, pulled_back)
}

/// Decides one login attempt. `source` is the remote host (or empty).
pub fn decide_login(
    record: &Record,
    answer: &[u8],
    policy: &Policy,
    now: u64,
    source: &str,
) -> Result<Decision, RecordError> {
    if let Some(lock) = lock_state(record, policy, now) {
        // No code is checked and nothing is written while locked.
        return Ok(refused(Reason::Locked, None, None, Some(lock), None));
    }
    match classify(answer, record.digits, record.recovery.numeric_digits) {
        Attempt::Code(code) => match record.kind {
            Kind::Totp => decide_totp(record, &code, policy, now, source),
            Kind::Hotp => decide_hotp(record, &code, policy, now, source),
        },
        Attempt::Recovery(code) if policy.recovery => {
            match record.recovery.find(&code).map_err(RecordError::Invalid)? {
                Some(slot) => {
                    let mut next = succeeded(record, now, source);
                    next.recovery.hashes.remove(slot);
                    Ok(Decision {
                        result: Ok(Success {
                            method: Method::Recovery,
                            offset: None,
                            recovery_left: next.recovery.remaining(),
                            drift_before: None,
                        }),
                        new_record: Some(next),
                    })
                }
                None => Ok(failed(
                    record,
                    policy,
                    now,
                    Reason::BadCode,
                    Some(Method::Recovery),
                    None,
                )),
            }
        }
        Attempt::Recovery(_) => Ok(failed(
            record,
            policy,
            now,
            Reason::BadCode,
            Some(Method::Recovery),
            None,
        )),
        Attempt::Malformed => Ok(failed(record, policy, now, Reason::BadCode, None, None)),
    }
}

fn decide_totp(
    record: &Record,
    code: &str,
    policy: &Policy,
    now: u64,
    source: &str,
) -> Result<Decision, RecordError> {
    let secret = record.secret_bytes()?;
    let generator = Generator::new(&secret, record.params());
    let current = record.params().step_at(now);
    let window = i64::from(policy.window);
    if seconds_ahead(record, policy.window, now).is_some() {
        // Every step in the window is at or before the newest accepted one:
        // the clock was set back. No code can work; not the user's fault,
        // so nothing is counted (and no guess is possible meanwhile).
        return Ok(refused(
            Reason::ClockBehind,
            Some(Method::Totp),
            None,
            None,
            None,
        ));
    }

    let mut replayed_offset = None;
    // Nearest steps first, so the usual case does one HMAC.
    for offset in offsets(0, window) {
        let Some(step) = current.checked_add_signed(offset) else {
            continue;
        };
        if !generator.matches_step(code, step) {
            continue;
        }
        if step > record.last_step {
            let mut next = succeeded(record, now, source);
            next.last_step = step;
            next.last_drift = None;
            return Ok(Decision {
                result: Ok(Success {
                    method: Method::Totp,
                    offset: Some(offset),
                    recovery_left: next.recovery.remaining(),
                    drift_before: record.last_drift,
                }),
                new_record: Some(next),
            });
        }
        replayed_offset.get_or_insert(offset);
    }
    if let Some(offset) = replayed_offset {
        return Ok(failed(
            record,
            policy,
            now,
            Reason::Replay,
            Some(Method::Totp),
            Some(offset),
        ));
    }
    // Outside the window: look further only to explain the failure.
    let drift = i64::from(policy.drift_steps.max(policy.window));
    for offset in offsets(window + 1, drift) {
        let Some(step) = current.checked_add_signed(offset) else {
            continue;
        };
        if generator.matches_step(code, step) {
            let mut decision = failed(
                record,
                policy,
                now,
                Reason::ClockDrift,
                Some(Method::Totp),
                Some(offset),
            );
            if let Some(next) = decision.new_record.as_mut() {
                next.last_drift = Some(offset);
            }
            return Ok(decision);
        }
    }
    Ok(failed(
        record,
        policy,
        now,
        Reason::BadCode,
        Some(Method::Totp),
        None,
    ))
}

/// HOTP (RFC 4226 §7.4): the code of a counter in the look-ahead
/// `next..next + hotp_window` is accepted and `next` moves past it; the code
/// of a used counter (up to one look-ahead back) is a replay. No clock.
fn decide_hotp(
    record: &Record,
    code: &str,
    policy: &Policy,
    now: u64,
    source: &str,
) -> Result<Decision, RecordError> {
    let secret = record.secret_bytes()?;
    let generator = Generator::new(&secret, record.params());
    let next = record.last_step;
    let window = u64::from(policy.hotp_window.max(1));
    for ahead in 0..window {
        // The counter after it must be storable (records hold i64 values).
        let Some(counter) = next.checked_add(ahead).filter(|&c| c < MAX_TIME) else {
            break;
        };
        if generator.matches_step(code, counter) {
            let mut after = succeeded(record, now, source);
            after.last_step = counter + 1;
            return Ok(Decision {
                result: Ok(Success {
                    method: Method::Hotp,
                    offset: i64::try_from(ahead).ok(),
                    recovery_left: after.recovery.remaining(),
                    drift_before: None,
                }),
                new_record: Some(after),
            });
        }
    }
    let used = (1..=window)
        .map_while(|back| next.checked_sub(back))
        .any(|counter| generator.matches_step(code, counter));
    let reason = if used {
        Reason::Replay
    } else {
        Reason::BadCode
    };
    Ok(failed(
        record,
        policy,
        now,
        reason,
        Some(Method::Hotp),
        None,
    ))
}

/// 0, -1, +1, -2, +2, ... for magnitudes `from..=to`.
fn offsets(from: i64, to: i64) -> impl Iterator<Item = i64> {
    (from..=to).flat_map(|m| if m == 0 { vec![0] } else { vec![-m, m] })
}

fn succeeded(record: &Record, now: u64, source: &str) -> Record {
    let mut next = record.clone();
    next.failures = 0;
    next.unconfirmed = 0;
    next.locked_until = 0;
    next.last_login = now;
    next.last_login_from = clean_source(source);
    next
}

fn failed(
    record: &Record,
    policy: &Policy,
    now: u64,
    reason: Reason,
    method: Option<Method>,
    offset: Option<i64>,
) -> Decision {
    let mut next = record.clone();
    next.failures = next.failures.saturating_add(1);
    // A failed attempt ends every grace period of this user.
    next.grace.clear();
    if !policy.confirmed {
        next.unconfirmed = next.unconfirmed.saturating_add(1);
    }
    if policy.deny > 0 && next.failures.is_multiple_of(policy.deny) {
        // Clamped so the lock can always be stored: a lock that cannot be
        // written would refuse the write and give a free guess instead.
        next.locked_until = now.saturating_add(policy.unlock_time).min(MAX_TIME);
    }
    if policy.hard_deny > 0 && next.confirmed_failures() >= policy.hard_deny {
        next.hard_locked = true;
    }
    let lock = lock_state(&next, policy, now);
    refused(reason, method, offset, lock, Some(next))
}

fn refused(
    reason: Reason,
    method: Option<Method>,
    offset: Option<i64>,
    locked: Option<Lock>,
    new_record: Option<Record>,
) -> Decision {
    Decision {
        result: Err(Failure {
            reason,
            method,
            offset,
            locked,
        }),
        new_record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::otp::{Generator, Kind, OtpParams};
    use crate::core::record::tests::{SECRET, sample};

    const NOW: u64 = 1_700_000_015; // step 56_666_667, 15 s into it

    fn code(offset: i64) -> String {
        let g = Generator::new(SECRET, OtpParams::default());
        let step = (NOW / 30).checked_add_signed(offset).unwrap();
        g.code_at_step(step).to_string()
    }

    fn decide(r: &Record, answer: &str, p: &Policy, now: u64) -> Decision {
        decide_login(r, answer.as_bytes(), p, now, "192.0.2.1").unwrap()
    }

    #[test]
    fn current_code_is_accepted_and_recorded() {
        let (r, _) = sample();
        let d = decide(&r, &code(0), &Policy::default(), NOW);
        let ok = d.result.unwrap();
        assert_eq!((ok.method, ok.offset), (Method::Totp, Some(0)));
        let next = d.new_record.unwrap();
        assert_eq!(next.last_step, NOW / 30);
        assert_eq!(next.last_login, NOW);
        assert_eq!(next.last_login_from, "192.0.2.1");
    }

    #[test]
    fn window_edges() {
        let (r, _) = sample();
        let p = Policy::default();
        for off in [-1, 1] {
            assert_eq!(
                decide(&r, &code(off), &p, NOW).result.unwrap().offset,
                Some(off)
            );
        }
        for off in [-2, 2] {
            let f = decide(&r, &code(off), &p, NOW).result.unwrap_err();
            assert_eq!((f.reason, f.offset), (Reason::ClockDrift, Some(off)));
        }
        let wide = Policy {
            window: 2,
            ..Policy::default()
        };
        assert!(decide(&r, &code(2), &wide, NOW).result.is_ok());
        let narrow = Policy {
            window: 0,
            ..Policy::default()
        };
        assert!(decide(&r, &code(1), &narrow, NOW).result.is_err());
        // First and last second of the current step.
        let start = NOW - NOW % 30;
        assert!(decide(&r, &code(0), &narrow, start).result.is_ok());
        assert!(decide(&r, &code(0), &narrow, start + 29).result.is_ok());
        assert!(decide(&r, &code(0), &narrow, start + 30).result.is_err());
    }

    #[test]
    fn a_code_works_once() {
        let (r, _) = sample();
        let p = Policy::default();
        let after = decide(&r, &code(0), &p, NOW).new_record.unwrap();
        let f = decide(&after, &code(0), &p, NOW).result.unwrap_err();
        assert_eq!((f.reason, f.method), (Reason::Replay, Some(Method::Totp)));
    }

    #[test]
    fn an_older_code_after_a_newer_one_is_a_replay() {
        let (r, _) = sample();
        let p = Policy::default();
        let after = decide(&r, &code(1), &p, NOW).new_record.unwrap();
        assert_eq!(
            decide(&after, &code(0), &p, NOW).result.unwrap_err().reason,
            Reason::Replay
        );
        assert_eq!(
            decide(&after, &code(-1), &p, NOW)
                .result
                .unwrap_err()
                .reason,
            Reason::Replay
        );
        // The next step is still fine once it comes.
        assert!(decide(&after, &code(2), &p, NOW + 30).result.is_ok());
    }

    #[test]
    fn drift_is_diagnosed_but_never_grants() {
        let (r, _) = sample();
        let d = decide(&r, &code(7), &Policy::default(), NOW);
        let f = d.result.unwrap_err();
        assert_eq!((f.reason, f.offset), (Reason::ClockDrift, Some(7)));
        let next = d.new_record.unwrap();
        assert_eq!(next.last_drift, Some(7));
        assert_eq!(next.last_step, 0, "the window never moves by itself");
        assert_eq!(
            decide(&r, &code(11), &Policy::default(), NOW)
                .result
                .unwrap_err()
                .reason,
            Reason::BadCode
        );
    }

    #[test]
    fn recovery_code_works_once_in_any_spelling() {
        let (r, codes) = sample();
        let p = Policy::default();
        let shown = codes.display()[1].to_uppercase().replace('-', " ");
        let d = decide(&r, &shown, &p, NOW);
        let ok = d.result.unwrap();
        assert_eq!((ok.method, ok.recovery_left), (Method::Recovery, 2));
        let after = d.new_record.unwrap();
        let f = decide(&after, &shown, &p, NOW).result.unwrap_err();
        assert_eq!(
            (f.reason, f.method),
            (Reason::BadCode, Some(Method::Recovery))
        );
        // The other codes still work.
        assert!(decide(&after, &codes.display()[0], &p, NOW).result.is_ok());
    }

    #[test]
    fn an_imported_scratch_code_works_once_at_the_code_prompt() {
        let (mut r, _) = sample();
        let scratch: Vec<_> = ["92160603", "46745210"]
            .iter()
            .map(|c| zeroize::Zeroizing::new(c.to_string()))
            .collect();
        r.recovery = crate::core::RecoveryHashes::create_numeric(
            &scratch,
            crate::core::recovery::tests::TEST_KDF,
        )
        .unwrap();
        let p = Policy::default();
        let d = decide(&r, "4674 5210", &p, NOW);
        let ok = d.result.unwrap();
        assert_eq!((ok.method, ok.recovery_left), (Method::Recovery, 1));
        let after = d.new_record.unwrap();
        let f = decide(&after, "46745210", &p, NOW).result.unwrap_err();
        assert_eq!(
            (f.reason, f.method),
            (Reason::BadCode, Some(Method::Recovery))
        );
        // The app's 6-digit codes still work beside them.
        assert!(decide(&after, &code(0), &p, NOW).result.is_ok());
        let off = Policy {
            recovery: false,
            ..Policy::default()
        };
        assert!(decide(&r, "92160603", &off, NOW).result.is_err());
    }

    #[test]
    fn no_recovery_refuses_recovery_codes() {
        let (r, codes) = sample();
        let p = Policy {
            recovery: false,
            ..Policy::default()
        };
        let f = decide(&r, &codes.display()[0], &p, NOW).result.unwrap_err();
        assert_eq!(f.reason, Reason::BadCode);
    }

    #[test]
    fn malformed_and_overlong_answers_fail_and_count() {
        let (r, _) = sample();
        for answer in ["", "12345", "hello", &"9".repeat(200)] {
            let d = decide(&r, answer, &Policy::default(), NOW);
            assert_eq!(d.result.unwrap_err().reason, Reason::BadCode);
            assert_eq!(d.new_record.unwrap().failures, 1);
        }
    }

    #[test]
    fn deny_locks_and_lock_checks_nothing() {
        let (mut r, _) = sample();
        let p = Policy {
            deny: 3,
            unlock_time: 60,
            ..Policy::default()
        };
        for i in 1..=3 {
            let d = decide(&r, "000000", &p, NOW);
            let f = d.result.unwrap_err();
            r = d.new_record.unwrap();
            assert_eq!(r.failures, i);
            assert_eq!(f.locked.is_some(), i == 3);
        }
        assert_eq!(r.locked_until, NOW + 60);
        // The right code is not even looked at while locked, and nothing changes.
        let d = decide(&r, &code(0), &p, NOW + 59);
        let f = d.result.unwrap_err();
        assert_eq!(f.reason, Reason::Locked);
        assert_eq!(f.locked.unwrap().seconds_left(NOW + 59), Some(1));
        assert!(d.new_record.is_none());
        // After the lock: a success resets the count.
        let d = decide(&r, &code(2), &p, NOW + 60);
        assert!(d.result.is_ok());
        let r = d.new_record.unwrap();
        assert_eq!((r.failures, r.locked_until), (0, 0));
    }

    #[test]
    fn failures_keep_counting_across_locks_up_to_hard_deny() {
        let (mut r, _) = sample();
        let p = Policy {
            deny: 2,
            unlock_time: 10,
            hard_deny: 5,
            ..Policy::default()
        };
        let mut now = NOW;
        for _ in 0..5 {
            now += 100;
            let d = decide(&r, "000000", &p, now);
            r = d.new_record.unwrap();
        }
        assert_eq!(r.failures, 5);
        let f = decide(&r, &code(0), &p, now + 1_000_000)
            .result
            .unwrap_err();
        assert_eq!(
            (f.reason, f.locked),
            (Reason::Locked, Some(Lock::UntilUnlocked))
        );
    }

    #[test]
    fn replays_count_as_failures() {
        let (r, _) = sample();
        let p = Policy::default();
        let after = decide(&r, &code(0), &p, NOW).new_record.unwrap();
        let d = decide(&after, &code(0), &p, NOW);
        assert_eq!(d.new_record.unwrap().failures, 1);
    }

    #[test]
    fn a_huge_unlock_time_still_stores_a_lock() {
        let (r, _) = sample();
        let p = Policy {
            deny: 1,
            unlock_time: u64::MAX,
            ..Policy::default()
        };
        let next = decide(&r, "000000", &p, NOW).new_record.unwrap();
        assert_eq!(next.locked_until, MAX_TIME);
        assert!(next.to_toml().is_ok(), "the lock must be writable");
        let f = decide(&next, &code(0), &p, NOW + 1_000_000_000)
            .result
            .unwrap_err();
        assert_eq!(f.reason, Reason::Locked);
    }

    #[test]
    fn a_lock_ends_exactly_at_its_time() {
        let (mut r, _) = sample();
        r.locked_until = NOW;
        assert_eq!(
            lock_state(&r, &Policy::default(), NOW - 1),
            Some(Lock::Until(NOW))
        );
        assert_eq!(lock_state(&r, &Policy::default(), NOW), None);
        assert_eq!(Lock::Until(NOW).seconds_left(NOW - 5), Some(5));
        assert_eq!(Lock::Until(NOW).seconds_left(NOW + 5), Some(0));
        assert_eq!(Lock::UntilUnlocked.seconds_left(NOW), None);
    }

    #[test]
    fn the_hard_lock_is_stored_and_binds_every_policy() {
        let (mut r, _) = sample();
        let strict = Policy {
            deny: 2,
            unlock_time: 10,
            hard_deny: 3,
            ..Policy::default()
        };
        for i in 0..3 {
            r = decide(&r, "000000", &strict, NOW + 100 * i)
                .new_record
                .unwrap();
        }
        assert!(r.hard_locked);
        // A service with a looser policy (or the CLI) sees the same lock.
        let loose = Policy::default();
        assert_eq!(
            lock_state(&r, &loose, NOW + 10_000),
            Some(Lock::UntilUnlocked)
        );
        let f = decide(&r, &code(0), &loose, NOW).result.unwrap_err();
        assert_eq!(f.reason, Reason::Locked);
        // Below hard_deny nothing is stored.
        let (r2, _) = sample();
        let once = decide(&r2, "000000", &strict, NOW).new_record.unwrap();
        assert!(!once.hard_locked);
    }

    #[test]
    fn a_clock_set_back_is_clock_behind_and_not_counted() {
        let (mut r, _) = sample();
        r.last_step = NOW / 30 + 5;
        let d = decide(&r, &code(0), &Policy::default(), NOW);
        let f = d.result.unwrap_err();
        assert_eq!(
            (f.reason, f.method),
            (Reason::ClockBehind, Some(Method::Totp))
        );
        assert!(d.new_record.is_none(), "not counted");
        // Just inside the window is still an ordinary replay.
        r.last_step = NOW / 30 + 1;
        let d = decide(&r, &code(1), &Policy::default(), NOW);
        assert_eq!(d.result.unwrap_err().reason, Reason::Replay);
        assert_eq!(d.new_record.unwrap().failures, 1);
    }

    #[test]
    fn drift_is_told_after_a_success_and_then_cleared() {
        let (r, _) = sample();
        let p = Policy::default();
        let drifted = decide(&r, &code(5), &p, NOW).new_record.unwrap();
        let d = decide(&drifted, &code(0), &p, NOW);
        assert_eq!(d.result.unwrap().drift_before, Some(5));
        let next = d.new_record.unwrap();
        assert_eq!(next.last_drift, None);
        let again = decide(&next, &code(1), &p, NOW).result.unwrap();
        assert_eq!(again.drift_before, None);
    }

    #[test]
    fn unlock_never_lets_an_accepted_code_in_again() {
        let (r, _) = sample();
        let p = Policy::default();
        // A phone a step ahead: the next step's code is accepted now.
        let after = decide(&r, &code(1), &p, NOW).new_record.unwrap();
        let (unlocked, pulled) = unlock(&after, NOW);
        assert!(!pulled);
        assert_eq!(unlocked.last_step, NOW / 30 + 1);
        // Found by the decide fuzz target: pulled back to now, the same
        // code was accepted a second time.
        let f = decide(&unlocked, &code(1), &p, NOW).result.unwrap_err();
        assert_eq!(f.reason, Reason::Replay);
        // Beyond every window (the clock was set back): pulled back to now.
        let mut future = after.clone();
        future.last_step = NOW / 30 + u64::from(MAX_WINDOW) + 1;
        let (unlocked, pulled) = unlock(&future, NOW);
        assert!(pulled);
        assert_eq!(unlocked.last_step, NOW / 30);
        assert!(decide(&unlocked, &code(1), &p, NOW).result.is_ok());
    }

    /// alice on a counter token (RFC 4226 Appendix D's seed), next counter `next`.
    fn hotp_record(next: u64) -> Record {
        let (mut r, _) = sample();
        r.kind = Kind::Hotp;
        r.last_step = next;
        r
    }

    fn hotp(counter: u64) -> String {
        Generator::new(SECRET, OtpParams::default())
            .code_at_step(counter)
            .to_string()
    }

    #[test]
    fn hotp_accepts_a_code_within_the_look_ahead_and_stores_the_next_counter() {
        let r = hotp_record(0);
        let p = Policy::default();
        assert_eq!(p.hotp_window, 10);
        let d = decide(&r, "969429", &p, NOW); // counter 3 (RFC 4226 Appendix D)
        let ok = d.result.unwrap();
        assert_eq!((ok.method, ok.offset), (Method::Hotp, Some(3)));
        let next = d.new_record.unwrap();
        assert_eq!(next.last_step, 4, "last_step holds the next counter");
        assert_eq!(next.last_login, NOW);
        // The last counter of the look-ahead works; one further does not.
        assert!(decide(&r, &hotp(9), &p, NOW).result.is_ok());
        let f = decide(&r, &hotp(10), &p, NOW).result.unwrap_err();
        assert_eq!((f.reason, f.method), (Reason::BadCode, Some(Method::Hotp)));
        let one = Policy {
            hotp_window: 1,
            ..Policy::default()
        };
        assert!(decide(&r, &hotp(0), &one, NOW).result.is_ok());
        assert!(decide(&r, &hotp(1), &one, NOW).result.is_err());
    }

    #[test]
    fn a_used_or_older_hotp_counter_is_a_replay_and_counts() {
        let p = Policy::default();
        let after = decide(&hotp_record(0), &hotp(5), &p, NOW)
            .new_record
            .unwrap();
        assert_eq!(after.last_step, 6);
        for used in [5, 4, 0] {
            let d = decide(&after, &hotp(used), &p, NOW);
            let f = d.result.unwrap_err();
            assert_eq!((f.reason, f.method), (Reason::Replay, Some(Method::Hotp)));
            assert_eq!(d.new_record.unwrap().failures, 1);
        }
        assert!(decide(&after, &hotp(6), &p, NOW).result.is_ok());
    }

    #[test]
    fn hotp_ignores_the_clock() {
        // A counter far "ahead" of any time step is no clock_behind.
        let r = hotp_record(NOW);
        let d = decide(&r, &hotp(NOW), &Policy::default(), 0);
        assert_eq!(d.new_record.unwrap().last_step, NOW + 1);
        // Neither drift nor a time window applies.
        let r = hotp_record(0);
        let window0 = Policy {
            window: 0,
            ..Policy::default()
        };
        assert!(decide(&r, &hotp(2), &window0, NOW * 7).result.is_ok());
    }

    #[test]
    fn the_last_storable_counter_is_never_passed() {
        let r = hotp_record(MAX_TIME - 1);
        let p = Policy::default();
        let next = decide(&r, &hotp(MAX_TIME - 1), &p, NOW).new_record.unwrap();
        assert_eq!(next.last_step, MAX_TIME);
        assert!(next.to_toml().is_ok());
        // Nothing is left to accept, and nothing wraps around.
        assert!(decide(&next, &hotp(MAX_TIME), &p, NOW).result.is_err());
        assert!(decide(&next, &hotp(0), &p, NOW).result.is_err());
    }

    #[test]
    fn unconfirmed_failures_lock_for_a_while_but_never_for_good() {
        let (mut r, _) = sample();
        let forward = Policy {
            deny: 3,
            unlock_time: 10,
            hard_deny: 5,
            confirmed: false,
            ..Policy::default()
        };
        let mut now = NOW;
        for _ in 0..50 {
            now += 100;
            r = decide(&r, "000000", &forward, now).new_record.unwrap();
        }
        assert_eq!((r.failures, r.unconfirmed), (50, 50));
        assert!(!r.hard_locked);
        assert_eq!(lock_state(&r, &forward, now + 100), None);
        // Temporary locks still apply.
        let r3 = decide(&r, "000000", &forward, now + 100)
            .new_record
            .unwrap();
        assert_eq!(
            r3.locked_until,
            now + 110,
            "the 51st failure is a multiple of 3"
        );
        // Confirmed failures (another service) still reach the hard lock.
        let strict = Policy {
            confirmed: true,
            ..forward.clone()
        };
        let mut r = r;
        for _ in 0..5 {
            now += 100;
            r = decide(&r, "000000", &strict, now).new_record.unwrap();
        }
        assert!(r.hard_locked);
        // A success clears both counts.
        let (mut fresh, _) = sample();
        fresh = decide(&fresh, "000000", &forward, NOW).new_record.unwrap();
        let ok = decide(&fresh, &code(0), &forward, NOW).new_record.unwrap();
        assert_eq!((ok.failures, ok.unconfirmed), (0, 0));
    }

    #[test]
    fn a_count_past_a_services_hard_deny_locks_there_and_zero_turns_it_off() {
        let (mut r, _) = sample();
        // Counted under a looser service: no hard lock stored yet.
        r.failures = 5;
        let at = |hard_deny| Policy {
            hard_deny,
            ..Policy::default()
        };
        assert_eq!(lock_state(&r, &at(5), NOW), Some(Lock::UntilUnlocked));
        assert_eq!(lock_state(&r, &at(6), NOW), None);
        assert_eq!(lock_state(&r, &at(0), NOW), None);
    }

    #[test]
    fn hard_deny_zero_never_hard_locks() {
        let (mut r, _) = sample();
        let p = Policy {
            deny: 0,
            hard_deny: 0,
            ..Policy::default()
        };
        for _ in 0..3 {
            let d = decide(&r, "000000", &p, NOW);
            assert_eq!(d.result.unwrap_err().locked, None);
            r = d.new_record.unwrap();
        }
        assert_eq!((r.failures, r.hard_locked, r.locked_until), (3, false, 0));
        assert!(decide(&r, &code(0), &p, NOW).result.is_ok());
    }
}
