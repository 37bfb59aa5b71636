//! Login policy through real libpam: lockout with a frozen clock
//! (libfaketime), concurrent failures, stacking options with tokens set by
//! earlier modules, forward_pass into pam_unix, and every message a user sees.

mod common;

use common::*;
use otpgate::core::otp::OtpParams;
use otpgate::pam::client::{PAM_AUTH_ERR, PAM_SILENT, PAM_SUCCESS, Style};

/// A time at the start of a 30 s step, so offsets are exact.
const T0: u64 = 1_800_000_000; // a multiple of 30
const SET_ITEMS: &str = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_set_items.so";

fn line(f: &Fixture, options: &str) -> String {
    format!(
        "auth required {} store={} {} {options}",
        module_path().display(),
        f.store.display(),
        owner_ok()
    )
}

#[test]
fn deny_locks_for_unlock_time_then_the_right_code_works() {
    let f = Fixture::new("lockout", "deny=3 unlock_time=60");
    let user = "daemon";
    let e = f.enroll(user, OtpParams::default(), 1);
    let at = |t: u64, answer: &str| {
        f.pamtester_run(f.pamtester_at(user, t), format!("{answer}\n").as_bytes())
    };
    let code = |t: u64| oathtool(&e.secret, e.params, t);
    for i in 1..=3 {
        let (ok, logs, text) = at(T0, wrong_code(&code(T0)));
        assert!(!ok);
        assert!(logs[0].contains("reason=bad_code"), "{logs:?}");
        assert_eq!(
            text.contains("verification locked, retry in 60 s"),
            i == 3,
            "{text}"
        );
    }
    // Locked: the right code is not checked, and the user is told how long to wait.
    let (ok, logs, text) = at(T0 + 30, &code(T0 + 30));
    assert!(!ok);
    assert!(logs[0].ends_with("result=fail reason=locked"), "{logs:?}");
    assert!(
        text.contains("Too many failed attempts: verification locked, retry in 30 s."),
        "{text}"
    );
    assert_eq!(
        f.record(user).failures,
        3,
        "locked attempts are not counted"
    );
    // After unlock_time: works, and the count is reset.
    let (ok, logs, _) = at(T0 + 60, &code(T0 + 60));
    assert!(ok, "{logs:?}");
    assert_eq!(f.record(user).failures, 0);
}

#[test]
fn hard_deny_holds_until_otpgate_unlock() {
    let f = Fixture::new("harddeny", "deny=2 unlock_time=10 hard_deny=4");
    let user = "bin";
    let e = f.enroll(user, OtpParams::default(), 1);
    let code = |t: u64| oathtool(&e.secret, e.params, t);
    let mut t = T0;
    for _ in 0..4 {
        t += 30;
        f.pamtester_run(
            f.pamtester_at(user, t),
            format!("{}\n", wrong_code(&code(t))).as_bytes(),
        );
    }
    t += 3600;
    let (ok, logs, text) =
        f.pamtester_run(f.pamtester_at(user, t), format!("{}\n", code(t)).as_bytes());
    assert!(!ok, "{logs:?}");
    assert!(
        text.contains("locked until an administrator unlocks it"),
        "{text}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .args(["--store", f.store.to_str().unwrap(), "unlock", user])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (ok, _, _) = f.pamtester_run(
        f.pamtester_at(user, t + 30),
        format!("{}\n", code(t + 30)).as_bytes(),
    );
    assert!(ok);
}

#[test]
fn twenty_concurrent_wrong_codes_get_at_most_deny_checks() {
    let f = Fixture::new("deny-race", "deny=5 unlock_time=600");
    let user = "sys";
    let e = f.enroll(user, OtpParams::default(), 1);
    let bad = wrong_code(&e.code(0));
    // One at a time up to the prompt (libpam-wrapper's start-up is not
    // safe to run concurrently), then all twenty answers at once.
    let mut children: Vec<AtPrompt> = (0..20)
        .map(|_| AtPrompt::start(f.pamtester(user), "Verification code: "))
        .collect();
    for c in &mut children {
        c.answer(bad);
    }
    let mut logs = Vec::new();
    for c in children {
        let done = c.finish();
        assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
        let lines = done.logs();
        assert_eq!(lines.len(), 1, "one log line per login: {}", done.stderr);
        logs.extend(lines);
    }
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("reason=bad_code"))
            .count(),
        5,
        "{logs:#?}"
    );
    assert_eq!(
        logs.iter().filter(|l| l.contains("reason=locked")).count(),
        15
    );
    assert_eq!(f.record(user).failures, 5);
    assert_eq!(f.login(user, &e.code(0)).code, PAM_AUTH_ERR, "locked");
}

