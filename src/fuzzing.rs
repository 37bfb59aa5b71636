//! Fuzz harness bodies, one per untrusted input (feature `fuzzing`; never
//! part of the shipped module).
//!
//! The cargo-fuzz targets in `fuzz/` (nightly, libFuzzer) are one line
//! each around these functions, and `tests/fuzz_corpus.rs` replays the seed
//! corpus in `fuzz/corpus/` through the same functions on stable, so CI
//! runs every harness without nightly. Each function takes arbitrary bytes
//! and panics only when an invariant breaks: beyond "no panic", the record
//! and the login state round-trip, parsers only accept values in range, and
//! [`decide`] replays sequences of logins checking that no step or recovery
//! code is accepted twice, that a locked user never gets in, and that
//! failures and the replay guard never go backwards without a success or an
//! `otpgate unlock`.
#![allow(clippy::panic)] // a broken invariant must crash the fuzzer

use std::collections::HashSet;
use std::ffi::CString;

use arbitrary::{Arbitrary, Unstructured};
use zeroize::Zeroizing;

use crate::config::{ModuleOptions, SiteConfig, StoreLocation};
use crate::core::decide::{Lock, lock_state};
use crate::core::grace::GraceEntry;
use crate::core::input::{Attempt, MAX_INPUT_BYTES, classify};
use crate::core::otp::{self, Algorithm, Generator, Kind, OtpParams};
use crate::core::record::{MAX_TIME, Record};
use crate::core::recovery::{self, KdfParams, RecoveryHashes, hex};
use crate::core::state::{self, LoginState, SLOT_BYTES, STATE_BYTES};
use crate::core::{Method, Policy, Reason, decide_login};
use crate::import::{google, oath};

/// Cheapest Argon2id the record accepts: the harness hashes many codes.
const FUZZ_KDF: KdfParams = KdfParams {
    m_cost: 8,
    t_cost: 1,
    p_cost: 1,
};
/// A fixed "now" for the importers' mapping (2023-11-14).
const NOW: u64 = 1_700_000_000;

