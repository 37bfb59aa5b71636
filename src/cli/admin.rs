//! `otpgate recovery | status | unlock | disable`.

use serde_json::json;
use std::fmt::Write as _;
use std::io::IsTerminal;
use zeroize::Zeroizing;

use super::enroll::{changed_meanwhile, recovery_codes_text};
use super::self_service::Proof;
use super::text::utc;
use super::{
    CliError, CliResult, Context, EXIT_OK, EXIT_REFUSED, ask, audit, broken_part, emit,
    emit_before, same_enrollment, stdout_is_read, store_words, unix_now,
};
use crate::core::Policy;
use crate::core::decide::{Lock, MAX_WINDOW, lock_state};
use crate::core::recovery::{self, KdfParams, RecoveryCodes, RecoveryHashes};
use crate::core::{Kind, Record};
use crate::store::{AnyStore, Change};

fn not_enrolled(user: &str) -> CliError {
    CliError::refused(
        format!("{user} is not enrolled"),
        "run: otpgate enroll USER",
    )
}

/// New recovery codes for `user`; with `proof` (self-service), the proof
/// must still hold in the saving transaction and is spent there.
pub fn recovery(
    ctx: &Context,
    user: &str,
    count: Option<usize>,
    json: bool,
    proof: Option<&Proof>,
) -> CliResult {
    let count = count
        .or(ctx.site.recovery_codes)
        .unwrap_or(recovery::DEFAULT_COUNT);
    if count > recovery::MAX_COUNT {
        return Err(CliError::usage(
            format!("{count} recovery codes are too many"),
            format!("use at most {}", recovery::MAX_COUNT),
        ));
    }
    // No codes (--count 0, voiding them all) shows nothing that could be lost.
    if count > 0 {
        stdout_is_read("nothing was changed")?;
    }
    let store = ctx.open_store()?;
    let policy = ctx.policy();
    let Some(base) = store.load(user)? else {
        return Err(not_enrolled(user));
    };
    // Argon2 runs before the lock, so logins are not held up by it.
    let codes = RecoveryCodes::generate(count).map_err(|e| CliError::usage("no randomness", e))?;
    let hashes = RecoveryHashes::create(&codes, KdfParams::DEFAULT)
        .map_err(|e| CliError::usage("hashing failed", e))?;
    let text = if json {
        let list: Vec<String> = codes.display().iter().map(|c| c.to_string()).collect();
        Zeroizing::new(format!(
            "{}\n",
            json!({ "user": user, "recovery_codes": list })
        ))
    } else if codes.is_empty() {
        Zeroizing::new(format!(
            "{user} now has no recovery codes; all earlier ones no longer work.\n"
        ))
    } else {
        let mut t = Zeroizing::new(format!(
            "New recovery codes for {user}; all earlier ones no longer work.\n"
        ));
        t.push_str(&recovery_codes_text(&codes));
        t
    };
    // Shown, then saved, in one transaction, and only over the set this
    // run started from: of overlapping runs, one wins and the others say
    // so, so every run that exits 0 printed codes that work.
    let mut shown = false;
    let done = store.update(user, |current| {
        let current = current.ok_or_else(|| not_enrolled(user))?;
        if !same_enrollment(Some(&base), Some(current)) {
            return Err(CliError::refused(
                format!("{user}'s recovery codes were replaced while this ran"),
                "nothing was saved; the codes from the other run are the valid ones",
            ));
        }
        let mut next = match proof {
            Some(p) => p.spend(current, &policy).ok_or_else(|| {
                CliError::refused(
                    "the code that proved the current factor no longer works",
                    "it was used or the factor was locked meanwhile; nothing was saved",
                )
            })?,
            None => current.clone(),
        };
        next.recovery = hashes;
        emit_before(&text, "nothing was saved")?;
        shown = true;
        Ok((Change::Put(next), ()))
    });
    match done {
        Ok(result) => result?,
        Err(e) if shown && e.change_in_force() => {
            return Err(CliError::usage(
                "the new recovery codes are in force but not safely on disk",
                format!(
                    "{}; the codes shown work and the earlier ones do not; fix the disk, then check with: otpgate status {user}",
                    store_words(&e)
                ),
            ));
        }
        Err(e) if shown && e.outcome_unknown() => {
            return Err(CliError::usage(
                "the new recovery codes may or may not be in force",
                format!(
                    "{}; run otpgate recovery {user} again for codes known to work (a new set replaces whichever is in force)",
                    store_words(&e)
                ),
            ));
        }
        Err(e) if shown => {
            return Err(CliError::usage(
                "cannot save the new recovery codes",
                format!(
                    "{}; nothing was saved: the codes shown do not work, the earlier ones still do",
                    store_words(&e)
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let action = if proof.is_some() {
        "recovery-self"
    } else {
        "recovery"
    };
    audit(ctx, action, user, &format!("count={count}"));
    Ok(EXIT_OK)
}

fn status_json(user: &str, r: &Record, policy: &Policy, now: u64) -> serde_json::Value {
    let lock = lock_state(r, policy, now);
    let hotp = r.kind == Kind::Hotp;
    json!({
        "user": user,
        "enrolled": true,
        "kind": r.kind.as_str(),
        "algorithm": r.algorithm.as_str(),
        "digits": r.digits,
        "period": (!hotp).then_some(r.period),
        // HOTP: the counter the token's next code must be for (or later).
        "counter": hotp.then_some(r.last_step),
        "created": r.created,
        "last_login": if r.last_login == 0 { None } else { Some(r.last_login) },
        "last_login_from": if r.last_login_from.is_empty() { None } else { Some(&r.last_login_from) },
        "failures": r.failures,
        "locked": lock.is_some(),
        "locked_until": match lock { Some(Lock::Until(t)) => Some(t), _ => None },
        "locked_until_unlock": matches!(lock, Some(Lock::UntilUnlocked)),
        "recovery_codes_left": r.recovery.remaining(),
        "last_clock_drift_steps": r.last_drift,
        "clock_behind_seconds": clock_behind(r, policy, now),
    })
}

/// Seconds the newest accepted step is ahead of this clock, when that is
/// beyond the window: every code is then refused as `clock_behind`.
/// Seconds until the app's codes work again when the last accepted step is
/// ahead of the clock: a code is taken once its step is past that one.
fn refused_for(r: &Record, now: u64) -> u64 {
    r.last_step
        .saturating_add(1)
        .saturating_mul(u64::from(r.period))
        .saturating_sub(now)
}

fn clock_behind(r: &Record, policy: &Policy, now: u64) -> Option<u64> {
    crate::core::decide::seconds_ahead(r, policy.window, now)
}

fn status_text(out: &mut String, user: &str, r: &Record, policy: &Policy, now: u64) {
    let _ = writeln!(out, "{user}: enrolled {}", utc(r.created));
    match r.kind {
        Kind::Totp => {
            let _ = writeln!(
                out,
                "  codes:          time-based, {}, {} digits, {} s",
                r.algorithm, r.digits, r.period
            );
        }
        Kind::Hotp => {
            let _ = writeln!(
                out,
                "  codes:          counter-based, {}, {} digits",
                r.algorithm, r.digits
            );
            let _ = writeln!(out, "  next counter:   {}", r.last_step);
        }
    }
    let from = if r.last_login_from.is_empty() {
        String::new()
    } else {
        format!(" from {}", r.last_login_from)
    };
    let _ = writeln!(out, "  last login:     {}{from}", utc(r.last_login));
    let _ = writeln!(out, "  failures:       {}", r.failures);
    let lock = match lock_state(r, policy, now) {
        None => "no".to_string(),
        Some(Lock::Until(t)) => format!("until {} ({} s)", utc(t), t.saturating_sub(now)),
        Some(Lock::UntilUnlocked) => "until `otpgate unlock`".to_string(),
    };
    let _ = writeln!(out, "  locked:         {lock}");
    let _ = writeln!(out, "  recovery codes: {} left", r.recovery.remaining());
    if let Some(ahead) = clock_behind(r, policy, now) {
        let _ = writeln!(
            out,
            "  clock:          the last accepted code is {ahead} s ahead of this clock (the clock was set back, or a code was accepted early, here or by the source of an import); every code is refused for {} s more; otpgate unlock pulls back one more than {MAX_WINDOW} steps ahead",
            refused_for(r, now)
        );
    }
    if let Some(d) = r.last_drift {
        let _ = writeln!(
            out,
            "  clock drift:    last wrong code matched {d:+} steps away; check the phone's clock"
        );
    }
}

pub fn status(ctx: &Context, user: Option<&str>, json: bool) -> CliResult {
    let store = ctx.open_store()?;
    let policy = ctx.policy();
    let now = unix_now();
    if let Some(user) = user {
        crate::store::validate_user(user)?;
        let Some(r) = store.load(user)? else {
            emit(&if json {
                format!("{}\n", json!({ "user": user, "enrolled": false }))
            } else {
                format!("{user}: not enrolled\n")
            })?;
            return Ok(EXIT_REFUSED);
        };
        let mut out = String::new();
        if json {
            let _ = writeln!(out, "{}", status_json(user, &r, &policy, now));
        } else {
            status_text(&mut out, user, &r, &policy, now);
        }
        emit(&out)?;
        return Ok(EXIT_OK);
    }
    all(&store, &policy, json, now)
}

fn all(store: &AnyStore, policy: &Policy, json: bool, now: u64) -> CliResult {
    let mut rows = Vec::new();
    let mut bad = false;
    for user in store.users()? {
        match store.load(&user) {
            Ok(Some(r)) => rows.push((user, Ok(r))),
            Ok(None) => {}
            Err(e) => {
                bad = true;
                rows.push((user, Err(store_words(&e))));
            }
        }
    }
    let mut out = String::new();
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(u, r)| match r {
                Ok(r) => status_json(u, r, policy, now),
                Err(e) => json!({ "user": u, "enrolled": true, "error": e }),
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::Value::Array(list));
    } else if rows.is_empty() {
        out.push_str("No users are enrolled.\n");
    } else {
        let _ = writeln!(
            out,
            "{:<24} {:<20} {:>8} {:>9}  LOCKED",
            "USER", "LAST LOGIN", "FAILURES", "RECOVERY"
        );
        for (u, r) in &rows {
            match r {
                Ok(r) => {
                    let locked = match lock_state(r, policy, now) {
                        None => "no".to_string(),
                        Some(Lock::Until(t)) => format!("{} s", t.saturating_sub(now)),
                        Some(Lock::UntilUnlocked) => "until unlock".to_string(),
                    };
                    let last = if r.last_login == 0 {
                        "never".to_string()
                    } else {
                        utc(r.last_login)[..16].to_string()
                    };
                    let _ = writeln!(
                        out,
                        "{u:<24} {last:<20} {:>8} {:>9}  {locked}",
                        r.failures,
                        r.recovery.remaining()
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "{u:<24} ERROR: {e}");
                }
            }
        }
    }
    emit(&out)?;
    // A broken record is something the admin must look at.
    Ok(if bad { EXIT_REFUSED } else { EXIT_OK })
}

/// Runs one change on an enrolled user's record, writing `message` before
/// the change is committed (what was not shown is not saved).
fn change_enrolled(
    store: &AnyStore,
    user: &str,
    message: &str,
    change: impl FnOnce(&Record) -> Change,
) -> Result<(), CliError> {
    store.update(user, |current| {
        let current = current.ok_or_else(|| not_enrolled(user))?;
        let change = change(current);
        emit_before(message, "nothing was changed")?;
        Ok((change, ()))
    })?
}

pub fn unlock(ctx: &Context, user: &str) -> CliResult {
    let store = ctx.open_store()?;
    let policy = ctx.policy();
    let now = unix_now();
    let mut pulled_back = false;
    if !store.is_enrolled(user)? {
        return Err(not_enrolled(user));
    }
    store.update(user, |current| {
        let current = current.ok_or_else(|| not_enrolled(user))?;
        let next;
        (next, pulled_back) = crate::core::decide::unlock(current, now);
        let mut message = format!("{user}: failed attempts cleared, second factor unlocked.\n");
        if pulled_back {
            message.push_str(&format!(
                "{user}: the last accepted code was from the future (the clock was set back); reset to now.\n"
            ));
        } else if clock_behind(&next, &policy, now).is_some() {
            // Within every window's reach: a code accepted early, which must
            // stay used; unlock does not make the codes before it work.
            let meanwhile = if next.recovery.remaining() > 0 {
                "recovery codes work meanwhile"
            } else {
                "there are no recovery codes to use meanwhile"
            };
            message.push_str(&format!(
                "{user}: codes are still refused for {} s: the last accepted code is for a time ahead of this clock (accepted early, here or by the source of an import); that passes by itself, and {meanwhile}.\n",
                refused_for(&next, now)
            ));
        }
        emit_before(&message, "nothing was changed")?;
        Ok::<_, CliError>((Change::Put(next), ()))
    })??;
    audit(
        ctx,
        "unlock",
        user,
        &format!("clock_pulled_back={pulled_back}"),
    );
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
        if !matches!(answer.as_deref().map(|a| a.trim()), Some("y" | "Y" | "yes")) {
            return Err(CliError::refused("not disabled", "not confirmed"));
        }
    }
    // A broken record (does not parse, bad mode) or login state (does not
    // read) is removed without being read; a symlink, FIFO or foreign owner
    // is still refused.
    if let Err(e) = store.load(user)
        && let Some(part) = broken_part(&e, &store.record_path(user))
    {
        // Removed under the user's lock only if it is still broken there: an
        // enrollment repaired or made meanwhile is not removed unseen.
        let removed = store.replace_broken(user, Change::Remove, || {
            emit_before(
                &format!("{user}: broken {part} removed ({e}).\n"),
                "nothing was changed",
            )
        })?;
        return match removed {
            Ok(true) => {
                audit(ctx, "disable", user, "broken=true");
                Ok(EXIT_OK)
            }
            Ok(false) => Err(changed_meanwhile(user, "nothing was changed")),
            Err(e) => Err(e),
        };
    }
    change_enrolled(
        &store,
        user,
        &format!("{user}: enrollment removed.\n"),
        |_| Change::Remove,
    )?;
    audit(ctx, "disable", user, "");
    Ok(EXIT_OK)
}
