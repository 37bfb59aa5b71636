//! A long run without leaks (issue 11): one long-lived process calls
//! `pam_authenticate` in a loop through real libpam and the built module,
//! as a web or RADIUS server would, with right, wrong, replayed and
//! recovery answers; meanwhile it starts `otpgate` commands that enroll,
//! regenerate, unlock and disable other users, and `pamtester` logins that
//! it SIGKILLs at random moments. It checks as it goes and at the end that
//! no code was accepted twice and that the recovery counts add up, and
//! prints its own RSS and open file descriptors after warming up and at
//! the end: it fails when descriptors grew or RSS grew by more than 10%.
//!
//!   pam_soak --minutes M          the soak (scripts/soak.sh)
//!   pam_soak --logins N --alone   N logins, no other processes (valgrind)
//!
//! Run as root (the module trusts root-owned stores only; as another user
//! the stacks get `owner_ok`). Built with `cargo build --example pam_soak`,
//! which also builds `target/debug/libotpgate.so` and, with `--bins`, the
//! `otpgate` command it runs.

// The tests' process helpers (std only), shared rather than copied.
#[path = "../tests/common/system.rs"]
mod system;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use otpgate::core::Record;
use otpgate::core::otp::{self, Generator, OtpParams};
use otpgate::core::recovery::{KdfParams, RecoveryCodes, RecoveryHashes};
use otpgate::pam::client::{self, Login, PAM_SUCCESS, Style};
use otpgate::store::{Change, Store, Trust};

/// Users the loop logs in as, enrolled here with known secrets.
const STEADY: [&str; 3] = ["daemon", "bin", "sys"];
/// Users the command line changes under the loop's feet.
const CHURNED: [&str; 2] = ["games", "man"];
const RECOVERY_CODES: usize = 60;
/// Cheap Argon2 for the steady users (the parameters live in the record).
const KDF: KdfParams = KdfParams {
    m_cost: 256,
    t_cost: 1,
    p_cost: 1,
};

struct Args {
    minutes: f64,
    logins: Option<u64>,
    alone: bool,
}

