//! Shared fixtures: a private store and PAM service directory per test,
//! records written through the library, codes computed by `oathtool`.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use otpgate::core::Record;
use otpgate::core::otp::{self, Algorithm, OtpParams};
use otpgate::core::recovery::{KdfParams, RecoveryCodes, RecoveryHashes};
use otpgate::pam::client::{self, Login, Style, Transcript};
use otpgate::store::{Change, Store, Trust};

/// Accounts every Debian system has (base-passwd): the module and the
/// command resolve names through NSS, so tests enroll real accounts, each in
/// the test's own store (nothing of the machine's login setup is touched).
pub const ACCOUNTS: [&str; 12] = [
    "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "backup",
];

/// Recovery hashes in tests use small Argon2 costs; the parameters live in
/// the record, so the module runs exactly the production code path.
pub const TEST_KDF: KdfParams = KdfParams {
    m_cost: 256,
    t_cost: 1,
    p_cost: 1,
};

/// The freshly built module: cargo puts the cdylib next to the test binaries.
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let so = deps.join("libotpgate.so");
    assert!(so.exists(), "module not built at {}", so.display());
    so
}

/// The fleet object (a dev-dependency, so cargo builds it for the tests),
/// beside the module as the module looks for it (`_fleet` before `.so`).
pub fn fleet_object_path() -> PathBuf {
    let so = module_path().with_file_name("libotpgate_fleet.so");
    assert!(so.exists(), "fleet object not built at {}", so.display());
    so
}

#[allow(clippy::disallowed_methods)] // tests compute codes for the real clock the module reads
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A code for `time` from oathtool, an implementation independent of ours.
pub fn oathtool(secret_b32: &str, params: OtpParams, time: u64) -> String {
    let alg = match params.algorithm {
        Algorithm::Sha1 => "sha1",
        Algorithm::Sha256 => "sha256",
        Algorithm::Sha512 => "sha512",
    };
    let out = Command::new("oathtool")
        .arg(format!("--totp={alg}"))
        .args([
            "-d",
            &params.digits.to_string(),
            "-s",
            &params.period.to_string(),
        ])
        .arg("-N")
        .arg(format!("@{time}"))
        .args(["-b", secret_b32])
        .output()
        .expect("oathtool is installed by scripts/test.sh");
    assert!(
        out.status.success(),
        "oathtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A 6-digit code that is not `right`.
pub fn wrong_code(right: &str) -> &'static str {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
}

/// Who the fixtures trust: root in CI (the module's default); a non-root
/// run trusts its own stores (and its stacks add `owner_ok`, see [`owner_ok`]).
pub fn trust() -> Trust {
    if nix::unistd::geteuid().is_root() {
        Trust::RootOnly
    } else {
        Trust::RootOrEuid
    }
}

/// `owner_ok` when the tests run as non-root (their stores are their own).
pub fn owner_ok() -> &'static str {
    match trust() {
        Trust::RootOnly => "",
        Trust::RootOrEuid => "owner_ok",
    }
}

pub struct Enrolled {
    pub secret: String,
    pub params: OtpParams,
    pub recovery: Vec<String>,
}

impl Enrolled {
    /// The code an app would show `offset` steps from now.
    pub fn code(&self, offset: i64) -> String {
        let t = unix_now() as i64 + offset * i64::from(self.params.period);
        oathtool(&self.secret, self.params, t as u64)
    }
}

/// The `otpgate` command built with the tests.
pub const OTPGATE: &str = env!("CARGO_BIN_EXE_otpgate");

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The one JSON value a command printed on stdout.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", stdout(o)))
}

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub store: PathBuf,
    pub confdir: PathBuf,
    pub service: String,
}

