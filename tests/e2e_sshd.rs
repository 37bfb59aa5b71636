//! A real OpenSSH server on 127.0.0.1 with keyboard-interactive, a real
//! `ssh` client driven by `expect`: key + code, then password + code.

mod common;

use common::system::*;
use common::*;
use otpgate::core::otp::OtpParams;

fn ssh_argv(port: u16, key: &std::path::Path, user: &str, methods: &str) -> Vec<String> {
    vec![
        "ssh".into(),
        "-F".into(),
        "/dev/null".into(),
        "-p".into(),
        port.to_string(),
        "-i".into(),
        key.display().to_string(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=no".into(),
        "-o".into(),
        "UserKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "NumberOfPasswordPrompts=1".into(),
        "-o".into(),
        format!("PreferredAuthentications={methods}"),
        "-o".into(),
        "LogLevel=ERROR".into(),
        format!("{user}@127.0.0.1"),
        "echo".into(),
        "logged-in-as-$(id -un)".into(),
    ]
}

fn login(
    f: &Fixture,
    port: u16,
    key: &std::path::Path,
    user: &str,
    methods: &str,
    answers: &[&str],
) -> (bool, String) {
    let argv = ssh_argv(port, key, user, methods);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (code, text) = expect_run(f.tmp.path(), answers, &argv);
    let shell = text.contains(&format!("logged-in-as-{user}"));
    assert_eq!(code == 0, shell, "exit {code} vs output: {text}");
    (shell, text)
}

/// The module logged exactly one line for the last login, and it says `what`
/// (e.g. `result=fail method=totp reason=replay`): a refusal is the
/// module's, for the reason the test means, not a broken sshd setup.
fn logged(tap: &SyslogTap, what: &str) {
    let lines = tap.otpgate_lines();
    assert_eq!(
        lines.len(),
        1,
        "one otpgate line, with {what:?}: {lines:#?}"
    );
    assert!(lines[0].contains(what), "{what:?} not in {lines:#?}");
}

/// A test user, an enrolled record and a private sshd whose PAM stack is
/// `auth_before` then the module with `options`. Dropped in field order:
/// sshd and its service file first, the user last.
struct Server {
    cleanup: Cleanup,
    /// What sshd's PAM modules log (sshd runs where /dev/log is ours).
    tap: SyslogTap,
    f: Fixture,
    user: TestUser,
    port: u16,
    key: std::path::PathBuf,
    public: String,
}

fn server(
    kind: &str,
    user: &str,
    password: &str,
    auth_before: &str,
    options: &str,
    methods: &str,
) -> Option<Server> {
    if !runs_as_root(kind) {
        return None;
    }
    let user = TestUser::create(user, password);
    let f = Fixture::new(kind, "");
    let mut cleanup = Cleanup::default();
    let service = format!("otpgate-test-{kind}-{}", std::process::id());
    let stack = format!(
        "{auth_before}auth required {} store={} {options}\naccount required pam_unix.so\nsession required pam_permit.so\n",
        module_path().display(),
        f.store.display()
    );
    let tap = SyslogTap::new(f.tmp.path());
    let sshd = Sshd::start_logging(
        &mut cleanup,
        f.tmp.path(),
        &service,
        &stack,
        methods,
        Some(&tap),
    );
    let (key, public) = client_key(f.tmp.path());
    Some(Server {
        cleanup,
        tap,
        f,
        user,
        port: sshd.port,
        key,
        public,
    })
}

#[test]
fn ssh_key_and_code() {
    let methods = "publickey,keyboard-interactive";
    let Some(Server {
        cleanup: _cleanup,
        tap,
        f,
        user,
        port,
        key,
        public,
    }) = server(
        "sshd-key",
        "otpgate-t-ssh1",
        "Unused-pw-1",
        "",
        "deny=3 unlock_time=600",
        methods,
    )
    else {
        return;
    };
    Sshd::authorize(f.tmp.path(), &user.name, &public);
    let e = f.enroll(
        &user.name,
        OtpParams {
            period: 60,
            ..OtpParams::default()
        },
        3,
    );

    let code = e.code(0);
    let (ok, text) = login(&f, port, &key, &user.name, methods, &[&code]);
    assert!(ok, "key + right code: {text}");
    assert!(text.contains("Verification code: "), "{text}");
    logged(&tap, "result=success method=totp");

    let (ok, text) = login(&f, port, &key, &user.name, methods, &[&code]);
    assert!(!ok, "replayed code: {text}");
    logged(&tap, "result=fail method=totp reason=replay");

    // sshd shows PAM messages that follow the last prompt (the "codes left"
    // notice) with the banner of an interactive terminal session only.
    let mut argv = ssh_argv(port, &key, &user.name, methods);
    argv.truncate(argv.len() - 2);
    argv.insert(1, "-tt".into());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (rc, text) = expect_shell(
        f.tmp.path(),
        &[&e.recovery[0]],
        &argv,
        "echo shell-of-$(id -un)",
    );
    assert_eq!(rc, 0, "recovery code: {text}");
    assert!(text.contains(&format!("shell-of-{}", user.name)), "{text}");
    assert!(
        text.contains("2 recovery codes left"),
        "the client sees how many are left: {text}"
    );
    logged(&tap, "result=success method=recovery");
    let (ok, _) = login(&f, port, &key, &user.name, methods, &[&e.recovery[0]]);
    assert!(!ok, "a recovery code works once");
    logged(&tap, "result=fail method=recovery reason=bad_code");

    let wrong = wrong_code(&e.code(1));
    let (ok, _) = login(&f, port, &key, &user.name, methods, &[wrong]);
    assert!(!ok, "wrong code");
    logged(&tap, "result=fail method=totp reason=bad_code");
    let (ok, _) = login(&f, port, &key, &user.name, methods, &[wrong]);
    assert!(!ok, "wrong code");
    logged(&tap, "result=fail method=totp reason=bad_code");
    // The recovery login reset the count; reused recovery code + 2 wrong = deny.
    assert_eq!(f.record(&user.name).failures, 3);
    let (ok, text) = login(&f, port, &key, &user.name, methods, &[&e.code(1)]);
    assert!(!ok, "locked account: {text}");
    assert!(text.contains("verification locked"), "{text}");
    logged(&tap, "result=fail reason=locked");
}

#[test]
fn ssh_password_and_code() {
    let Some(Server {
        cleanup: _cleanup,
        tap,
        f,
        user,
        port,
        key,
        ..
    }) = server(
        "sshd-pass",
        "otpgate-t-ssh2",
        "Sw0rdfish-ssh!",
        "auth required pam_unix.so\n",
        "",
        "keyboard-interactive",
    )
    else {
        return;
    };
    let e = f.enroll(
        &user.name,
        OtpParams {
            period: 60,
            ..OtpParams::default()
        },
        1,
    );
    let m = "keyboard-interactive";

    let code = e.code(0);
    let (ok, text) = login(&f, port, &key, &user.name, m, &["Sw0rdfish-ssh!", &code]);
    assert!(ok, "password + code: {text}");
    assert!(
        text.contains("Password: ") && text.contains("Verification code: "),
        "{text}"
    );
    logged(&tap, "result=success method=totp");
    let (ok, _) = login(&f, port, &key, &user.name, m, &["Sw0rdfish-ssh!", &code]);
    assert!(!ok, "password + replayed code");
    logged(&tap, "result=fail method=totp reason=replay");
    let (ok, text) = login(
        &f,
        port,
        &key,
        &user.name,
        m,
        &["Sw0rdfish-ssh!", &e.recovery[0]],
    );
    assert!(ok, "password + recovery code: {text}");
    logged(&tap, "result=success method=recovery");
    let (ok, _) = login(
        &f,
        port,
        &key,
        &user.name,
        m,
        &["Sw0rdfish-ssh!", &e.recovery[0]],
    );
    assert!(!ok, "a recovery code works once");
    logged(&tap, "result=fail method=recovery reason=bad_code");
    let wrong = wrong_code(&e.code(1));
    let (ok, _) = login(&f, port, &key, &user.name, m, &["Sw0rdfish-ssh!", wrong]);
    assert!(!ok, "password + wrong code");
    logged(&tap, "result=fail method=totp reason=bad_code");
    let (ok, _) = login(
        &f,
        port,
        &key,
        &user.name,
        m,
        &["not-the-password", &e.code(1)],
    );
    assert!(!ok, "wrong password + right code");
    // The refusal is pam_unix's (the password), whatever the code was.
    let lines = tap.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("pam_unix(") && l.contains("authentication failure")),
        "{lines:#?}"
    );
}
