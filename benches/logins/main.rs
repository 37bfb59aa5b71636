//! Login cost, side by side with the peers: `scripts/bench.sh` (or
//! `cargo bench --bench logins` once the packages it installs are there).
//!
//! Every login goes through the real libpam (`pam_start_confdir`) and each
//! module's whole path. The users are real accounts to NSS, served by
//! nss_wrapper from files in the bench's temp dir (the module refuses names
//! NSS does not know), so this process writes them and runs itself again
//! under `LD_PRELOAD=libnss_wrapper.so`, once per user count. That child
//! measures, per user and in a shuffled order, pam_permit (the floor of a
//! libpam transaction), pam_otpgate, pam_oath and google-authenticator with
//! a valid and a wrong code, the NSS look-up on its own, and one in-place
//! 512-byte `pwrite` + `fdatasync` on the same disk. It checks that every
//! login ended as intended and stops loudly when one did not; it asserts
//! nothing about the numbers, which this parent prints in one table.
//!
//! `BENCH_USERS=300,10000` (the default) sets the user counts;
//! `BENCH_ROUNDS=N` how many rounds of one valid and one wrong login per
//! user and module (default: about 800 samples, 1 to 3 rounds);
//! `BENCH_MODULES=otpgate,oath,ga` a subset of the modules (pam_permit,
//! the NSS look-up and the disk floor are always measured);
//! `BENCH_SYSLOG=FILE` keeps what the modules logged (see `syslog`).
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod child;
mod report;
mod syslog;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Set in the child: the prepared temp dir.
const CHILD_DIR: &str = "OTPGATE_BENCH_DIR";
const NSS_WRAPPER_LIBS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so",
    "/usr/lib/aarch64-linux-gnu/libnss_wrapper.so",
    "/usr/lib64/libnss_wrapper.so",
    "/usr/lib/libnss_wrapper.so",
];

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn user_counts() -> Vec<usize> {
    let text = std::env::var("BENCH_USERS").unwrap_or_else(|_| "300,10000".into());
    let counts: Vec<usize> = text
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .ok()
                .filter(|&n| n >= 2)
                .unwrap_or_else(|| fail(&format!("BENCH_USERS: {s:?} is not a count >= 2")))
        })
        .collect();
    if counts.is_empty() {
        fail("BENCH_USERS names no user count");
    }
    counts
}

fn nss_wrapper_lib() -> PathBuf {
    if let Ok(p) = std::env::var("NSS_WRAPPER_LIB") {
        return PathBuf::from(p);
    }
    NSS_WRAPPER_LIBS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            fail("libnss_wrapper.so not found: apt-get install libnss-wrapper (scripts/bench.sh does), or set NSS_WRAPPER_LIB")
        })
}

/// Stops the bench with a message (a wrong setup is not a number).
fn fail(why: &str) -> ! {
    eprintln!("bench: {why}");
    std::process::exit(1)
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child::run(Path::new(&dir));
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        fail("run as root: the module trusts root-owned stores, and the homes are chowned");
    }
    let counts = user_counts();
    let nss_wrapper = nss_wrapper_lib();
    let exe = std::env::current_exe().unwrap();
    let load_before = report::load();
    let mut runs = Vec::new();
    for users in counts {
        let tmp = tempfile::Builder::new()
            .prefix("otpgate-bench.")
            .tempdir()
            .unwrap();
        // Traversable, so google-authenticator can reach the homes after
        // dropping to the user; not writable by anyone but root.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o711)).unwrap();
        eprintln!(
            "bench: {users} users in {} (NSS through {})",
            tmp.path().display(),
            nss_wrapper.display()
        );
        let files = accounts::write(tmp.path(), users);
        let out = Command::new(&exe)
            .env(CHILD_DIR, tmp.path())
            .env("BENCH_USERS", users.to_string())
            .env("LD_PRELOAD", &nss_wrapper)
            .env("NSS_WRAPPER_PASSWD", &files.passwd)
            .env("NSS_WRAPPER_GROUP", &files.group)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        if !out.status.success() {
            drop(tmp); // exit() below skips destructors
            fail(&format!(
                "the {users}-user run failed ({}); no numbers printed",
                out.status
            ));
        }
        runs.push(report::Run::parse(
            users,
            &String::from_utf8_lossy(&out.stdout),
        ));
    }
    report::print(&runs, &load_before);
}
