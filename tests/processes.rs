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

/// Starts `n` logins one after another, each up to its prompt, then answers
/// all at once. Every child must end with exactly one module log line: a
/// success, or a refusal as a replay, bad code or lock (the default
/// deny=10 locks after ten), never a start-up failure.
fn race(f: &Fixture, user: &str, text: &str, n: usize) -> usize {
    let mut children: Vec<AtPrompt> = (0..n)
        .map(|_| AtPrompt::start(f.pamtester(user), "Verification code: "))
        .collect();
    for c in &mut children {
        c.answer(text);
    }
    let mut wins = 0;
    for c in children {
        let done = c.finish();
        let logs = done.logs();
        assert_eq!(logs.len(), 1, "{}{}", done.stdout, done.stderr);
        if done.success() {
            assert!(logs[0].contains("result=success"), "{logs:?}");
            wins += 1;
        } else {
            assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
            assert!(
                ["reason=replay", "reason=bad_code", "reason=locked"]
                    .iter()
                    .any(|r| logs[0].contains(r)),
                "{logs:?}"
            );
        }
    }
    wins
}

#[test]
fn twenty_logins_with_one_totp_code_exactly_one_succeeds() {
    let f = Fixture::new("race-totp", "");
    let e = f.enroll("daemon", OtpParams::default(), 2);
    assert_eq!(race(&f, "daemon", &e.code(0), 20), 1);
}

#[test]
fn twenty_logins_with_one_recovery_code_exactly_one_succeeds() {
    let f = Fixture::new("race-recovery", "");
    let e = f.enroll("bin", OtpParams::default(), 3);
    assert_eq!(race(&f, "bin", &e.recovery[1], 20), 1);
    assert_eq!(f.record("bin").recovery.remaining(), 2);
}

