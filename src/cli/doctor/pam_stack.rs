//! Do the PAM services that use the module really ask for the code?
//!
//! Each service's auth chain is read as libpam builds it ([`pam_conf`])
//! and walked as libpam walks it ([`pam_dispatch`]) over every result the
//! other lines may return. The code line enforces the code when no run
//! that skips it, and no run in which it fails, ends in PAM_SUCCESS.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::options::check_options;
use super::pam_conf::{
    ABORT, AUTH_ERR, Action, CONV_ERR, Chain, Handler, IGNORE, INCOMPLETE, MODULE_UNKNOWN,
    NEW_AUTHTOK_REQD, RETURN_NAMES, SUCCESS, read_chain,
};
use super::pam_dispatch::{Step, find_success};
use super::{EXAMPLES, Finding, Level, MODULE_FILE, error, ok, warn};

/// Every service in `dir` whose auth chain uses the module, by name.
/// `common-*` files are included by services, not services themselves.
pub fn read_stacks(dir: &Path) -> BTreeMap<String, Chain> {
    let mut stacks = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return stacks;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || name.ends_with('~')
            || name.contains(".dpkg-")
            || name.starts_with("common-")
        {
            continue;
        }
        if let Ok(text) = fs::read_to_string(e.path()) {
            let chain = read_chain(dir, &e.path(), &text);
            if chain.uses_module() {
                stacks.insert(name, chain);
            }
        }
    }
    stacks
}

pub fn check_pam(stacks: &BTreeMap<String, Chain>, dir: &Path) -> Vec<Finding> {
    if stacks.is_empty() {
        return vec![
            warn(
                "pam.no_service",
                format!("no PAM service uses {MODULE_FILE}: nothing asks for a code"),
                format!("add `auth required {MODULE_FILE}` after `@include common-auth` in the service file (e.g. sudo), or start from an example stack in {EXAMPLES}"),
            )
            .at(dir.display().to_string()),
        ];
    }
    stacks
        .iter()
        .flat_map(|(s, c)| analyse_stack(s, c))
        .collect()
}

/// Services whose program runs PAM for the user who started it (a setuid
/// program, or one only root may run): there pam_rootok succeeds only for a
/// caller who is root already, so it is not a way around anyone's code.
/// Anywhere else (sshd, login, display managers, services unknown to us)
/// the process calling PAM is root for every user, and pam_rootok succeeds
/// for all of them.
/// (Not polkit-1: since polkit 127 its agent helper runs as root, started
/// by systemd, for every user.)
const ROOTOK_MEANS_ROOT_CALLER: [&str; 14] = [
    "su",
    "su-l",
    "sudo",
    "sudo-i",
    "runuser",
    "runuser-l",
    "chfn",
    "chsh",
    "chage",
    "passwd",
    "newgrp",
    "schroot",
    "newrole",
    "run_init",
];

/// What a line of `service` may return. Lines other than the module may
/// return anything (a password module succeeds for whoever knows the
/// password); pam_permit and pam_deny return what they always return;
/// pam_rootok see [`ROOTOK_MEANS_ROOT_CALLER`].
fn outcomes_of(service: &str, h: &Handler) -> Vec<usize> {
    match h.module_name() {
        "pam_permit.so" => vec![SUCCESS],
        "pam_deny.so" => vec![AUTH_ERR],
        "pam_rootok.so" if ROOTOK_MEANS_ROOT_CALLER.contains(&service) => vec![AUTH_ERR],
        _ => (0..RETURN_NAMES.len())
            .filter(|&c| c != INCOMPLETE)
            .collect(),
    }
}

/// The results that mean "no valid code": what the module returns on a
/// wrong code, a failed conversation, a module that cannot be loaded or a
/// crash, then every other failure (the control's `default`).
fn failure_codes() -> Vec<usize> {
    let first = [AUTH_ERR, CONV_ERR, MODULE_UNKNOWN, ABORT];
    let rest = (0..RETURN_NAMES.len()).filter(|c| {
        !first.contains(c) && ![SUCCESS, NEW_AUTHTOK_REQD, IGNORE, INCOMPLETE].contains(c)
    });
    first.into_iter().chain(rest).collect()
}

