//! `~/.google_authenticator` as google-authenticator-libpam reads it: the
//! base32 secret on line 1, option lines `" NAME VALUE`, and 8-digit
//! scratch codes, one per line.

use std::fmt;
use zeroize::Zeroizing;

use super::{ParseError, Plan, at, text_lines};
use crate::core::otp::{self, Algorithm, Kind, OtpParams};

/// The parsed file. Debug output shows no secret and no scratch code.
#[derive(Default)]
pub struct GoogleFile {
    pub secret: Zeroizing<Vec<u8>>,
    /// `" TOTP_AUTH`: time-based.
    pub totp_auth: bool,
    /// `" HOTP_COUNTER N`: counter-based (from 1), N the next counter.
    pub hotp_counter: Option<u64>,
    /// `" STEP_SIZE S` (seconds, 1..=60; default 30).
    pub step_size: Option<u32>,
    /// `" WINDOW_SIZE W` (1..=100; default 3, i.e. one step either side).
    pub window_size: Option<u32>,
    /// `" DISALLOW_REUSE [T...]`: reuse refused; the time steps used lately.
    pub disallow_reuse: Option<Vec<u64>>,
    /// `" RATE_LIMIT N M [T...]`: N logins per M seconds.
    pub rate_limit: Option<(u32, u32)>,
    /// `" TIME_SKEW N`: steps the phone's clock is off.
    pub time_skew: Option<i64>,
    /// Names of other option lines (e.g. RESETTING_TIME_SKEW).
    pub other_options: Vec<String>,
    pub scratch_codes: Vec<Zeroizing<String>>,
}

impl fmt::Debug for GoogleFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleFile")
            .field("secret", &"[redacted]")
            .field("totp_auth", &self.totp_auth)
            .field("hotp_counter", &self.hotp_counter)
            .field("step_size", &self.step_size)
            .field("window_size", &self.window_size)
            .field("disallow_reuse", &self.disallow_reuse)
            .field("rate_limit", &self.rate_limit)
            .field("time_skew", &self.time_skew)
            .field("other_options", &self.other_options)
            .field("scratch_codes", &self.scratch_codes.len())
            .finish()
    }
}

/// Parses a google-authenticator file. Stricter than the module in one way
/// only: every line must be the secret, an option, a scratch code or blank
/// (the module silently stops reading scratch codes at anything else).
pub fn parse_google_authenticator(bytes: &[u8]) -> Result<GoogleFile, ParseError> {
    let lines = text_lines(bytes)?;
    let mut file = GoogleFile::default();
    let mut seen: Vec<String> = Vec::new();
    for (n, line) in lines {
        if n == 1 {
            file.secret = otp::decode_secret(line).ok_or_else(|| {
                at(
                    1,
                    "not a base32 secret of 80 to 1024 bits (a cut-off file?)",
                )
            })?;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(option) = line.strip_prefix("\" ") {
            let (name, value) = option.split_once([' ', '\t']).unwrap_or((option, ""));
            let value = value.trim();
            if name.is_empty()
                || name.len() > 40
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(at(n, "an option line without an option name"));
            }
            if seen.iter().any(|s| s == name) {
                return Err(at(n, format!("{name} given twice")));
            }
            seen.push(name.to_string());
            option_value(&mut file, n, name, value)?;
            continue;
        }
        if line.bytes().all(|b| b.is_ascii_digit()) {
            if line.len() != 8 || line.starts_with('0') {
                return Err(at(n, "not an 8-digit scratch code (a cut-off file?)"));
            }
            file.scratch_codes.push(Zeroizing::new(line.to_string()));
            continue;
        }
        return Err(at(n, "neither an option nor a scratch code"));
    }
    Ok(file)
}

fn number<T: std::str::FromStr>(n: usize, name: &str, text: &str) -> Result<T, ParseError> {
    text.parse()
        .map_err(|_| at(n, format!("{name} needs a whole number")))
}