#[test]
fn sigkill_during_logins_loses_nothing_and_reuses_nothing() {
    let f = Fixture::new("crash", "deny=1000 hard_deny=0");
    let user = "sys";
    let e = f.enroll(user, OtpParams::default(), 40);
    // The last 5 codes are never used during the storm: they must all work after.
    let (storm, reserve) = e.recovery.split_at(35);
    // Every accepted answer, with how often it was accepted.
    let mut successes: HashMap<String, usize> = HashMap::new();
    // Answers whose login ended unseen (killed): they may or may not be used.
    let mut unknown: Vec<String> = Vec::new();
    let mut in_flight: Vec<(AtPrompt, String)> = Vec::new();
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
        let mut child = AtPrompt::start(f.pamtester(user), "Verification code: ");
        child.answer(&text);
        if seed.is_multiple_of(3) {
            // Kill the login just answered, wherever it happens to be:
            // reading, hashing, writing the temp file, renaming, syncing.
            let (hit, done) = child.kill();
            if hit {
                killed += 1;
                unknown.push(text);
            } else {
                settle(done, text, &mut successes);
            }
        } else {
            in_flight.push((child, text));
        }
        if in_flight.len() >= 20 {
            let (c, text) = in_flight.remove((seed as usize >> 8) % in_flight.len());
            settle(c.finish(), text, &mut successes);
        }
    }
    for (c, text) in in_flight {
        settle(c.finish(), text, &mut successes);
    }
    assert!(killed > 20, "the storm killed only {killed} running logins");
    assert!(
        successes.len() > 5,
        "the storm logged in too rarely: {successes:?}"
    );
    let totp = |c: &String| c.len() <= 8;
    // No code was accepted twice: each recovery code once, each TOTP code
    // (one per time step) once.
    for (code, n) in &successes {
        assert_eq!(
            *n,
            1,
            "{} accepted {n} times",
            if totp(code) {
                "a TOTP code"
            } else {
                "a recovery code"
            }
        );
    }
    // The record parses; exactly the used recovery codes are gone: every code
    // seen accepted is spent, every code never tried still works, and a
    // killed login spent its code at most once.
    let r = f.record(user);
    let accepted: Vec<&String> = successes.keys().filter(|c| !totp(c)).collect();
    for code in &accepted {
        assert_eq!(
            f.login(user, code).code,
            PAM_AUTH_ERR,
            "a used recovery code worked again"
        );
    }
    let maybe: std::collections::HashSet<&String> = unknown
        .iter()
        .filter(|c| !totp(c) && !accepted.contains(c))
        .collect();
    let untouched: Vec<&String> = storm
        .iter()
        .filter(|c| !accepted.contains(c) && !maybe.contains(c))
        .collect();
    let spent_by_killed = 40 - accepted.len() - r.recovery.remaining();
    assert!(
        spent_by_killed <= maybe.len(),
        "{spent_by_killed} codes gone beyond those seen used"
    );
    for code in untouched.iter().take(3) {
        assert_eq!(
            f.login(user, code).code,
            PAM_SUCCESS,
            "an untried code was lost"
        );
    }
    for code in reserve {
        assert_eq!(
            f.login(user, code).code,
            PAM_SUCCESS,
            "a reserve code was lost"
        );
    }
    // No TOTP code accepted during the storm is accepted again.
    for code in successes.keys().filter(|c| totp(c)) {
        assert_eq!(
            f.login(user, code).code,
            PAM_AUTH_ERR,
            "a TOTP code worked twice"
        );
    }
    // No temp file is left behind by the storm's last write.
    let leftovers: Vec<_> = fs::read_dir(&f.store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Records a login that ended by itself: accepted, or refused (exit 1).
fn settle(done: Finished, text: String, successes: &mut HashMap<String, usize>) {
    if done.success() {
        *successes.entry(text).or_default() += 1;
    } else {
        assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
    }
}

/// Sets up uucp, lets `damage` break the store, then checks the login is
/// refused with a log line naming `why`, and the record is left byte for byte.
fn refused_with(name: &str, why: &str, damage: impl FnOnce(&Fixture)) {
    let f = Fixture::new(name, "");
    let user = "sync";
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
        fs::set_permissions(f.record_path("sync"), fs::Permissions::from_mode(0o644)).unwrap();
    });
}

#[test]
fn hostile_record_symlink() {
    refused_with("symlink", "is a symbolic link", |f| {
        let real = f.tmp.path().join("elsewhere.toml");
        fs::rename(f.record_path("sync"), &real).unwrap();
        symlink(&real, f.record_path("sync")).unwrap();
    });
}

#[test]
fn hostile_record_hard_link() {
    refused_with("hardlink", "has 2 hard links", |f| {
        fs::hard_link(f.record_path("sync"), f.tmp.path().join("copy.toml")).unwrap();
    });
}

#[test]
fn hostile_store_dir_writable_by_others() {
    refused_with("dirmode", "writable by group/other", |f| {
        fs::set_permissions(&f.store, fs::Permissions::from_mode(0o777)).unwrap();
    });
}

#[test]
fn hostile_store_parent_writable_by_others() {
    refused_with(
        "parentmode",
        "parent directory mode 0777 is writable",
        |f| {
            fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
        },
    );
}

#[test]
fn hostile_store_path_through_a_symlink_with_a_trailing_slash() {
    refused_with("storelink", "is a symbolic link", |f| {
        let link = f.tmp.path().join("link");
        symlink(&f.store, &link).unwrap();
        f.set_stack(&format!(
            "auth required {} store={}/ {}",
            module_path().display(),
            link.display(),
            owner_ok()
        ));
    });
}

#[test]
fn hostile_record_truncated() {
    // Cut at a line end, the worst place: what is left is valid TOML whose
    // missing fields (recovery codes, locks, the state id) would take
    // their defaults. (Anywhere else: `a_record_cut_short_anywhere_is_refused`.)
    refused_with("truncated", "cut short", |f| {
        let p = f.record_path("sync");
        let bytes = fs::read(&p).unwrap();
        let third = bytes.len() / 3;
        let cut = third + bytes[third..].iter().position(|&b| b == b'\n').unwrap() + 1;
        fs::write(&p, &bytes[..cut]).unwrap();
    });
}