/// A run of the chain ending in success where line `t` returns one of `codes`
/// (none: runs that reach it stop there); with `must_run`, one in which it ran.
fn run_with(
    service: &str,
    chain: &Chain,
    t: usize,
    codes: &[usize],
    must_run: bool,
) -> Option<Vec<Step>> {
    let h = &chain.handlers;
    let outcomes = |i: usize| {
        if i == t {
            codes.to_vec()
        } else {
            outcomes_of(service, &h[i])
        }
    };
    find_success(h, &outcomes, must_run.then_some(t))
}

fn result_phrase(code: usize) -> String {
    match code {
        SUCCESS => "succeeds".into(),
        c => format!("returns {}", RETURN_NAMES[c]),
    }
}

fn failure_phrase(code: usize) -> String {
    match code {
        AUTH_ERR => "a wrong code (auth_err)".into(),
        CONV_ERR => "an unanswered prompt (conv_err)".into(),
        MODULE_UNKNOWN => "a missing or unloadable module (module_unknown)".into(),
        ABORT => "an internal error (abort)".into(),
        c => format!("a failure ({})", RETURN_NAMES[c]),
    }
}

/// The line that ended a run in success, for a message: the first other line
/// that succeeded.
fn grantor<'a>(chain: &'a Chain, run: &[Step], t: usize) -> Option<&'a Handler> {
    run.iter()
        .find(|s| s.handler != t && s.code == SUCCESS)
        .map(|s| &chain.handlers[s.handler])
}

fn line_to_write(h: &Handler) -> String {
    let mut line = format!("auth required {}", h.module);
    for a in &h.args {
        line.push(' ');
        if a.contains(char::is_whitespace) || a.contains(']') {
            line.push_str(&format!("[{}]", a.replace(']', "\\]")));
        } else {
            line.push_str(a);
        }
    }
    line
}

/// Findings for one service's auth chain.
pub fn analyse_stack(service: &str, chain: &Chain) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &chain.problems {
        let id = if p.missing_include {
            "pam.include_missing"
        } else {
            "pam.bad_line"
        };
        let fix = if p.missing_include {
            "restore the included file or remove this line"
        } else {
            "correct the line (see pam.conf(5)); until then logins through this service fail"
        };
        out.push(error(id, format!("{service}: {}", p.what), fix).at(&p.location));
    }
    for (t, h) in chain.handlers.iter().enumerate() {
        if h.is_ours() {
            let before = out.len();
            analyse_module_line(service, chain, t, &mut out);
            if out[before..].iter().all(|f| f.level == Level::Ok) {
                out.push(
                    ok(
                        "pam.ok",
                        format!("{service}: {} enforces the code", h.describe()),
                    )
                    .at(h.location()),
                );
            }
        }
    }
    out
}

