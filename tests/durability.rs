//! The order of durable operations before success, seen from outside with
//! `strace`: a login through the built module (pamtester) and `otpgate
//! disable`. A missing fsync changes no result a test can see otherwise;
//! only a power cut would show it.

mod common;

use common::*;
use otpgate::core::otp::OtpParams;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_otpgate");

/// The system calls that create, write, rename, remove, lock and flush.
const TRACED: &str =
    "trace=openat,write,pwrite64,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,flock";

/// `strace` around `argv`, every process, fds shown with their paths (`-y`),
/// into a file in the fixture's temp dir. The traced program gets `env`
/// (strace itself does not: libpam-wrapper must set up only once).
fn straced(f: &Fixture, trace: &Path, env: &[(&str, &str)], argv: &[&str]) -> Command {
    let mut c = Command::new("strace");
    c.args(["-f", "-y", "-s", "256", "-e", TRACED, "-o"])
        .arg(trace)
        .arg("env");
    for (k, v) in env {
        c.arg(format!("{k}={v}"));
    }
    c.args(argv).current_dir(f.tmp.path());
    c
}

/// The trace, one system call a line, in the order they completed.
struct Trace {
    lines: Vec<String>,
}

impl Trace {
    fn read(path: &Path) -> Trace {
        let text = std::fs::read_to_string(path).expect("strace wrote its trace");
        Trace {
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    /// The first line after `from` that is `step`, else a failure listing
    /// what the trace shows of `dir`.
    fn next(&self, from: usize, step: &str, dir: &Path, is: impl Fn(&str) -> bool) -> usize {
        match self.lines[from..].iter().position(|l| is(l)) {
            Some(i) => from + i,
            None => {
                let dir = dir.display().to_string();
                let seen: Vec<&str> = self
                    .lines
                    .iter()
                    .filter(|l| l.contains(&dir) || l.contains("authenticated"))
                    .map(|l| match l.split_once(", \"") {
                        // What was written (a record) stays out of the message.
                        Some((call, _))
                            if call.contains("write(") && !l.contains("authenticated") =>
                        {
                            call
                        }
                        _ => &l[..l.len().min(200)],
                    })
                    .collect();
                panic!(
                    "no {step} after trace line {from}; the store's calls:\n{}",
                    seen.join("\n")
                )
            }
        }
    }
}

/// `fd<path>` as `strace -y` prints a file descriptor.
fn fd_of(path: &Path) -> String {
    format!("<{}>", path.display())
}

fn succeeded(line: &str) -> bool {
    line.ends_with("= 0") || line.contains(" = 0<")
}

/// `otpgate ARGS` on the fixture's store under strace; it must exit 0.
fn straced_cli(f: &Fixture, name: &str, args: &[&str]) -> Trace {
    strace_installed();
    let trace = f.tmp.path().join(format!("{name}.trace"));
    let store = f.store.display().to_string();
    let config = f.tmp.path().join("no-site-config.toml");
    let config = config.display().to_string();
    let mut argv = vec![BIN, "--store", &store, "--config", &config];
    argv.extend_from_slice(args);
    let out = straced(f, &trace, &[], &argv).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Trace::read(&trace)
}

fn strace_installed() {
    let ok = Command::new("strace").arg("-V").output();
    assert!(
        ok.is_ok_and(|o| o.status.success()),
        "strace is installed by scripts/test.sh"
    );
}

#[test]
fn a_login_is_durable_before_it_succeeds() {
    if !runs_as_root("a_login_is_durable_before_it_succeeds") {
        return; // the suite's store trust and ptrace: CI runs as root
    }
    strace_installed();
    let f = Fixture::new("durable-login", "");
    let user = "news";
    let e = f.enroll(user, OtpParams::default(), 1);
    let trace = f.tmp.path().join("login.trace");
    let confdir = f.confdir.display().to_string();
    let mut cmd = straced(
        &f,
        &trace,
        &[
            ("LD_PRELOAD", "libpam_wrapper.so"),
            ("PAM_WRAPPER", "1"),
            ("PAM_WRAPPER_SERVICE_DIR", &confdir),
            ("PAM_WRAPPER_DEBUGLEVEL", "2"),
        ],
        &["pamtester", &f.service, user, "authenticate"],
    );
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let (ok, logs, text) = f.pamtester_run(cmd, format!("{}\n", e.code(0)).as_bytes());
    assert!(ok, "{text}");
    assert!(logs[0].contains("result=success"), "{logs:?}");

    let t = Trace::read(&trace);
    let store = f.store.clone();
    let lock_fd = fd_of(&store.join(format!(".{user}.lock")));
    // A login is one slot of the state in the lock file: one pwrite, one
    // fdatasync, under the flock; then success. No temp file, no rename.
    let locked = t.next(0, "flock(lock, LOCK_EX)", &store, |l| {
        l.contains("flock(") && l.contains(&lock_fd) && l.contains("LOCK_EX") && succeeded(l)
    });
    let written = t.next(locked, "pwrite(state slot)", &store, |l| {
        l.contains("pwrite64(") && l.contains(&lock_fd) && l.contains(", 512, ")
    });
    let synced = t.next(written, "fdatasync(state)", &store, |l| {
        l.contains("fdatasync(") && l.contains(&lock_fd) && succeeded(l)
    });
    t.next(synced, "pamtester's success", &store, |l| {
        l.contains("write(") && l.contains("successfully authenticated")
    });
    assert!(
        !t.lines[..synced]
            .iter()
            .any(|l| l.contains("successfully authenticated")),
        "success told before the fdatasync"
    );
    assert!(
        !t.lines
            .iter()
            .any(|l| l.contains("rename") && l.contains(&fd_of(&store))),
        "a login renamed a file"
    );
}

#[test]
fn an_administrative_change_is_durable_before_the_command_exits() {
    if !runs_as_root("an_administrative_change_is_durable_before_the_command_exits") {
        return;
    }
    let f = Fixture::new("durable-admin", "");
    let user = "news";
    f.enroll(user, OtpParams::default(), 1);
    let t = straced_cli(&f, "recovery", &["recovery", user, "--json"]);
    let store = f.store.clone();
    let dir = fd_of(&store);
    let tmp: PathBuf = store.join(format!(".{user}.toml.tmp"));
    let tmp_fd = fd_of(&tmp);
    let lock_fd = fd_of(&store.join(format!(".{user}.lock")));
    let quoted_tmp = format!("\"{}\"", tmp.file_name().unwrap().to_string_lossy());
    let quoted_record = format!("\"{user}.toml\"");

    let locked = t.next(0, "flock(lock, LOCK_EX)", &store, |l| {
        l.contains("flock(") && l.contains(&lock_fd) && l.contains("LOCK_EX") && succeeded(l)
    });
    let created = t.next(locked, "openat(temp, O_CREAT|O_EXCL)", &store, |l| {
        l.contains("openat(")
            && l.contains(&dir)
            && l.contains(&quoted_tmp)
            && l.contains("O_CREAT")
            && l.contains("O_EXCL")
            && l.trim_end().ends_with(&tmp_fd)
    });
    let written = t.next(created, "write(temp)", &store, |l| {
        l.contains("write(") && l.contains(&tmp_fd)
    });
    let synced = t.next(written, "fsync(temp)", &store, |l| {
        (l.contains("fsync(") || l.contains("fdatasync(")) && l.contains(&tmp_fd) && succeeded(l)
    });
    assert!(
        !t.lines[synced..]
            .iter()
            .any(|l| l.contains("write(") && l.contains(&tmp_fd)),
        "a write to the temp file after its fsync"
    );
    let renamed = t.next(synced, "rename(temp -> record)", &store, |l| {
        l.contains("rename")
            && l.contains(&dir)
            && l.contains(&quoted_tmp)
            && l.contains(&quoted_record)
            && succeeded(l)
    });
    t.next(renamed, "fsync(store directory)", &store, |l| {
        l.contains("fsync(") && l.contains(&format!("{dir})")) && succeeded(l)
    });
}

#[test]
fn disable_is_durable_before_the_command_exits() {
    if !runs_as_root("disable_is_durable_before_the_command_exits") {
        return; // the CLI runs as root; CI runs as root
    }
    let f = Fixture::new("durable-disable", "");
    let user = "proxy";
    f.enroll(user, OtpParams::default(), 1);
    let t = straced_cli(&f, "disable", &["disable", user, "--yes"]);
    assert!(!f.record_path(user).exists());
    let dir = fd_of(&f.store);
    let quoted_record = format!("\"{user}.toml\"");
    let unlinked = t.next(0, "unlinkat(record)", &f.store, |l| {
        l.contains("unlink") && l.contains(&dir) && l.contains(&quoted_record) && succeeded(l)
    });
    let dir_synced = t.next(unlinked, "fsync(store directory)", &f.store, |l| {
        l.contains("fsync(") && l.contains(&format!("{dir})")) && succeeded(l)
    });
    t.next(dir_synced, "exit 0", &f.store, |l| {
        l.ends_with("+++ exited with 0 +++")
    });
}
