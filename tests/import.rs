//! `otpgate import` against files made by the real tools: the
//! `google-authenticator` command (libpam-google-authenticator) and a users
//! file that pam_oath itself updated during logins. The same app codes and
//! scratch codes then log in through pam_otpgate; the codes those modules
//! already accepted are refused. Root only (test users, homes, chown): CI
//! runs as root.

mod common;

use common::*;
use otpgate::core::otp::{Algorithm, OtpParams};
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn otpgate(f: &Fixture, args: &[&str]) -> Output {
    f.otpgate_command(args)
        // pam_oath wrote its times in the test's zone (UTC, see `at`).
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

/// `otpgate import google-authenticator --user USER --file FILE`, which
/// must succeed; its report.
fn import_file(f: &Fixture, user: &str, file: &Path) -> String {
    let o = otpgate(
        f,
        &[
            "import",
            "google-authenticator",
            "--user",
            user,
            "--file",
            &file.display().to_string(),
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    out
}

/// A login through `service` in the fixture's PAM directory (another
/// module's stack, or otpgate's) with the clock frozen at `at`.
fn login_at(f: &Fixture, service: &str, user: &str, at: u64, answer: &str) -> (bool, Vec<String>) {
    let mut cmd = Command::new("pamtester");
    cmd.args([service, user, "authenticate"])
        .env("LD_PRELOAD", format!("libpam_wrapper.so {FAKETIME_LIB}"))
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", &f.confdir)
        .env("PAM_WRAPPER_DEBUGLEVEL", "2")
        .env("TZ", "UTC")
        .env("FAKETIME", utc_string(at))
        .env("DONT_FAKE_MONOTONIC", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (ok, logs, _) = f.pamtester_run(cmd, format!("{answer}\n").as_bytes());
    (ok, logs)
}

fn otpgate_at(f: &Fixture, user: &str, at: u64, answer: &str) -> (bool, Vec<String>) {
    login_at(f, &f.service, user, at, answer)
}

/// A second service in the fixture's directory running another module.
fn stack(f: &Fixture, name: &str, line: &str) -> String {
    let service = format!("otpgate-test-{name}");
    fs::write(f.confdir.join(&service), format!("{line}\n")).unwrap();
    service
}

fn code(secret: &str, params: OtpParams, at: u64) -> String {
    oathtool(secret, params, at)
}

fn hotp(secret_b32: &str, counter: u64) -> String {
    let out = Command::new("oathtool")
        .args(["--hotp", "-b", "-c", &counter.to_string(), secret_b32])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs `google-authenticator` non-interactively; returns (secret, scratch codes).
fn google_authenticator(path: &Path, flags: &[&str]) -> (String, Vec<String>) {
    let o = Command::new("google-authenticator")
        .args(flags)
        .args(["-f", "-q", "-C", "-s"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("google-authenticator is installed by scripts/test.sh");
    assert!(o.status.success(), "google-authenticator: {}", text(&o));
    let body = fs::read_to_string(path).unwrap();
    let secret = body.lines().next().unwrap().to_string();
    let scratch = body
        .lines()
        .skip(1)
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    (secret, scratch)
}

/// A home directory for a test user, removed at the end.
struct Home(PathBuf);

impl Home {
    fn create(user: &TestUser) -> Home {
        let pw = nix::unistd::User::from_name(&user.name).unwrap().unwrap();
        let home = pw.dir.clone();
        let _ = fs::remove_dir_all(&home);
        fs::create_dir_all(&home).unwrap();
        chown(&home, Some(pw.uid.as_raw()), Some(pw.gid.as_raw())).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
        Home(home)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn uid_of(name: &str) -> u32 {
    nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

#[test]
fn google_time_based_with_disallow_reuse_moves_without_reenrolling() {
    if !runs_as_root("google_time_based_with_disallow_reuse_moves_without_reenrolling") {
        return;
    }
    let f = Fixture::new("import-ga-totp", "");
    let user = TestUser::create("otpgate-tga1", "unused-password");
    let home = Home::create(&user);
    let file = home.0.join(".google_authenticator");
    let (secret, scratch) = google_authenticator(
        &file,
        &["-t", "-d", "-r", "3", "-R", "30", "-w", "3", "-e", "5"],
    );
    let uid = uid_of(&user.name);
    chown(&file, Some(uid), None).unwrap();
    assert_eq!(scratch.len(), 5);

    // The user logs in with google-authenticator's module: an app code and
    // a scratch code, both spent there.
    let ga = stack(&f, "ga1", "auth required pam_google_authenticator.so");
    let t = unix_now();
    let app = code(&secret, OtpParams::default(), t);
    assert!(
        login_at(&f, &ga, &user.name, t, &app).0,
        "GA took the app code"
    );
    assert!(
        login_at(&f, &ga, &user.name, t, &scratch[0]).0,
        "GA took a scratch code"
    );
    let before = fs::read(&file).unwrap();
    assert!(String::from_utf8_lossy(&before).contains("\" DISALLOW_REUSE "));

    let o = otpgate(
        &f,
        &["import", "google-authenticator", "--user", &user.name],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for want in [
        "imported from",
        "time-based, SHA1, 6 digits, 30 s",
        "DISALLOW_REUSE",
        "4 scratch codes",
        "RATE_LIMIT 3 30",
        "not changed",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    assert!(
        !out.contains(&secret) && !out.contains(&scratch[1]),
        "{out}"
    );
    assert_eq!(
        fs::read(&file).unwrap(),
        before,
        "the source is never changed"
    );

    // Through pam_otpgate: what GA took is refused, the rest works.
    let (ok, logs) = otpgate_at(&f, &user.name, t, &app);
    assert!(!ok, "the code GA accepted is a replay");
    assert!(logs.iter().any(|l| l.contains("reason=replay")), "{logs:?}");
    assert!(
        !otpgate_at(&f, &user.name, t, &scratch[0]).0,
        "scratch code used in GA"
    );
    let (ok, logs) = otpgate_at(&f, &user.name, t, &scratch[1]);
    assert!(
        ok,
        "an unused scratch code works at the 6-digit prompt: {logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("method=recovery")),
        "{logs:?}"
    );
    let next = code(&secret, OtpParams::default(), t + 30);
    assert!(
        otpgate_at(&f, &user.name, t, &next).0,
        "the next app code works"
    );

    // Every home: the user is found, and kept (already enrolled).
    let o = otpgate(
        &f,
        &[
            "import",
            "google-authenticator",
            "--all-homes",
            "--dry-run",
            "--json",
        ],
    );
    let v = json(&o);
    let me = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == user.name.as_str())
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(me["result"], "kept", "{me}");
}

#[test]
fn google_counter_based_keeps_its_counter() {
    if !runs_as_root("google_counter_based_keeps_its_counter") {
        return;
    }
    let f = Fixture::new("import-ga-hotp", "");
    let file = f.tmp.path().join("ga-hotp");
    let (secret, scratch) = google_authenticator(&file, &["-c", "-u", "-w", "3", "-e", "3"]);
    let ga = stack(
        &f,
        "ga2",
        &format!(
            "auth required pam_google_authenticator.so secret={} user=root",
            file.display()
        ),
    );
    // Counter-based files start at HOTP_COUNTER 1; skip one, take 1 and 3.
    assert!(login_at(&f, &ga, "bin", unix_now(), &hotp(&secret, 1)).0);
    assert!(login_at(&f, &ga, "bin", unix_now(), &hotp(&secret, 3)).0);
    assert!(
        fs::read_to_string(&file)
            .unwrap()
            .contains("\" HOTP_COUNTER 4")
    );

    let out = import_file(&f, "bin", &file);
    assert!(out.contains("HOTP_COUNTER 4 -> next counter 4"), "{out}");
    assert!(out.contains("counter-based"), "{out}");
    for used in [1, 3] {
        assert!(
            !otpgate_at(&f, "bin", unix_now(), &hotp(&secret, used)).0,
            "counter {used}"
        );
    }
    assert!(otpgate_at(&f, "bin", unix_now(), &hotp(&secret, 4)).0);
    assert!(otpgate_at(&f, "bin", unix_now(), &scratch[2]).0);
    let s = json(&otpgate(&f, &["status", "bin", "--json"]));
    assert_eq!(
        (s["kind"].as_str(), s["counter"].as_u64()),
        (Some("hotp"), Some(5))
    );
}

#[test]
fn google_time_based_without_disallow_reuse_counts_codes_up_to_the_import_as_used() {
    if !runs_as_root(
        "google_time_based_without_disallow_reuse_counts_codes_up_to_the_import_as_used",
    ) {
        return;
    }
    let f = Fixture::new("import-ga-reuse", "");
    let file = f.tmp.path().join("ga-reuse");
    let (secret, scratch) = google_authenticator(&file, &["-t", "-D", "-u", "-w", "3", "-e", "2"]);
    assert!(
        !fs::read_to_string(&file)
            .unwrap()
            .contains("DISALLOW_REUSE")
    );
    let ga = stack(
        &f,
        "ga3",
        &format!(
            "auth required pam_google_authenticator.so secret={} user=root",
            file.display()
        ),
    );
    let t = unix_now();
    let app = code(&secret, OtpParams::default(), t);
    assert!(login_at(&f, &ga, "sys", t, &app).0);
    let out = import_file(&f, "sys", &file);
    assert!(out.contains("no DISALLOW_REUSE"), "{out}");
    assert!(
        !otpgate_at(&f, "sys", t, &app).0,
        "the code GA took is refused"
    );
    let later = t + 90;
    assert!(
        otpgate_at(
            &f,
            "sys",
            later,
            &code(&secret, OtpParams::default(), later)
        )
        .0
    );
    assert!(otpgate_at(&f, "sys", later, &scratch[0]).0);
}

/// google-authenticator with a wide window (`-w 17`: codes up to 8 steps
/// ahead) and no DISALLOW_REUSE: every code it could have accepted counts
/// as used, so the app's codes are refused for minutes after the import.
/// The import says until when, `status` and `unlock` say why (they used to
/// say "may wait for the next code", "was the clock set back?" and
/// "unlocked"), and at that time the codes work.
#[test]
fn a_wide_google_window_says_how_long_the_imported_codes_wait() {
    if !runs_as_root("a_wide_google_window_says_how_long_the_imported_codes_wait") {
        return;
    }
    let f = Fixture::new("import-ga-wide", "");
    let file = f.tmp.path().join("ga-wide");
    let (secret, _) = google_authenticator(&file, &["-t", "-D", "-u", "-w", "17", "-e", "1"]);
    let body = fs::read_to_string(&file).unwrap();
    assert!(
        body.contains("WINDOW_SIZE 17") && !body.contains("DISALLOW_REUSE"),
        "{body}"
    );
    let t = unix_now();
    let out = import_file(&f, "sys", &file);
    let guard = f.record("sys").last_step;
    assert!(
        guard >= t / 30 + 8,
        "codes up to 8 steps ahead count as used: {guard}"
    );
    let ready = (guard + 1) * 30;
    assert!(
        out.contains(&format!(
            "the app's codes are refused until about {}",
            utc_string(ready)
        )) && out.contains("min from now")
            && out.contains("recovery codes work meanwhile"),
        "{out}"
    );
    let now_code = code(&secret, OtpParams::default(), t);
    let (ok, logs) = otpgate_at(&f, "sys", t, &now_code);
    assert!(
        !ok && logs.iter().any(|l| l.contains("reason=clock_behind")),
        "{logs:?}"
    );

    let o = otpgate(&f, &["status", "sys"]);
    assert!(
        text(&o).contains("accepted early, here or by the source of an import"),
        "{}",
        text(&o)
    );
    let o = otpgate(&f, &["unlock", "sys"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("codes are still refused for"),
        "{}",
        text(&o)
    );
    assert_eq!(
        f.record("sys").last_step,
        guard,
        "unlock keeps codes accepted early used"
    );
    assert!(!otpgate_at(&f, "sys", t, &now_code).0);

    let at = ready + 1;
    assert!(otpgate_at(&f, "sys", at, &code(&secret, OtpParams::default(), at)).0);
}

/// A 20-byte key as hex, distinct per `n`.
fn hex_key(n: u8) -> String {
    (0..20u8)
        .map(|i| format!("{:02x}", i.wrapping_mul(7) ^ n))
        .collect()
}

fn b32_of_hex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    otpgate::core::otp::encode_secret(&bytes)
}

#[test]
fn a_users_file_pam_oath_updated_imports_with_its_counters_and_last_codes() {
    if !runs_as_root("a_users_file_pam_oath_updated_imports_with_its_counters_and_last_codes") {
        return;
    }
    let f = Fixture::new("import-oath", "");
    let users = f.tmp.path().join("users.oath");
    let (k1, k2, k3, k4) = (hex_key(1), hex_key(2), hex_key(3), hex_key(4));
    fs::write(
        &users,
        format!(
            "# made for the otpgate tests\nHOTP\tdaemon\t-\t{k1}\nHOTP/T30\tbin\t-\t{k2}\nHOTP/T30/7\tsys\t-\t{k3}\nHOTP/T60/8\tsync\t+\t{k4}\nHOTP\tgames\tstatic-pw\t{k1}\nHOTP/E/8\tman\t-\t00112233\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&users, fs::Permissions::from_mode(0o600)).unwrap();
    let oath = stack(
        &f,
        "oath",
        &format!(
            "auth required pam_oath.so usersfile={} window=5",
            users.display()
        ),
    );
    let t = unix_now();
    let (b1, b2, b3, b4) = (
        b32_of_hex(&k1),
        b32_of_hex(&k2),
        b32_of_hex(&k3),
        b32_of_hex(&k4),
    );
    // pam_oath takes daemon's counter 2 and bin's current code, and writes both down.
    assert!(
        login_at(&f, &oath, "daemon", t, &hotp(&b1, 2)).0,
        "pam_oath HOTP login"
    );
    let bin_code = code(&b2, OtpParams::default(), t);
    assert!(
        login_at(&f, &oath, "bin", t, &bin_code).0,
        "pam_oath TOTP login"
    );
    let before = fs::read(&users).unwrap();
    let written = String::from_utf8_lossy(&before).into_owned();
    assert!(
        written.contains(&format!("daemon\t-\t{k1}\t2\t")),
        "{written}"
    );

    let o = otpgate(&f, &["import", "oath", &users.display().to_string()]);
    let out = text(&o);
    // Two lines are not importable, so not everything was imported: 1.
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("games: not imported") && out.contains("static password"),
        "{out}"
    );
    assert!(!out.contains("static-pw"), "{out}");
    assert!(
        out.contains("man: not imported") && out.contains("80 bits"),
        "{out}"
    );
    assert!(out.contains("next counter 3"), "{out}");
    assert!(out.contains("password '+'"), "{out}");
    assert_eq!(
        fs::read(&users).unwrap(),
        before,
        "the users file is never changed"
    );

    // daemon: counter 2 was taken by pam_oath, 3 is next.
    assert!(!otpgate_at(&f, "daemon", t, &hotp(&b1, 2)).0);
    assert!(otpgate_at(&f, "daemon", t, &hotp(&b1, 3)).0);
    // bin: the code pam_oath took stays refused; the next one works.
    let (ok, logs) = otpgate_at(&f, "bin", t, &bin_code);
    assert!(
        !ok && logs.iter().any(|l| l.contains("reason=replay")),
        "{logs:?}"
    );
    assert!(otpgate_at(&f, "bin", t, &code(&b2, OtpParams::default(), t + 30)).0);
    // 7 digits, and 8 digits every 60 s.
    let seven = OtpParams {
        algorithm: Algorithm::Sha1,
        digits: 7,
        period: 30,
    };
    assert!(
        otpgate_at(&f, "sys", t, &code(&b3, seven, t)).0,
        "7-digit code"
    );
    let eight = OtpParams {
        algorithm: Algorithm::Sha1,
        digits: 8,
        period: 60,
    };
    assert!(
        otpgate_at(&f, "sync", t, &code(&b4, eight, t)).0,
        "8-digit 60 s code"
    );
    assert!(!f.record_path("games").exists() && !f.record_path("man").exists());
}

#[test]
fn existing_enrollments_are_kept_unless_forced_and_dry_runs_save_nothing() {
    if !runs_as_root("existing_enrollments_are_kept_unless_forced_and_dry_runs_save_nothing") {
        return;
    }
    let f = Fixture::new("import-force", "");
    let file = f.tmp.path().join("ga");
    let (secret, _) = google_authenticator(&file, &["-t", "-d", "-u", "-w", "3", "-e", "1"]);
    let path = file.display().to_string();
    let enrolled = f.enroll("daemon", OtpParams::default(), 1);
    let args = [
        "import",
        "google-authenticator",
        "--user",
        "daemon",
        "--file",
        &path,
    ];
    let o = otpgate(&f, &args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("already enrolled"), "{}", text(&o));
    assert_eq!(f.record("daemon").secret, enrolled.secret);

    let mut dry = args.to_vec();
    dry.extend(["--dry-run", "--force"]);
    let o = otpgate(&f, &dry);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("would import"), "{}", text(&o));
    assert_eq!(
        f.record("daemon").secret,
        enrolled.secret,
        "dry run saved nothing"
    );

    let mut force = args.to_vec();
    force.extend(["--force", "--json"]);
    let o = otpgate(&f, &force);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["users"][0]["result"], "imported", "{v}");
    assert_eq!(v["users"][0]["recovery_codes"], 1, "{v}");
    assert_eq!(f.record("daemon").secret, secret);
}

/// Files no importer may read: each refused with its reason, nothing saved,
/// the file untouched and never followed.
#[test]
fn hostile_source_files_are_refused_with_a_clear_message() {
    if !runs_as_root("hostile_source_files_are_refused_with_a_clear_message") {
        return;
    }
    let f = Fixture::new("import-hostile", "");
    let real = f.tmp.path().join("real");
    google_authenticator(&real, &["-t", "-d", "-u", "-w", "3", "-e", "2"]);
    let good = fs::read(&real).unwrap();
    let oath_good = format!("HOTP\tdaemon\t-\t{}\n", hex_key(9)).into_bytes();
    let dir = f.tmp.path();
    type Make<'a> = Box<dyn Fn(&Path, &[u8]) + 'a>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "symlink",
            Box::new(|p: &Path, _: &[u8]| std::os::unix::fs::symlink(dir.join("real"), p).unwrap()),
            "symbolic link",
        ),
        (
            "foreign",
            Box::new(|p: &Path, b: &[u8]| {
                fs::write(p, b).unwrap();
                fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
                chown(p, Some(uid_of("bin")), None).unwrap();
            }),
            "owned by",
        ),
        (
            "huge",
            Box::new(|p: &Path, b: &[u8]| {
                let mut big = b.to_vec();
                big.extend(std::iter::repeat_n(b'\n', 70 * 1024));
                fs::write(p, big).unwrap();
                fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
            }),
            "64 KiB",
        ),
        (
            "binary",
            Box::new(|p: &Path, _: &[u8]| {
                let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
                fs::write(p, junk).unwrap();
                fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
            }),
            "binary",
        ),
        (
            "truncated",
            Box::new(|p: &Path, b: &[u8]| {
                // Cut inside a line, as a full disk or a crash leaves it.
                let mut cut = b.len() / 2;
                while b[cut - 1] == b'\n' {
                    cut -= 1;
                }
                fs::write(p, &b[..cut]).unwrap();
                fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
            }),
            "truncated",
        ),
    ];
    for (name, make, why) in &cases {
        // google-authenticator, for daemon, from a file given by path.
        let p = dir.join(format!("ga-{name}"));
        make(&p, &good);
        let before = fs::symlink_metadata(&p).unwrap();
        let o = otpgate(
            &f,
            &[
                "import",
                "google-authenticator",
                "--user",
                "daemon",
                "--file",
                &p.display().to_string(),
            ],
        );
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {out}");
        assert!(out.contains(why), "{name}: want {why:?} in:\n{out}");
        assert!(!f.record_path("daemon").exists(), "{name}: nothing saved");
        let after = fs::symlink_metadata(&p).unwrap();
        assert_eq!(
            (before.len(), before.modified().unwrap()),
            (after.len(), after.modified().unwrap()),
            "{name}: untouched"
        );
        // pam_oath users file.
        let p = dir.join(format!("oath-{name}"));
        make(&p, &oath_good);
        let o = otpgate(&f, &["import", "oath", &p.display().to_string()]);
        let out = text(&o);
        assert_ne!(o.status.code(), Some(0), "{name}: {out}");
        let why = if *name == "foreign" {
            "not owned by root"
        } else {
            why
        };
        assert!(out.contains(why), "oath {name}: want {why:?} in:\n{out}");
        assert!(
            !f.record_path("daemon").exists(),
            "oath {name}: nothing saved"
        );
    }
    assert_eq!(
        fs::read(&real).unwrap(),
        good,
        "the symlink's target was never touched"
    );
}