fn analyse_module_line(service: &str, chain: &Chain, t: usize, out: &mut Vec<Finding>) {
    let h = &chain.handlers[t];
    let at = h.location();
    let write = line_to_write(h);
    if let Some(p) = check_options(&h.args) {
        let line = match p.suggested {
            Some(args) => line_to_write(&Handler { args, ..h.clone() }),
            None => write.clone(),
        };
        out.push(
            error(
                "pam.bad_option",
                format!("{service}: {}", p.message),
                format!("write the line as: {line}"),
            )
            .at(&at),
        );
    }
    if h.dash {
        out.push(
            error(
                "pam.module_dash",
                format!("{service}: `-auth` tells libpam to stay silent when {MODULE_FILE} cannot be loaded: a removed or broken module then leaves nothing in the log"),
                format!("remove the leading dash: {write}"),
            )
            .at(&at),
        );
    }
    if let Some(run) = run_with(service, chain, t, &[], false) {
        out.push(skipped(service, chain, t, &run));
    }
    if let Some(run) = run_with(service, chain, t, &failure_codes(), true) {
        out.push(failure_passes(service, chain, t, &run, &write));
    }
    // A broken line is reported on its own; it would make these two say the same.
    let intact = chain.problems.is_empty();
    if intact && run_with(service, chain, t, &[SUCCESS], false).is_none() {
        out.push(
            error(
                "pam.never_succeeds",
                format!("{service}: no login through this stack can succeed, even with a right code at {}", h.describe()),
                format!("write the code line as: {write}, with no jump or `die` after it that lands on pam_deny"),
            )
            .at(&at),
        );
    }
    if intact
        && h.args.iter().any(|a| a == "nullok")
        && run_with(service, chain, t, &[IGNORE], false).is_none()
    {
        out.push(
            warn(
                "pam.nullok_refuses",
                format!("{service}: nullok without another line that can succeed: users who are not enrolled are refused"),
                "add `auth required pam_permit.so` after the code line (key logins) or put it after `@include common-auth`",
            )
            .at(&at),
        );
    }
    let later = chain.handlers[t + 1..]
        .iter()
        .take_while(|l| l.level >= h.level)
        .any(|l| !matches!(l.module_name(), "pam_permit.so" | "pam_deny.so"));
    if h.actions[SUCCESS] == Action::Done && later {
        out.push(
            warn(
                "pam.code_alone",
                format!("{service}: {} ends the stack on a right code: the lines after it (e.g. a password) are not asked", h.describe()),
                "use `required` unless the code is meant to replace what follows it",
            )
            .at(&at),
        );
    }
}

/// A run that never reached line `t` and still succeeded: name the line
/// whose jump or `done` passed over it.
fn skipped(service: &str, chain: &Chain, t: usize, run: &[Step]) -> Finding {
    let code_line = &chain.handlers[t];
    let fix_move = format!("put `{}` before it", line_to_write(code_line));
    let Some(step) = run.iter().find(|s| s.skips(t)) else {
        return error(
            "pam.module_skippable",
            format!(
                "{service}: a login can succeed without reaching {} at {}",
                code_line.describe(),
                code_line.location()
            ),
            format!("{fix_move} or remove what ends the stack early"),
        )
        .at(code_line.location());
    };
    let by = &chain.handlers[step.handler];
    let (what, fix) = match step.action {
        Action::Jump(_) => (
            "jumps over",
            format!("make that jump land before the code line, or {fix_move}"),
        ),
        _ => (
            "ends the stack before",
            format!(
                "change that line to `required` (its success must not end the stack), or {fix_move}"
            ),
        ),
    };
    let why = if by.module_name() == "pam_rootok.so" {
        " (it succeeds whenever the process calling PAM runs as root, as sshd, login and display managers do for every user)"
    } else {
        ""
    };
    error(
        "pam.module_skippable",
        format!(
            "{service}: {} {what} the code line ({}) when {} {}{why}: the login succeeds without a code",
            by.describe(),
            code_line.location(),
            by.module_name(),
            result_phrase(step.code)
        ),
        fix,
    )
    .at(by.location())
}