/// The answer at the prompt: normalisation and classification.
pub fn answer(data: &[u8]) {
    let Some((&knobs, raw)) = data.split_first() else {
        return;
    };
    let digits = otp::DIGITS_ALLOWED[usize::from(knobs % 3)];
    let numeric = match (knobs >> 2) % 6 {
        0 => None,
        n => Some(5 + n), // 6..=10, as records allow
    }
    .filter(|&n| n != digits);
    let got = classify(raw, digits, numeric);
    if raw.len() > MAX_INPUT_BYTES {
        assert_eq!(got, Attempt::Malformed, "overlong input must be refused");
    }
    match &got {
        Attempt::Code(c) => {
            assert_eq!(c.len(), usize::from(digits));
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        Attempt::Recovery(c) => {
            let numeric_ok = numeric.is_some_and(|n| c.len() == usize::from(n))
                && c.bytes().all(|b| b.is_ascii_digit());
            let generated_ok = c.len() == recovery::CODE_CHARS
                && c.bytes().all(|b| recovery::ALPHABET.contains(&b));
            assert!(numeric_ok || generated_ok, "odd recovery form");
        }
        Attempt::Malformed => {}
    }
    // The canonical form classifies to itself (normalising is idempotent),
    // and spaces or hyphens around it change nothing.
    if let Attempt::Code(c) | Attempt::Recovery(c) = &got {
        assert_eq!(classify(c.as_bytes(), digits, numeric), got);
        let spaced = format!(" {}- ", c.as_str());
        assert_eq!(classify(spaced.as_bytes(), digits, numeric), got);
    }
}

/// A record file: parse, and when it parses, serialise and parse again.
pub fn record(data: &[u8]) {
    // The two may give different reasons for a refusal (an integer beyond
    // i64 in a u64 field is out of range for one, invalid for the other);
    // they must agree on whether it loads and on what it loads to.
    let parsed = Record::parse(data);
    let through_table = Record::parse_through_table(data);
    assert!(
        parsed.as_ref().ok() == through_table.as_ref().ok(),
        "the one-pass parse and the table parse disagree"
    );
    // What the line reader takes (every login's path for our own form),
    // the TOML parser takes to the same record.
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(fast) = crate::core::record_text::parse(text)
    {
        assert!(
            toml::from_str::<Record>(text).ok().as_ref() == Some(&fast),
            "the line reader and the TOML parser disagree"
        );
    }
    let Ok(r) = parsed else {
        return;
    };
    let text = match r.to_toml() {
        Ok(t) => t,
        Err(e) => panic!("a record that parsed cannot be written: {e}"),
    };
    let back = match Record::parse(text.as_bytes()) {
        Ok(b) => b,
        Err(e) => panic!("a written record does not parse: {e}"),
    };
    assert!(back == r, "the record changed on a round trip");
    match back.to_toml() {
        Ok(again) => assert!(again == text, "serialising is not stable"),
        Err(e) => panic!("{e}"),
    }
    // The login state of an unchanged record changes nothing.
    match LoginState::between(&r, &r) {
        Some(s) => assert!(s.apply(&r) == r, "an empty login state changed the record"),
        None => panic!("a record is not a login change of itself"),
    }
}

/// A state file: any bytes read safely; a state read back is written back
/// unchanged; a write cut at any byte leaves the old state or the new one.
pub fn state(data: &[u8]) {
    let old = state::current(data);
    if let Ok(Some(s)) = &old {
        assert_eq!(
            reread(s),
            *s,
            "a state read from a file does not round-trip"
        );
    }
    if data.len() > STATE_BYTES {
        assert!(old.is_err(), "an oversized state file was accepted");
        return;
    }
    // Arbitrary states: encode, decode, and tear the write.
    let mut u = Unstructured::new(data);
    let Ok(next) = arbitrary_state(&mut u) else {
        return;
    };
    let expected = normalised(&next);
    assert_eq!(reread(&next), expected, "encode/decode changed the state");
    let Ok(Some(before)) = old else {
        return;
    };
    // The next write goes to the older slot, as the store does it.
    let mut next = next;
    next.seq = before.seq.wrapping_add(1);
    if next.seq == 0 {
        return;
    }
    let cut = u.int_in_range(0..=SLOT_BYTES).unwrap_or(SLOT_BYTES);
    let mut file = [0u8; STATE_BYTES];
    file[..data.len()].copy_from_slice(data);
    let at = state::slot_offset(next.seq) as usize;
    file[at..at + cut].copy_from_slice(&next.encode()[..cut]);
    let got = match state::current(&file) {
        Ok(Some(s)) => s,
        other => panic!("a torn write lost the state: {other:?}"),
    };
    let mut want_new = normalised(&next);
    want_new.seq = next.seq;
    // A torn slot whose last 32 bytes, kept from before, are the SHA-256
    // of the torn slot itself: the input supplied the checksum of a slot
    // that was never written. libFuzzer can (it sees the checksum
    // compared); a crash cannot (that is a preimage). Checked here with the
    // hash alone, so a reader that skipped the checksum is still caught.
    let torn = &file[at..at + SLOT_BYTES];
    let sum_at = SLOT_BYTES - 32;
    if cut <= sum_at && crate::core::checksum::sha256(&torn[..sum_at])[..] == torn[sum_at..] {
        return;
    }
    assert!(
        got == before || got == want_new,
        "a torn write mixed two states"
    );
    if cut == SLOT_BYTES {
        assert_eq!(got, want_new);
    }
}

fn reread(s: &LoginState) -> LoginState {
    let mut file = [0u8; STATE_BYTES];
    let at = state::slot_offset(s.seq) as usize;
    file[at..at + SLOT_BYTES].copy_from_slice(&s.encode());
    match state::current(&file) {
        Ok(Some(back)) => back,
        other => panic!("a slot just written does not read back: {other:?}"),
    }
}

/// What a state reads back as: the source cut to 255 bytes at a character
/// boundary, only storable grace entries (16-byte keys, a time).
fn normalised(s: &LoginState) -> LoginState {
    let mut n = s.clone();
    let mut end = n.last_login_from.len().min(255);
    while !n.last_login_from.is_char_boundary(end) {
        end -= 1;
    }
    n.last_login_from.truncate(end);
    n.grace = s
        .grace
        .iter()
        .take(crate::core::grace::MAX_ENTRIES)
        .filter(|e| e.at != 0 && e.key.len() == 32 && e.key.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|e| GraceEntry {
            key: e.key.to_ascii_lowercase(),
            at: e.at,
        })
        .collect();
    n
}

fn arbitrary_state(u: &mut Unstructured<'_>) -> arbitrary::Result<LoginState> {
    let grace_count = u.int_in_range(0..=5usize)?;
    let mut grace = Vec::new();
    for _ in 0..grace_count {
        let key: [u8; 16] = u.arbitrary()?;
        let key = if u.arbitrary()? {
            hex(&key)
        } else {
            u.arbitrary::<String>()?
        };
        grace.push(GraceEntry {
            key,
            at: u.arbitrary()?,
        });
    }
    Ok(LoginState {
        seq: u.arbitrary()?,
        record_id: u.arbitrary()?,
        last_step: u.arbitrary()?,
        failures: u.arbitrary()?,
        unconfirmed: u.arbitrary()?,
        locked_until: u.arbitrary()?,
        hard_locked: u.arbitrary()?,
        last_login: u.arbitrary()?,
        last_login_from: u.arbitrary()?,
        last_drift: u.arbitrary()?,
        used: u.arbitrary()?,
        grace,
    })
}

/// `/etc/otpgate.toml`: whatever parses is within every bound.
pub fn site_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // What is read without the TOML parser reads as the parser reads it.
    if crate::config::sets_nothing(text) {
        assert!(
            toml::from_str::<SiteConfig>(text).ok() == Some(SiteConfig::default()),
            "a site file that sets nothing reads otherwise through the TOML parser"
        );
    }
    let Ok(c) = SiteConfig::parse(text) else {
        return;
    };
    check_policy(&c.policy());
    assert!(c.otp_params().validate().is_ok());
    assert!(otp::ENROLL_DIGITS.contains(&c.otp_params().digits));
    assert!(c.recovery_codes.is_none_or(|n| n <= recovery::MAX_COUNT));
    assert!(c.postgres.connect_timeout().clamp(1, 30) == c.postgres.connect_timeout());
    match c.store_location() {
        StoreLocation::Dir(d) => assert!(d.is_absolute()),
        StoreLocation::Postgres(url) => assert!(crate::config::is_postgres_url(&url)),
    }
}

