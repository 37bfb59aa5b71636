//! pam_oath's users file as liboath reads it: per line, whitespace-separated,
//! `TYPE USER PASSWORD HEXKEY [COUNTER [LASTOTP [TIME]]]`, where pam_oath
//! itself writes the last three after each login (the counter it accepted,
//! the code, and the local time as `YYYY-MM-DDTHH:MM:SSL`).

use std::collections::HashMap;
use std::fmt;
use zeroize::Zeroizing;

use super::{ParseError, Plan, text_lines};
use crate::core::otp::{self, Algorithm, Generator, Kind, OtpParams};
use crate::core::record::MAX_TIME;

/// Steps either side of the last use's time searched for the last code.
const LAST_CODE_SEARCH: i64 = 50;

/// The password field: `-` none, `+` checked by another module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Password {
    None,
    External,
}

/// A broken-down local time as pam_oath writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// One importable line. Debug output shows no key and no code.
pub struct OathEntry {
    pub line: usize,
    pub user: String,
    pub kind: Kind,
    pub digits: u8,
    /// 30 or 60 for TOTP (`HOTP/T30`, `HOTP/T60`); 30, unused, for HOTP.
    pub period: u32,
    pub password: Password,
    pub secret: Zeroizing<Vec<u8>>,
    pub counter: Option<u64>,
    pub last_otp: Option<Zeroizing<String>>,
    pub last_time: Option<LocalTime>,
}

impl fmt::Debug for OathEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OathEntry")
            .field("line", &self.line)
            .field("user", &self.user)
            .field("kind", &self.kind)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("password", &self.password)
            .field("secret", &"[redacted]")
            .field("counter", &self.counter)
            .field("last_otp", &self.last_otp.as_ref().map(|_| "[redacted]"))
            .field("last_time", &self.last_time)
            .finish()
    }
}

/// A line: importable, or reported and skipped (comments and blank lines
/// are neither).
#[derive(Debug)]
pub enum OathLine {
    Entry(OathEntry),
    Skipped {
        line: usize,
        user: Option<String>,
        why: String,
    },
}

/// liboath's token types: (digits, seconds per step; 0 for HOTP).
fn token_type(text: &str) -> Option<(u8, u32)> {
    Some(match text {
        "HOTP" | "HOTP/E" | "HOTP/E/6" => (6, 0),
        "HOTP/E/7" => (7, 0),
        "HOTP/E/8" => (8, 0),
        "HOTP/T30" | "HOTP/T30/6" => (6, 30),
        "HOTP/T30/7" => (7, 30),
        "HOTP/T30/8" => (8, 30),
        "HOTP/T60" | "HOTP/T60/6" => (6, 60),
        "HOTP/T60/7" => (7, 60),
        "HOTP/T60/8" => (8, 60),
        _ => return None,
    })
}

/// Parses a pam_oath users file. A line otpgate cannot take is reported
/// (`Skipped`); only a file that is not a users file at all is an error.
pub fn parse_oath_users(bytes: &[u8]) -> Result<Vec<OathLine>, ParseError> {
    let mut out = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (n, text) in text_lines(bytes)? {
        let mut fields = text.split_ascii_whitespace();
        let Some(kind) = fields.next() else { continue };
        if kind.starts_with('#') {
            continue;
        }
        let user = fields.next().map(str::to_string);
        let skip = |why: &str| OathLine::Skipped {
            line: n,
            user: user.clone(),
            why: why.to_string(),
        };
        let Some((digits, step)) = token_type(kind) else {
            out.push(skip("unknown token type (pam_oath knows HOTP, HOTP/E, HOTP/T30 and HOTP/T60, each with /6, /7 or /8)"));
            continue;
        };
        let Some(name) = user.clone() else {
            out.push(skip("no user name"));
            continue;
        };
        if let Some(first) = first_line.get(&name) {
            out.push(skip(&format!(
                "a second token for this user (the first is on line {first}): otpgate keeps one enrollment per account"
            )));
            continue;
        }
        first_line.insert(name.clone(), n);
        let password = match fields.next() {
            Some("-") => Password::None,
            Some("+") => Password::External,
            Some(_) => {
                out.push(skip("static password (field 3 is not '-'): otpgate checks no passwords; not imported"));
                continue;
            }
            None => {
                out.push(skip("no password field and no key"));
                continue;
            }
        };
        let Some(hex) = fields.next() else {
            out.push(skip("no key"));
            continue;
        };
        let secret = match unhex(hex) {
            None => {
                out.push(skip("the key is not hex"));
                continue;
            }
            Some(k) if k.len() < otp::SECRET_MIN_BYTES => {
                out.push(skip(
                    "the key is shorter than 80 bits; enroll this user anew",
                ));
                continue;
            }
            Some(k) if k.len() > otp::SECRET_MAX_BYTES => {
                out.push(skip("the key is longer than 1024 bits"));
                continue;
            }
            Some(k) => k,
        };
        let counter = match fields.next().map(str::parse::<u64>) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                out.push(skip("the counter is not a whole number"));
                continue;
            }
        };
        let last_otp = match fields.next() {
            None => None,
            Some(c) if c.len() == usize::from(digits) && c.bytes().all(|b| b.is_ascii_digit()) => {
                Some(Zeroizing::new(c.to_string()))
            }
            Some(_) => {
                out.push(skip(&format!(
                    "the last-code field is not a {digits}-digit code"
                )));
                continue;
            }
        };
        let last_time = match fields.next() {
            None => None,
            Some(t) => match parse_time(t) {
                Some(t) => Some(t),
                None => {
                    out.push(skip("the last-use time is not YYYY-MM-DDTHH:MM:SSL"));
                    continue;
                }
            },
        };
        out.push(OathLine::Entry(OathEntry {
            line: n,
            user: name,
            kind: if step == 0 { Kind::Hotp } else { Kind::Totp },
            digits,
            period: if step == 0 { otp::DEFAULT_PERIOD } else { step },
            password,
            secret,
            counter,
            last_otp,
            last_time,
        }));
    }
    Ok(out)
}