fn bounded(n: usize, name: &str, text: &str, lo: u32, hi: u32) -> Result<u32, ParseError> {
    let v: u32 = number(n, name, text)?;
    if !(lo..=hi).contains(&v) {
        return Err(at(n, format!("{name} must be {lo} to {hi}")));
    }
    Ok(v)
}

fn option_value(
    file: &mut GoogleFile,
    n: usize,
    name: &str,
    value: &str,
) -> Result<(), ParseError> {
    let mut words = value.split_ascii_whitespace();
    match name {
        "TOTP_AUTH" => file.totp_auth = true,
        "HOTP_COUNTER" => file.hotp_counter = Some(number(n, name, value)?),
        "STEP_SIZE" => file.step_size = Some(bounded(n, name, value, 1, 60)?),
        "WINDOW_SIZE" => file.window_size = Some(bounded(n, name, value, 1, 100)?),
        "TIME_SKEW" => file.time_skew = Some(number(n, name, value)?),
        "DISALLOW_REUSE" => {
            let steps = words
                .map(|w| number(n, name, w))
                .collect::<Result<Vec<u64>, _>>()?;
            file.disallow_reuse = Some(steps);
        }
        "RATE_LIMIT" => {
            let logins = bounded(n, name, words.next().unwrap_or(""), 1, 100)?;
            let seconds = bounded(n, name, words.next().unwrap_or(""), 1, 3600)?;
            for w in words {
                number::<u64>(n, name, w)?;
            }
            file.rate_limit = Some((logins, seconds));
        }
        other => file.other_options.push(other.to_string()),
    }
    Ok(())
}

/// What the file becomes at unix time `now`, or why it cannot be imported.
pub fn plan(file: &GoogleFile, now: u64) -> Result<Plan, String> {
    // The module treats HOTP_COUNTER below 1 as "not counter-based".
    let counter = file.hotp_counter.filter(|&c| c >= 1);
    let kind = match (file.totp_auth, counter) {
        (true, None) => Kind::Totp,
        (false, Some(_)) => Kind::Hotp,
        (true, Some(_)) => {
            return Err("both TOTP_AUTH and HOTP_COUNTER: the module would take either; enroll this user by hand".into());
        }
        (false, None) => {
            return Err("neither TOTP_AUTH nor HOTP_COUNTER: google-authenticator accepts only scratch codes here; nothing to import".into());
        }
    };
    let period = file.step_size.unwrap_or(otp::DEFAULT_PERIOD);
    if !(otp::PERIOD_MIN..=otp::PERIOD_MAX).contains(&period) {
        return Err(format!(
            "STEP_SIZE {period}: otpgate's codes change every {} to {} s; enroll this user anew",
            otp::PERIOD_MIN,
            otp::PERIOD_MAX
        ));
    }
    let mut p = Plan {
        kind,
        params: OtpParams {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period,
        },
        secret: Zeroizing::new(file.secret.to_vec()),
        replay_guard: 0,
        scratch: Vec::new(),
        mapped: vec![format!(
            "secret ({} bits) -> the same secret; HMAC-SHA1, 6 digits as before",
            file.secret.len() * 8
        )],
        skipped: Vec::new(),
    };
    let window = file.window_size.unwrap_or(3);
    match (kind, counter) {
        (Kind::Hotp, Some(c)) => {
            p.replay_guard = c;
            p.mapped
                .push(format!("HOTP_COUNTER {c} -> next counter {c}"));
            if let Some(w) = file.window_size {
                p.skipped.push(format!(
                    "WINDOW_SIZE {w}: the look-ahead is set per service (hotp_window=, default 10)"
                ));
            }
            for (name, present) in [
                ("STEP_SIZE", file.step_size.is_some()),
                ("DISALLOW_REUSE", file.disallow_reuse.is_some()),
                ("TIME_SKEW", file.time_skew.is_some()),
            ] {
                if present {
                    p.skipped
                        .push(format!("{name}: not used for counter-based codes"));
                }
            }
        }
        _ => totp_guard(file, &mut p, now, window)?,
    }
    if let Some((logins, seconds)) = file.rate_limit {
        p.skipped.push(format!(
            "RATE_LIMIT {logins} {seconds}: per-user rate limits are not kept; otpgate's deny= and unlock_time= apply to everyone"
        ));
    }
    for name in &file.other_options {
        p.skipped.push(format!("{name}: not used by otpgate"));
    }
    for code in &file.scratch_codes {
        if !p.scratch.iter().any(|c| c == code) {
            p.scratch.push(code.clone());
        }
    }
    p.mapped.push(match p.scratch.len() {
        0 => "no scratch codes -> no recovery codes (make some: otpgate recovery USER)".to_string(),
        k => format!(
            "{k} scratch code{} -> recovery codes, stored hashed; each works once at the code prompt",
            if k == 1 { "" } else { "s" }
        ),
    });
    Ok(p)
}