fn check_policy(p: &Policy) {
    assert!(p.window <= 10, "window {}", p.window);
    assert!((1..=1000).contains(&p.deny), "deny {}", p.deny);
    assert!((1..=30 * 24 * 3600).contains(&p.unlock_time));
    assert!(p.hard_deny <= 100_000);
    assert!((1..=100).contains(&p.hotp_window));
    assert!(p.grace_period <= crate::core::grace::MAX_GRACE_SECONDS);
}

/// The module's argument list, as libpam passes it: NUL-separated strings,
/// any bytes (not only UTF-8).
pub fn module_options(data: &[u8]) {
    let args: Vec<CString> = data
        .split(|&b| b == 0)
        .filter_map(|a| CString::new(a).ok())
        .collect();
    let refs: Vec<&std::ffi::CStr> = args.iter().map(|a| a.as_c_str()).collect();
    let Ok(o) = ModuleOptions::from_pam_args(&refs) else {
        return;
    };
    check_policy(&o.policy.over(&Policy::default()));
    assert!(o.config.as_ref().is_none_or(|p| p.is_absolute()));
    assert!(o.store.as_ref().is_none_or(|p| p.is_absolute()));
}

/// Base32 secrets as people type them. There is no `otpauth://` parser in
/// otpgate (URIs are only written), so there is nothing of that to fuzz.
pub fn secret_and_uri(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(bytes) = otp::decode_secret(&text) {
        assert!((otp::SECRET_MIN_BYTES..=otp::SECRET_MAX_BYTES).contains(&bytes.len()));
        let canonical = otp::encode_secret(&bytes);
        match otp::decode_secret(&canonical) {
            Some(again) => assert!(again == bytes, "the canonical form decodes differently"),
            None => panic!("the canonical form of a secret does not decode"),
        }
    }
    // Raw bytes of an allowed length always survive the canonical form.
    if (otp::SECRET_MIN_BYTES..=otp::SECRET_MAX_BYTES).contains(&data.len()) {
        match otp::decode_secret(&otp::encode_secret(data)) {
            Some(back) => assert!(back.as_slice() == data),
            None => panic!("an encoded secret does not decode"),
        }
    }
}

