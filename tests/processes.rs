//! Separate processes against one store: `pamtester` (a real PAM application)
//! loading the built module through libpam-wrapper. Races, SIGKILL in the
//! middle of logins, and hostile store files.

mod common;

use common::*;
use otpgate::core::otp::OtpParams;
use otpgate::pam::client::{PAM_AUTH_ERR, PAM_SUCCESS};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::Child;

fn spawn_login(f: &Fixture, user: &str) -> Child {
    f.pamtester(user)
        .spawn()
        .expect("pamtester is installed by scripts/test.sh")
}

fn answer(child: &mut Child, text: &str) {
    let mut stdin = child.stdin.take().unwrap();
    let _ = writeln!(stdin, "{text}");
}

/// Starts `n` logins, lets them all reach the prompt, then answers all at once.
fn race(f: &Fixture, user: &str, text: &str, n: usize) -> usize {
    let mut children: Vec<Child> = (0..n).map(|_| spawn_login(f, user)).collect();
    for c in &mut children {
        answer(c, text);
    }
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .filter(|o| o.status.success())
        .count()
}

#[test]
fn twenty_logins_with_one_totp_code_exactly_one_succeeds() {
    let f = Fixture::new("race-totp", "");
    let e = f.enroll("otpgate-t1", OtpParams::default(), 2);
    assert_eq!(race(&f, "otpgate-t1", &e.code(0), 20), 1);
}

#[test]
fn twenty_logins_with_one_recovery_code_exactly_one_succeeds() {
    let f = Fixture::new("race-recovery", "");
    let e = f.enroll("otpgate-t2", OtpParams::default(), 3);
    assert_eq!(race(&f, "otpgate-t2", &e.recovery[1], 20), 1);
    assert_eq!(f.record("otpgate-t2").recovery.remaining(), 2);
}

#[test]
fn sigkill_during_logins_loses_nothing_and_reuses_nothing() {
    let f = Fixture::new("crash", "deny=1000 hard_deny=0");
    let user = "otpgate-t3";
    let e = f.enroll(user, OtpParams::default(), 40);
    // The last 5 codes are never used during the storm: they must work after.
    let (storm, reserve) = e.recovery.split_at(35);
    let mut successes: HashMap<String, usize> = HashMap::new();
    let mut in_flight: Vec<(Child, String)> = Vec::new();
    let mut killed = 0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..300u32 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let text = if round.is_multiple_of(7) {
            e.code(0)
        } else {
            storm[(seed % storm.len() as u64) as usize].clone()
        };
        let mut child = spawn_login(&f, user);
        answer(&mut child, &text);
        in_flight.push((child, text));
        if in_flight.len() >= 20 {
            // Kill one of the running logins wherever it happens to be, or reap it.
            let (mut c, text) = in_flight.remove((seed as usize >> 8) % in_flight.len());
            if seed.is_multiple_of(3) {
                let _ = c.kill();
                let _ = c.wait();
                killed += 1;
            } else if c.wait().unwrap().success() {
                *successes.entry(text).or_default() += 1;
            }
        }
    }
    for (c, text) in in_flight {
        if c.wait_with_output().unwrap().status.success() {
            *successes.entry(text).or_default() += 1;
        }
    }
    assert!(killed > 20, "the storm killed {killed} logins");
    assert!(
        successes.len() > 5,
        "the storm logged in too rarely: {successes:?}"
    );
    // No code was accepted twice (TOTP codes: at most one per time step).
    for (code, n) in &successes {
        if code.len() > 8 {
            assert_eq!(*n, 1, "recovery code accepted {n} times");
        }
    }
    // The record parses, and no used recovery code works again.
    let r = f.record(user);
    let used = successes.keys().filter(|c| c.len() > 8).count();
    assert!(r.recovery.remaining() <= 40 - used);
    for code in successes.keys().filter(|c| c.len() > 8) {
        assert_eq!(f.login(user, code).code, PAM_AUTH_ERR);
    }
    // Nothing left behind blocks the next login.
    assert_eq!(f.login(user, &reserve[0]).code, PAM_SUCCESS);
    let leftovers: Vec<_> = fs::read_dir(&f.store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.len() <= 1, "{leftovers:?}");
}

/// Sets up alice, lets `damage` break the store, then checks the login is
/// refused with a log line naming `why`, and the record is left byte for byte.
fn refused_with(name: &str, why: &str, damage: impl FnOnce(&Fixture)) {
    let f = Fixture::new(name, "");
    let user = "otpgate-t4";
    let e = f.enroll(user, OtpParams::default(), 2);
    damage(&f);
    let path = f.record_path(user);
    let regular = |p: &std::path::Path| fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
    let before = regular(&path).then(|| fs::read(&path).unwrap());
    let (ok, logs) = f.pamtester_login(user, format!("{}\n", e.code(0)).as_bytes());
    assert!(!ok, "{name}: login must fail");
    assert!(
        logs.iter()
            .any(|l| l.contains("reason=store_error") && l.contains(why)),
        "{name}: no log line with {why:?} in {logs:?}"
    );
    assert!(
        !logs
            .iter()
            .any(|l| l.contains(&e.secret) || l.contains(&e.code(0))),
        "{logs:?}"
    );
    assert_eq!(
        regular(&path).then(|| fs::read(&path).unwrap()),
        before,
        "{name}: record changed"
    );
    // Restore the store's modes so the temp dir can be removed.
    let _ = fs::set_permissions(&f.store, fs::Permissions::from_mode(0o700));
}