impl Fixture {
    /// A store and a service `otpgate-test-NAME` running the module with `options`.
    pub fn new(name: &str, options: &str) -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("otpgate-test-")
            .tempdir()
            .unwrap();
        let store = tmp.path().join("store");
        fs::create_dir(&store).unwrap();
        fs::set_permissions(&store, fs::Permissions::from_mode(0o700)).unwrap();
        let confdir = tmp.path().join("pam.d");
        fs::create_dir(&confdir).unwrap();
        let f = Fixture {
            tmp,
            store,
            confdir,
            service: format!("otpgate-test-{name}"),
        };
        f.set_stack(&format!(
            "auth required {} store={} {} {options}",
            module_path().display(),
            f.store.display(),
            owner_ok()
        ));
        f
    }

    /// `otpgate ARGS` on this store, with no site config and no sudo
    /// variables; stdout and stderr piped, stdin null (callers may pipe it).
    pub fn otpgate_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(OTPGATE);
        c.arg("--store")
            .arg(&self.store)
            .arg("--config")
            .arg(self.tmp.path().join("no-site-config.toml"))
            .args(args)
            .env_remove("SUDO_USER")
            .env_remove("SUDO_UID")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Replaces the whole service file.
    pub fn set_stack(&self, text: &str) {
        fs::write(self.confdir.join(&self.service), format!("{text}\n")).unwrap();
    }

    pub fn record_path(&self, user: &str) -> PathBuf {
        self.store.join(format!("{user}.toml"))
    }

    pub fn enroll(&self, user: &str, params: OtpParams, codes: usize) -> Enrolled {
        let secret = [
            0x5au8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
        ];
        let mut secret = secret.to_vec();
        secret[0] = user.len() as u8; // distinct per user name length, still deterministic
        let rc = RecoveryCodes::generate(codes).unwrap();
        let hashes = RecoveryHashes::create(&rc, TEST_KDF).unwrap();
        let record = Record::new(&secret, params, hashes, unix_now());
        let store = Store::open(&self.store, trust()).unwrap();
        store
            .update(user, |_| Ok::<_, ()>((Change::Put(record), ())))
            .unwrap()
            .unwrap();
        Enrolled {
            secret: otp::encode_secret(&secret),
            params,
            recovery: rc.display().iter().map(|c| c.to_string()).collect(),
        }
    }

    pub fn record(&self, user: &str) -> Record {
        Store::open(&self.store, trust())
            .unwrap()
            .load(user)
            .unwrap()
            .unwrap()
    }

    /// One in-process login through real libpam, answering each prompt in turn.
    pub fn login_with(&self, user: &str, answers: &[&str], flags: i32) -> Transcript {
        let mut queue: Vec<String> = answers.iter().rev().map(|s| s.to_string()).collect();
        let mut responder =
            |style: Style, _: &str| if style.is_prompt() { queue.pop() } else { None };
        let login = Login {
            confdir: &self.confdir,
            service: &self.service,
            user,
            rhost: Some("192.0.2.10"),
            flags,
        };
        client::authenticate(&login, &mut responder).unwrap()
    }

    pub fn login(&self, user: &str, answer: &str) -> Transcript {
        self.login_with(user, &[answer], 0)
    }

    /// `pamtester` in its own process, through libpam-wrapper so the
    /// service comes from our directory and pam_syslog lines reach stderr.
    pub fn pamtester(&self, user: &str) -> Command {
        let mut c = Command::new("pamtester");
        c.args([&self.service, user, "authenticate"])
            .env("LD_PRELOAD", "libpam_wrapper.so")
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", &self.confdir)
            .env("PAM_WRAPPER_DEBUGLEVEL", "2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs pamtester with `input` on stdin; returns (success, syslog lines).
    pub fn pamtester_login(&self, user: &str, input: &[u8]) -> (bool, Vec<String>) {
        let (ok, logs, _) = self.pamtester_run(self.pamtester(user), input);
        (ok, logs)
    }

    /// pamtester with the process clock frozen at unix time `at` (libfaketime).
    pub fn pamtester_at(&self, user: &str, at: u64) -> Command {
        let mut c = self.pamtester(user);
        c.env("LD_PRELOAD", format!("libpam_wrapper.so {FAKETIME_LIB}"))
            .env("TZ", "UTC")
            .env("FAKETIME", utc_string(at))
            .env("DONT_FAKE_MONOTONIC", "1");
        c
    }

    /// Runs a prepared pamtester; returns (success, syslog lines, everything printed).
    pub fn pamtester_run(&self, cmd: Command, input: &[u8]) -> (bool, Vec<String>, String) {
        use std::io::Write;
        let mut p = AtPrompt::spawn(cmd);
        let mut stdin = p.child.stdin.take().unwrap();
        let _ = stdin.write_all(input);
        drop(stdin);
        let done = p.finish();
        let text = format!("{}{}", done.stdout, done.stderr);
        (done.success(), done.logs(), text)
    }
}

pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// `YYYY-MM-DD HH:MM:SS` in UTC, libfaketime's absolute (frozen) format.
pub fn utc_string(t: u64) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%d %H:%M:%S"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The module's own syslog lines from libpam-wrapper's stderr.
pub fn syslog_lines(out: &Output) -> Vec<String> {
    log_lines_of(&String::from_utf8_lossy(&out.stderr))
}

pub fn prompts(t: &Transcript) -> Vec<String> {
    t.messages
        .iter()
        .filter(|(s, _)| s.is_prompt())
        .map(|(_, m)| m.clone())
        .collect()
}

pub fn read_bytes(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap()
}

/// `otpgate` arguments that replace `user`'s enrollment (broken or not)
/// with `secret`, unchecked, printing JSON.
pub fn force_enroll_args<'a>(user: &'a str, secret: &'a str) -> [&'a str; 7] {
    [
        "enroll",
        user,
        "--force",
        "--no-verify",
        "--json",
        "--secret",
        secret,
    ]
}