/// `~/.google_authenticator`: parse, map, and save what maps.
pub fn google_authenticator(data: &[u8]) {
    let Ok(file) = google::parse_google_authenticator(data) else {
        return;
    };
    for now in [NOW, 0, MAX_TIME] {
        if let Ok(plan) = google::plan(&file, now) {
            saved(&plan, now);
        }
    }
}

/// pam_oath's users file: parse, map every entry, and save what maps.
pub fn oath_users(data: &[u8]) {
    let Ok(lines) = oath::parse_oath_users(data) else {
        return;
    };
    let mut users = HashSet::new();
    for line in &lines {
        if let oath::OathLine::Entry(e) = line {
            assert!(users.insert(e.user.clone()), "a user imported twice");
            if let Ok(plan) = oath::plan(e, NOW, &oath::utc_seconds) {
                saved(&plan, NOW);
            }
        }
    }
}

/// A plan that maps is a record that validates and round-trips.
fn saved(plan: &crate::import::Plan, now: u64) {
    assert!(!format!("{plan:?}").is_empty());
    let Ok(r) = plan.record(FUZZ_KDF, now.min(MAX_TIME)) else {
        return;
    };
    match r.to_toml() {
        Ok(text) => assert!(Record::parse(text.as_bytes()).is_ok_and(|b| b == r)),
        Err(e) => panic!("an imported record cannot be written: {e}"),
    }
}

/// One enrollment and a sequence of attempts on it (see [`decide`]).
#[derive(Arbitrary, Debug)]
pub struct DecideInput {
    hotp: bool,
    algorithm: u8,
    digits: u8,
    period: u8,
    secret: [u8; 10],
    /// Where the replay guard starts, relative to the first step or counter.
    last_step: i16,
    failures: u16,
    unconfirmed: u16,
    /// Lock end relative to the first attempt's time, when set.
    locked_until: Option<i16>,
    hard_locked: bool,
    /// Generated-style recovery codes (0..=4) and imported numeric ones.
    codes: u8,
    numeric: bool,
    start: u32,
    window: u8,
    deny: u16,
    unlock_time: u32,
    hard_deny: u32,
    recovery: bool,
    confirmed: bool,
    hotp_window: u8,
    source: String,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
struct Step {
    /// Seconds since the previous attempt (hours with `far`): mostly
    /// within a step or a few, sometimes far.
    dt: u8,
    far: bool,
    answer: Answer,
    /// Another service's policy for this attempt (e.g. forward_pass).
    unconfirmed: bool,
}

#[derive(Arbitrary, Debug)]
enum Answer {
    /// The code for the current step + offset (TOTP) or next + ahead (HOTP).
    Right(i8),
    /// The answer that was last accepted, again.
    Replay,
    /// The recovery code at this index (used or not), in a typed spelling.
    Recovery(u8, bool),
    /// Anything.
    Raw(Vec<u8>),
    /// `otpgate unlock` (an administrative write) instead of an attempt.
    Unlock,
}

/// The store's view: the admin record plus the login state in its slot,
/// exactly as `Store::update` reads and writes them.
struct Stored {
    record: Record,
    state: Option<LoginState>,
}

impl Stored {
    fn current(&self) -> Record {
        match &self.state {
            Some(s) => s.apply(&self.record),
            None => self.record.clone(),
        }
    }

