//! The `otpgate` command as an admin runs it; codes from `oathtool`; the
//! printed QR code decoded by `zbarimg`.

mod common;

use common::*;
use otpgate::core::otp::{Algorithm, OtpParams};
use otpgate::pam::client::{PAM_AUTH_ERR, PAM_SUCCESS};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_otpgate");
/// A fixed secret so tests can compute codes before enrolling.
const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// An account every Debian system has, for tests that need a real user
/// (each test has its own store, so they do not share the enrollment).
const ACCOUNT: &str = "daemon";

/// The command on the fixture's store, with no site config and no sudo
/// variables; stdin, stdout and stderr piped.
fn command(f: &Fixture, args: &[&str]) -> Command {
    let mut c = f.otpgate_command(args);
    c.stdin(Stdio::piped());
    c
}

fn otpgate(f: &Fixture, args: &[&str], stdin: &str) -> Output {
    run_with(command(f, args), stdin)
}

/// Runs a prepared command with `stdin` as its input.
fn run_with(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd.spawn().unwrap();
    // A command that refuses early may exit before reading its input.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn code_now(params: OtpParams) -> String {
    oathtool(SECRET, params, unix_now())
}

#[test]
fn enroll_json_prints_one_object_and_saves_a_private_record() {
    let f = Fixture::new("cli-json", "");
    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--no-verify",
            "--json",
            "--issuer",
            "Acme",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let secret = v["secret"].as_str().unwrap();
    assert_eq!(
        v["uri"],
        format!("otpauth://totp/Acme:daemon?secret={secret}&issuer=Acme")
    );
    let codes = v["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let meta = fs::metadata(f.record_path("daemon")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(f.record_path("daemon")).unwrap();
    for c in codes {
        let c = c.as_str().unwrap();
        assert!(
            !text.contains(c) && !text.contains(&c.replace('-', "")),
            "recovery code stored in clear"
        );
    }
    // The enrolled secret logs in through PAM with a code from oathtool.
    let code = oathtool(secret, OtpParams::default(), unix_now());
    assert_eq!(f.login("daemon", &code).code, PAM_SUCCESS);
    assert_eq!(
        f.login("daemon", codes[0].as_str().unwrap()).code,
        PAM_SUCCESS
    );
}

#[test]
fn without_an_issuer_the_app_shows_the_host_name() {
    let f = Fixture::new("cli-issuer", "");
    let o = otpgate(&f, &["enroll", "daemon", "--no-verify", "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = Command::new("uname").arg("-n").output().unwrap();
    let host = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(!host.is_empty());
    let v = json(&o);
    let secret = v["secret"].as_str().unwrap();
    assert_eq!(
        v["uri"],
        format!("otpauth://totp/{host}:daemon?secret={secret}&issuer={host}")
    );
}

#[test]
fn enroll_verifies_a_code_and_uses_it_up() {
    let f = Fixture::new("cli-code", "");
    let wrong = otpgate(
        &f,
        &[
            "enroll", "daemon", "--secret", SECRET, "--code", "000000", "--qr", "none",
        ],
        "",
    );
    if code_now(OtpParams::default()) != "000000" {
        assert_eq!(wrong.status.code(), Some(1));
        assert!(
            stderr(&wrong).contains("otpgate: the code does not match ("),
            "{}",
            stderr(&wrong)
        );
        assert!(
            !f.record_path("daemon").exists(),
            "a wrong --code saves nothing"
        );
    }
    let code = code_now(OtpParams::default());
    let o = otpgate(
        &f,
        &[
            "enroll", "daemon", "--secret", SECRET, "--code", &code, "--qr", "none",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP"),
        "{out}"
    );
    assert!(out.contains("Recovery codes"), "{out}");
    assert!(!out.contains(&code), "the expected code is never printed");
    // The code that proved the enrollment cannot be replayed at login.
    assert_eq!(f.login("daemon", &code).code, PAM_AUTH_ERR);
}

#[test]
fn enroll_asks_three_times_then_saves_nothing() {
    let f = Fixture::new("cli-ask", "");
    let o = otpgate(
        &f,
        &["enroll", "daemon", "--secret", SECRET, "--qr", "none"],
        "1\n2\n3\n",
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o)
            .matches("Enter the code the app shows now: ")
            .count(),
        3
    );
    assert!(!f.record_path("daemon").exists());
    let input = format!("111\n{}\n", code_now(OtpParams::default()));
    let o = otpgate(
        &f,
        &["enroll", "daemon", "--secret", SECRET, "--qr", "none"],
        &input,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(f.record_path("daemon").exists());
}

#[test]
fn every_algorithm_digits_and_period_the_cli_offers_match_oathtool() {
    let f = Fixture::new("cli-params", "");
    for (i, alg) in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512]
        .into_iter()
        .enumerate()
    {
        for digits in [6u8, 8] {
            for period in [15u32, 30, 60, 120] {
                // 24 combinations, 12 accounts: --force re-enrolls one.
                let user =
                    ACCOUNTS[(i * 8 + usize::from(digits) + period as usize) % ACCOUNTS.len()];
                let params = OtpParams {
                    algorithm: alg,
                    digits,
                    period,
                };
                let code = code_now(params);
                let o = otpgate(
                    &f,
                    &[
                        "enroll",
                        user,
                        "--force",
                        "--secret",
                        SECRET,
                        "--algorithm",
                        &alg.as_str().to_lowercase(),
                        "--digits",
                        &digits.to_string(),
                        "--period",
                        &period.to_string(),
                        "--code",
                        &code,
                        "--json",
                        "--recovery-codes",
                        "1",
                    ],
                    "",
                );
                assert_eq!(
                    o.status.code(),
                    Some(0),
                    "{alg} {digits} {period}: {}",
                    stderr(&o)
                );
                let uri = json(&o)["uri"].as_str().unwrap().to_string();
                assert_eq!(uri.contains("algorithm="), alg != Algorithm::Sha1, "{uri}");
                assert_eq!(uri.contains("digits=8"), digits == 8, "{uri}");
                assert_eq!(uri.contains("period="), period != 30, "{uri}");
            }
        }
    }
}

#[test]
fn re_enroll_needs_force_and_force_replaces_the_secret() {
    let f = Fixture::new("cli-force", "");
    assert_eq!(
        otpgate(&f, &["enroll", "daemon", "--no-verify", "--json"], "")
            .status
            .code(),
        Some(0)
    );
    let before = fs::read(f.record_path("daemon")).unwrap();
    let o = otpgate(&f, &["enroll", "daemon", "--no-verify", "--json"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already enrolled"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(fs::read(f.record_path("daemon")).unwrap(), before);
    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--no-verify",
            "--json",
            "--force",
            "--secret",
            "-",
        ],
        &format!("{}\n", SECRET.to_lowercase()),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["secret"], SECRET);
}

#[test]
fn printed_qr_code_decodes_to_the_printed_uri() {
    let f = Fixture::new("cli-qr", "");
    for (style, user) in [("ansi", "daemon"), ("utf8", "bin")] {
        let o = otpgate(
            &f,
            &[
                "enroll",
                user,
                "--no-verify",
                "--qr",
                style,
                "--issuer",
                "Acme Corp",
                "--digits",
                "8",
            ],
            "",
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = stdout(&o);
        let uri = out
            .lines()
            .find_map(|l| l.strip_prefix("URI: "))
            .unwrap()
            .to_string();
        let picture: String = out
            .lines()
            .filter(|l| {
                l.contains('█')
                    || l.contains('▀')
                    || l.contains('▄')
                    || (l.starts_with("\x1b[30;107m"))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        if style == "ansi" {
            assert!(
                picture.lines().all(|l| l.starts_with("\x1b[30;107m")),
                "forced colours"
            );
        }
        let modules = otpgate::cli::qr::parse(&picture);
        assert!(modules.len() > 20);
        let img = f.tmp.path().join(format!("qr-{style}.pgm"));
        let decoded = zbar_decode(&light_of(&modules), 6, &img);
        assert_eq!(
            decoded.as_deref(),
            Some(uri.as_str()),
            "zbarimg found no code"
        );
        assert!(
            uri.contains("Acme%20Corp") && uri.ends_with("&digits=8"),
            "{uri}"
        );
    }
}

#[test]
fn recovery_replaces_every_earlier_code() {
    let f = Fixture::new("cli-recovery", "");
    let old = json(&otpgate(
        &f,
        &["enroll", "daemon", "--no-verify", "--json"],
        "",
    ));
    let o = otpgate(&f, &["recovery", "daemon", "--count", "4", "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let new = json(&o)["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(new.len(), 4);
    assert_eq!(
        f.login("daemon", old["recovery_codes"][0].as_str().unwrap())
            .code,
        PAM_AUTH_ERR
    );
    assert_eq!(
        f.login("daemon", new[3].as_str().unwrap()).code,
        PAM_SUCCESS
    );
    let o = otpgate(&f, &["recovery", "news"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("otpgate: news is not enrolled ("),
        "{}",
        stderr(&o)
    );
    assert_eq!(otpgate(&f, &["unlock", "news"], "").status.code(), Some(1));
    assert!(
        !f.store.join(".news.lock").exists(),
        "no lock file for a name that is not enrolled"
    );
}

#[test]
fn status_unlock_and_disable() {
    let f = Fixture::new("cli-admin", "deny=3");
    otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--no-verify",
            "--json",
            "--recovery-codes",
            "5",
        ],
        "",
    );
    otpgate(&f, &["enroll", "bin", "--no-verify", "--json"], "");
    for _ in 0..3 {
        f.login("daemon", "000000x");
    }
    let v = json(&otpgate(&f, &["status", "daemon", "--json"], ""));
    assert_eq!(v["failures"], 3);
    assert_eq!(v["locked"], true);
    assert_eq!(v["recovery_codes_left"], 5);
    let all = json(&otpgate(&f, &["status", "--json"], ""));
    let users: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users, ["bin", "daemon"]);
    let text = stdout(&otpgate(&f, &["status"], ""));
    // A broken record shows up in the list, and the list exits 1.
    fs::write(f.record_path("sys"), "version = 1\nsecret = ").unwrap();
    fs::set_permissions(f.record_path("sys"), fs::Permissions::from_mode(0o600)).unwrap();
    let broken = otpgate(&f, &["status"], "");
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        stdout(&broken).contains("sys") && stdout(&broken).contains("ERROR: "),
        "{}",
        stdout(&broken)
    );
    fs::remove_file(f.record_path("sys")).unwrap();
    assert!(text.contains("daemon") && text.contains("bin"), "{text}");

    assert_eq!(
        otpgate(&f, &["unlock", "daemon"], "").status.code(),
        Some(0)
    );
    let v = json(&otpgate(&f, &["status", "daemon", "--json"], ""));
    assert_eq!(
        (v["failures"].as_u64(), v["locked"].as_bool()),
        (Some(0), Some(false))
    );

    let o = otpgate(&f, &["disable", "bin"], "y\n");
    assert_eq!(
        o.status.code(),
        Some(2),
        "no terminal and no --yes: refused"
    );
    assert!(f.record_path("bin").exists());
    assert_eq!(
        otpgate(&f, &["disable", "bin", "--yes"], "").status.code(),
        Some(0)
    );
    assert!(!f.record_path("bin").exists());
    assert_eq!(
        otpgate(&f, &["disable", "bin", "--yes"], "").status.code(),
        Some(1)
    );
    let o = otpgate(&f, &["status", "bin", "--json"], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["enrolled"], false);
}

#[test]
fn usage_errors_exit_2() {
    let f = Fixture::new("cli-usage", "");
    for args in [
        vec!["enroll", "daemon", "--digits", "7"],
        vec!["enroll", "daemon", "--period", "5", "--no-verify"],
        vec!["enroll", "daemon", "--secret", "!!", "--no-verify"],
        vec!["enroll", "../etc", "--no-verify"],
        vec!["frobnicate"],
    ] {
        let o = otpgate(&f, &args, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn without_root_it_explains_sudo() {
    if !runs_as_root("without_root_it_explains_sudo") {
        return;
    }
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sudo otpgate"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn enroll_refuses_to_create_a_store_under_an_unsafe_parent() {
    let f = Fixture::new("cli-unsafe-parent", "");
    let shared = f.tmp.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let store = shared.join("otpgate");
    let o = Command::new(BIN)
        .arg("--store")
        .arg(&store)
        .arg("--config")
        .arg(f.tmp.path().join("no-site-config.toml"))
        .args(["enroll", "daemon", "--no-verify", "--secret", SECRET])
        .env_remove("SUDO_USER")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("parent directory mode 0777 is writable by group/other"),
        "{}",
        stderr(&o)
    );
    assert!(
        !store.exists(),
        "a store was created under an unsafe parent"
    );
}

#[test]
fn a_store_owned_by_a_user_serves_that_user_only() {
    if !runs_as_root("a_store_owned_by_a_user_serves_that_user_only") {
        return; // chown and setpriv need root; CI runs as root
    }
    let f = Fixture::new("cli-own-store", "");
    fs::set_permissions(f.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&f.store, Some(65534), Some(65534)).unwrap();
    let config = f.tmp.path().join("no-site-config.toml");
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .arg("--store")
        .arg(&f.store)
        .arg("--config")
        .arg(&config)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Root trusts root only: the same store is refused.
    let o = otpgate(&f, &["status"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("owned by uid 65534"), "{}", stderr(&o));
}

#[test]
fn admin_changes_leave_an_audit_line_in_syslog() {
    use std::os::unix::net::UnixDatagram;
    if !runs_as_root("admin_changes_leave_an_audit_line_in_syslog") {
        return; // a private mount namespace needs root; CI runs as root
    }
    let f = Fixture::new("cli-audit", "");
    // The command runs in its own mount namespace where /dev/log is our socket.
    let sock_path = f.tmp.path().join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let run = |args: &str| {
        let script = format!(
            "mount -t tmpfs none /dev && touch /dev/log && mount --bind {} /dev/log && exec {BIN} --store {} --config {} {args}",
            sock_path.display(),
            f.store.display(),
            // A path no machine has: never /nonexistent, which exists on some.
            f.tmp.path().join("no-site-config.toml").display()
        );
        let o = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run("enroll daemon --no-verify --json --recovery-codes 2");
    run("unlock daemon");
    run("disable daemon --yes");
    sock.set_nonblocking(true).unwrap();
    let mut lines = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(lines.len(), 3, "{lines:#?}");
    // <85> = LOG_AUTHPRIV | LOG_NOTICE.
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("<85>") && l.contains("otpgate[")),
        "{lines:#?}"
    );
    assert!(
        lines[0].contains("otpgate: action=enroll user=daemon by=root store="),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with(
            "replaced=false verified=false algorithm=SHA1 digits=6 period=30 recovery_codes=2"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("action=unlock user=daemon"));
    assert!(lines[2].contains("action=disable user=daemon"));
}

/// A command's output goes to `sink` instead of a pipe we read.
fn with_stdout(mut cmd: Command, sink: impl Into<Stdio>) -> Command {
    cmd.stdout(sink);
    cmd
}

/// /dev/full: every write fails with ENOSPC.
fn full() -> fs::File {
    fs::File::create("/dev/full").unwrap()
}

/// The write end of a pipe whose reader is already gone: every write fails
/// with EPIPE (`| head -1` after head exited).
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

fn assert_unwritable_output_refused(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(o));
    let err = stderr(o);
    assert!(
        err.contains("otpgate: cannot write the output (") && !err.contains("panicked"),
        "{what}: {err}"
    );
    assert!(err.contains("nothing was saved"), "{what}: {err}");
    assert!(!err.contains("os error"), "{what}: {err}");
}

#[test]
fn output_that_cannot_be_written_saves_nothing() {
    let f = Fixture::new("cli-full", "");
    let user = ACCOUNT;
    let enroll_json = ["enroll", user, "--no-verify", "--json"];
    let enroll_text = ["enroll", user, "--no-verify", "--qr", "none"];
    for (args, sink, what) in [
        (
            &enroll_json[..],
            Stdio::from(full()),
            "enroll --json > /dev/full",
        ),
        (&enroll_text[..], Stdio::from(full()), "enroll > /dev/full"),
        (
            &enroll_json[..],
            Stdio::from(closed_pipe()),
            "enroll --json | closed",
        ),
        (
            &enroll_text[..],
            Stdio::from(closed_pipe()),
            "enroll | closed",
        ),
    ] {
        let o = run_with(with_stdout(command(&f, args), sink), "");
        assert_unwritable_output_refused(&o, what);
        assert!(!f.record_path(user).exists(), "{what}: saved anyway");
    }

    // An enrollment that exists is kept byte for byte: replacing it or its
    // recovery codes with output nobody can read changes nothing.
    let old = json(&otpgate(&f, &enroll_json, ""));
    let before = fs::read_to_string(f.record_path(user)).unwrap();
    let force_json = ["enroll", user, "--no-verify", "--json", "--force"];
    let recovery_json = ["recovery", user, "--json"];
    let recovery_text = ["recovery", user];
    for (args, sink, what) in [
        (
            &force_json[..],
            Stdio::from(full()),
            "enroll --force > /dev/full",
        ),
        (
            &force_json[..],
            Stdio::from(closed_pipe()),
            "enroll --force | closed",
        ),
        (
            &recovery_json[..],
            Stdio::from(full()),
            "recovery --json > /dev/full",
        ),
        (
            &recovery_text[..],
            Stdio::from(full()),
            "recovery > /dev/full",
        ),
        (
            &recovery_json[..],
            Stdio::from(closed_pipe()),
            "recovery | closed",
        ),
    ] {
        let o = run_with(with_stdout(command(&f, args), sink), "");
        assert_unwritable_output_refused(&o, what);
        assert_eq!(
            fs::read_to_string(f.record_path(user)).unwrap(),
            before,
            "{what}"
        );
    }
    assert_eq!(
        f.login(user, old["recovery_codes"][0].as_str().unwrap())
            .code,
        PAM_SUCCESS
    );
}

#[test]
fn a_reader_that_leaves_before_the_recovery_codes_gets_nothing_saved() {
    use std::io::{BufRead, BufReader};
    let f = Fixture::new("cli-head", "");
    let user = ACCOUNT;
    let mut child = command(&f, &["enroll", user, "--secret", SECRET, "--qr", "none"])
        .spawn()
        .unwrap();
    // Read up to the URI (what `head` would show), then close the pipe.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("URI: ") {
        assert!(out.read_line(&mut seen).unwrap() > 0, "no URI in {seen}");
    }
    drop(out);
    let mut stdin = child.stdin.take().unwrap();
    let _ = writeln!(stdin, "{}", code_now(OtpParams::default()));
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert_unwritable_output_refused(&o, "recovery codes to a closed pipe");
    assert!(!f.record_path(user).exists(), "saved codes nobody saw");
}

/// Blocked waiters on the flock of the file with inode `ino` (/proc/locks
/// lists them as `->` lines).
fn flock_waiters(ino: u64) -> usize {
    let needle = format!(":{ino} ");
    fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter(|l| l.contains("->") && l.contains(&needle))
        .count()
}

#[test]
fn concurrent_recovery_runs_never_print_codes_that_do_not_work() {
    use otpgate::core::recovery::canonical;
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new("cli-race", "");
    let user = ACCOUNT;
    f.enroll(user, OtpParams::default(), 2);
    // Hold the user's lock so every run gets as far as it can, then let them
    // all go at once: the worst interleaving, every time.
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(f.store.join(format!(".{user}.lock")))
        .unwrap();
    fs::set_permissions(
        f.store.join(format!(".{user}.lock")),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    lock.lock().unwrap();
    let ino = lock.metadata().unwrap().ino();
    const RUNS: usize = 4;
    let mut children: Vec<_> = (0..RUNS)
        .map(|_| {
            command(&f, &["recovery", user, "--count", "3", "--json"])
                .spawn()
                .unwrap()
        })
        .collect();
    let mut polls = 0;
    while flock_waiters(ino) < RUNS {
        // A run that ends before it queues (a broken store) fails the test
        // now, with its output, instead of after the wait below.
        if let Some(i) = children
            .iter_mut()
            .position(|c| c.try_wait().unwrap().is_some())
        {
            let out = children.swap_remove(i).wait_with_output().unwrap();
            for mut c in children {
                let _ = c.kill();
                let _ = c.wait();
            }
            panic!(
                "a run ended while the lock was held: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        polls += 1;
        assert!(polls < 6000, "the runs never queued on the lock");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    lock.unlock().unwrap();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let record = f.record(user);
    let mut winners = 0;
    for o in &outputs {
        match o.status.code() {
            Some(0) => {
                winners += 1;
                for c in json(o)["recovery_codes"].as_array().unwrap() {
                    let compact = c.as_str().unwrap().replace('-', "");
                    let code = canonical(&compact).unwrap();
                    assert!(
                        record.recovery.find(&code).unwrap().is_some(),
                        "a run exited 0 with codes that do not work"
                    );
                }
            }
            Some(1) => {
                assert!(o.stdout.is_empty(), "a refused run printed codes");
                assert!(stderr(o).contains("nothing was saved"), "{}", stderr(o));
            }
            other => panic!("exit {other:?}: {}", stderr(o)),
        }
    }
    assert_eq!(winners, 1, "exactly one of the overlapping runs wins");
}

/// `otpgate enroll --self` as sudo would run it for `user` (uid `uid`);
/// `None` leaves the variable out.
fn enroll_self(f: &Fixture, user: Option<&str>, uid: Option<&str>, stdin: &str) -> Output {
    let mut c = command(f, &["enroll", "--self", "--qr", "none"]);
    if let Some(u) = user {
        c.env("SUDO_USER", u);
    }
    if let Some(u) = uid {
        c.env("SUDO_UID", u);
    }
    run_with(c, stdin)
}

fn uid_of(name: &str) -> String {
    nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap()
        .uid
        .to_string()
}

#[test]
fn enroll_self_believes_sudo_only_when_user_and_uid_agree() {
    if !runs_as_root("enroll_self_believes_sudo_only_when_user_and_uid_agree") {
        return; // --self needs real uid 0; CI runs as root
    }
    let f = Fixture::new("cli-self-env", "");
    let uid = uid_of(ACCOUNT);
    for (user, sudo_uid, what) in [
        (Some(ACCOUNT), Some("0"), "SUDO_UID of another account"),
        (Some(ACCOUNT), None, "no SUDO_UID"),
        (None, Some(uid.as_str()), "no SUDO_USER"),
        (Some(ACCOUNT), Some("x1"), "SUDO_UID not a number"),
        (Some("root"), Some("0"), "root itself"),
        (
            Some("otpgate-no-such-account"),
            Some(uid.as_str()),
            "an unknown account",
        ),
    ] {
        let o = enroll_self(&f, user, sudo_uid, "");
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains("sudo"), "{what}: {}", stderr(&o));
        assert!(!f.record_path(ACCOUNT).exists(), "{what}");
    }
    // Agreeing variables get as far as asking for the first code.
    let o = enroll_self(&f, Some(ACCOUNT), Some(&uid), "");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Enter the code the app shows now: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_aborted_self_enrollment_spends_no_proof_and_records_no_login() {
    if !runs_as_root("an_aborted_self_enrollment_spends_no_proof_and_records_no_login") {
        return;
    }
    let f = Fixture::new("cli-self-abort", "");
    let uid = uid_of(ACCOUNT);
    let e = f.enroll(ACCOUNT, OtpParams::default(), 2);
    let before = fs::read_to_string(f.record_path(ACCOUNT)).unwrap();
    // The proof is right, then input ends before the first code.
    let o = enroll_self(
        &f,
        Some(ACCOUNT),
        Some(&uid),
        &format!("{}\n", e.recovery[0]),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing was saved"), "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(f.record_path(ACCOUNT)).unwrap(),
        before,
        "the record is untouched: no recovery code spent, no login recorded"
    );
    assert_eq!(f.record(ACCOUNT).last_login, 0);
    // Same with a code from the app: it is not used up either.
    let code = e.code(0);
    let o = enroll_self(&f, Some(ACCOUNT), Some(&uid), &format!("{code}\n"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(f.record_path(ACCOUNT)).unwrap(), before);
    assert_eq!(f.login(ACCOUNT, &e.recovery[0]).code, PAM_SUCCESS);

    // A whole self-service run spends the proof and replaces the enrollment
    // in one step; the old factor is gone with it.
    let mut c = command(&f, &["enroll", "--self", "--qr", "none"]);
    c.env("SUDO_USER", ACCOUNT).env("SUDO_UID", &uid);
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", e.recovery[1]).unwrap();
    let secret = read_secret_until_uri(child.stdout.as_mut().unwrap());
    writeln!(
        stdin,
        "{}",
        oathtool(&secret, OtpParams::default(), unix_now())
    )
    .unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let after = f.record(ACCOUNT);
    assert_eq!(after.secret, secret);
    assert_eq!(f.login(ACCOUNT, &e.recovery[1]).code, PAM_AUTH_ERR);
}

/// Reads a child's stdout up to the `URI: ` line; returns the secret in it.
fn read_secret_until_uri(out: &mut impl std::io::Read) -> String {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        assert_eq!(out.read(&mut byte).unwrap(), 1, "no URI in output");
        seen.push(byte[0]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(line) = text.lines().last().filter(|_| byte[0] == b'\n')
            && let Some(uri) = line.strip_prefix("URI: ")
        {
            return uri
                .split("secret=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_string();
        }
    }
}

#[test]
fn after_saving_it_says_what_comes_next_without_overclaiming() {
    let f = Fixture::new("cli-next", "");
    let pam = f.tmp.path().join("pam.d-test");
    fs::create_dir(&pam).unwrap();
    // Only a comment mentions the module: no service asks for a code yet.
    fs::write(
        pam.join("sshd"),
        "# auth required pam_otpgate.so\n@include common-auth\n",
    )
    .unwrap();
    let enroll = |force: bool| {
        let mut args = vec![
            "enroll",
            ACCOUNT,
            "--no-verify",
            "--qr",
            "none",
            "--pam-dir",
            pam.to_str().unwrap(),
        ];
        if force {
            args.push("--force");
        }
        let o = otpgate(&f, &args, "");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
    };
    let out = enroll(false);
    let saved = &out[out.find("Saved.").expect("Saved.")..];
    assert!(!saved.contains("now needs a code"), "{saved}");
    assert!(
        saved.contains("No PAM service uses pam_otpgate yet"),
        "{saved}"
    );
    for next in ["otpgate doctor", "second session"] {
        assert!(saved.contains(next), "{next}: {saved}");
    }
    // Recovery codes come before the save is announced.
    assert!(out.find("Recovery codes").unwrap() < out.find("Saved.").unwrap());

    fs::write(pam.join("sudo"), "auth required pam_otpgate.so\n").unwrap();
    let out = enroll(true);
    let saved = &out[out.find("Saved.").expect("Saved.")..];
    assert!(saved.contains("sudo") && !saved.contains("sshd"), "{saved}");
    assert!(saved.contains("second session"), "{saved}");
}

#[test]
fn a_first_code_from_another_time_says_to_check_the_phone_clock() {
    let f = Fixture::new("cli-drift", "");
    let params = OtpParams::default();
    let ahead = oathtool(SECRET, params, unix_now() + 5 * 30);
    let o = otpgate(
        &f,
        &[
            "enroll", ACCOUNT, "--secret", SECRET, "--code", &ahead, "--qr", "none",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("that code is for a different time: check the phone's clock"),
        "{}",
        stderr(&o)
    );
    assert!(!f.record_path(ACCOUNT).exists());
    let input = format!("{ahead}\n{}\n", code_now(params));
    let o = otpgate(
        &f,
        &["enroll", ACCOUNT, "--secret", SECRET, "--qr", "none"],
        &input,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("That code is for a different time: check the phone's clock"),
        "{}",
        stderr(&o)
    );
    // A code that is merely wrong says nothing about time.
    let o = otpgate(
        &f,
        &[
            "enroll", ACCOUNT, "--secret", SECRET, "--qr", "none", "--force",
        ],
        &format!("{}\n", wrong_code(&code_now(params))),
    );
    assert!(!stderr(&o).contains("different time"), "{}", stderr(&o));
}

#[test]
fn errors_read_as_sentences_with_the_fix() {
    let f = Fixture::new("cli-words", "");
    let missing = Command::new(BIN)
        .arg("--store")
        .arg(f.tmp.path().join("missing"))
        .args(["--config", "/nonexistent", "status"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no such file or directory")
            && !stderr(&missing).contains("os error"),
        "{}",
        stderr(&missing)
    );
    for (args, want) in [
        (
            vec!["enroll", ACCOUNT, "--period", "5", "--no-verify"],
            "between 15 and 120",
        ),
        (
            vec!["enroll", ACCOUNT, "--recovery-codes", "101", "--no-verify"],
            "at most 100",
        ),
        (
            vec!["enroll", ACCOUNT, "--period", "half", "--no-verify"],
            "whole number of seconds",
        ),
        (vec!["recovery", ACCOUNT, "--count", "ten"], "whole number"),
    ] {
        let o = otpgate(&f, &args, "");
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(
            !err.contains("..") && !err.contains("os error"),
            "{args:?}: {err}"
        );
    }
    // Algorithm names in any case; help lists each value once, in lower case.
    let o = otpgate(
        &f,
        &[
            "enroll",
            ACCOUNT,
            "--algorithm",
            "Sha256",
            "--no-verify",
            "--json",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["algorithm"], "SHA256");
    let help = stdout(&otpgate(&f, &["enroll", "--help"], ""));
    assert_eq!(help.matches("sha1|sha256|sha512").count(), 1, "{help}");
    assert!(!help.contains("SHA1"), "{help}");

    // Zero recovery codes: allowed by both commands, and said so.
    let o = otpgate(
        &f,
        &[
            "enroll",
            ACCOUNT,
            "--no-verify",
            "--json",
            "--force",
            "--recovery-codes",
            "0",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["recovery_codes"], serde_json::json!([]));
    let o = otpgate(&f, &["recovery", ACCOUNT, "--count", "0"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("no recovery codes"), "{}", stdout(&o));
    assert_eq!(f.record(ACCOUNT).recovery.remaining(), 0);
}

#[test]
fn self_service_proof_attempts_leave_an_audit_line_like_logins() {
    use std::os::unix::net::UnixDatagram;
    if !runs_as_root("self_service_proof_attempts_leave_an_audit_line_like_logins") {
        return; // a private mount namespace and --self need root; CI runs as root
    }
    let f = Fixture::new("cli-self-audit", "");
    let e = f.enroll(ACCOUNT, OtpParams::default(), 2);
    let sock_path = f.tmp.path().join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let run = |answer: &str| {
        let script = format!(
            "mount -t tmpfs none /dev && touch /dev/log && mount --bind {} /dev/log && exec {BIN} --store {} --config /nonexistent enroll --self --qr none",
            sock_path.display(),
            f.store.display()
        );
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("SUDO_USER", ACCOUNT)
            .env("SUDO_UID", uid_of(ACCOUNT))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_with(c, answer)
    };
    let o = run("zzzz-zzzz-zzzz-zzzz\n");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = run(&format!("{}\n", e.recovery[0]));
    assert_eq!(o.status.code(), Some(1), "no first code: {}", stderr(&o));
    sock.set_nonblocking(true).unwrap();
    let mut lines = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains(&format!(
            "action=prove-self user={ACCOUNT} by=root(sudo:{ACCOUNT})"
        )) && lines[0].ends_with("result=failure method=recovery reason=bad_code"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with("result=success method=recovery"),
        "{}",
        lines[1]
    );
    assert!(
        lines.iter().all(|l| !l.contains(&e.recovery[0])),
        "never the code"
    );
}

#[test]
fn a_save_that_fails_after_showing_says_the_shown_codes_do_not_work() {
    let f = Fixture::new("cli-save-fails", "");
    // A directory where the store writes its temporary file: every save
    // fails, after the output was written.
    let blocker = f.store.join(format!(".{ACCOUNT}.toml.tmp"));
    fs::create_dir(&blocker).unwrap();
    let o = otpgate(&f, &["enroll", ACCOUNT, "--no-verify", "--json"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(json(&o)["recovery_codes"].is_array(), "shown before saving");
    assert!(
        stderr(&o).contains("nothing was saved: the secret and recovery codes shown do not work"),
        "{}",
        stderr(&o)
    );
    assert!(!f.record_path(ACCOUNT).exists());

    fs::remove_dir(&blocker).unwrap();
    let old = json(&otpgate(
        &f,
        &["enroll", ACCOUNT, "--no-verify", "--json"],
        "",
    ));
    fs::create_dir(&blocker).unwrap();
    let o = otpgate(&f, &["recovery", ACCOUNT], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).contains("New recovery codes"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("the codes shown do not work, the earlier ones still do"),
        "{}",
        stderr(&o)
    );
    fs::remove_dir(&blocker).unwrap();
    assert_eq!(
        f.login(ACCOUNT, old["recovery_codes"][0].as_str().unwrap())
            .code,
        PAM_SUCCESS
    );
}

/// `enroll --force` of a broken record waits for its first code; meanwhile
/// another admin removes the broken record and enrolls the user afresh.
/// The first run must not replace that enrollment unseen: it is refused
/// ("changed while this ran"), prints no recovery codes, and the second
/// enrollment keeps working. (It used to save over it and exit 0.)
#[test]
fn force_replacing_a_broken_record_keeps_an_enrollment_made_meanwhile() {
    use std::io::Read;
    let f = Fixture::new("cli-broken-race", "");
    f.enroll("daemon", OtpParams::default(), 1);
    fs::write(f.record_path("daemon"), "version = 1\nsecret = ").unwrap();

    let mut first = command(
        &f,
        &[
            "enroll", "daemon", "--force", "--secret", SECRET, "--qr", "none",
        ],
    )
    .spawn()
    .unwrap();
    let mut err = first.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match err.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("Enter the code the app shows now") {
        // A bound, not a timing assertion: a hung command fails the test.
        let more = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("no prompt ({e}): {}", String::from_utf8_lossy(&seen)));
        seen.extend(more);
    }

    // The second admin, while the first waits at its prompt.
    let o = otpgate(&f, &["disable", "daemon", "--yes"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = otpgate(&f, &["enroll", "daemon", "--no-verify", "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let second = json(&o);
    let kept = f.record("daemon");

    // The first admin types the code.
    let code = oathtool(SECRET, OtpParams::default(), unix_now());
    writeln!(first.stdin.take().unwrap(), "{code}").unwrap();
    let status = first.wait().unwrap();
    reader.join().unwrap();
    seen.extend(rx.try_iter().flatten());
    let said = String::from_utf8_lossy(&seen).into_owned();
    let mut out = String::new();
    first
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(
        said.contains("daemon's enrollment changed while this ran")
            && said.contains("nothing was saved"),
        "{said}"
    );
    assert!(
        !out.contains("Recovery codes"),
        "codes shown that were never saved: {out}"
    );
    assert_eq!(
        f.record("daemon").secret,
        kept.secret,
        "the second enrollment is kept"
    );
    let recovery = second["recovery_codes"][0].as_str().unwrap();
    assert_eq!(f.login("daemon", recovery).code, PAM_SUCCESS);
}

/// A secret and recovery codes printed to /dev/null, or to a closed stdout
/// (the Rust runtime puts /dev/null there), are shown to nobody: `enroll`
/// and `recovery` refuse before making anything, and nothing changes.
/// (`recovery >&-` used to void every earlier code for new ones nobody saw.)
#[test]
fn codes_are_never_saved_unseen_when_stdout_is_null_or_closed() {
    let f = Fixture::new("cli-null-out", "");
    f.enroll("daemon", OtpParams::default(), 2);
    let before = f.record("daemon");
    let null = |args: &[&str]| {
        let mut c = f.otpgate_command(args);
        c.stdout(Stdio::null());
        c.output().unwrap()
    };
    let closed = |args: &[&str]| {
        Command::new("sh")
            .args(["-c", "exec \"$@\" >&-", "sh", OTPGATE, "--store"])
            .arg(&f.store)
            .arg("--config")
            .arg(f.tmp.path().join("no-site-config.toml"))
            .args(args)
            .env_remove("SUDO_USER")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let refused = |o: &Output, unchanged: &str| {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
        assert!(
            stderr(o).contains("standard output is /dev/null") && stderr(o).contains(unchanged),
            "{}",
            stderr(o)
        );
    };
    for args in [
        &["recovery", "daemon"][..],
        &["recovery", "daemon", "--json"],
    ] {
        refused(&null(args), "nothing was changed");
        refused(&closed(args), "nothing was changed");
    }
    // Other devices that take writes and keep nothing.
    for device in ["/dev/zero", "/dev/urandom", "/dev/random"] {
        let mut c = f.otpgate_command(&["recovery", "daemon"]);
        c.stdout(fs::OpenOptions::new().write(true).open(device).unwrap());
        refused(&c.output().unwrap(), "nothing was changed");
    }
    assert!(f.record("daemon") == before, "the record is as it was");
    // Nothing to show, nothing to lose: voiding every code (--count 0), or
    // a secret the admin gave with no recovery codes.
    let o = null(&["recovery", "daemon", "--count", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(f.record("daemon").recovery.remaining(), 0);
    let given = [
        "enroll",
        "sys",
        "--no-verify",
        "--secret",
        SECRET,
        "--recovery-codes",
        "0",
        "--json",
    ];
    assert_eq!(null(&given).status.code(), Some(0));
    assert!(f.record_path("sys").exists());
    let enroll = ["enroll", "bin", "--no-verify", "--json", "--secret", SECRET];
    refused(&null(&enroll), "nothing was saved");
    refused(&closed(&enroll), "nothing was saved");
    assert!(!f.record_path("bin").exists());
    // Into a pipe (or a file) they are shown, and saved.
    let o = otpgate(&f, &["recovery", "daemon", "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(f.record("daemon").recovery.remaining(), 10);
}

#[test]
fn a_broken_record_can_be_replaced_or_removed_but_never_edited() {
    let f = Fixture::new("cli-broken", "");
    let corrupt = |user: &str| {
        fs::write(f.record_path(user), "version = 1\nsecret = ").unwrap();
        fs::set_permissions(f.record_path(user), fs::Permissions::from_mode(0o600)).unwrap();
    };
    f.enroll("daemon", OtpParams::default(), 1);
    corrupt("daemon");
    // Without --force: refused, the broken record stays for the admin to see.
    let o = otpgate(&f, &["enroll", "daemon", "--no-verify", "--json"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // With --force: a new record replaces it, and logins work again.
    let o = otpgate(&f, &force_enroll_args("daemon", SECRET), "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("replacing daemon's broken record"),
        "{}",
        stderr(&o)
    );
    let code = oathtool(SECRET, OtpParams::default(), unix_now());
    assert_eq!(f.login("daemon", &code).code, PAM_SUCCESS);
    // disable --yes removes a broken record.
    f.enroll("bin", OtpParams::default(), 1);
    corrupt("bin");
    let o = otpgate(&f, &["disable", "bin", "--yes"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!f.record_path("bin").exists());
    // A symbolic link is never followed or removed: the admin looks first.
    let elsewhere = f.tmp.path().join("elsewhere.toml");
    fs::write(&elsewhere, "not a record").unwrap();
    std::os::unix::fs::symlink(&elsewhere, f.record_path("sys")).unwrap();
    let o = otpgate(&f, &["disable", "sys", "--yes"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        fs::symlink_metadata(f.record_path("sys"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "not a record");
}

#[test]
fn a_broken_login_state_can_be_replaced_or_removed_but_never_reset() {
    let f = Fixture::new("cli-broken-state", "");
    let break_state = |user: &str| {
        let path = f.store.join(format!(".{user}.lock"));
        fs::write(&path, [0x5au8; 1024]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let force = |user: &str| otpgate(&f, &force_enroll_args(user, SECRET), "");
    let code = || oathtool(SECRET, OtpParams::default(), unix_now());
    let first = f.enroll("daemon", OtpParams::default(), 1);
    let state = break_state("daemon");
    let right = oathtool(&first.secret, first.params, unix_now());
    assert_eq!(f.login("daemon", &right).code, PAM_AUTH_ERR);
    // unlock and new recovery codes never reset it (a reset would bring
    // back used codes and the replay guard's step); they say the way out.
    for args in [["unlock", "daemon"], ["recovery", "daemon"]] {
        let o = otpgate(&f, &args, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("login state is corrupt") && stderr(&o).contains("--force"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert_eq!(fs::read(&state).unwrap(), [0x5au8; 1024]);
    }
    // Without --force: refused. With it: a new enrollment, logins work.
    let o = otpgate(&f, &["enroll", "daemon", "--no-verify", "--json"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = force("daemon");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("replacing daemon's broken login state"),
        "{}",
        stderr(&o)
    );
    assert_eq!(f.login("daemon", &code()).code, PAM_SUCCESS);
    // disable --yes removes the enrollment, and a later one starts clean.
    f.enroll("bin", OtpParams::default(), 1);
    break_state("bin");
    let o = otpgate(&f, &["disable", "bin", "--yes"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!f.record_path("bin").exists());
    let o = otpgate(
        &f,
        &["enroll", "bin", "--no-verify", "--json", "--secret", SECRET],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(f.login("bin", &code()).code, PAM_SUCCESS);
    // A lock file others could read is not a broken record: nothing is
    // removed or replaced through it, and no codes are shown.
    f.enroll("lp", OtpParams::default(), 1);
    let lock = f.store.join(".lp.lock");
    fs::set_permissions(&lock, fs::Permissions::from_mode(0o644)).unwrap();
    for args in [
        &["disable", "lp", "--yes"][..],
        &["enroll", "lp", "--force", "--no-verify", "--json"],
    ] {
        let o = otpgate(&f, args, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(".lp.lock"), "{}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        assert!(!stderr(&o).contains("removed"), "{}", stderr(&o));
        assert!(f.record_path("lp").exists());
    }
    // A broken state left behind by no enrollment is no bar to a new one.
    break_state("sys");
    let o = otpgate(
        &f,
        &["enroll", "sys", "--no-verify", "--json", "--secret", SECRET],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(f.login("sys", &code()).code, PAM_SUCCESS);
}

#[test]
fn an_enrollment_whose_account_was_deleted_can_be_seen_unlocked_and_removed() {
    if !runs_as_root("an_enrollment_whose_account_was_deleted_can_be_seen_unlocked_and_removed") {
        return;
    }
    let f = Fixture::new("cli-deleted", "");
    let name = "otpgate-t-gone";
    let account = TestUser::create(name, "Gone-pass-31");
    let enroll = ["enroll", name, "--no-verify", "--json", "--secret", SECRET];
    let o = otpgate(&f, &enroll, "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    drop(account);
    assert_eq!(otpgate::account::canonical_name(name).unwrap(), None);
    // Its exact name still reaches the enrollment to look at and clean up.
    let o = otpgate(&f, &["status", name, "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(name), "{}", stdout(&o));
    let o = otpgate(&f, &["unlock", name], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Nothing new is made for a name NSS does not know.
    for args in [
        &enroll[..],
        &["enroll", name, "--force", "--no-verify"],
        &["recovery", name],
    ] {
        let o = otpgate(&f, args, "");
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("no account named"), "{}", stderr(&o));
    }
    // A name that was never enrolled is still refused by all three.
    for cmd in ["status", "unlock", "disable"] {
        let o = otpgate(
            &f,
            &[cmd, "otpgate-t-never", "--yes"][..if cmd == "disable" { 3 } else { 2 }],
            "",
        );
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("no account named"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    let o = otpgate(&f, &["disable", name, "--yes"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!f.record_path(name).exists());
    let o = otpgate(&f, &["status", name], "");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn a_site_issuer_no_app_can_show_stops_enrollment_but_never_a_login() {
    let f = Fixture::new("cli-issuer", "");
    // The path every command of the fixture reads as its site file.
    let site = f.tmp.path().join("no-site-config.toml");
    fs::write(&site, "issuer = \"Acme:VPN\"\n").unwrap();
    f.set_stack(&format!(
        "auth required {} store={} config={} {}",
        module_path().display(),
        f.store.display(),
        site.display(),
        owner_ok()
    ));
    let e = f.enroll("daemon", OtpParams::default(), 1);
    // Logins never use the issuer: an old site file does not stop them.
    let code = oathtool(&e.secret, e.params, unix_now());
    assert_eq!(f.login("daemon", &code).code, PAM_SUCCESS);
    let o = otpgate(&f, &["status", "daemon"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Enrolling names where the bad issuer comes from.
    let o = otpgate(&f, &["enroll", "bin", "--no-verify", "--json"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("bad issuer in {}", site.display())),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
    let o = otpgate(&f, &["doctor", "--check", "store", "--json"], "");
    assert!(
        stdout(&o).contains("\"store.bad_issuer\""),
        "{}",
        stdout(&o)
    );
    let o = otpgate(
        &f,
        &["enroll", "bin", "--no-verify", "--json", "--issuer", "A:B"],
        "",
    );
    assert!(stderr(&o).contains("bad --issuer"), "{}", stderr(&o));
    let o = otpgate(
        &f,
        &[
            "enroll",
            "bin",
            "--no-verify",
            "--json",
            "--issuer",
            "Acme VPN",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn new_recovery_codes_keep_the_replay_guard_and_clear_the_used_codes() {
    let f = Fixture::new("cli-state", "");
    let o = otpgate(
        &f,
        &[
            "enroll",
            "daemon",
            "--secret",
            SECRET,
            "--no-verify",
            "--json",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let code = oathtool(SECRET, OtpParams::default(), unix_now());
    assert_eq!(f.login("daemon", &code).code, PAM_SUCCESS);
    let o = otpgate(&f, &["recovery", "daemon", "--count", "2", "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let codes = json(&o)["recovery_codes"].clone();
    // The record was replaced; the step used before is still used.
    assert_eq!(
        f.login("daemon", &code).code,
        PAM_AUTH_ERR,
        "replay after regeneration"
    );
    assert_eq!(
        f.login("daemon", codes[0].as_str().unwrap()).code,
        PAM_SUCCESS
    );
    assert_eq!(f.record("daemon").recovery.remaining(), 1);
}

#[test]
fn users_regenerate_their_own_recovery_codes_after_proving_the_factor() {
    if !runs_as_root("users_regenerate_their_own_recovery_codes_after_proving_the_factor") {
        return;
    }
    let f = Fixture::new("cli-recovery-self", "");
    let uid = uid_of(ACCOUNT);
    let e = f.enroll(ACCOUNT, OtpParams::default(), 2);
    let run = |args: &[&str], stdin: &str| {
        let mut c = command(&f, args);
        c.env("SUDO_USER", ACCOUNT).env("SUDO_UID", &uid);
        run_with(c, stdin)
    };
    // Not for another user, and not without the current factor.
    let o = run(&["recovery", "--self", "bin"], "");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["recovery", "--self", "--json"], "000000\n");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        f.record(ACCOUNT).failures,
        1,
        "a wrong proof counts like a login"
    );
    // A code from the app proves it; the code is spent, the old codes void.
    let code = e.code(0);
    let o = run(
        &["recovery", "--self", "--json", "--count", "3"],
        &format!("{code}\n"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let fresh = v["recovery_codes"].as_array().unwrap();
    assert_eq!(fresh.len(), 3);
    assert_eq!(
        f.login(ACCOUNT, &code).code,
        PAM_AUTH_ERR,
        "the proof was not spent"
    );
    assert_eq!(f.login(ACCOUNT, &e.recovery[0]).code, PAM_AUTH_ERR);
    assert_eq!(
        f.login(ACCOUNT, fresh[0].as_str().unwrap()).code,
        PAM_SUCCESS
    );
    // status --self shows the own enrollment, without secrets.
    let o = run(&["status", "--self", "--json"], "");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["user"], ACCOUNT);
    assert_eq!(v["recovery_codes_left"], 2);
    assert!(!stdout(&o).contains(&e.secret));
}

#[test]
fn status_flags_a_last_code_from_the_future() {
    let f = Fixture::new("cli-future", "");
    f.enroll(ACCOUNT, OtpParams::default(), 1);
    let v = json(&otpgate(&f, &["status", ACCOUNT, "--json"], ""));
    assert_eq!(v["clock_behind_seconds"], serde_json::Value::Null);
    // A login at a time the clock later went back from.
    let store = otpgate::store::Store::open(&f.store, trust()).unwrap();
    store
        .update(ACCOUNT, |cur| {
            let mut next = cur.unwrap().clone();
            next.last_step = unix_now() / 30 + 100;
            Ok::<_, ()>((otpgate::store::Change::Put(next), ()))
        })
        .unwrap()
        .unwrap();
    let v = json(&otpgate(&f, &["status", ACCOUNT, "--json"], ""));
    let ahead = v["clock_behind_seconds"].as_u64().unwrap();
    assert!((2900..=3000).contains(&ahead), "{v}");
    let text = stdout(&otpgate(&f, &["status", ACCOUNT], ""));
    assert!(text.contains("ahead of this clock"), "{text}");
}