#[test]
fn hostile_record_unknown_version() {
    refused_with("version", "unknown record version 9", |f| {
        let p = f.record_path("sync");
        let text = fs::read_to_string(&p)
            .unwrap()
            .replace("version = 1", "version = 9");
        fs::write(&p, text).unwrap();
    });
}

#[test]
fn hostile_record_fifo_does_not_hang() {
    refused_with("fifo", "not a regular file", |f| {
        let p = f.record_path("sync");
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
    if !runs_as_root("hostile_record_owned_by_another_user") {
        return; // chown needs root; CI runs as root
    }
    refused_with("owner", "owned by uid 65534", |f| {
        std::os::unix::fs::chown(f.record_path("sync"), Some(65534), None).unwrap();
    });
}

/// The per-user lock file is opened and flocked before the record is read
/// again under the lock: it is held to the same rules as the record.
fn lock_file(f: &Fixture) -> std::path::PathBuf {
    f.store.join(".sync.lock")
}

#[test]
fn hostile_lock_file_mode_0644() {
    refused_with(
        "lockmode",
        ".sync.lock: mode 0644 gives group/other access",
        |f| {
            fs::set_permissions(lock_file(f), fs::Permissions::from_mode(0o644)).unwrap();
        },
    );
}

#[test]
fn hostile_lock_file_owned_by_another_user() {
    if !runs_as_root("hostile_lock_file_owned_by_another_user") {
        return; // chown needs root; CI runs as root
    }
    refused_with("lockowner", ".sync.lock: owned by uid 65534", |f| {
        std::os::unix::fs::chown(lock_file(f), Some(65534), None).unwrap();
    });
}

/// `pamtester` run as uid/gid 65534, like a web or RADIUS server's own
/// account calling PAM for its users.
fn pamtester_as_nobody(f: &Fixture, user: &str) -> std::process::Command {
    let plain = f.pamtester(user);
    let mut c = std::process::Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "env"]);
    // libpam-wrapper is preloaded into pamtester only: preloaded into
    // setpriv too, it would set itself up twice in one pid (before and
    // after the exec) and race other tests for its directory names.
    for (k, v) in plain.get_envs() {
        if let Some(v) = v {
            if k == "LD_PRELOAD" {
                c.arg(format!("LD_PRELOAD={}", v.to_string_lossy()));
            } else {
                c.env(k, v);
            }
        }
    }
    c.arg("pamtester").args(plain.get_args());
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

#[test]
fn a_service_account_trusts_its_own_store_only_with_owner_ok() {
    if !runs_as_root("a_service_account_trusts_its_own_store_only_with_owner_ok") {
        return; // chown and setpriv need root; CI runs as root
    }
    let f = Fixture::new("owner-ok", "");
    let user = "sync";
    let e = f.enroll(user, OtpParams::default(), 1);
    // The service account owns the store and everything in it.
    fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for p in [f.store.clone(), f.record_path(user)] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    let lock = f.store.join(format!(".{user}.lock"));
    std::os::unix::fs::chown(&lock, Some(65534), Some(65534)).unwrap();
    let input = format!("{}\n", e.code(0));
    let (ok, logs, _) = f.pamtester_run(pamtester_as_nobody(&f, user), input.as_bytes());
    assert!(
        !ok,
        "a store owned by the calling account is not trusted by default"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("reason=store_error") && l.contains("owned by uid 65534")),
        "{logs:?}"
    );
    f.set_stack(&format!(
        "auth required {} store={} owner_ok",
        module_path().display(),
        f.store.display()
    ));
    let (ok, logs, text) = f.pamtester_run(pamtester_as_nobody(&f, user), input.as_bytes());
    assert!(ok, "owner_ok trusts the own account: {logs:?} {text}");
}