    /// Persists `next` the way the store does: a login change as one state
    /// slot, read back through the slot format.
    fn save(&mut self, next: &Record) {
        if let Err(e) = next.validate() {
            panic!("a decision produced a record that cannot be stored: {e}");
        }
        let Some(mut s) = LoginState::between(&self.record, next) else {
            panic!("a login changed an administrative field");
        };
        s.seq = self.state.as_ref().map_or(0, |o| o.seq) + 1;
        let back = reread(&s);
        let mut applied = back.apply(&self.record);
        // The slot keeps 255 bytes of the source; the record 255 characters.
        assert!(next.last_login_from.starts_with(&applied.last_login_from));
        applied.last_login_from.clone_from(&next.last_login_from);
        assert!(applied == *next, "the login state lost part of a login");
        self.state = Some(back);
    }
}

/// The login decision driven with arbitrary records, answers, clocks and
/// policies. Invariants, for every attempt:
/// - a locked user (`lock_state` Some) never gets a success, and nothing
///   is checked or written;
/// - a TOTP step or HOTP counter is accepted at most once, and only above
///   the replay guard; replaying an accepted answer at once never succeeds
///   for that step again;
/// - a recovery code works once;
/// - failures never go down without a success or an unlock; the replay
///   guard never goes down without an unlock; the hard lock stays;
/// - every new record validates and survives the store's state slot.
pub fn decide(data: &[u8]) {
    let Ok(input) = DecideInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    run_decide(&input);
}

fn run_decide(input: &DecideInput) {
    let params = OtpParams {
        algorithm: [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512]
            [usize::from(input.algorithm % 3)],
        digits: otp::DIGITS_ALLOWED[usize::from(input.digits % 3)],
        period: otp::PERIOD_MIN + u32::from(input.period) % (otp::PERIOD_MAX - otp::PERIOD_MIN + 1),
    };
    let kind = if input.hotp { Kind::Hotp } else { Kind::Totp };
    let mut now = u64::from(input.start) * 4;
    let policy = Policy {
        window: u32::from(input.window % 11),
        deny: 1 + u32::from(input.deny % 1000),
        unlock_time: 1 + u64::from(input.unlock_time % (30 * 24 * 3600)),
        hard_deny: input.hard_deny % 100_001,
        recovery: input.recovery,
        drift_steps: 10,
        confirmed: input.confirmed,
        hotp_window: 1 + u32::from(input.hotp_window % 100),
        grace_period: 0,
    };
    // Recovery codes: deterministic, hashed with a fixed salt.
    let numeric_digits = if input.numeric {
        Some(if params.digits == 8 { 10 } else { 8 })
    } else {
        None
    };
    let codes: Vec<Zeroizing<String>> = (0..input.codes % 5)
        .map(|i| recovery_code(&input.secret, i, numeric_digits))
        .collect();
    let hashes = fixed_salt_hashes(&codes, numeric_digits);
    let mut record = Record::new(&input.secret, params, hashes, now);
    record.kind = kind;
    let base = match kind {
        Kind::Totp => params.step_at(now),
        Kind::Hotp => 1_000,
    };
    record.last_step = base.saturating_add_signed(i64::from(input.last_step));
    record.failures = u32::from(input.failures);
    record.unconfirmed = u32::from(input.unconfirmed.min(input.failures));
    record.locked_until = input
        .locked_until
        .map_or(0, |d| now.saturating_add_signed(i64::from(d)));
    record.hard_locked = input.hard_locked;
    record.state_id = 7;
    if record.validate().is_err() {
        return;
    }
    let generator = Generator::new(&input.secret, params);
    let mut stored = Stored {
        record,
        state: None,
    };
    let mut accepted_steps: HashSet<u64> = HashSet::new();
    let mut used_codes: HashSet<usize> = HashSet::new();
    let mut last_accepted: Option<Vec<u8>> = None;

    for step in input.steps.iter().take(64) {
        let dt = u64::from(step.dt) * if step.far { 3600 } else { 1 };
        now = now.saturating_add(dt).min(MAX_TIME);
        let r = stored.current();
        let answer: Vec<u8> = match &step.answer {
            Answer::Unlock => {
                let (next, _) = crate::core::decide::unlock(&r, now);
                stored.save(&next);
                continue;
            }
            Answer::Right(offset) => {
                // Mostly inside the window (or the HOTP look-ahead), sometimes out.
                let offset = i64::from(*offset % 14);
                let factor = match kind {
                    Kind::Totp => params.step_at(now).checked_add_signed(offset),
                    Kind::Hotp => r.last_step.checked_add(offset.unsigned_abs()),
                };
                match factor {
                    Some(f) => generator.code_at_step(f).as_bytes().to_vec(),
                    None => continue,
                }
            }
            Answer::Replay => match &last_accepted {
                Some(a) => a.clone(),
                None => continue,
            },
            Answer::Recovery(i, upper) => {
                if codes.is_empty() {
                    continue;
                }
                let code = &codes[usize::from(*i) % codes.len()];
                if *upper {
                    code.to_uppercase().into_bytes()
                } else {
                    format!(" {}-{} ", &code[..4], &code[4..]).into_bytes()
                }
            }
            Answer::Raw(raw) => raw.clone(),
        };
        let mut p = policy.clone();
        p.confirmed = policy.confirmed && !step.unconfirmed;
        let lock = lock_state(&r, &p, now);
        let d = match decide_login(&r, &answer, &p, now, &input.source) {
            Ok(d) => d,
            Err(e) => panic!("a valid record made the decision fail: {e}"),
        };
        if lock.is_some() {
            let locked = matches!(&d.result, Err(f) if f.reason == Reason::Locked);
            assert!(locked, "a locked user was not refused as locked: {d:?}");
            assert!(d.new_record.is_none(), "a locked attempt wrote something");
            continue;
        }
        match &d.result {
            Ok(s) => {
                let next = match &d.new_record {
                    Some(n) => n,
                    None => panic!("a success changed nothing (the code stays usable)"),
                };
                assert_eq!(
                    (next.failures, next.unconfirmed, next.locked_until),
                    (0, 0, 0)
                );
                assert_eq!(next.hard_locked, r.hard_locked);
                match s.method {
                    Method::Totp | Method::Hotp => {
                        let offset = s.offset.unwrap_or(0);
                        let step_used = match kind {
                            Kind::Totp => params.step_at(now).checked_add_signed(offset),
                            Kind::Hotp => r.last_step.checked_add(offset.unsigned_abs()),
                        };
                        let Some(step_used) = step_used else {
                            panic!("a success at a step that does not exist");
                        };
                        assert!(step_used >= r.last_step, "accepted at or below the guard");
                        if kind == Kind::Totp {
                            assert!(step_used > r.last_step, "accepted at the guard");
                            assert_eq!(next.last_step, step_used);
                        } else {
                            assert_eq!(next.last_step, step_used + 1);
                        }
                        assert!(
                            accepted_steps.insert(step_used),
                            "step {step_used} accepted twice"
                        );
                        // Fed back at once, the same answer never gets this step again.
                        if let Ok(again) =
                            decide_login(next, &answer, &p, now, &input.source).map(|d| d.result)
                            && let Ok(s2) = again
                        {
                            let o2 = s2.offset.unwrap_or(0);
                            let step2 = match kind {
                                Kind::Totp => params.step_at(now).checked_add_signed(o2),
                                Kind::Hotp => next.last_step.checked_add(o2.unsigned_abs()),
                            };
                            assert!(
                                step2.is_some_and(|s| s > step_used),
                                "a replayed answer was accepted for the same step"
                            );
                        }
                    }
                    Method::Recovery => {
                        let Some(i) = index_of(&codes, &answer, r.digits, numeric_digits) else {
                            panic!("a recovery success for no known code");
                        };
                        assert!(p.recovery, "a recovery code at a service with no_recovery");
                        assert!(used_codes.insert(i), "recovery code {i} worked twice");
                        assert_eq!(next.recovery.remaining() + 1, r.recovery.remaining());
                        assert_eq!(next.last_step, r.last_step);
                        let again = decide_login(next, &answer, &p, now, &input.source);
                        assert!(
                            !matches!(again.map(|d| d.result), Ok(Ok(_))),
                            "a used recovery code worked again"
                        );
                    }
                    Method::Grace => panic!("decide_login never grants grace"),
                }
                last_accepted = Some(answer.clone());
                stored.save(next);
            }
            Err(f) => {
                assert_ne!(f.reason, Reason::Locked, "locked while lock_state said no");
                if let Some(next) = &d.new_record {
                    assert_eq!(next.failures, r.failures.saturating_add(1));
                    assert!(next.last_step == r.last_step, "a failure moved the guard");
                    assert!(next.hard_locked || !r.hard_locked);
                    assert_eq!(next.recovery, r.recovery, "a failure used a recovery code");
                    assert!(next.grace.is_empty());
                    if lock_state(next, &p, now).is_some() {
                        assert!(f.locked.is_some(), "a lock was not announced");
                    }
                    if !p.confirmed {
                        let hard =
                            policy.hard_deny > 0 && next.confirmed_failures() >= policy.hard_deny;
                        assert!(
                            next.hard_locked == r.hard_locked || hard,
                            "an unconfirmed failure set the hard lock"
                        );
                    }
                    stored.save(next);
                } else {
                    assert!(
                        matches!(f.reason, Reason::ClockBehind),
                        "a counted failure was not written: {f:?}"
                    );
                }
            }
        }
        if let Some(Lock::UntilUnlocked) = lock_state(&stored.current(), &p, now) {
            assert!(
                stored.current().hard_locked || p.hard_deny > 0,
                "a hard lock from nowhere"
            );
        }
    }
}

/// The code (by index) an answer names, found the way a user types it.
fn index_of(
    codes: &[Zeroizing<String>],
    answer: &[u8],
    digits: u8,
    numeric: Option<u8>,
) -> Option<usize> {
    match classify(answer, digits, numeric) {
        Attempt::Recovery(c) => codes.iter().position(|k| **k == *c),
        _ => None,
    }
}

/// The `i`-th recovery code of this enrollment: 16 Crockford characters,
/// or `numeric` digits (an imported scratch code).
fn recovery_code(seed: &[u8; 10], i: u8, numeric: Option<u8>) -> Zeroizing<String> {
    let mut x = u64::from(i) + 1;
    for b in seed {
        x = x.wrapping_mul(0x100_0000_01b3).wrapping_add(u64::from(*b));
    }
    let mut out = Zeroizing::new(String::new());
    let (len, alphabet): (usize, &[u8]) = match numeric {
        Some(n) => (usize::from(n), b"0123456789"),
        None => (recovery::CODE_CHARS, recovery::ALPHABET),
    };
    for k in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let c = alphabet[(x as usize).wrapping_add(k) % alphabet.len()];
        out.push(char::from(c));
    }
    // Distinct per index even if the mixing collided.
    if numeric.is_some() {
        out.replace_range(0..1, &char::from(b'1' + i).to_string());
    } else {
        out.replace_range(
            0..1,
            &char::from(recovery::ALPHABET[usize::from(i)]).to_string(),
        );
    }
    out
}