#[test]
fn use_first_pass_takes_the_token_and_never_prompts() {
    let f = Fixture::new("ufp", "");
    f.set_stack(&format!(
        "auth required {SET_ITEMS}\n{}",
        line(&f, "use_first_pass")
    ));
    let user = "sync";
    let e = f.enroll(user, OtpParams::default(), 1);
    let mut cmd = f.pamtester(user);
    cmd.env("PAM_AUTHTOK", e.code(0));
    let (ok, logs, text) = f.pamtester_run(cmd, b"");
    assert!(ok, "{logs:?} {text}");
    assert!(!text.contains("Verification code"), "{text}");
    // No token from the stack: refused without asking.
    let (ok, logs, text) = f.pamtester_run(f.pamtester(user), b"");
    assert!(!ok);
    assert!(!text.contains("Verification code"), "{text}");
    assert!(
        logs[0].contains("use_first_pass without PAM_AUTHTOK"),
        "{logs:?}"
    );
}

#[test]
fn try_first_pass_uses_a_code_shaped_token_else_prompts() {
    let f = Fixture::new("tfp", "");
    f.set_stack(&format!(
        "auth required {SET_ITEMS}\n{}",
        line(&f, "try_first_pass window=2")
    ));
    let user = "games";
    let e = f.enroll(
        user,
        OtpParams {
            period: 60,
            ..OtpParams::default()
        },
        1,
    );
    // A password is not a code: not counted, not logged, the user is asked.
    // The user answers wrongly, so the count is read before any success
    // resets it: exactly the one failure typed at the prompt.
    for (password, failures) in [("hunter2 is my password", 1), ("123456", 2)] {
        let mut cmd = f.pamtester(user);
        cmd.env("PAM_AUTHTOK", password);
        let (ok, logs, text) = f.pamtester_run(cmd, b"000000x\n");
        assert!(!ok, "{text}");
        assert!(text.contains("Verification code: "));
        assert_eq!(logs.len(), 1, "{password:?}: {logs:?}");
        assert_eq!(
            f.record(user).failures,
            failures,
            "{password:?} was counted"
        );
    }
    // A right code as the token: no prompt.
    let mut cmd = f.pamtester(user);
    cmd.env("PAM_AUTHTOK", e.code(1));
    let (ok, _, text) = f.pamtester_run(cmd, b"");
    assert!(ok, "{text}");
    assert!(!text.contains("Verification code"), "{text}");
    // A wrong code as the token: not counted or logged, then one prompt.
    let mut cmd = f.pamtester(user);
    cmd.env("PAM_AUTHTOK", wrong_code(&e.code(2)));
    let (ok, logs, text) = f.pamtester_run(cmd, format!("{}\n", e.code(2)).as_bytes());
    assert!(ok, "{logs:?} {text}");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].contains("result=success"), "{logs:?}");
}

#[test]
fn forward_pass_hands_the_password_to_pam_unix() {
    let user = TestUser::create("otpgate-t6", "Corr3ct-horse!");
    let f = Fixture::new("forward", "");
    f.set_stack(&format!(
        "{}\nauth required pam_unix.so use_first_pass nodelay",
        line(&f, "forward_pass")
    ));
    let e = f.enroll(&user.name, OtpParams::default(), 1);
    let t = f.login(&user.name, &format!("Corr3ct-horse!{}", e.code(0)));
    assert_eq!(t.code, PAM_SUCCESS, "{t:?}");
    assert_eq!(
        t.messages,
        vec![(
            Style::PromptEchoOff,
            "Password & verification code: ".to_string()
        )]
    );
    // Wrong password, right (fresh) code: pam_unix refuses.
    assert_eq!(
        f.login(&user.name, &format!("wrong{}", e.code(1))).code,
        PAM_AUTH_ERR
    );
    // Right password, wrong code: we refuse.
    assert_eq!(
        f.login(
            &user.name,
            &format!("Corr3ct-horse!{}", wrong_code(&e.code(0)))
        )
        .code,
        PAM_AUTH_ERR
    );
}

#[test]
fn forward_pass_wrong_passwords_never_lock_for_good_and_no_layout_takes_a_wrong_code() {
    if !runs_as_root(
        "forward_pass_wrong_passwords_never_lock_for_good_and_no_layout_takes_a_wrong_code",
    ) {
        return;
    }
    let user = TestUser::create("otpgate-t6c", "Right-pass-3");
    let f = Fixture::new("forward-hard", "");
    f.set_stack(&format!(
        "{}\nauth required pam_unix.so use_first_pass nodelay",
        line(&f, "forward_pass deny=1000 hard_deny=3")
    ));
    let e = f.enroll(&user.name, OtpParams::default(), 1);
    // Someone who knows only the user name: wrong password, guessed codes.
    for _ in 0..6 {
        let t = f.login(&user.name, &format!("guess{}", wrong_code(&e.code(0))));
        assert_eq!(t.code, PAM_AUTH_ERR);
    }
    let r = f.record(&user.name);
    assert!(!r.hard_locked, "wrong passwords reached the hard lock");
    assert_eq!((r.failures, r.unconfirmed), (6, 6));
    // The user still gets in.
    let t = f.login(&user.name, &format!("Right-pass-3{}", e.code(0)));
    assert_eq!(t.code, PAM_SUCCESS, "{t:?}");
    // A right code with a wrong password shows nothing more than a wrong one.
    let right = f.login(&user.name, &format!("guess{}", e.code(1)));
    let wrong = f.login(&user.name, &format!("guess{}", wrong_code(&e.code(1))));
    assert_eq!(right.code, PAM_AUTH_ERR);
    assert_eq!(right.messages, wrong.messages);
    // Mistaken layouts where a failing code line does not fail the stack:
    // the password is only passed on after a right code, so pam_unix has
    // nothing to check and a wrong code never gets in.
    for control in ["sufficient", "optional", "[default=ignore]"] {
        f.set_stack(&format!(
            "auth {control} {} store={} forward_pass\nauth required pam_unix.so use_first_pass nodelay",
            module_path().display(),
            f.store.display()
        ));
        let t = f.login(
            &user.name,
            &format!("Right-pass-3{}", wrong_code(&e.code(2))),
        );
        assert_eq!(t.code, PAM_AUTH_ERR, "{control}: a wrong code got in");
    }
}