#[test]
fn hostile_user_name_with_dot_dot() {
    let f = Fixture::new("dotdot", "");
    f.enroll("sync", OtpParams::default(), 1);
    let (ok, logs) = f.pamtester_login("../sync", b"123456\n");
    assert!(!ok);
    // No account has that name: refused before it could become a path.
    assert!(
        logs.iter()
            .any(|l| l.contains("reason=not_enrolled") && l.contains("no such account")),
        "{logs:?}"
    );
}

#[test]
fn hostile_answers_are_refused_and_the_host_survives() {
    let f = Fixture::new("answers", "");
    let e = f.enroll("games", OtpParams::default(), 1);
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
        let t = f.login("games", a);
        assert_eq!(t.code, PAM_AUTH_ERR, "answer {i}");
        assert_eq!(f.record("games").failures as usize, i + 1);
    }
    // The host (this process) is alive and the right code still works.
    assert_eq!(f.login("games", &e.code(0)).code, PAM_SUCCESS);
}

#[test]
fn hostile_answers_through_a_real_application_are_logged() {
    let f = Fixture::new("answers-logged", "");
    let e = f.enroll("man", OtpParams::default(), 1);
    let long = format!("{}\n", "9".repeat(1 << 20));
    let control = format!("\x01\x1b[2J{}\x07\n", e.code(0));
    for input in [long.as_str(), control.as_str()] {
        let (ok, logs) = f.pamtester_login("man", input.as_bytes());
        assert!(!ok);
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert!(logs[0].ends_with("result=fail reason=bad_code"), "{logs:?}");
        assert!(!logs[0].contains(&e.code(0)));
    }
}

#[test]
fn log_lines_name_user_service_rhost_result_method_reason() {
    let f = Fixture::new("logs", "");
    let user = "irc";
    let e = f.enroll(user, OtpParams::default(), 1);
    // A frozen clock (libfaketime) makes the matched offset exact.
    let t0: u64 = 1_800_000_000;
    let run = |t: u64, answer: &str| {
        let (ok, logs, _) =
            f.pamtester_run(f.pamtester_at(user, t), format!("{answer}\n").as_bytes());
        (ok, logs)
    };
    let code = oathtool(&e.secret, e.params, t0);
    let (ok, logs) = run(t0, &code);
    assert!(ok);
    assert_eq!(
        logs,
        vec![format!(
            "otpgate: user={user} service={} rhost=- result=success method=totp offset=+0",
            f.service
        )]
    );
    let (ok, logs) = run(t0 + 30, &code);
    assert!(!ok);
    assert_eq!(
        logs,
        vec![format!(
            "otpgate: user={user} service={} rhost=- result=fail method=totp reason=replay offset=-1",
            f.service
        )]
    );
    let (_, logs) = run(t0 + 60, &oathtool(&e.secret, e.params, t0 + 90));
    assert!(
        logs[0].ends_with("result=success method=totp offset=+1"),
        "{logs:?}"
    );
    let (_, logs) = run(t0 + 60, "not-a-code");
    assert!(logs[0].ends_with("result=fail reason=bad_code"), "{logs:?}");
}

#[test]
fn debug_adds_settings_but_never_codes() {
    let f = Fixture::new("debug", "debug window=2");
    let e = f.enroll("lp", OtpParams::default(), 1);
    let code = e.code(0);
    let (ok, logs) = f.pamtester_login("lp", format!("{code}\n").as_bytes());
    assert!(ok);
    assert!(
        logs[0].starts_with(&format!(
            "otpgate: debug: user=lp store={} window=2 ",
            // The line escapes `/` like every field.
            f.store.display().to_string().replace('/', "\\x2f")
        )),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .all(|l| !l.contains(&code) && !l.contains(&e.secret)),
        "{logs:?}"
    );
}