/// A run in which line `t` failed and the stack still succeeded.
fn failure_passes(service: &str, chain: &Chain, t: usize, run: &[Step], write: &str) -> Finding {
    let h = &chain.handlers[t];
    let fix = format!("write the code line as: {write}");
    let Some(step) = run.iter().find(|s| s.handler == t) else {
        // A run that had to include the code line always has a step for it.
        return error(
            "pam.failure_ignored",
            format!("{service}: a failed code does not fail the stack"),
            fix,
        )
        .at(h.location());
    };
    let through = grantor(chain, run, t).map_or(String::new(), |g| {
        format!(" ({} at {} succeeds)", g.describe(), g.location())
    });
    let reason = match step.action {
        Action::Ignore => format!(
            "{} turns it into `ignore` and the other lines decide{through}",
            h.describe()
        ),
        Action::Jump(n) => {
            let skipped: Vec<&str> = step
                .skipped
                .map(|(a, b)| {
                    chain.handlers[a..=b]
                        .iter()
                        .map(Handler::module_name)
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{} jumps over {n} line(s) ({}) and the stack still succeeds{through}",
                h.describe(),
                skipped.join(", ")
            )
        }
        _ => match run
            .iter()
            .find(|s| s.handler > t && s.action == Action::Reset)
        {
            Some(r) => {
                let r = &chain.handlers[r.handler];
                format!(
                    "{} at {} resets the stack after it",
                    r.describe(),
                    r.location()
                )
            }
            None => format!("the stack still succeeds{through}"),
        },
    };
    error(
        "pam.failure_ignored",
        format!(
            "{service}: {} does not fail the stack: {reason}",
            failure_phrase(step.code)
        ),
        fix,
    )
    .at(h.location())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(text: &str) -> Chain {
        read_chain(Path::new("/nonexistent"), Path::new("/etc/pam.d/svc"), text)
    }

    fn ids(f: &[Finding]) -> Vec<&str> {
        f.iter()
            .filter(|f| f.level != Level::Ok)
            .map(|f| f.id)
            .collect()
    }

    #[test]
    fn a_plain_required_line_is_fine() {
        let f = analyse_stack(
            "sudo",
            &stack("auth required pam_unix.so\nauth required pam_otpgate.so\n"),
        );
        assert_eq!(ids(&f), Vec::<&str>::new());
        assert_eq!(f[0].id, "pam.ok");
        assert_eq!(f[0].location.as_deref(), Some("/etc/pam.d/svc:2"));
    }

    #[test]
    fn the_issues_stacks_are_errors() {
        let common = "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n";
        let f = analyse_stack(
            "s",
            &stack(&format!("{common}auth [default=ignore] pam_otpgate.so")),
        );
        assert_eq!(ids(&f), ["pam.failure_ignored"]);
        assert!(
            f[0].message.contains("a wrong code (auth_err)"),
            "{}",
            f[0].message
        );
        assert!(f[0].message.contains("pam_unix.so"), "{}", f[0].message);
        assert_eq!(
            f[0].fix.as_deref(),
            Some("write the code line as: auth required pam_otpgate.so")
        );

        let f = analyse_stack(
            "s",
            &stack(&format!(
                "{common}auth [success=ok default=1] pam_otpgate.so\nauth required pam_permit.so"
            )),
        );
        assert_eq!(ids(&f), ["pam.failure_ignored"]);
        assert!(
            f[0].message
                .contains("jumps over 1 line(s) (pam_permit.so)"),
            "{}",
            f[0].message
        );

        let f = analyse_stack(
            "s",
            &stack(
                "auth [success=1 default=ignore] pam_unix.so\nauth required pam_otpgate.so\nauth required pam_permit.so",
            ),
        );
        assert_eq!(ids(&f), ["pam.module_skippable"]);
        assert_eq!(f[0].location.as_deref(), Some("/etc/pam.d/svc:1"));
        assert!(f[0].message.contains("`[success=1 default=ignore] pam_unix.so` jumps over the code line (/etc/pam.d/svc:2) when pam_unix.so succeeds"), "{}", f[0].message);

        let f = analyse_stack(
            "s",
            &stack("-auth required pam_otpgate.so nullok\nauth required pam_permit.so"),
        );
        assert_eq!(ids(&f), ["pam.module_dash"]);
        assert_eq!(
            f[0].fix.as_deref(),
            Some("remove the leading dash: auth required pam_otpgate.so nullok")
        );
    }

    #[test]
    fn debians_common_auth_jump_is_not_a_bypass() {
        let f = analyse_stack(
            "s",
            &stack(
                "auth [success=2 default=ignore] pam_unix.so nullok\nauth [success=1 default=ignore] pam_sss.so use_first_pass\nauth requisite pam_deny.so\nauth required pam_permit.so\nauth required pam_otpgate.so",
            ),
        );
        assert_eq!(ids(&f), Vec::<&str>::new(), "{f:?}");
        // The code line inside the jump's range, where the jump lands on pam_deny.
        let f = analyse_stack(
            "s",
            &stack(
                "auth [success=1 default=ignore] pam_unix.so\nauth required pam_otpgate.so\nauth requisite pam_deny.so\nauth required pam_permit.so",
            ),
        );
        assert_eq!(ids(&f), ["pam.never_succeeds"], "{f:?}");
    }

    #[test]
    fn failures_other_than_a_wrong_code_count_too() {
        let f = analyse_stack(
            "s",
            &stack(
                "auth required pam_unix.so\nauth [success=ok auth_err=bad default=ignore] pam_otpgate.so",
            ),
        );
        assert_eq!(ids(&f), ["pam.failure_ignored"]);
        assert!(f[0].message.contains("conv_err"), "{}", f[0].message);
        let f = analyse_stack(
            "s",
            &stack(
                "auth required pam_unix.so\nauth [success=ok ignore=ignore default=die] pam_otpgate.so",
            ),
        );
        assert_eq!(ids(&f), Vec::<&str>::new());
    }

    #[test]
    fn sufficient_and_rootok() {
        // Code or password: a wrong code with the right password logs in.
        let f = analyse_stack(
            "s",
            &stack("auth sufficient pam_otpgate.so\nauth required pam_unix.so"),
        );
        assert_eq!(ids(&f), ["pam.failure_ignored", "pam.code_alone"]);
        let f = analyse_stack(
            "s",
            &stack(
                "auth required pam_unix.so\nauth sufficient pam_otpgate.so\nauth required pam_deny.so",
            ),
        );
        assert_eq!(ids(&f), Vec::<&str>::new());
        // pam_rootok: root already where the program runs PAM for whoever
        // started it; everyone where the caller is a root daemon.
        let rootok = stack("auth sufficient pam_rootok.so\nauth required pam_otpgate.so");
        for service in ["su", "sudo", "runuser", "passwd", "schroot"] {
            assert_eq!(ids(&analyse_stack(service, &rootok)), Vec::<&str>::new());
        }
        for service in ["sshd", "login", "gdm-password", "polkit-1", "s"] {
            let f = analyse_stack(service, &rootok);
            assert_eq!(ids(&f), ["pam.module_skippable"], "{service}");
            assert!(
                f[0].message.contains("pam_rootok.so succeeds")
                    && f[0]
                        .message
                        .contains("as sshd, login and display managers do"),
                "{}",
                f[0].message
            );
        }
        let f = analyse_stack(
            "s",
            &stack("auth [success=done default=ignore] pam_unix.so\nauth required pam_otpgate.so"),
        );
        assert_eq!(ids(&f), ["pam.module_skippable"]);
        assert!(
            f[0].message.contains("ends the stack before the code line"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn options_and_broken_lines() {
        let f = analyse_stack(
            "s",
            &stack("auth required pam_otpgate.so nulok [prompt=Code: ]"),
        );
        assert_eq!(ids(&f), ["pam.bad_option"]);
        assert!(f[0].message.contains("did you mean `nullok`"));
        assert_eq!(
            f[0].fix.as_deref(),
            Some("write the line as: auth required pam_otpgate.so nullok [prompt=Code: ]")
        );
        let f = analyse_stack(
            "s",
            &stack("auth requird pam_unix.so\nauth required pam_otpgate.so"),
        );
        assert_eq!(ids(&f), ["pam.bad_line"]);
        let f = analyse_stack(
            "s",
            &stack("auth include nowhere\nauth required pam_otpgate.so"),
        );
        assert_eq!(ids(&f), ["pam.include_missing"]);
    }

    #[test]
    fn nullok_needs_another_line_that_can_succeed() {
        let f = analyse_stack("s", &stack("auth required pam_otpgate.so nullok"));
        assert_eq!(ids(&f), ["pam.nullok_refuses"]);
        let f = analyse_stack(
            "s",
            &stack("auth required pam_otpgate.so nullok\nauth required pam_permit.so"),
        );
        assert_eq!(ids(&f), Vec::<&str>::new());
    }

    #[test]
    fn bracketed_arguments_stay_whole() {
        let c = stack("auth required /x/pam_otpgate.so [prompt=Your code: ] echo");
        assert_eq!(c.handlers[0].args, ["prompt=Your code: ", "echo"]);
        assert_eq!(ids(&analyse_stack("s", &c)), Vec::<&str>::new());
    }
}
