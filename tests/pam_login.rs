//! Logins through the real libpam (`pam_start_confdir`) loading the built
//! module, with a scripted conversation that records every message.

mod common;

use common::*;
use otpgate::core::otp::{Algorithm, OtpParams};
use otpgate::pam::client::{PAM_AUTH_ERR, PAM_IGNORE, PAM_SILENT, PAM_SUCCESS, Style};
use std::fs;

#[test]
fn right_code_logs_in_and_is_asked_for_with_echo_off() {
    let f = Fixture::new("right", "");
    let e = f.enroll("uucp", OtpParams::default(), 3);
    let t = f.login("uucp", &e.code(0));
    assert_eq!(t.code, PAM_SUCCESS, "{t:?}");
    assert_eq!(
        t.messages,
        vec![(Style::PromptEchoOff, "Verification code: ".to_string())]
    );
    let r = f.record("uucp");
    assert_eq!(r.last_login_from, "192.0.2.10");
    assert!(r.last_step > 0);
}

#[test]
fn wrong_code_is_refused_without_a_hint() {
    let f = Fixture::new("wrong", "");
    let e = f.enroll("uucp", OtpParams::default(), 3);
    let right = e.code(0);
    let wrong = wrong_code(&right);
    let t = f.login("uucp", wrong);
    assert_eq!(t.code, PAM_AUTH_ERR);
    assert_eq!(t.messages.len(), 1, "only the prompt: {t:?}");
    assert_eq!(f.record("uucp").failures, 1);
}

#[test]
fn a_code_is_refused_the_second_time() {
    let f = Fixture::new("replay", "");
    let e = f.enroll("uucp", OtpParams::default(), 3);
    let code = e.code(0);
    assert_eq!(f.login("uucp", &code).code, PAM_SUCCESS);
    assert_eq!(f.login("uucp", &code).code, PAM_AUTH_ERR);
    // The previous step's code is older than the accepted one: also refused.
    assert_eq!(f.login("uucp", &e.code(-1)).code, PAM_AUTH_ERR);
}

#[test]
fn every_algorithm_digits_and_period_from_oathtool() {
    let f = Fixture::new("params", "");
    for (i, (algorithm, digits, period)) in [
        (Algorithm::Sha1, 6, 30),
        (Algorithm::Sha256, 8, 60),
        (Algorithm::Sha512, 8, 15),
        (Algorithm::Sha512, 6, 120),
    ]
    .into_iter()
    .enumerate()
    {
        let user = ACCOUNTS[i];
        let e = f.enroll(
            user,
            OtpParams {
                algorithm,
                digits,
                period,
            },
            1,
        );
        let t = f.login(user, &e.code(0));
        assert_eq!(t.code, PAM_SUCCESS, "{algorithm} {digits} {period}: {t:?}");
    }
}

#[test]
fn recovery_code_works_once_and_says_how_many_are_left() {
    let f = Fixture::new("recovery", "");
    let e = f.enroll("uucp", OtpParams::default(), 4);
    let typed = e.recovery[2].to_uppercase().replace('-', " ");
    let t = f.login("uucp", &typed);
    assert_eq!(t.code, PAM_SUCCESS, "{t:?}");
    assert_eq!(
        t.messages[1],
        (
            Style::TextInfo,
            "Recovery code accepted. 3 recovery codes left; make new ones with: sudo otpgate recovery".to_string()
        )
    );
    assert_eq!(f.login("uucp", &e.recovery[2]).code, PAM_AUTH_ERR);
    assert_eq!(f.record("uucp").recovery.remaining(), 3);
}

#[test]
fn low_recovery_codes_warn_even_when_silent() {
    let f = Fixture::new("recovery-low", "");
    let e = f.enroll("uucp", OtpParams::default(), 2);
    let t = f.login_with("uucp", &[&e.recovery[0]], PAM_SILENT);
    assert_eq!(t.code, PAM_SUCCESS);
    assert_eq!(t.messages[1].0, Style::ErrorMsg);
    assert!(
        t.messages[1]
            .1
            .starts_with("Warning: Recovery code accepted. 1 recovery code left"),
        "{t:?}"
    );
}

#[test]
fn not_enrolled_with_nullok_is_ignored_without_a_prompt() {
    let f = Fixture::new("nullok", "nullok");
    // `required` + IGNORE alone would fail the stack; a following pam_permit
    // is what a nullok rollout stack has.
    f.set_stack(&format!(
        "auth required {} store={} {} nullok\nauth required pam_permit.so",
        module_path().display(),
        f.store.display(),
        owner_ok()
    ));
    let t = f.login("nobody", "123456");
    assert_eq!(t.code, PAM_SUCCESS);
    assert!(t.messages.is_empty(), "{t:?}");
    // An enrolled account reached by a spelling NSS does not know (as with a
    // case-insensitive directory: DAEMON for daemon) is never waved through.
    f.enroll("daemon", OtpParams::default(), 1);
    let t = f.login("DAEMON", "123456");
    assert_eq!(t.code, PAM_AUTH_ERR, "{t:?}");
    assert_eq!(prompts(&t), vec!["Verification code: "]);
    // The module alone returns PAM_IGNORE, which libpam turns into a failure
    // when nothing else in the stack succeeds.
    f.set_stack(&format!(
        "auth required {} store={} {} nullok",
        module_path().display(),
        f.store.display(),
        owner_ok()
    ));
    assert_ne!(f.login("nobody", "123456").code, PAM_SUCCESS);
    let _ = PAM_IGNORE;
}