#[test]
fn hostile_record_mode_0644() {
    refused_with("mode", "mode 0644 gives group/other access", |f| {
        fs::set_permissions(
            f.record_path("otpgate-t4"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    });
}

#[test]
fn hostile_record_symlink() {
    refused_with("symlink", "is a symbolic link", |f| {
        let real = f.tmp.path().join("elsewhere.toml");
        fs::rename(f.record_path("otpgate-t4"), &real).unwrap();
        symlink(&real, f.record_path("otpgate-t4")).unwrap();
    });
}

#[test]
fn hostile_record_hard_link() {
    refused_with("hardlink", "has 2 hard links", |f| {
        fs::hard_link(f.record_path("otpgate-t4"), f.tmp.path().join("copy.toml")).unwrap();
    });
}

#[test]
fn hostile_store_dir_writable_by_others() {
    refused_with("dirmode", "writable by group/other", |f| {
        fs::set_permissions(&f.store, fs::Permissions::from_mode(0o777)).unwrap();
    });
}

#[test]
fn hostile_record_truncated() {
    refused_with("truncated", "does not parse", |f| {
        let p = f.record_path("otpgate-t4");
        let bytes = fs::read(&p).unwrap();
        fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
    });
}

#[test]
fn hostile_record_unknown_version() {
    refused_with("version", "unknown record version 9", |f| {
        let p = f.record_path("otpgate-t4");
        let text = fs::read_to_string(&p)
            .unwrap()
            .replace("version = 1", "version = 9");
        fs::write(&p, text).unwrap();
    });
}

#[test]
fn hostile_record_fifo_does_not_hang() {
    refused_with("fifo", "not a regular file", |f| {
        let p = f.record_path("otpgate-t4");
        fs::remove_file(&p).unwrap();
        let status = std::process::Command::new("mkfifo")
            .args(["-m", "600"])
            .arg(&p)
            .status()
            .unwrap();
        assert!(status.success());
    });
}

#[test]
fn hostile_record_owned_by_another_user() {
    if !nix::unistd::geteuid().is_root() {
        return; // chown needs root; CI runs as root
    }
    refused_with("owner", "owned by uid 65534", |f| {
        std::os::unix::fs::chown(f.record_path("otpgate-t4"), Some(65534), None).unwrap();
    });
}

#[test]
fn hostile_user_name_with_dot_dot() {
    let f = Fixture::new("dotdot", "");
    f.enroll("otpgate-t4", OtpParams::default(), 1);
    let (ok, logs) = f.pamtester_login("../otpgate-t4", b"123456\n");
    assert!(!ok);
    assert!(
        logs.iter()
            .any(|l| l.contains("reason=store_error") && l.contains("invalid user name")),
        "{logs:?}"
    );
}

#[test]
fn hostile_answers_are_refused_and_the_host_survives() {
    let f = Fixture::new("answers", "");
    let e = f.enroll("otpgate-t5", OtpParams::default(), 1);
    let huge = "7".repeat(1 << 20);
    let control = format!("\x01\x1b[2J{}\x07", e.code(0));
    for (i, a) in [
        huge.as_str(),
        control.as_str(),
        "\u{202e}123456",
        "１２３４５６",
    ]
    .into_iter()
    .enumerate()
    {
        let t = f.login("otpgate-t5", a);
        assert_eq!(t.code, PAM_AUTH_ERR, "answer {i}");
        assert_eq!(f.record("otpgate-t5").failures as usize, i + 1);
    }
    // The host (this process) is alive and the right code still works.
    assert_eq!(f.login("otpgate-t5", &e.code(0)).code, PAM_SUCCESS);
}

#[test]
fn log_lines_name_user_service_rhost_result_method_reason() {
    let f = Fixture::new("logs", "");
    let e = f.enroll("otpgate-t6", OtpParams::default(), 1);
    let (ok, logs) = f.pamtester_login("otpgate-t6", format!("{}\n", e.code(0)).as_bytes());
    assert!(ok);
    assert_eq!(
        logs,
        vec![format!(
            "otpgate: user=otpgate-t6 service={} rhost=- result=success method=totp offset=+0",
            f.service
        )]
    );
    let (ok, logs) = f.pamtester_login("otpgate-t6", format!("{}\n", e.code(0)).as_bytes());
    assert!(!ok);
    assert!(
        logs[0].ends_with("result=fail method=totp reason=replay offset=+0"),
        "{logs:?}"
    );
    let (_, logs) = f.pamtester_login("otpgate-t6", b"not-a-code\n");
    assert!(logs[0].ends_with("result=fail reason=bad_code"), "{logs:?}");
}
