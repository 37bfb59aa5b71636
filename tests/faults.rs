//! Fault injection into the file store: every system call a login or an
//! administrative write makes on the store fails in turn, with ENOSPC, EIO
//! and EINTR, through an LD_PRELOAD shim (`tests/fault_shim.c`, built here
//! with the system C compiler) around the shipped module (in `pamtester`)
//! and the shipped command. Nothing of it is in any build of otpgate.
//!
//! For each failure: the login is refused (or the command exits non-zero
//! with a message that says what happened), the record and the login
//! state still load, and a code accepted before is still refused after.
//! EINTR is retried where the standard library retries (reads, writes,
//! fsync): then the login may succeed, and its code is then spent.

mod common;

use common::*;
use otpgate::core::otp::OtpParams;
use otpgate::store::Store;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const T0: u64 = 1_800_000_000;
const ERRNOS: [&str; 3] = ["ENOSPC", "EIO", "EINTR"];

/// The shim, built once per test binary.
fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fault_shim.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("otpgate_fault_shim.so");
        let o = Command::new("cc")
            .args(["-O1", "-Wall", "-Werror", "-shared", "-fPIC", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-ldl")
            .output()
            .expect("a C compiler (cc) builds the fault shim");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    })
}

/// One injected fault and where the shim reports that it fired.
struct Fault {
    spec: String,
    report: PathBuf,
}

impl Fault {
    fn new(f: &Fixture, spec: &str) -> Fault {
        let report = f.tmp.path().join("fault-report");
        let _ = fs::remove_file(&report);
        Fault {
            spec: spec.to_string(),
            report,
        }
    }

    fn apply(&self, f: &Fixture, c: &mut Command) {
        c.env("OTPGATE_FAULT", &self.spec)
            .env("OTPGATE_FAULT_DIR", &f.store)
            .env("OTPGATE_FAULT_REPORT", &self.report);
    }

    fn fired(&self) -> bool {
        fs::read_to_string(&self.report).is_ok_and(|r| !r.is_empty())
    }
}

/// A login at unix time `at` through pamtester, with `fault` (if any).
fn login(f: &Fixture, user: &str, at: u64, answer: &str, fault: Option<&Fault>) -> (bool, String) {
    let mut c = f.pamtester_at(user, at);
    c.env(
        "LD_PRELOAD",
        format!(
            "libpam_wrapper.so {FAKETIME_LIB} {}",
            fault.map_or(String::new(), |_| shim().display().to_string())
        ),
    );
    if let Some(fault) = fault {
        fault.apply(f, &mut c);
    }
    let (ok, logs, _) = f.pamtester_run(c, format!("{answer}\n").as_bytes());
    (ok, logs.join("\n"))
}

fn otpgate(f: &Fixture, args: &[&str], fault: Option<&Fault>) -> Output {
    let mut c = f.otpgate_command(args);
    if let Some(fault) = fault {
        c.env("LD_PRELOAD", shim());
        fault.apply(f, &mut c);
    }
    c.output().unwrap()
}

/// The record and the state load; returns the replay guard.
fn loadable(f: &Fixture, user: &str, what: &str) -> u64 {
    let store = Store::open(&f.store, trust()).unwrap();
    match store.load(user) {
        Ok(Some(r)) => r.last_step,
        other => panic!("{what}: the store no longer loads: {other:?}"),
    }
}

/// What a TOTP app shows at `at`.
fn code_at(e: &Enrolled, at: u64) -> String {
    oathtool(&e.secret, e.params, at)
}

