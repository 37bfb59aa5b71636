//! Login cost, side by side with the peers: `cargo bench --bench logins`.
//!
//! Every login goes through the real libpam (`pam_start_confdir`) and the
//! module's whole path: read the user's state, check the code, write the
//! new state. Peers are measured the same way when installed
//! (`apt-get install libpam-oath libpam-google-authenticator`). This prints
//! numbers; it asserts nothing about them.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use otpgate::core::Record;
use otpgate::core::otp::{self, Generator, OtpParams};
use otpgate::core::recovery::{KdfParams, RecoveryCodes, RecoveryHashes};
use otpgate::pam::client::{self, Login, PAM_SUCCESS};
use otpgate::store::{Change, Store, Trust};

const SECURITY: &str = "/lib/x86_64-linux-gnu/security";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn secret_for(i: usize) -> Vec<u8> {
    (0..20)
        .map(|b| (b as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

fn code_for(i: usize) -> String {
    Generator::new(&secret_for(i), OtpParams::default())
        .code_at_step(now() / 30)
        .to_string()
}

struct Stats {
    ok: usize,
    times: Vec<Duration>,
}

impl Stats {
    fn line(&self, name: &str, what: &str) -> String {
        let mut t = self.times.clone();
        t.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let mean = t.iter().map(|d| us(*d)).sum::<f64>() / t.len().max(1) as f64;
        let pct = |p: f64| us(t[((t.len() as f64 - 1.0) * p) as usize]);
        format!(
            "{name:<28} {what:<16} {:>6} {:>5} {:>10.0} {:>10.0} {:>10.0}",
            t.len(),
            self.ok,
            mean,
            pct(0.5),
            pct(0.99)
        )
    }
}

fn run(confdir: &Path, service: &str, users: usize, answer: impl Fn(usize) -> String) -> Stats {
    let mut stats = Stats {
        ok: 0,
        times: Vec::with_capacity(users),
    };
    for i in 0..users {
        let user = format!("otpgate-tb{i}");
        let text = answer(i);
        let mut responder = |style: client::Style, _: &str| style.is_prompt().then(|| text.clone());
        let login = Login {
            confdir,
            service,
            user: &user,
            rhost: Some("192.0.2.1"),
            flags: 0,
        };
        let start = Instant::now();
        let t = client::authenticate(&login, &mut responder).unwrap();
        stats.times.push(start.elapsed());
        stats.ok += usize::from(t.code == PAM_SUCCESS);
    }
    stats
}

/// Writes user `i`'s record; returns one of its recovery codes.
fn enroll(store: &Store, i: usize, kdf: KdfParams) -> String {
    let codes = RecoveryCodes::generate(10).unwrap();
    let hashes = RecoveryHashes::create(&codes, kdf).unwrap();
    let record = Record::new(&secret_for(i), OtpParams::default(), hashes, now());
    store
        .update(&format!("otpgate-tb{i}"), |_| {
            Ok::<_, ()>((Change::Put(record), ()))
        })
        .unwrap()
        .unwrap();
    codes.display()[9].to_string()
}

fn service(dir: &Path, name: &str, line: &str) {
    fs::write(dir.join(name), format!("{line}\n")).unwrap();
}

fn module_so() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let so = deps.join("libotpgate.so");
    assert!(
        so.exists(),
        "build the module first: cargo build (looked in {})",
        deps.display()
    );
    so
}

fn main() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let tmp = tempfile::tempdir().unwrap();
    let confdir = tmp.path().join("pam.d");
    fs::create_dir(&confdir).unwrap();
    let wrong = |_| "000000x".to_string();
    let mut lines = Vec::new();

    // otpgate: one record per user.
    let store_dir = tmp.path().join("store");
    fs::create_dir(&store_dir).unwrap();
    fs::set_permissions(&store_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let store = Store::open(&store_dir, Trust::RootOnly).unwrap();
    let cheap = KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };
    for i in 0..users {
        enroll(&store, i, cheap);
    }
    let so = module_so();
    service(
        &confdir,
        "otpgate",
        &format!(
            "auth required {} store={} deny=100000 hard_deny=0",
            so.display(),
            store_dir.display()
        ),
    );
    lines.push(run(&confdir, "otpgate", users, code_for).line("pam_otpgate", "right code"));
    lines.push(run(&confdir, "otpgate", users, wrong).line("pam_otpgate", "wrong code"));

    // Recovery codes at production cost: one Argon2id hash per attempt.
    let rec_users = users.min(20);
    let mut rec_codes = Vec::new();
    for i in 0..rec_users {
        rec_codes.push(enroll(&store, i, KdfParams::DEFAULT));
    }
    lines.push(
        run(&confdir, "otpgate", rec_users, |i| rec_codes[i].clone())
            .line("pam_otpgate", "recovery code"),
    );

    // pam_oath: one users file for everybody.
    let oath = Path::new(SECURITY).join("pam_oath.so");
    if oath.exists() {
        let usersfile = tmp.path().join("users.oath");
        let text: String = (0..users)
            .map(|i| {
                let hex: String = secret_for(i).iter().map(|b| format!("{b:02x}")).collect();
                format!("HOTP/T30 otpgate-tb{i} - {hex}\n")
            })
            .collect();
        fs::write(&usersfile, text).unwrap();
        fs::set_permissions(&usersfile, fs::Permissions::from_mode(0o600)).unwrap();
        service(
            &confdir,
            "oath",
            &format!(
                "auth required {} usersfile={} window=1 digits=6",
                oath.display(),
                usersfile.display()
            ),
        );
        lines.push(run(&confdir, "oath", users, code_for).line("pam_oath", "right code"));
        lines.push(run(&confdir, "oath", users, wrong).line("pam_oath", "wrong code"));
    } else {
        lines.push(
            "pam_oath                     not installed (apt-get install libpam-oath)".into(),
        );
    }

    // google-authenticator-libpam: one file per user.
    let ga = Path::new(SECURITY).join("pam_google_authenticator.so");
    if ga.exists() {
        let dir = tmp.path().join("ga");
        fs::create_dir(&dir).unwrap();
        for i in 0..users {
            let p = dir.join(format!("otpgate-tb{i}"));
            let b32 = otp::encode_secret(&secret_for(i));
            fs::write(
                &p,
                format!(
                    "{b32}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n"
                ),
            )
            .unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        }
        service(
            &confdir,
            "ga",
            &format!(
                "auth required {} secret={}/${{USER}} user=root",
                ga.display(),
                dir.display()
            ),
        );
        lines.push(
            run(&confdir, "ga", users, code_for).line("pam_google_authenticator", "right code"),
        );
        lines
            .push(run(&confdir, "ga", users, wrong).line("pam_google_authenticator", "wrong code"));
    } else {
        lines.push("pam_google_authenticator     not installed (apt-get install libpam-google-authenticator)".into());
    }

    println!("{users} users, one login each, through libpam (times in microseconds)");
    println!(
        "{:<28} {:<16} {:>6} {:>5} {:>10} {:>10} {:>10}",
        "module", "answer", "logins", "ok", "mean", "p50", "p99"
    );
    for l in lines {
        println!("{l}");
    }
}
