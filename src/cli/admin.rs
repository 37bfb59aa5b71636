//! `otpgate recovery | status | unlock | disable`.

use serde_json::json;
use std::io::IsTerminal;

use super::enroll::print_recovery_codes;
use super::text::utc;
use super::{CliError, CliResult, Context, EXIT_OK, EXIT_REFUSED, ask, audit, unix_now};
use crate::core::Policy;
use crate::core::Record;
use crate::core::decide::{Lock, lock_state};
use crate::core::recovery::{self, KdfParams, RecoveryCodes, RecoveryHashes};
use crate::store::{Change, Store};

fn not_enrolled(user: &str) -> CliError {
    CliError::refused(
        format!("{user} is not enrolled"),
        "run: otpgate enroll USER",
    )
}

pub fn recovery(ctx: &Context, user: &str, count: Option<usize>, json: bool) -> CliResult {
    let count = count
        .or(ctx.site.recovery_codes)
        .unwrap_or(recovery::DEFAULT_COUNT);
    if count == 0 || count > recovery::MAX_COUNT {
        return Err(CliError::usage(
            "bad --count",
            format!("1 to {}", recovery::MAX_COUNT),
        ));
    }
    let store = ctx.open_store()?;
    if !store.is_enrolled(user)? {
        return Err(not_enrolled(user));
    }
    let codes = RecoveryCodes::generate(count).map_err(|e| CliError::usage("no randomness", e))?;
    let hashes = RecoveryHashes::create(&codes, KdfParams::DEFAULT)
        .map_err(|e| CliError::usage("hashing failed", e))?;
    let done = store.update(user, |current| {
        let mut next = current.ok_or(())?.clone();
        next.recovery = hashes;
        Ok((Change::Put(next), ()))
    })?;
    done.map_err(|()| not_enrolled(user))?;
    audit(ctx, "recovery", user, &format!("count={count}"));
    if json {
        let list: Vec<String> = codes.display().iter().map(|c| c.to_string()).collect();
        println!("{}", json!({ "user": user, "recovery_codes": list }));
    } else {
        println!("New recovery codes for {user}; all earlier ones no longer work.");
        print_recovery_codes(&codes);
    }
    Ok(EXIT_OK)
}

fn status_json(user: &str, r: &Record, now: u64) -> serde_json::Value {
    let lock = lock_state(r, &Policy::default(), now);
    json!({
        "user": user,
        "enrolled": true,
        "algorithm": r.algorithm.as_str(),
        "digits": r.digits,
        "period": r.period,
        "created": r.created,
        "last_login": if r.last_login == 0 { None } else { Some(r.last_login) },
        "last_login_from": if r.last_login_from.is_empty() { None } else { Some(&r.last_login_from) },
        "failures": r.failures,
        "locked": lock.is_some(),
        "locked_until": match lock { Some(Lock::Until(t)) => Some(t), _ => None },
        "locked_until_unlock": matches!(lock, Some(Lock::UntilUnlocked)),
        "recovery_codes_left": r.recovery.remaining(),
        "last_clock_drift_steps": r.last_drift,
    })
}

fn status_text(user: &str, r: &Record, now: u64) {
    println!("{user}: enrolled {}", utc(r.created));
    println!(
        "  codes:          {}, {} digits, {} s",
        r.algorithm, r.digits, r.period
    );
    let from = if r.last_login_from.is_empty() {
        String::new()
    } else {
        format!(" from {}", r.last_login_from)
    };
    println!("  last login:     {}{from}", utc(r.last_login));
    println!("  failures:       {}", r.failures);
    let lock = match lock_state(r, &Policy::default(), now) {
        None => "no".to_string(),
        Some(Lock::Until(t)) => format!("until {} ({} s)", utc(t), t.saturating_sub(now)),
        Some(Lock::UntilUnlocked) => "until `otpgate unlock`".to_string(),
    };
    println!("  locked:         {lock}");
    println!("  recovery codes: {} left", r.recovery.remaining());
    if let Some(d) = r.last_drift {
        println!(
            "  clock drift:    last wrong code matched {d:+} steps away; check the phone's clock"
        );
    }
}