/// Hashes as `RecoveryHashes::create` makes them, with a fixed salt so
/// fuzz inputs replay exactly.
fn fixed_salt_hashes(codes: &[Zeroizing<String>], numeric: Option<u8>) -> RecoveryHashes {
    let salt = [0x42u8; 16];
    let mut hashes = Vec::new();
    for c in codes {
        let mut out = [0u8; 32];
        let params =
            argon2::Params::new(FUZZ_KDF.m_cost, FUZZ_KDF.t_cost, FUZZ_KDF.p_cost, Some(32));
        let Ok(params) = params else {
            panic!("fuzz KDF parameters");
        };
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        if argon
            .hash_password_into(c.as_bytes(), &salt, &mut out)
            .is_err()
        {
            panic!("argon2");
        }
        hashes.push(hex(&out));
    }
    RecoveryHashes {
        kdf: "argon2id".into(),
        m_cost: FUZZ_KDF.m_cost,
        t_cost: FUZZ_KDF.t_cost,
        p_cost: FUZZ_KDF.p_cost,
        salt: hex(&salt),
        hashes,
        numeric_digits: numeric.filter(|_| !codes.is_empty()),
    }
}

/// A harness: arbitrary bytes in, a panic when an invariant breaks.
pub type Harness = fn(&[u8]);

/// Every harness by name: what the fuzz targets and the corpus replay use.
pub const TARGETS: [(&str, Harness); 9] = [
    ("answer", answer),
    ("record", record),
    ("state", state),
    ("site_config", site_config),
    ("module_options", module_options),
    ("secret_and_uri", secret_and_uri),
    ("google_authenticator", google_authenticator),
    ("oath_users", oath_users),
    ("decide", decide),
];
