//! `otpgate enroll --self`: a user enrolls through sudo. Who they are comes
//! from sudo's variables, believed only when they agree with the passwd
//! database; replacing an enrollment needs the current factor, decided as
//! at login and spent only when the new enrollment is saved.

use std::fmt::Write as _;
use zeroize::Zeroizing;

use super::{CliError, Context, ask_hidden, audit, note, unix_now};
use crate::core::{Failure, Policy, Reason, Record, Success, decide_login};
use crate::store::{AnyStore, Change};

/// The "source" a self-service proof is decided with (shown nowhere).
const PROOF_SOURCE: &str = "otpgate enroll --self";

/// A right answer to the self-service proof, kept (not spent) until the
/// new enrollment is saved.
pub struct Proof {
    answer: Zeroizing<String>,
    /// When it was decided: the final check decides it again for this time.
    at: u64,
}

impl Proof {
    /// Whether the proof still holds on `current` (not used meanwhile, no
    /// lock since): the same decision, for the same time.
    /// `current` with this proof spent (its step or recovery code used),
    /// when it still holds.
    pub fn spend(&self, current: &Record, policy: &Policy) -> Option<Record> {
        let d = decide_login(
            current,
            self.answer.as_bytes(),
            policy,
            self.at,
            PROOF_SOURCE,
        )
        .ok()?;
        if d.result.is_ok() { d.new_record } else { None }
    }

    pub fn holds(&self, current: &Record, policy: &Policy) -> bool {
        decide_login(
            current,
            self.answer.as_bytes(),
            policy,
            self.at,
            PROOF_SOURCE,
        )
        .is_ok_and(|d| d.result.is_ok())
    }
}

/// `--self` acts only on the user sudo says ran it, never on a name given,
/// and believes sudo's variables only when they agree with each other.
pub fn sudo_user(ctx: &Context) -> Result<String, CliError> {
    let not_sudo = |why: &str| {
        CliError::usage(
            "--self works through sudo only",
            format!("{why}; run: sudo otpgate enroll --self"),
        )
    };
    if !nix::unistd::getuid().is_root() {
        return Err(not_sudo("it was not started by root"));
    }
    let user = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| not_sudo("SUDO_USER is not set"))?;
    let uid: u32 = std::env::var("SUDO_UID")
        .ok()
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| not_sudo("SUDO_UID is not set to a number"))?;
    crate::store::validate_user(&user)?;
    let account = nix::unistd::User::from_name(&user)
        .ok()
        .flatten()
        .ok_or_else(|| not_sudo("SUDO_USER names no account"))?;
    if account.uid.as_raw() != uid {
        return Err(not_sudo("SUDO_USER and SUDO_UID name different accounts"));
    }
    // The account's canonical name (the uid's first passwd entry), as the
    // module keys enrollments.
    let user = nix::unistd::User::from_uid(account.uid)
        .ok()
        .flatten()
        .map_or(user, |u| u.name);
    if uid == 0 {
        return Err(not_sudo(
            "sudo ran it for root; root enrolls with: otpgate enroll USER",
        ));
    }
    if ctx.store_given {
        // A store named on the command line must already be a real store
        // (root, 0700), so a loose sudoers rule cannot aim writes elsewhere.
        let meta = std::fs::symlink_metadata(&ctx.store_dir).map_err(|e| {
            CliError::usage(
                "store refused",
                format!("{}: {}", ctx.store_dir.display(), super::console::words(&e)),
            )
        })?;
        use std::os::unix::fs::MetadataExt;
        if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o777 != 0o700 {
            return Err(CliError::usage(
                "store refused",
                "with --self, --store must be an existing root-owned 0700 directory",
            ));
        }
    }
    Ok(user)
}

/// Replacing an enrollment by self-service needs the current factor: a code
/// from the current app or a recovery code, decided as at login (locks and
/// policy included; a wrong answer counts as a failed login). A right answer
/// is not spent here: the final transaction decides it again and replaces
/// the record, so an abandoned run leaves the old enrollment as it was.
pub fn prove_current_factor(
    ctx: &Context,
    store: &AnyStore,
    user: &str,
) -> Result<Proof, CliError> {
    note(&format!(
        "{user} is already enrolled. To replace it, prove you hold the current factor."
    ));
    let answer = ask_hidden("Code from your current app, or a recovery code: ")?
        .ok_or_else(|| CliError::refused("no code entered", "nothing was changed"))?;
    let at = unix_now();
    let policy = ctx.policy();
    let outcome = store.update(user, |current| {
        let current = current.ok_or(None)?;
        let d =
            decide_login(current, answer.as_bytes(), &policy, at, PROOF_SOURCE).map_err(Some)?;
        let change = match (&d.result, d.new_record) {
            (Err(_), Some(counted)) => Change::Put(counted),
            _ => Change::Keep,
        };
        Ok::<_, Option<crate::core::RecordError>>((change, d.result))
    })?;
    let decided: Result<Success, Failure> = match outcome {
        Ok(result) => result,
        Err(None) => {
            return Err(CliError::refused(
                format!("{user} is not enrolled any more"),
                "run it again",
            ));
        }
        Err(Some(e)) => return Err(CliError::usage("store refused", e.to_string())),
    };
    audit(ctx, "prove-self", user, &proof_detail(&decided));
    match decided {
        Ok(_) => Ok(Proof { answer, at }),
        Err(f) if f.reason == Reason::Locked => Err(CliError::refused(
            "verification is locked",
            "too many failed attempts; ask an administrator",
        )),
        Err(_) => Err(CliError::refused(
            "that code does not match",
            "nothing was changed",
        )),
    }
}

/// The audit fields of a proof attempt, as a login logs them.
fn proof_detail(decided: &Result<Success, Failure>) -> String {
    match decided {
        Ok(s) => format!("result=success method={}", s.method.as_str()),
        Err(f) => {
            let mut d = String::from("result=failure");
            if let Some(m) = f.method {
                let _ = write!(d, " method={}", m.as_str());
            }
            let _ = write!(d, " reason={}", f.reason);
            d
        }
    }
}