#[test]
fn forward_pass_with_nullok_passes_a_not_enrolled_users_password_on() {
    let user = TestUser::create("otpgate-t6b", "Plain-pass-9");
    let f = Fixture::new("forward-nullok", "");
    f.set_stack(&format!(
        "{}\nauth required pam_unix.so use_first_pass nodelay",
        line(&f, "forward_pass nullok")
    ));
    let t = f.login(&user.name, "Plain-pass-9");
    assert_eq!(t.code, PAM_SUCCESS, "{t:?}");
    assert_eq!(
        t.messages,
        vec![(
            Style::PromptEchoOff,
            "Password & verification code: ".to_string()
        )]
    );
    assert_eq!(f.login(&user.name, "wrong-pass").code, PAM_AUTH_ERR);
}

#[test]
fn no_recovery_refuses_recovery_codes_at_that_service() {
    let f = Fixture::new("norecovery", "no_recovery");
    let e = f.enroll("lp", OtpParams::default(), 3);
    assert_eq!(f.login("lp", &e.recovery[0]).code, PAM_AUTH_ERR);
    assert_eq!(f.record("lp").recovery.remaining(), 3);
}

#[test]
fn silent_keeps_only_errors() {
    let f = Fixture::new("silent", "deny=1");
    let e = f.enroll("mail", OtpParams::default(), 5);
    let t = f.login_with("mail", &[&e.recovery[0]], PAM_SILENT);
    assert_eq!(t.code, PAM_SUCCESS);
    assert_eq!(
        t.messages,
        vec![(Style::PromptEchoOff, "Verification code: ".to_string())]
    );
    let t = f.login_with("mail", &["000000x"], PAM_SILENT);
    assert_eq!(t.code, PAM_AUTH_ERR);
    assert_eq!(t.messages.len(), 2);
    assert_eq!(t.messages[1].0, Style::ErrorMsg);
    assert!(
        t.messages[1]
            .1
            .starts_with("Too many failed attempts: verification locked, retry in 600 s"),
        "{t:?}"
    );
}

#[test]
fn clock_drift_is_refused_like_any_wrong_code_logged_and_told_after_a_success() {
    let f = Fixture::new("drift", "");
    let user = "news";
    let e = f.enroll(user, OtpParams::default(), 1);
    let phone = oathtool(&e.secret, e.params, T0 + 5 * 30);
    let (ok, logs, text) =
        f.pamtester_run(f.pamtester_at(user, T0), format!("{phone}\n").as_bytes());
    assert!(!ok);
    assert!(
        logs[0].ends_with("result=fail method=totp reason=clock_drift offset=+5"),
        "{logs:?}"
    );
    // At the prompt it looks like any wrong code: no "nearly" for a guesser.
    let (_, _, wrong_text) = f.pamtester_run(
        f.pamtester_at(user, T0),
        format!("{}\n", wrong_code(&phone)).as_bytes(),
    );
    // What the person sees: everything but libpam-wrapper's own lines.
    let shown = |t: &str| {
        t.lines()
            .map(|l| l.split("PWRAP_").next().unwrap_or("").to_string())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
    };
    assert_eq!(shown(&text), shown(&wrong_text));
    assert!(!shown(&text).concat().contains("clock"), "{text}");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .args([
            "--store",
            f.store.to_str().unwrap(),
            "status",
            user,
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["last_clock_drift_steps"], 5);
    assert_eq!(f.record(user).last_step, 0, "drift never moves the window");
    // The next success tells the user about the earlier drift.
    let right = oathtool(&e.secret, e.params, T0);
    let (ok, _, text) = f.pamtester_run(f.pamtester_at(user, T0), format!("{right}\n").as_bytes());
    assert!(ok, "{text}");
    assert!(
        text.contains("5 time steps ahead. Check that your phone's clock is set automatically."),
        "{text}"
    );
}