/// A real system user `otpgate-t*` with a password, removed on drop.
pub struct TestUser {
    pub name: String,
}

impl TestUser {
    pub fn create(name: &str, password: &str) -> TestUser {
        assert!(name.starts_with("otpgate-t"));
        let _ = Command::new("userdel").arg(name).output();
        let ok = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", name])
            .status()
            .unwrap();
        assert!(ok.success(), "useradd {name}");
        let user = TestUser {
            name: name.to_string(),
        };
        let mut c = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            writeln!(c.stdin.take().unwrap(), "{name}:{password}").unwrap();
        }
        assert!(c.wait().unwrap().success(), "chpasswd");
        user
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg("-f").arg(&self.name).output();
    }
}

pub mod pg;
pub mod proxy;
pub mod system;
pub use system::remove_pam_wrapper_dir;

/// Where root-only tests note that they were skipped; scripts/test.sh
/// prints the list at the end of a run that is not root.
pub const SKIPPED_LIST: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/otpgate-skipped-tests.txt");

/// True when the test can run; otherwise notes `test` as skipped (a test
/// that needs root returns early and would otherwise pass silently).
pub fn runs_as_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    use std::io::Write;
    eprintln!("SKIPPED (needs root; CI runs as root): {test}");
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(SKIPPED_LIST)
    {
        let _ = writeln!(f, "{test}");
    }
    false
}

/// A `pamtester` process that has reached its prompt and waits for an answer.
///
/// libpam-wrapper picks its runtime directory `/tmp/pam.X` from a handful of
/// names with a check-then-create race, so processes start one at a time
/// machine-wide (an flock also held by other test binaries and checkouts):
/// the next one starts only when this one has made its directory.
/// What libpam-wrapper prints (PAM_WRAPPER_DEBUGLEVEL=2) once its runtime
/// directory exists.
const PAM_WRAPPER_READY: &str = "Successfully initialized pam_wrapper";

pub struct AtPrompt {
    pub child: std::process::Child,
    output: std::sync::Arc<(std::sync::Mutex<Captured>, std::sync::Condvar)>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Captured {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    closed: usize,
}

/// What a finished pamtester printed and how it ended.
pub struct Finished {
    pub pid: u32,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The module's own syslog lines (captured by libpam-wrapper).
    pub fn logs(&self) -> Vec<String> {
        log_lines_of(&self.stderr)
    }
}

impl AtPrompt {
    /// Spawns `cmd` and returns once `marker` (the prompt) has been printed.
    /// Panics, with everything printed, when the process ends before that.
    pub fn start(cmd: Command, marker: &str) -> AtPrompt {
        let p = AtPrompt::spawn(cmd);
        p.wait_for(marker);
        p
    }