fn unhex(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() / 2));
    for i in (0..s.len()).step_by(2) {
        out.push(u8::from_str_radix(s.get(i..i + 2)?, 16).ok()?);
    }
    Some(out)
}

/// `2026-11-28T16:41:27L`, exactly as liboath's strftime writes it.
fn parse_time(t: &str) -> Option<LocalTime> {
    let b = t.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'L'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let lt = LocalTime {
        year: i32::try_from(num(0..4)?).ok()?,
        month: u8::try_from(num(5..7)?).ok()?,
        day: u8::try_from(num(8..10)?).ok()?,
        hour: u8::try_from(num(11..13)?).ok()?,
        minute: u8::try_from(num(14..16)?).ok()?,
        second: u8::try_from(num(17..19)?).ok()?,
    };
    let valid = (1..=12).contains(&lt.month)
        && (1..=31).contains(&lt.day)
        && lt.hour < 24
        && lt.minute < 60
        && lt.second <= 60;
    valid.then_some(lt)
}

/// `t` read as UTC (for machines whose local time is UTC, and tests).
pub fn utc_seconds(t: &LocalTime) -> Option<u64> {
    // Howard Hinnant's days-from-civil.
    let (m, d) = (i64::from(t.month), i64::from(t.day));
    let y = i64::from(t.year) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs =
        days * 86_400 + i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second);
    u64::try_from(secs).ok()
}

/// What one entry becomes. `local` turns pam_oath's local time into unix
/// time as pam_oath did (mktime in this machine's time zone).
pub fn plan(
    e: &OathEntry,
    now: u64,
    local: &dyn Fn(&LocalTime) -> Option<u64>,
) -> Result<Plan, String> {
    let mut p = Plan {
        kind: e.kind,
        params: OtpParams {
            algorithm: Algorithm::Sha1,
            digits: e.digits,
            period: e.period,
        },
        secret: Zeroizing::new(e.secret.to_vec()),
        replay_guard: 0,
        scratch: Vec::new(),
        mapped: vec![format!(
            "key ({} bits, hex) -> the same secret; HMAC-SHA1, {} digits as before",
            e.secret.len() * 8,
            e.digits
        )],
        skipped: Vec::new(),
    };
    match e.kind {
        Kind::Hotp => {
            let counter = e.counter.unwrap_or(0);
            // pam_oath writes the counter it accepted, with that code.
            let next = counter.saturating_add(u64::from(e.last_otp.is_some()));
            if next >= MAX_TIME {
                return Err("the counter is too large to continue".into());
            }
            p.replay_guard = next;
            p.mapped.push(match (e.counter, &e.last_otp) {
                (_, Some(_)) => format!(
                    "counter {counter} and the code pam_oath took for it -> next counter {next}"
                ),
                (Some(_), None) => format!("counter {counter} -> next counter {next}"),
                (None, None) => "no counter yet -> next counter 0".to_string(),
            });
        }
        Kind::Totp => {
            if e.counter.is_some_and(|c| c != 0) {
                p.skipped
                    .push("the counter field (not used for time-based tokens)".into());
            }
            match (&e.last_otp, e.last_time) {
                (None, _) => p.mapped.push("no code taken yet -> no replay guard".into()),
                (Some(_), None) => {
                    return Err(
                        "a last code without its time: cannot tell which codes were used".into(),
                    );
                }
                (Some(code), Some(t)) => {
                    let when = local(&t)
                        .ok_or("the last-use time cannot be read in this machine's time zone")?;
                    let step = last_code_step(e, code, when / u64::from(e.period)).ok_or(
                        "the last code pam_oath took is no code within 50 steps of its time (edited file?)",
                    )?;
                    if step > (now / u64::from(e.period)).saturating_add(100) {
                        return Err("the last code is for a time far ahead of this clock (was the clock set back?)".into());
                    }
                    p.replay_guard = step;
                    p.mapped.push(format!(
                        "last code (taken {:04}-{:02}-{:02} {:02}:{:02}:{:02} local time) -> replay guard: codes up to its time step {step} are refused",
                        t.year, t.month, t.day, t.hour, t.minute, t.second
                    ));
                }
            }
        }
    }
    if e.password == Password::External {
        p.mapped.push(
            "password '+' (checked by another module) -> keep that module in the PAM stack".into(),
        );
    }
    p.mapped
        .push("no recovery codes (pam_oath has none; make some: otpgate recovery USER)".into());
    Ok(p)
}

/// The time step near `around` whose code is `code`, nearest first.
fn last_code_step(e: &OathEntry, code: &str, around: u64) -> Option<u64> {
    let g = Generator::new(
        &e.secret,
        OtpParams {
            algorithm: Algorithm::Sha1,
            digits: e.digits,
            period: e.period,
        },
    );
    (0..=LAST_CODE_SEARCH)
        .flat_map(|m| if m == 0 { vec![0] } else { vec![-m, m] })
        .filter_map(|o| around.checked_add_signed(o))
        .find(|&s| g.matches_step(code, s))
}
