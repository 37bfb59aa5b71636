//! HOTP (RFC 4226) enrollments as an admin makes them and as users log in
//! with them: codes from `oathtool --hotp`, an implementation independent
//! of ours; the printed QR code decoded by `zbarimg`.

mod common;

use common::*;
use otpgate::core::Kind;
use otpgate::pam::client::{PAM_AUTH_ERR, PAM_SUCCESS};
use std::io::Write;
use std::process::{Command, Output};

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn otpgate(f: &Fixture, args: &[&str]) -> Output {
    f.otpgate_command(args).output().unwrap()
}

/// The HOTP code for `counter` from oathtool.
fn hotp(secret_b32: &str, digits: u8, counter: u64) -> String {
    let out = Command::new("oathtool")
        .args(["--hotp", "-b", "-d", &digits.to_string(), "-c"])
        .arg(counter.to_string())
        .arg(secret_b32)
        .output()
        .expect("oathtool is installed by scripts/test.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn an_hotp_enrollment_takes_oathtool_codes_once_each_within_the_look_ahead() {
    let f = Fixture::new("hotp-enroll", "");
    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--hotp",
            "--counter",
            "5",
            "--secret",
            SECRET,
            "--no-verify",
            "--json",
            "--issuer",
            "Acme",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        v["uri"],
        format!("otpauth://hotp/Acme:daemon?secret={SECRET}&issuer=Acme&counter=5")
    );
    assert_eq!(
        (v["kind"].as_str(), v["counter"].as_u64()),
        (Some("hotp"), Some(5))
    );
    assert_eq!(f.record("daemon").kind, Kind::Hotp);

    assert_eq!(f.login("daemon", &hotp(SECRET, 6, 5)).code, PAM_SUCCESS);
    // The same code again, and an older counter's code: refused.
    assert_eq!(f.login("daemon", &hotp(SECRET, 6, 5)).code, PAM_AUTH_ERR);
    assert_eq!(f.login("daemon", &hotp(SECRET, 6, 4)).code, PAM_AUTH_ERR);
    // A token pressed a few times without logging in: still inside the look-ahead.
    assert_eq!(f.login("daemon", &hotp(SECRET, 6, 9)).code, PAM_SUCCESS);
    // Ten ahead of the next counter (10) is beyond the default look-ahead.
    assert_eq!(f.login("daemon", &hotp(SECRET, 6, 20)).code, PAM_AUTH_ERR);
    // Recovery codes work as for TOTP users.
    let rc = v["recovery_codes"][0].as_str().unwrap();
    assert_eq!(f.login("daemon", rc).code, PAM_SUCCESS);

    let s = json(&otpgate(&f, &["status", "daemon", "--json"]));
    assert_eq!(
        (s["kind"].as_str(), s["counter"].as_u64()),
        (Some("hotp"), Some(10))
    );
    let text = stdout(&otpgate(&f, &["status", "daemon"]));
    assert!(text.contains("counter-based"), "{text}");
    assert!(text.contains("next counter:   10"), "{text}");
    let all = json(&otpgate(&f, &["status", "--json"]));
    assert_eq!(all[0]["counter"].as_u64(), Some(10));
}

#[test]
fn the_first_hotp_code_is_verified_and_used_up() {
    let f = Fixture::new("hotp-verify", "");
    let wrong = otpgate(
        &f,
        &[
            "enroll", "daemon", "--hotp", "--secret", SECRET, "--code", "000000", "--qr", "none",
        ],
    );
    if hotp(SECRET, 6, 0) != "000000" {
        assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
        assert!(!f.record_path("daemon").exists());
    }
    // The token was pressed twice since it was set to counter 3.
    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--hotp",
            "--counter",
            "3",
            "--secret",
            SECRET,
            "--code",
            &hotp(SECRET, 6, 5),
            "--qr",
            "none",
            "--digits",
            "8",
        ],
    );
    // 8 digits: the code given was a 6-digit one, so it does not match.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--hotp",
            "--counter",
            "3",
            "--secret",
            SECRET,
            "--code",
            &hotp(SECRET, 6, 5),
            "--qr",
            "none",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("counter-based"), "{out}");
    assert!(
        out.contains("otpauth://hotp/") && out.contains("&counter=3"),
        "{out}"
    );
    assert_eq!(f.record("daemon").last_step, 6, "the next counter");
    assert_eq!(f.login("daemon", &hotp(SECRET, 6, 5)).code, PAM_AUTH_ERR);
    assert_eq!(f.login("daemon", &hotp(SECRET, 6, 6)).code, PAM_SUCCESS);
}

#[test]
fn hotp_window_bounds_the_look_ahead_and_logins_log_method_hotp() {
    let f = Fixture::new("hotp-window", "hotp_window=2");
    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--hotp",
            "--secret",
            SECRET,
            "--no-verify",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(f.login("daemon", &hotp(SECRET, 6, 2)).code, PAM_AUTH_ERR);
    let mut p = f.pamtester("daemon").spawn().unwrap();
    writeln!(p.stdin.take().unwrap(), "{}", hotp(SECRET, 6, 1)).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let logs = syslog_lines(&out);
    assert!(
        logs.iter()
            .any(|l| l.contains("result=success method=hotp offset=+1")),
        "{logs:?}"
    );
    assert_eq!(f.record("daemon").last_step, 2);
}

#[test]
fn unlock_leaves_an_hotp_counter_alone() {
    let f = Fixture::new("hotp-unlock", "");
    // A counter far beyond any TOTP time step must not be "pulled back".
    let far = 10_000_000_000u64;
    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--hotp",
            "--counter",
            &far.to_string(),
            "--secret",
            SECRET,
            "--no-verify",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let u = otpgate(&f, &["unlock", "daemon"]);
    assert_eq!(u.status.code(), Some(0), "{}", stderr(&u));
    assert!(!stdout(&u).contains("from the future"), "{}", stdout(&u));
    assert_eq!(f.record("daemon").last_step, far);
    assert_eq!(f.login("daemon", &hotp(SECRET, 6, far)).code, PAM_SUCCESS);
}

#[test]
fn hotp_options_are_checked_and_the_qr_code_holds_the_hotp_uri() {
    let f = Fixture::new("hotp-usage", "");
    let o = otpgate(&f, &["enroll", "daemon", "--counter", "3", "--no-verify"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--counter without --hotp: {}",
        stderr(&o)
    );
    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--hotp",
            "--period",
            "60",
            "--no-verify",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "--period with --hotp: {}",
        stderr(&o)
    );
    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--hotp",
            "--counter",
            "9223372036854775807",
            "--no-verify",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "unstorable counter: {}",
        stderr(&o)
    );

    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--hotp",
            "--counter",
            "7",
            "--no-verify",
            "--qr",
            "utf8",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let uri = out.lines().find_map(|l| l.strip_prefix("URI: ")).unwrap();
    assert!(
        uri.starts_with("otpauth://hotp/") && uri.ends_with("&counter=7"),
        "{uri}"
    );
    let picture: String = out
        .lines()
        .filter(|l| l.contains('█') || l.contains('▀') || l.contains('▄'))
        .map(|l| format!("{l}\n"))
        .collect();
    let modules = otpgate::cli::qr::parse(&picture);
    let decoded = zbar_decode(&light_of(&modules), 6, &f.tmp.path().join("qr.pgm"));
    assert_eq!(decoded.as_deref(), Some(uri));
}