#[test]
fn not_enrolled_without_nullok_is_refused_after_the_same_prompt() {
    let f = Fixture::new("notenrolled", "");
    let t = f.login("nobody", "123456");
    assert_eq!(t.code, PAM_AUTH_ERR);
    assert_eq!(prompts(&t), vec!["Verification code: "]);
}

#[test]
fn unknown_option_fails_closed() {
    let f = Fixture::new("badopt", "nulok");
    let e = f.enroll("uucp", OtpParams::default(), 1);
    let t = f.login("uucp", &e.code(0));
    assert_eq!(t.code, PAM_AUTH_ERR);
    assert!(
        t.messages.is_empty(),
        "no prompt under a broken configuration: {t:?}"
    );
}

#[test]
fn prompt_and_echo_options() {
    let f = Fixture::new("prompt", "[prompt=Code from your phone: ] echo");
    let e = f.enroll("uucp", OtpParams::default(), 1);
    let t = f.login("uucp", &e.code(0));
    assert_eq!(t.code, PAM_SUCCESS);
    assert_eq!(
        t.messages,
        vec![(Style::PromptEchoOn, "Code from your phone: ".to_string())]
    );
}

#[test]
fn window_zero_refuses_the_previous_step() {
    let f = Fixture::new("window", "window=0");
    let e = f.enroll(
        "uucp",
        OtpParams {
            period: 120,
            ..OtpParams::default()
        },
        1,
    );
    assert_eq!(f.login("uucp", &e.code(-1)).code, PAM_AUTH_ERR);
}

#[test]
fn a_login_writes_only_the_state_never_the_record() {
    let f = Fixture::new("state-only", "");
    let e = f.enroll("daemon", OtpParams::default(), 2);
    let record = f.record_path("daemon");
    let before = fs::read(&record).unwrap();
    assert_eq!(f.login("daemon", &e.code(0)).code, PAM_SUCCESS);
    assert_eq!(f.login("daemon", "000000x").code, PAM_AUTH_ERR);
    assert_eq!(f.login("daemon", &e.recovery[0]).code, PAM_SUCCESS);
    assert_eq!(
        fs::read(&record).unwrap(),
        before,
        "a login rewrote the record"
    );
    // Two slots of 512 bytes: the state, and the one before it.
    assert_eq!(
        fs::metadata(f.store.join(".daemon.lock")).unwrap().len(),
        1024
    );
    let r = f.record("daemon");
    assert_eq!(r.recovery.remaining(), 1);
    assert_eq!(f.login("daemon", &e.code(0)).code, PAM_AUTH_ERR, "replay");
    assert_eq!(f.login("daemon", &e.recovery[0]).code, PAM_AUTH_ERR, "used");
}

/// A record as the first release wrote it: login fields in the record, an
/// empty lock file, no state id.
#[test]
fn a_store_from_the_first_release_keeps_its_replay_guard_and_failures() {
    let f = Fixture::new("migrate", "deny=5");
    let e = f.enroll("bin", OtpParams::default(), 1);
    let step = unix_now() / 30;
    let old = format!(
        "version = 1\nsecret = \"{}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n\
         created = 1795832543\nlast_step = {step}\nfailures = 3\nlocked_until = 0\n\
         last_login = 1795832600\nlast_login_from = \"192.0.2.7\"\n\n[recovery]\n\
         kdf = \"argon2id\"\nm_cost = 256\nt_cost = 1\np_cost = 1\n\
         salt = \"00000000000000000000000000000000\"\nhashes = []\n",
        e.secret
    );
    fs::write(f.record_path("bin"), old).unwrap();
    fs::write(f.store.join(".bin.lock"), b"").unwrap();
    // The code of the step the old record accepted stays used.
    let t = f.login("bin", &oathtool(&e.secret, e.params, step * 30));
    assert_eq!(t.code, PAM_AUTH_ERR);
    // Failures carry on from 3: the next wrong one is the 5th: locked.
    assert_eq!(f.record("bin").failures, 4);
    let t = f.login("bin", "000000x");
    assert_eq!(t.code, PAM_AUTH_ERR);
    assert!(
        t.messages
            .iter()
            .any(|(_, m)| m.contains("Too many failed attempts")),
        "{t:?}"
    );
}