/// TOTP: the replay guard, the window and the skew.
fn totp_guard(file: &GoogleFile, p: &mut Plan, now: u64, window: u32) -> Result<(), String> {
    let period = u64::from(p.params.period);
    let now_step = now / period;
    let skew = file.time_skew.unwrap_or(0);
    // The newest step the module could have accepted up to now.
    let reach = now_step
        .saturating_add(u64::from(window / 2))
        .saturating_add(skew.max(0).unsigned_abs());
    p.replay_guard = match &file.disallow_reuse {
        Some(steps) if steps.is_empty() => {
            p.mapped.push(
                "DISALLOW_REUSE with no used time step -> no code was used yet; no replay guard"
                    .into(),
            );
            0
        }
        // The module adds the step of every login and drops only steps a
        // window older than a later one: the newest covers all it dropped.
        Some(steps) => {
            let newest = steps.iter().copied().max().unwrap_or(0);
            p.mapped.push(format!(
                "DISALLOW_REUSE ({} used time step{}) -> replay guard: codes up to time step {newest} are refused",
                steps.len(),
                if steps.len() == 1 { "" } else { "s" }
            ));
            newest
        }
        None => {
            p.mapped.push(format!(
                "no DISALLOW_REUSE -> every code google-authenticator could have accepted up to the import (time step {reach}) counts as used"
            ));
            reach
        }
    };
    // A code is taken again once the clock passes the guard's step: until
    // then the app's codes are refused. Say for how long.
    if p.replay_guard >= now_step {
        let ready = p.replay_guard.saturating_add(1).saturating_mul(period);
        let wait = ready.saturating_sub(now);
        let wait = if wait < 120 {
            format!("{wait} s")
        } else {
            format!("{} min", wait.div_ceil(60))
        };
        let meanwhile = if file.scratch_codes.is_empty() {
            "there are no recovery codes to use meanwhile"
        } else {
            "recovery codes work meanwhile"
        };
        p.mapped.push(format!(
            "the app's codes are refused until about {} ({wait} from now): codes up to time step {} count as used; {meanwhile}",
            crate::cli::text::utc(ready),
            p.replay_guard
        ));
    }
    if p.replay_guard > reach.saturating_add(skew.unsigned_abs()) {
        return Err(format!(
            "a used time step lies {} steps ahead of this clock (was the clock set back?); fix the clock, then import",
            p.replay_guard - now_step
        ));
    }
    match file.window_size {
        Some(3) => p
            .mapped
            .push("WINDOW_SIZE 3 -> window=1, otpgate's default (one step either side)".into()),
        Some(w) => p.skipped.push(format!(
            "WINDOW_SIZE {w}: the window is set per service in otpgate (window=, default one step either side)"
        )),
        None => {}
    }
    match skew {
        0 if file.time_skew.is_some() => p.mapped.push("TIME_SKEW 0 -> none".into()),
        0 => {}
        n => p.skipped.push(format!(
            "TIME_SKEW {n}: otpgate keeps no per-user clock offset; if the phone's clock is still {} steps off, its codes fail (status and syslog show the drift)",
            n.unsigned_abs()
        )),
    }
    Ok(())
}