/// A login's calls on the store: open, flock, read, pwrite, fdatasync
/// (a login never renames, unlinks or syncs the directory). Each call of
/// each kind fails in turn, with each errno, at a fresh time step.
#[test]
fn every_failing_call_of_a_login_refuses_it_and_loses_nothing() {
    let f = Fixture::new("faults-login", "");
    let user = "daemon";
    let e = f.enroll(user, OtpParams::default(), 3);
    // A code accepted before any fault.
    let mut accepted = (T0, code_at(&e, T0));
    assert!(login(&f, user, T0, &accepted.1, None).0);
    let mut at = T0;
    let mut fired = Vec::new();
    for op in ["open", "flock", "read", "pwrite", "fdatasync"] {
        for errno in ERRNOS {
            for nth in 1.. {
                at += 30;
                let code = code_at(&e, at);
                let fault = Fault::new(&f, &format!("{op}:{nth}:{errno}"));
                let (ok, logs) = login(&f, user, at, &code, Some(&fault));
                if !fault.fired() {
                    assert!(ok, "{op}:{nth}: a login without a fault failed: {logs}");
                    accepted = (at, code);
                    break;
                }
                let what = format!("{op} call {nth} failing with {errno}");
                fired.push(format!("{op}:{nth}:{errno}"));
                if errno == "EINTR" && ok {
                    // Retried by the standard library: the code is now spent.
                    assert!(logs.contains("result=success"), "{what}: {logs}");
                } else {
                    assert!(!ok, "{what}: the login succeeded");
                    assert!(
                        logs.contains("reason=store_error") && logs.contains("detail="),
                        "{what}: no store_error line: {logs}"
                    );
                    assert!(!logs.contains(&code) && !logs.contains(&e.secret));
                }
                let guard = loadable(&f, user, &what);
                assert!(
                    guard >= accepted.0 / 30,
                    "{what}: the replay guard went back"
                );
                // The code accepted last is still refused, at its own time.
                let (replayed, logs) = login(&f, user, accepted.0, &accepted.1, None);
                assert!(!replayed, "{what}: an accepted code worked again");
                assert!(logs.contains("reason=replay"), "{what}: {logs}");
                // Without the fault the same code works unless it was spent.
                let (again, logs) = login(&f, user, at, &code, None);
                if ok {
                    assert!(!again && logs.contains("reason=replay"), "{what}: {logs}");
                } else {
                    assert!(again || logs.contains("reason=replay"), "{what}: {logs}");
                }
                if ok || again {
                    accepted = (at, code);
                }
            }
        }
    }
    // Every kind of call was reached at least once with every errno.
    for op in ["open", "flock", "read", "pwrite", "fdatasync"] {
        for errno in ERRNOS {
            assert!(
                fired
                    .iter()
                    .any(|s| s.starts_with(&format!("{op}:")) && s.ends_with(errno)),
                "{op} with {errno} never fired: {fired:?}"
            );
        }
    }
    eprintln!("login faults injected: {}", fired.len());
}

/// A write cut short: the rest is written by the next call (the standard
/// library's loop), or the disk fills up before it (a torn slot: the state
/// before stays in force and the code was not spent).
#[test]
fn a_short_state_write_is_completed_or_leaves_the_state_before() {
    let f = Fixture::new("faults-short", "");
    let user = "bin";
    let e = f.enroll(user, OtpParams::default(), 2);
    assert!(login(&f, user, T0, &code_at(&e, T0), None).0);
    for cut in [0, 1, 100, 511] {
        let at = T0 + 30 * (cut as u64 + 1);
        let code = code_at(&e, at);
        // Short, then the retry fails: torn slot, refused, nothing lost.
        let fault = Fault::new(&f, &format!("pwrite:1:ENOSPC:{cut}"));
        let (ok, logs) = login(&f, user, at, &code, Some(&fault));
        assert!(fault.fired());
        // A write of nothing is the standard library's "failed to write
        // whole buffer"; else the disk-full error of the retry.
        let why = if cut == 0 {
            "write state"
        } else {
            "No space left"
        };
        assert!(!ok && logs.contains(why), "cut {cut}: {logs}");
        loadable(&f, user, "a torn state write");
        assert!(!login(&f, user, T0, &code_at(&e, T0), None).0);
        // The code was never spent: it works now, once.
        assert!(login(&f, user, at, &code, None).0, "cut {cut}: code lost");
        assert!(!login(&f, user, at, &code, None).0);
    }
    // Short, and the retry goes through: one login, done.
    let at = T0 + 30 * 1000;
    let fault = Fault::new(&f, "pwrite:1:OK:100");
    let (ok, logs) = login(&f, user, at, &code_at(&e, at), Some(&fault));
    assert!(fault.fired() && ok, "{logs}");
    assert!(!login(&f, user, at, &code_at(&e, at), None).0);
    // A recovery code whose removal cannot be written is not spent.
    let fault = Fault::new(&f, "pwrite:1:EIO");
    let (ok, _) = login(&f, user, at + 30, &e.recovery[0], Some(&fault));
    assert!(fault.fired() && !ok);
    assert!(login(&f, user, at + 30, &e.recovery[0], None).0);
    assert!(!login(&f, user, at + 60, &e.recovery[0], None).0);
}