    /// Spawns `cmd` and returns once libpam-wrapper has set itself up.
    pub fn spawn(mut cmd: Command) -> AtPrompt {
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/otpgate-test-pam-wrapper.lock")
            .unwrap();
        lock.lock().unwrap();
        // Under the lock no process of ours is setting up, so a directory
        // whose owner is gone (or never wrote its pid: killed or failed in
        // between) is stale; libpam-wrapper itself gives up on those, and 62
        // of them would stop every later pamtester.
        remove_stale_pam_wrapper_dirs();
        use std::io::Read;
        use std::sync::{Arc, Condvar, Mutex};
        let mut child = cmd
            .spawn()
            .expect("pamtester is installed by scripts/test.sh");
        let output = Arc::new((Mutex::new(Captured::default()), Condvar::new()));
        let mut readers = Vec::new();
        let streams: [(Box<dyn Read + Send>, bool); 2] = [
            (Box::new(child.stdout.take().unwrap()), false),
            (Box::new(child.stderr.take().unwrap()), true),
        ];
        for (mut stream, is_err) in streams {
            let output = Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    let (lock, cv) = &*output;
                    let mut c = lock.lock().unwrap();
                    if n == 0 {
                        c.closed += 1;
                        cv.notify_all();
                        return;
                    }
                    if is_err {
                        c.stderr.extend_from_slice(&buf[..n]);
                    } else {
                        c.stdout.extend_from_slice(&buf[..n]);
                    }
                    cv.notify_all();
                }
            }));
        }
        let p = AtPrompt {
            child,
            output,
            readers,
        };
        p.wait_for(PAM_WRAPPER_READY);
        drop(lock);
        p
    }

    fn wait_for(&self, marker: &str) {
        let (lock, cv) = &*self.output;
        let mut c = lock.lock().unwrap();
        loop {
            let seen = |b: &[u8]| String::from_utf8_lossy(b).contains(marker);
            if seen(&c.stderr) || seen(&c.stdout) {
                return;
            }
            assert!(
                c.closed < 2,
                "pamtester ended before {marker:?}:\n{}{}",
                String::from_utf8_lossy(&c.stdout),
                String::from_utf8_lossy(&c.stderr)
            );
            // A bound, not a timing assertion: a hung process fails the test.
            let (next, timeout) = cv
                .wait_timeout(c, std::time::Duration::from_secs(120))
                .unwrap();
            assert!(!timeout.timed_out(), "pamtester never printed {marker:?}");
            c = next;
        }
    }

    /// Types `text` and a newline, and closes stdin.
    pub fn answer(&mut self, text: &str) {
        use std::io::Write;
        let mut stdin = self.child.stdin.take().unwrap();
        let _ = writeln!(stdin, "{text}");
    }

    /// Waits for the process and returns what it printed.
    pub fn finish(mut self) -> Finished {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let c = self.output.0.lock().unwrap();
        Finished {
            pid: self.child.id(),
            status,
            stdout: String::from_utf8_lossy(&c.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&c.stderr).into_owned(),
        }
    }

    /// SIGKILLs the process wherever it is, reaps it, and removes the
    /// runtime directory libpam-wrapper could not clean up. Returns whether
    /// the signal hit a live process (false: it had already exited).
    pub fn kill(mut self) -> (bool, Finished) {
        let pid = self.child.id();
        let alive = self.child.try_wait().unwrap().is_none();
        let hit = alive && self.child.kill().is_ok();
        let finished = self.finish();
        // A process that exited by itself before the signal was not killed.
        let hit = hit && finished.status.signal_number() == Some(9);
        remove_pam_wrapper_dir(pid);
        (hit, finished)
    }
}

trait SignalNumber {
    fn signal_number(&self) -> Option<i32>;
}

impl SignalNumber for std::process::ExitStatus {
    fn signal_number(&self) -> Option<i32> {
        std::os::unix::process::ExitStatusExt::signal(self)
    }
}

/// Removes every `/tmp/pam.X` whose pid file names a process that is gone,
/// or that has had no pid for two minutes (its owner was killed between
/// making it and writing the pid). A younger one without a pid may be a
/// process setting up a second time outside our lock: left alone.
fn remove_stale_pam_wrapper_dirs() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() != 5 || !name.starts_with("pam.") {
            continue;
        }
        let pid = fs::read_to_string(e.path().join("pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        let stale = match pid {
            Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
            None => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 120),
        };
        if stale {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// The module's syslog lines in text libpam-wrapper printed on stderr.
pub fn log_lines_of(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("SYSLOG(").map(|(_, rest)| rest))
        .filter_map(|l| l.split_once("): ").map(|(_, msg)| msg.to_string()))
        .filter(|l| l.starts_with("otpgate:"))
        .collect()
}

/// Decodes a QR picture (true = light) with zbarimg, each module `scale`
/// pixels wide; `None` when zbarimg finds no code.
pub fn zbar_decode(light: &[Vec<bool>], scale: usize, path: &Path) -> Option<String> {
    let (h, w) = (light.len() * scale, light[0].len() * scale);
    let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
    for row in light {
        for _ in 0..scale {
            for &l in row {
                pgm.extend(std::iter::repeat_n(if l { 255u8 } else { 0 }, scale));
            }
        }
    }
    fs::write(path, pgm).unwrap();
    let z = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(path)
        .output()
        .expect("zbarimg is installed by scripts/test.sh");
    z.status
        .success()
        .then(|| String::from_utf8_lossy(&z.stdout).trim_end().to_string())
}

/// A QR code's modules (true = dark) as zbar_decode's picture.
pub fn light_of(modules: &[Vec<bool>]) -> Vec<Vec<bool>> {
    modules
        .iter()
        .map(|r| r.iter().map(|&m| !m).collect())
        .collect()
}