#[test]
fn a_full_disk_denies_the_login_and_loses_nothing() {
    use std::process::Command;
    if !runs_as_root("a_full_disk_denies_the_login_and_loses_nothing") {
        return; // mounting a tmpfs needs root; CI runs as root
    }
    let f = Fixture::new("fulldisk", "");
    let user = "mail";
    let e = f.enroll(user, OtpParams::default(), 1);
    let before = fs::read(f.record_path(user)).unwrap();
    // Move the store onto a tiny filesystem, then fill it up.
    let small = f.tmp.path().join("small");
    fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
        .arg(&small)
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(small.clone());
    let store = small.join("store");
    fs::create_dir(&store).unwrap();
    fs::set_permissions(&store, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(store.join(format!("{user}.toml")), &before).unwrap();
    fs::set_permissions(
        store.join(format!("{user}.toml")),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // Create the lock file while there is room, then fill every byte left.
    fs::write(store.join(format!(".{user}.lock")), b"").unwrap();
    fs::set_permissions(
        store.join(format!(".{user}.lock")),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let filler = small.join("filler");
    let mut fill = fs::File::create(&filler).unwrap();
    while fill.write_all(&[0u8; 4096]).is_ok() {}
    drop(fill);
    f.set_stack(&format!(
        "auth required {} store={}",
        module_path().display(),
        store.display()
    ));

    let code = e.code(0);
    let (ok, logs) = f.pamtester_login(user, format!("{code}\n").as_bytes());
    assert!(!ok, "a login whose state cannot be saved is refused");
    assert!(
        logs.iter()
            .any(|l| l.contains("reason=store_error") && l.contains("No space left")),
        "{logs:?}"
    );
    assert_eq!(
        fs::read(store.join(format!("{user}.toml"))).unwrap(),
        before,
        "the record is intact"
    );
    assert!(
        !store.join(format!(".{user}.toml.tmp")).exists(),
        "no temp file left behind"
    );
    // With room again, the same code works: it was never used up.
    fs::remove_file(&filler).unwrap();
    let (ok, logs) = f.pamtester_login(user, format!("{code}\n").as_bytes());
    assert!(ok, "{logs:?}");
}

/// The login state lives in `.USER.lock`: hostile versions of it refuse
/// the login like a hostile record does.
fn state_path(f: &Fixture) -> std::path::PathBuf {
    f.store.join(".sync.lock")
}

#[test]
fn hostile_state_too_large() {
    refused_with("state-size", "login state is 1025 bytes", |f| {
        fs::write(state_path(f), vec![0u8; 1025]).unwrap();
    });
}

#[test]
fn hostile_state_garbage_is_corrupt_and_never_reset() {
    refused_with("state-garbage", "login state is corrupt", |f| {
        fs::write(state_path(f), vec![0x5au8; 1024]).unwrap();
    });
}

#[test]
fn hostile_state_symlink() {
    refused_with("state-symlink", "is a symbolic link", |f| {
        let _ = fs::remove_file(state_path(f));
        symlink("/etc/passwd", state_path(f)).unwrap();
    });
}

#[test]
fn hostile_state_fifo_does_not_hang() {
    refused_with("state-fifo", "not a regular file", |f| {
        let _ = fs::remove_file(state_path(f));
        let ok = std::process::Command::new("mkfifo")
            .args(["-m", "600"])
            .arg(state_path(f))
            .status()
            .unwrap();
        assert!(ok.success());
    });
}

#[test]
fn hostile_state_hard_link_and_mode() {
    refused_with("state-link", "hard links", |f| {
        fs::write(state_path(f), b"").unwrap();
        fs::hard_link(state_path(f), f.tmp.path().join("elsewhere")).unwrap();
    });
    refused_with("state-mode", "mode 0644", |f| {
        fs::write(state_path(f), b"").unwrap();
        fs::set_permissions(state_path(f), fs::Permissions::from_mode(0o644)).unwrap();
    });
}