/// An administrative write replaces the record: open (lock, temp), flock,
/// read, unlink (stale temp), write, fsync, rename, directory fsync. Each
/// call fails in turn; the command exits non-zero and says so, the store
/// loads, and the code accepted before is still refused.
#[test]
fn every_failing_call_of_an_admin_write_exits_non_zero_and_loses_nothing() {
    let f = Fixture::new("faults-admin", "");
    let user = "sys";
    let e = f.enroll(user, OtpParams::default(), 2);
    let first = code_at(&e, T0);
    assert!(login(&f, user, T0, &first, None).0);
    let ops = [
        "open", "flock", "read", "unlink", "write", "fsync", "rename", "dirsync",
    ];
    let mut fired = Vec::new();
    for op in ops {
        for errno in ERRNOS {
            for nth in 1.. {
                let before = fs::read(f.record_path(user)).unwrap();
                let fault = Fault::new(&f, &format!("{op}:{nth}:{errno}"));
                let o = otpgate(
                    &f,
                    &["recovery", user, "--count", "1", "--json"],
                    Some(&fault),
                );
                let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
                if !fault.fired() {
                    assert_eq!(o.status.code(), Some(0), "{op}:{nth}: {stderr}");
                    break;
                }
                let what = format!("recovery with {op} call {nth} failing with {errno}");
                fired.push(format!("{op}:{nth}:{errno}"));
                let after = fs::read(f.record_path(user)).unwrap();
                if o.status.success() {
                    // Only EINTR, retried, may still succeed.
                    assert_eq!(errno, "EINTR", "{what}: exit 0");
                } else {
                    assert_eq!(o.status.code(), Some(2), "{what}: {stderr}");
                    assert!(stderr.starts_with("otpgate: "), "{what}: {stderr}");
                    let replaced = after != before;
                    if replaced {
                        // Renamed but not synced: in force, and it says so.
                        assert!(
                            stderr.contains("in force") && !stderr.contains("nothing was saved"),
                            "{what}: {stderr}"
                        );
                    } else {
                        // Refused before or while writing: nothing claims
                        // to be in force, and it names what failed.
                        assert!(
                            !stderr.contains("in force")
                                && (stderr.contains("nothing was saved")
                                    || stderr.starts_with("otpgate: store refused (")),
                            "{what}: {stderr}"
                        );
                    }
                }
                loadable(&f, user, &what);
                assert!(
                    !login(&f, user, T0, &first, None).0,
                    "{what}: the code accepted before worked again"
                );
                let leftovers = fs::read_dir(&f.store)
                    .unwrap()
                    .filter(|d| {
                        d.as_ref()
                            .unwrap()
                            .file_name()
                            .to_string_lossy()
                            .ends_with(".tmp")
                    })
                    .count();
                // A temp file stays only when removing it was what failed.
                assert!(leftovers == 0 || op == "unlink", "{what}: temp file left");
            }
        }
    }
    for op in ops {
        assert!(
            fired.iter().any(|s| s.starts_with(&format!("{op}:"))),
            "{op} never fired: {fired:?}"
        );
    }
    // disable: unlink and directory fsync of the removal.
    for (spec, gone) in [("unlink:1:EIO", false), ("dirsync:1:EIO", true)] {
        let fault = Fault::new(&f, spec);
        let o = otpgate(&f, &["disable", user, "--yes"], Some(&fault));
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(fault.fired(), "{spec}");
        assert_ne!(o.status.code(), Some(0), "{spec}: {stderr}");
        assert!(stderr.starts_with("otpgate: "), "{spec}: {stderr}");
        assert_eq!(!f.record_path(user).exists(), gone, "{spec}");
        if !gone {
            loadable(&f, user, spec);
        }
    }
    eprintln!("admin faults injected: {}", fired.len());
}

/// `enroll --force` over a login state that does not read, with a fault
/// after the new record is renamed in: the state is emptied only where a
/// crash could not bring back an old record without its state, and what
/// the command says about the codes it showed is what a login then finds.
#[test]
fn replacing_a_broken_login_state_under_faults_says_truly_whether_the_codes_work() {
    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let f = Fixture::new("faults-broken-state", "");
    // (user, fault, the old record broken too, the shown codes work)
    let cases = [
        // Not durable, the old record still reads: its state stays broken.
        ("daemon", "dirsync:1:EIO", false, false),
        // Not durable, the old record is broken too: nothing to come back.
        ("bin", "dirsync:1:EIO", true, true),
        // Durable; the emptied state's own sync fails: emptied all the same.
        ("sys", "fdatasync:1:EIO", false, true),
    ];
    for (n, (user, spec, record_broken, works)) in cases.into_iter().enumerate() {
        f.enroll(user, OtpParams::default(), 1);
        let lock = f.store.join(format!(".{user}.lock"));
        fs::write(&lock, [0xffu8; 1024]).unwrap();
        if record_broken {
            fs::write(f.record_path(user), "version = 1\nsecret = ").unwrap();
        }
        let force = force_enroll_args(user, SECRET);
        let fault = Fault::new(&f, spec);
        let o = otpgate(&f, &force, Some(&fault));
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        let what = format!("{user} with {spec}");
        assert!(fault.fired(), "{what}");
        assert_eq!(o.status.code(), Some(2), "{what}: {stderr}");
        if works {
            assert!(stderr.contains("shown work"), "{what}: {stderr}");
        } else {
            assert!(
                stderr.contains("do not work") && stderr.contains("every login is refused"),
                "{what}: {stderr}"
            );
            assert_eq!(fs::read(&lock).unwrap(), [0xffu8; 1024], "{what}");
        }
        let at = T0 + 300 * n as u64;
        let code = oathtool(SECRET, OtpParams::default(), at);
        assert_eq!(login(&f, user, at, &code, None).0, works, "{what}");
        if !works {
            // Run again once the disk is fixed: done.
            let o = otpgate(&f, &force, None);
            assert_eq!(o.status.code(), Some(0), "{what}");
            let at = at + 60;
            let code = oathtool(SECRET, OtpParams::default(), at);
            let (ok, logs) = login(&f, user, at, &code, None);
            assert!(ok, "{what}: after a clean run: {logs}");
        }
    }
}