pub fn status(ctx: &Context, user: Option<&str>, json: bool) -> CliResult {
    let store = ctx.open_store()?;
    let now = unix_now();
    if let Some(user) = user {
        crate::store::validate_user(user)?;
        let Some(r) = store.load(user)? else {
            if json {
                println!("{}", json!({ "user": user, "enrolled": false }));
            } else {
                println!("{user}: not enrolled");
            }
            return Ok(EXIT_REFUSED);
        };
        if json {
            println!("{}", status_json(user, &r, now));
        } else {
            status_text(user, &r, now);
        }
        return Ok(EXIT_OK);
    }
    all(&store, json, now)
}

fn all(store: &Store, json: bool, now: u64) -> CliResult {
    let mut rows = Vec::new();
    let mut bad = false;
    for user in store.users()? {
        match store.load(&user) {
            Ok(Some(r)) => rows.push((user, Ok(r))),
            Ok(None) => {}
            Err(e) => {
                bad = true;
                rows.push((user, Err(e.to_string())));
            }
        }
    }
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(u, r)| match r {
                Ok(r) => status_json(u, r, now),
                Err(e) => json!({ "user": u, "enrolled": true, "error": e }),
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else if rows.is_empty() {
        println!("No users are enrolled.");
    } else {
        println!(
            "{:<24} {:<20} {:>8} {:>9}  LOCKED",
            "USER", "LAST LOGIN", "FAILURES", "RECOVERY"
        );
        for (u, r) in &rows {
            match r {
                Ok(r) => {
                    let locked = match lock_state(r, &Policy::default(), now) {
                        None => "no".to_string(),
                        Some(Lock::Until(t)) => format!("{} s", t.saturating_sub(now)),
                        Some(Lock::UntilUnlocked) => "until unlock".to_string(),
                    };
                    let last = if r.last_login == 0 {
                        "never".to_string()
                    } else {
                        utc(r.last_login)[..16].to_string()
                    };
                    println!(
                        "{u:<24} {last:<20} {:>8} {:>9}  {locked}",
                        r.failures,
                        r.recovery.remaining()
                    );
                }
                Err(e) => println!("{u:<24} ERROR: {e}"),
            }
        }
    }
    // A broken record is something the admin must look at.
    Ok(if bad { EXIT_REFUSED } else { EXIT_OK })
}

pub fn unlock(ctx: &Context, user: &str) -> CliResult {
    let store = ctx.open_store()?;
    let now = unix_now();
    let mut pulled_back = false;
    if !store.is_enrolled(user)? {
        return Err(not_enrolled(user));
    }
    let done = store.update(user, |current| {
        let mut next = current.ok_or(())?.clone();
        next.failures = 0;
        next.locked_until = 0;
        next.hard_locked = false;
        // A clock that ran ahead left a step in the future: pull it back to
        // now so the current codes work again (the current step stays used).
        let step_now = next.params().step_at(now);
        pulled_back = next.last_step > step_now;
        next.last_step = next.last_step.min(step_now);
        Ok((Change::Put(next), ()))
    })?;
    done.map_err(|()| not_enrolled(user))?;
    audit(
        ctx,
        "unlock",
        user,
        &format!("clock_pulled_back={pulled_back}"),
    );
    println!("{user}: failed attempts cleared, second factor unlocked.");
    if pulled_back {
        println!(
            "{user}: the last accepted code was from the future (the clock was set back); reset to now."
        );
    }
    Ok(EXIT_OK)
}

pub fn disable(ctx: &Context, user: &str, yes: bool) -> CliResult {
    let store = ctx.open_store()?;
    if !store.is_enrolled(user)? {
        return Err(not_enrolled(user));
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::usage(
                "not confirmed",
                "pass --yes to disable without a terminal",
            ));
        }
        let answer = ask(&format!(
            "Remove {user}'s enrollment? Their app and recovery codes stop working. [y/N] "
        ));
        if !matches!(answer.as_deref().map(str::trim), Some("y" | "Y" | "yes")) {
            return Err(CliError::refused("not disabled", "not confirmed"));
        }
    }
    let done = store.update(user, |current| {
        current.ok_or(())?;
        Ok((Change::Remove, ()))
    })?;
    done.map_err(|()| not_enrolled(user))?;
    audit(ctx, "disable", user, "");
    println!("{user}: enrollment removed.");
    Ok(EXIT_OK)
}
