//! Real `sudo` with its own PAM service (sudoers `pam_service`): password,
//! then code. Driven by `expect` on a pty.

mod common;

use common::system::*;
use common::*;
use otpgate::core::otp::OtpParams;
use std::path::Path;

#[test]
fn sudo_asks_password_then_code() {
    if !runs_as_root("sudo_asks_password_then_code") {
        return;
    }
    let user = TestUser::create("otpgate-t-sudo", "Sudo-pass-42");
    let f = Fixture::new("sudo", "");
    let mut cleanup = Cleanup::default();
    let service = format!("otpgate-test-sudo-{}", std::process::id());
    cleanup.write(
        &Path::new("/etc/pam.d").join(&service),
        &format!(
            "auth required pam_unix.so\nauth required {} store={}\naccount required pam_unix.so\nsession required pam_permit.so\n",
            module_path().display(),
            f.store.display()
        ),
        0o644,
    );
    cleanup.sudoers(
        f.tmp.path(),
        &service,
        &format!(
            "Defaults:{u} pam_service={service}, !lecture, timestamp_timeout=0, passwd_tries=1\n{u} ALL=(root) ALL\n",
            u = user.name
        ),
    );
    let e = f.enroll(
        &user.name,
        OtpParams {
            period: 60,
            ..OtpParams::default()
        },
        1,
    );
    // sudo runs where /dev/log is ours: each refusal is checked for the
    // module's own reason, not only for a missing root shell.
    let tap = SyslogTap::new(f.tmp.path());
    let sudo = |answers: &[&str]| {
        let argv = tap.argv(&[
            "runuser",
            "-u",
            &user.name,
            "--",
            "sudo",
            "-k",
            "sh",
            "-c",
            "echo root-is-$(id -u)",
        ]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        expect_run(f.tmp.path(), answers, &argv)
    };
    let logged = |what: &str| {
        let lines = tap.otpgate_lines();
        assert_eq!(
            lines.len(),
            1,
            "one otpgate line, with {what:?}: {lines:#?}"
        );
        assert!(lines[0].contains(what), "{what:?} not in {lines:#?}");
    };

    let code = e.code(0);
    let (rc, text) = sudo(&["Sudo-pass-42", &code]);
    assert_eq!(rc, 0, "{text}");
    assert!(text.contains("password for otpgate-t-sudo"), "{text}");
    assert!(text.contains("Verification code: "), "{text}");
    assert!(text.contains("root-is-0"), "{text}");
    logged("result=success method=totp");

    let wrong = wrong_code(&e.code(1));
    let (rc, text) = sudo(&["Sudo-pass-42", wrong]);
    assert_ne!(rc, 0, "{text}");
    assert!(!text.contains("root-is-0"), "{text}");
    logged("result=fail method=totp reason=bad_code");

    let (rc, text) = sudo(&["Sudo-pass-42", &code]);
    assert!(
        rc != 0 && !text.contains("root-is-0"),
        "replayed code: {text}"
    );
    logged("result=fail method=totp reason=replay");
}

/// Reads the child's stdout until the `URI: ` line; returns the secret and
/// every line read so far.
fn read_until_uri(out: &mut dyn std::io::BufRead) -> (String, Vec<String>) {
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "no URI in {seen:#?}");
        if let Some(uri) = line.trim_end().strip_prefix("URI: ") {
            let secret = uri
                .split("secret=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_string();
            return (secret, seen);
        }
        seen.push(line);
    }
}

#[test]
fn users_enroll_themselves_through_a_sudoers_rule() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};
    if !runs_as_root("users_enroll_themselves_through_a_sudoers_rule") {
        return;
    }
    let user = TestUser::create("otpgate-t-self", "Self-pass-7");
    let f = Fixture::new("self", "");
    let mut cleanup = Cleanup::default();
    let bin = env!("CARGO_BIN_EXE_otpgate");
    let store = f.store.display().to_string();
    // The documented rule, with the test's store named in the fixed arguments.
    cleanup.sudoers(
        f.tmp.path(),
        &format!("otpgate-test-self-{}", std::process::id()),
        &format!(
            "{} ALL=(root) NOPASSWD: {bin} --store {store} enroll --self\n",
            user.name
        ),
    );
    let run = |answers: &mut dyn FnMut(&mut dyn BufRead, &mut dyn Write)| {
        let mut child = Command::new("runuser")
            .args([
                "-u", &user.name, "--", "sudo", "-n", bin, "--store", &store, "enroll", "--self",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        answers(&mut stdout, &mut stdin);
        drop(stdin);
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (child.wait().unwrap().code(), rest, err)
    };
    let params = OtpParams::default();

    // First enrollment: scan, type the code, get recovery codes.
    let mut first_secret = String::new();
    let (rc, rest, err) = run(&mut |out, inp| {
        let (secret, _) = read_until_uri(out);
        writeln!(inp, "{}", oathtool(&secret, params, unix_now())).unwrap();
        first_secret = secret;
    });
    assert_eq!(rc, Some(0), "{err}");
    let recovery: Vec<String> = rest
        .lines()
        .filter(|l| l.starts_with("    ") && l.matches('-').count() == 3)
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(recovery.len(), 10, "{rest}");
    assert_eq!(f.record(&user.name).secret, first_secret);

    // Re-enrolling needs the current factor: a wrong one changes nothing.
    let state = f.store.join(format!(".{}.lock", user.name));
    let before = std::fs::read(&state).unwrap_or_default();
    let (rc, _, err) = run(&mut |_, inp| writeln!(inp, "zzzz-zzzz-zzzz-zzzz").unwrap());
    assert_eq!(rc, Some(1), "{err}");
    assert!(
        err.contains("Code from your current app, or a recovery code: "),
        "{err}"
    );
    let after = f.record(&user.name);
    assert_eq!(after.secret, first_secret);
    assert_eq!(
        after.failures, 1,
        "a wrong proof counts like a failed login"
    );
    // Counted in the login state, written durably like a login's.
    assert_ne!(std::fs::read(&state).unwrap(), before);

    // A recovery code proves it; the new secret replaces the old one.
    let (rc, _, err) = run(&mut |out, inp| {
        writeln!(inp, "{}", recovery[0]).unwrap();
        let (secret, _) = read_until_uri(out);
        writeln!(inp, "{}", oathtool(&secret, params, unix_now())).unwrap();
    });
    assert_eq!(rc, Some(0), "{err}");
    assert_ne!(f.record(&user.name).secret, first_secret);

    // The rule allows nothing else: another user's name is refused by sudo.
    let o = Command::new("runuser")
        .args([
            "-u",
            &user.name,
            "--",
            "sudo",
            "-n",
            bin,
            "--store",
            &store,
            "enroll",
            "root",
            "--no-verify",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    // And --self without sudo is refused by otpgate.
    let o = Command::new(bin)
        .args(["--store", &store, "enroll", "--self"])
        .env_remove("SUDO_USER")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