fn args() -> Args {
    let mut a = Args {
        minutes: 5.0,
        logins: None,
        alone: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--minutes" => a.minutes = it.next().and_then(|v| v.parse().ok()).unwrap_or(5.0),
            "--logins" => a.logins = it.next().and_then(|v| v.parse().ok()),
            "--alone" => a.alone = true,
            other => {
                eprintln!("pam_soak: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    a
}

/// xorshift64: the run is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[allow(clippy::disallowed_methods)] // the soak runs against the real clock, as the module does
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// (RSS in KiB, open file descriptors) of this process.
fn usage() -> (u64, usize) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    (rss, fds)
}

/// One enrollment as the loop knows it.
#[derive(Clone)]
struct Known {
    secret: Vec<u8>,
    codes: Vec<String>,
}

impl Known {
    fn code_at(&self, t: u64) -> String {
        Generator::new(&self.secret, OtpParams::default())
            .code_at_step(t / 30)
            .to_string()
    }
}

/// A code accepted once, by anyone: (user, secret, time step) or (user, recovery code).
#[derive(Clone, Hash, PartialEq, Eq, Debug)]
enum Spent {
    Step(String, Vec<u8>, u64),
    Recovery(String, String),
}

struct Soak {
    dir: PathBuf,
    store: PathBuf,
    confdir: PathBuf,
    bin: PathBuf,
    trust: Trust,
    known: HashMap<String, Known>,
    spent: HashSet<Spent>,
    /// Recovery codes handed to killed logins: maybe spent.
    maybe_spent: HashSet<Spent>,
    /// What the pamtester running now answers (it may take it first).
    in_flight: Option<Spent>,
    violations: Vec<String>,
    logins: u64,
    successes: u64,
    killed: u64,
    commands: u64,
}

impl Soak {
    fn setup() -> Soak {
        let exe = std::env::current_exe().expect("own path");
        let out = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let module = std::env::var_os("OTPGATE_MODULE")
            .map_or_else(|| out.join("libotpgate.so"), PathBuf::from);
        let bin =
            std::env::var_os("OTPGATE_BIN").map_or_else(|| out.join("otpgate"), PathBuf::from);
        assert!(module.exists(), "no module at {}", module.display());
        let dir = std::env::temp_dir().join(format!("otpgate-soak-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("soak dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        let store = dir.join("store");
        let confdir = dir.join("pam.d");
        for d in [&store, &confdir] {
            fs::create_dir(d).expect("mkdir");
            fs::set_permissions(d, fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        let root = nix::unistd::geteuid().is_root();
        let (trust, owner_ok) = if root {
            (Trust::RootOnly, "")
        } else {
            (Trust::RootOrEuid, "owner_ok")
        };
        let line = |opts: &str| {
            format!(
                "auth required {} store={} {owner_ok} {opts}\n",
                module.display(),
                store.display()
            )
        };
        fs::write(confdir.join("soak"), line("deny=1000 hard_deny=0")).expect("stack");
        fs::write(confdir.join("soak-strict"), line("deny=3 unlock_time=3600")).expect("stack");
        let mut s = Soak {
            dir,
            store,
            confdir,
            bin,
            trust,
            known: HashMap::new(),
            spent: HashSet::new(),
            maybe_spent: HashSet::new(),
            in_flight: None,
            violations: Vec::new(),
            logins: 0,
            successes: 0,
            killed: 0,
            commands: 0,
        };
        for (i, user) in STEADY.iter().enumerate() {
            let secret: Vec<u8> = (0..20u8).map(|b| b ^ ((i as u8 + 1) * 37)).collect();
            let rc = RecoveryCodes::generate(RECOVERY_CODES).expect("codes");
            let hashes = RecoveryHashes::create(&rc, KDF).expect("hash");
            let record = Record::new(&secret, OtpParams::default(), hashes, now());
            Store::open(&s.store, s.trust)
                .expect("store")
                .update(user, |_| Ok::<_, ()>((Change::Put(record), ())))
                .expect("enroll")
                .expect("enroll");
            let codes = rc.display().iter().map(|c| c.to_string()).collect();
            s.known.insert(user.to_string(), Known { secret, codes });
        }
        s
    }

    /// One login in this process through libpam.
    fn login(&mut self, service: &str, user: &str, answer: &str) -> bool {
        let mut answered = false;
        let mut responder = |style: Style, _: &str| {
            if style.is_prompt() && !answered {
                answered = true;
                Some(answer.to_string())
            } else {
                None
            }
        };
        let l = Login {
            confdir: &self.confdir,
            service,
            user,
            rhost: Some("192.0.2.10"),
            flags: 0,
        };
        self.logins += 1;
        let ok = client::authenticate(&l, &mut responder).is_ok_and(|t| t.code == PAM_SUCCESS);
        if ok {
            self.successes += 1;
        }
        ok
    }

    /// Books a success of `key`; a second one is a violation.
    fn accepted(&mut self, key: Spent, who: &str) {
        if !self.spent.insert(key.clone()) {
            self.violations
                .push(format!("{who}: accepted a second time: {key:?}"));
        }
    }

    fn steady_attempt(&mut self, rng: &mut Rng) {
        let user = STEADY[rng.below(STEADY.len() as u64) as usize];
        let known = self.known[user].clone();
        let t = now();
        match rng.below(10) {
            // The right code for now.
            0..=3 => {
                let key = Spent::Step(user.into(), known.secret.clone(), t / 30);
                let code = known.code_at(t);
                if self.login("soak", user, &code) {
                    self.accepted(key, "loop");
                }
            }
            // A code accepted before (this step or the one before): replay.
            4..=5 => {
                let step = t / 30 - rng.below(2);
                let key = Spent::Step(user.into(), known.secret.clone(), step);
                if self.spent.contains(&key) {
                    let code = Generator::new(&known.secret, OtpParams::default())
                        .code_at_step(step)
                        .to_string();
                    if self.login("soak", user, &code) {
                        self.violations
                            .push(format!("loop: replayed code accepted: {key:?}"));
                    }
                }
            }
            // A wrong code (never one of the window's).
            6..=7 => {
                let g = Generator::new(&known.secret, OtpParams::default());
                let mut wrong = format!("{:06}", rng.below(1_000_000));
                while (t / 30 - 2..=t / 30 + 2).any(|s| *g.code_at_step(s) == wrong) {
                    wrong = format!("{:06}", rng.below(1_000_000));
                }
                if self.login("soak", user, &wrong) {
                    self.violations
                        .push(format!("loop: wrong code accepted for {user}"));
                }
            }
            // A recovery code, used or not.
            _ => {
                let i = rng.below(RECOVERY_CODES as u64) as usize;
                let code = known.codes[i].clone();
                let key = Spent::Recovery(user.into(), code.clone());
                let used = self.spent.contains(&key);
                let ok = self.login("soak", user, &code);
                if ok {
                    self.accepted(key, "loop");
                } else if !used
                    && !self.maybe_spent.contains(&key)
                    && self.in_flight.as_ref() != Some(&key)
                {
                    self.violations.push(format!(
                        "loop: an unused recovery code was refused: {key:?}"
                    ));
                }
            }
        }
    }

    /// A login of a user whose enrollment the command line changes meanwhile.
    fn churned_attempt(&mut self, rng: &mut Rng) {
        let user = CHURNED[rng.below(CHURNED.len() as u64) as usize];
        let Some(known) = self.known.get(user).cloned() else {
            // Not enrolled (yet, or disabled): refused.
            if self.login("soak-strict", user, "123456") {
                self.violations
                    .push(format!("loop: {user} got in unenrolled"));
            }
            return;
        };
        let t = now();
        let right = rng.below(2) == 0;
        let code = if right {
            known.code_at(t)
        } else {
            "000000x".into()
        };
        if self.login("soak-strict", user, &code) {
            if !right {
                self.violations
                    .push(format!("loop: a malformed code let {user} in"));
            }
            self.accepted(
                Spent::Step(user.into(), known.secret.clone(), t / 30),
                "loop",
            );
        }
    }

    fn otpgate(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--store")
            .arg(&self.store)
            .arg("--config")
            .arg(self.dir.join("no-site.toml"))
            .args(args)
            .env_remove("SUDO_USER")
            .env_remove("SUDO_UID")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Starts one command on a churned user; what it prints is read when it ends.
    fn start_command(&mut self, rng: &mut Rng) -> (Child, String, &'static str) {
        let user = CHURNED[rng.below(CHURNED.len() as u64) as usize];
        let enrolled = self.known.contains_key(user);
        let action = match (enrolled, rng.below(4)) {
            (false, _) => "enroll",
            (true, 0) => "enroll",
            (true, 1) => "recovery",
            (true, 2) => "unlock",
            (true, _) => "disable",
        };
        let args: Vec<&str> = match action {
            "enroll" => vec![
                "enroll",
                user,
                "--force",
                "--no-verify",
                "--json",
                "--qr",
                "none",
                "--recovery-codes",
                "2",
            ],
            "recovery" => vec!["recovery", user, "--count", "2", "--json"],
            "unlock" => vec!["unlock", user],
            _ => vec!["disable", user, "--yes"],
        };
        self.commands += 1;
        let child = self.otpgate(&args).spawn().expect("otpgate runs");
        (child, user.to_string(), action)
    }

    fn finish_command(&mut self, child: Child, user: &str, action: &str) {
        let out = child.wait_with_output().expect("otpgate output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            self.violations.push(format!(
                "otpgate {action} {user} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return;
        }
        let json: serde_json::Value = match action {
            "enroll" | "recovery" => serde_json::from_str(&text).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
        let codes = || -> Vec<String> {
            json["recovery_codes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        match action {
            "enroll" => {
                let secret = json["secret"]
                    .as_str()
                    .and_then(otp::decode_secret)
                    .map(|s| s.to_vec())
                    .unwrap_or_default();
                self.known.insert(
                    user.to_string(),
                    Known {
                        secret,
                        codes: codes(),
                    },
                );
            }
            "recovery" => {
                if let Some(k) = self.known.get_mut(user) {
                    k.codes = codes();
                }
            }
            "disable" => {
                self.known.remove(user);
            }
            _ => {}
        }
    }

    /// A pamtester login of a steady user with the right code or an
    /// unused recovery code, through libpam-wrapper (our service directory).
    fn start_pamtester(&mut self, rng: &mut Rng) -> (Child, Spent, String) {
        let user = STEADY[rng.below(STEADY.len() as u64) as usize];
        let known = self.known[user].clone();
        let t = now();
        let (key, answer) = if rng.below(3) == 0 {
            let code = known.codes[rng.below(RECOVERY_CODES as u64) as usize].clone();
            (Spent::Recovery(user.into(), code.clone()), code)
        } else {
            (
                Spent::Step(user.into(), known.secret.clone(), t / 30),
                known.code_at(t),
            )
        };
        let mut child = Command::new("pamtester")
            .args(["soak", user, "authenticate"])
            .env("LD_PRELOAD", "libpam_wrapper.so")
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", &self.confdir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pamtester is installed by scripts/test.sh");
        self.in_flight = Some(key.clone());
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "{answer}");
        }
        (child, key, answer)
    }

    /// Ends a pamtester: SIGKILL it where it is, or let it finish.
    fn end_pamtester(&mut self, mut child: Child, key: Spent, kill: bool) {
        let pid = child.id();
        self.in_flight = None;
        if kill && child.try_wait().ok().flatten().is_none() && child.kill().is_ok() {
            let status = child.wait().ok();
            if status.is_some_and(|s| std::os::unix::process::ExitStatusExt::signal(&s) == Some(9))
            {
                self.killed += 1;
                system::remove_pam_wrapper_dir(pid);
                // Killed mid-login: its code may or may not be spent.
                if !self.spent.contains(&key) {
                    self.maybe_spent.insert(key);
                }
                return;
            }
        }
        let ok = child.wait().is_ok_and(|s| s.success());
        system::remove_pam_wrapper_dir(pid);
        if ok {
            self.accepted(key, "pamtester");
        }
    }

    /// At the end: every recovery code seen accepted is refused, and the
    /// counts add up: remaining = all - accepted - (some of those killed).
    fn final_checks(&mut self) {
        let store = Store::open(&self.store, self.trust).expect("store opens");
        for user in STEADY {
            let record = match store.load(user) {
                Ok(Some(r)) => r,
                other => {
                    self.violations
                        .push(format!("{user}: record lost: {other:?}"));
                    continue;
                }
            };
            let used: Vec<String> = self
                .spent
                .iter()
                .filter_map(|k| match k {
                    Spent::Recovery(u, c) if u == user => Some(c.clone()),
                    _ => None,
                })
                .collect();
            let maybe = self
                .maybe_spent
                .iter()
                .filter(|k| matches!(k, Spent::Recovery(u, _) if u == user))
                .filter(|k| !self.spent.contains(k))
                .count();
            let gone = RECOVERY_CODES - record.recovery.remaining();
            if gone < used.len() || gone > used.len() + maybe {
                self.violations.push(format!(
                    "{user}: {gone} recovery codes gone, {} seen used, {maybe} maybe",
                    used.len()
                ));
            }
            for code in used.iter().take(5) {
                if self.login("soak", user, code) {
                    self.violations
                        .push(format!("{user}: a used recovery code worked at the end"));
                }
            }
            let newest = self
                .spent
                .iter()
                .filter_map(|k| match k {
                    Spent::Step(u, _, s) if u == user => Some(*s),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            if record.last_step < newest {
                self.violations.push(format!(
                    "{user}: replay guard {} below an accepted step {newest}",
                    record.last_step
                ));
            }
        }
    }
}

fn main() {
    let a = args();
    let mut s = Soak::setup();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    // A soak is bounded by the wall clock, not the logins' clock.
    #[allow(clippy::disallowed_methods)]
    let deadline = Instant::now() + Duration::from_secs_f64(a.minutes * 60.0);
    let mut command: Option<(Child, String, &'static str)> = None;
    let mut pamtester: Option<(Child, Spent, String, u64)> = None;
    let mut baseline = None;
    let mut i: u64 = 0;
    loop {
        let done = match a.logins {
            Some(n) => s.logins >= n,
            #[allow(clippy::disallowed_methods)]
            None => Instant::now() >= deadline,
        };
        if done {
            break;
        }
        i += 1;
        if !a.alone && rng.below(5) == 0 {
            s.churned_attempt(&mut rng);
        } else {
            s.steady_attempt(&mut rng);
        }
        if a.alone {
            if i == 100 {
                baseline = Some(usage());
            }
            continue;
        }
        // One command and one pamtester at a time, each ended later on.
        match command.take() {
            Some((mut c, user, action)) => {
                if c.try_wait().ok().flatten().is_some() {
                    s.finish_command(c, &user, action);
                } else {
                    command = Some((c, user, action));
                }
            }
            None if rng.below(20) == 0 => command = Some(s.start_command(&mut rng)),
            None => {}
        }
        match pamtester.take() {
            Some((c, key, _, until)) if i >= until => {
                let kill = rng.below(2) == 0;
                s.end_pamtester(c, key, kill);
            }
            Some(p) => pamtester = Some(p),
            None if rng.below(4) == 0 => {
                let (c, key, answer) = s.start_pamtester(&mut rng);
                pamtester = Some((c, key, answer, i + rng.below(4)));
            }
            None => {}
        }
        // Warmed up: every kind of login and child has run.
        if baseline.is_none()
            && i >= 300
            && s.commands > 2
            && (s.killed > 0 || i >= 1000)
            && command.is_none()
            && pamtester.is_none()
        {
            baseline = Some(usage());
        }
    }
    if let Some((c, user, action)) = command.take() {
        s.finish_command(c, &user, action);
    }
    if let Some((c, key, _, _)) = pamtester.take() {
        s.end_pamtester(c, key, false);
    }
    s.final_checks();
    let end = usage();
    let start = baseline.unwrap_or(end);
    let _ = fs::remove_dir_all(&s.dir);
    println!(
        "pam_soak: {} logins in this process ({} accepted), {} pamtester logins SIGKILLed, {} otpgate commands",
        s.logins, s.successes, s.killed, s.commands
    );
    println!(
        "pam_soak: after warm-up RSS {} KiB, {} fds; at the end RSS {} KiB, {} fds",
        start.0, start.1, end.0, end.1
    );
    let mut failed = false;
    for v in &s.violations {
        eprintln!("pam_soak: VIOLATION: {v}");
        failed = true;
    }
    if end.1 > start.1 {
        eprintln!(
            "pam_soak: open file descriptors grew from {} to {}",
            start.1, end.1
        );
        failed = true;
    }
    // Under valgrind the RSS is valgrind's (shadow memory, debug info read
    // again at each dlopen of the module): printed, not judged.
    let judge_rss = std::env::var_os("PAM_SOAK_UNDER_VALGRIND").is_none();
    if judge_rss && end.0 * 10 > start.0 * 11 {
        eprintln!(
            "pam_soak: RSS grew by more than 10% ({} -> {} KiB)",
            start.0, end.0
        );
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
    if judge_rss {
        println!("pam_soak: no double accept, counts consistent, memory and descriptors flat");
    } else {
        // Only what was checked: valgrind judges the memory (leaks).
        println!(
            "pam_soak: no double accept, counts consistent, descriptors flat (RSS not judged under valgrind)"
        );
    }
}
