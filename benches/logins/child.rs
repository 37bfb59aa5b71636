//! The measuring side, run under nss_wrapper in the temp dir the parent
//! prepared, with a syslog socket of its own (see `syslog`): enrolls every
//! user in each module, warms up on a few of them, then logs each other
//! user in, every module with a valid and a wrong code in a shuffled order
//! (so a slow moment of the shared machine hits all modules alike), checks
//! what pam_otpgate stored and logged, and prints one line per series
//! (`row  KEY  LOGINS  ACCEPTED  P50_NS  P99_NS  CPU_P50_NS`) on stdout.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};

use otpgate::core::Record;
use otpgate::core::otp::{Generator, OtpParams};
use otpgate::core::recovery::{KdfParams, RecoveryCodes, RecoveryHashes};
use otpgate::pam::client::{self, Login, PAM_AUTH_ERR, PAM_SUCCESS};
use otpgate::store::{Change, Store, Trust};

use crate::accounts::{home, secret, user_name};
use crate::syslog::{self, Sink};
use crate::{env_number, fail};

const PAM_DIRS: [&str; 4] = [
    "/lib/x86_64-linux-gnu/security",
    "/usr/lib/x86_64-linux-gnu/security",
    "/lib/security",
    "/usr/lib/security",
];
/// google-authenticator allows 3 attempts in 30 s: rounds start this long
/// after the previous one ended (which also moves every code to a new step).
const ROUND_GAP: Duration = Duration::from_secs(31);
/// Recovery-code logins (each one Argon2id hash at production cost).
const RECOVERY_LOGINS: usize = 20;
const PERIOD: u64 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Module {
    Permit,
    Otpgate,
    Oath,
    Ga,
}

impl Module {
    fn key(self) -> &'static str {
        match self {
            Module::Permit => "permit",
            Module::Otpgate => "otpgate",
            Module::Oath => "oath",
            Module::Ga => "ga",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Permit,
    Valid(Module),
    Wrong(Module),
    /// getpwnam alone.
    Getpwnam,
    /// getpwnam + getpwuid: what pam_otpgate asks NSS (`account::canonical_name`).
    Account,
    /// One in-place 512-byte pwrite + fdatasync.
    Floor,
    /// The module's shared object loaded (as libpam does) and unloaded.
    Load(Module),
}

/// Wall-clock and CPU time (user + system, this thread) of one operation:
/// waiting (for the disk, or for a core on the shared machine) shows in the
/// first only.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

struct Timer {
    wall: Instant,
    cpu: Duration,
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

impl Timer {
    fn start() -> Timer {
        Timer {
            cpu: thread_cpu(),
            wall: Instant::now(),
        }
    }

    fn stop(self) -> Sample {
        let wall = self.wall.elapsed();
        Sample {
            wall,
            cpu: thread_cpu().saturating_sub(self.cpu),
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn code(i: usize, step: u64) -> String {
    Generator::new(&secret(i), OtpParams::default())
        .code_at_step(step)
        .to_string()
}

/// A wrong 6-digit code for user `i`: not the code of any step within 10
/// of `step` (every module's window, and pam_otpgate's drift diagnosis),
/// and taken from a step years away that `nonce` picks, so wrong codes in
/// a row never look like a clock skew to google-authenticator (which
/// accepts three codes within a day with the same skew as a clock reset).
fn wrong_code(i: usize, step: u64, nonce: u64) -> String {
    let near: Vec<String> = (step - 10..=step + 10).map(|s| code(i, s)).collect();
    let far = step + 1_000_000 + (nonce ^ (i as u64) << 20).wrapping_mul(0x9e37_79b9) % 1_000_000;
    (far..)
        .map(|s| code(i, s))
        .find(|c| !near.contains(c))
        .unwrap()
}

fn pam_module(name: &str) -> Option<PathBuf> {
    PAM_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// The module measured: `OTPGATE_MODULE` (bench.sh sets it to the module
/// built as it is shipped, scripts/lib/module.sh), else the one cargo bench
/// built beside this binary.
fn otpgate_so() -> PathBuf {
    let so = std::env::var_os("OTPGATE_MODULE").map_or_else(
        || {
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().join("libotpgate.so")
        },
        PathBuf::from,
    );
    if !so.exists() {
        fail(&format!(
            "{} not found: run scripts/bench.sh, or build with cargo bench",
            so.display()
        ));
    }
    so
}

/// A tiny deterministic shuffle (xorshift), so runs are comparable.
fn shuffle(ops: &mut [Op], seed: u64) {
    let mut x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    for k in (1..ops.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ops.swap(k, (x % (k as u64 + 1)) as usize);
    }
}

struct Bench {
    confdir: PathBuf,
    modules: Vec<Module>,
    store: Store,
    floor: File,
    floor_slot: u64,
    samples: HashMap<String, Vec<Sample>>,
    accepted: HashMap<String, usize>,
    /// pam_otpgate's state each measured user should have: (failures, last step).
    expected: HashMap<usize, (u32, u64)>,
    /// pam_otpgate logins so far that should have logged success / bad_code.
    otpgate_ok: usize,
    otpgate_refused: usize,
    /// Picks each wrong code (see `wrong_code`).
    nonce: u64,
}

impl Bench {
    fn record(&mut self, key: &str, d: Sample, accepted: bool) {
        self.samples.entry(key.to_string()).or_default().push(d);
        *self.accepted.entry(key.to_string()).or_default() += usize::from(accepted);
    }

    /// One login of user `i`; stops the bench unless it ends with `want`.
    fn login(&mut self, module: Module, i: usize, answer: &str, want: i32) -> Sample {
        let user = user_name(i);
        let mut responder =
            |style: client::Style, _: &str| style.is_prompt().then(|| answer.to_string());
        let login = Login {
            confdir: &self.confdir,
            service: module.key(),
            user: &user,
            rhost: Some("192.0.2.1"),
            flags: 0,
        };
        let timer = Timer::start();
        let t = client::authenticate(&login, &mut responder).unwrap();
        let elapsed = timer.stop();
        if t.code != want {
            fail(&format!(
                "{} login of {user} returned {} where {want} was intended; messages: {:?}",
                module.key(),
                t.code,
                t.messages
            ));
        }
        if module == Module::Otpgate {
            match want {
                PAM_SUCCESS => self.otpgate_ok += 1,
                _ => self.otpgate_refused += 1,
            }
        }
        elapsed
    }

    /// Runs `op` for user `i`; `measure` false for the warm-up.
    fn op(&mut self, op: Op, i: usize, measure: bool) {
        let user = user_name(i);
        let (key, d, accepted) = match op {
            Op::Permit => ("permit".into(), self.login(Module::Permit, i, "", 0), true),
            Op::Valid(m) => {
                let step = now() / PERIOD;
                let d = self.login(m, i, &code(i, step), PAM_SUCCESS);
                if m == Module::Otpgate && measure {
                    self.expected.insert(i, (0, step));
                }
                (format!("{}.valid", m.key()), d, true)
            }
            Op::Wrong(m) => {
                self.nonce += 1;
                let wrong = wrong_code(i, now() / PERIOD, self.nonce);
                let d = self.login(m, i, &wrong, PAM_AUTH_ERR);
                if m == Module::Otpgate && measure {
                    self.expected.entry(i).or_insert((0, 0)).0 += 1;
                }
                (format!("{}.refused", m.key()), d, false)
            }
            Op::Getpwnam => {
                let timer = Timer::start();
                let found = nix::unistd::User::from_name(&user).unwrap();
                let d = timer.stop();
                if found.is_none() {
                    fail(&format!("getpwnam({user}) found nothing"));
                }
                ("nss.getpwnam".into(), d, true)
            }
            Op::Account => {
                let timer = Timer::start();
                let found = otpgate::account::canonical_name(&user).unwrap();
                let d = timer.stop();
                if found.as_deref() != Some(user.as_str()) {
                    fail(&format!("NSS resolves {user} to {found:?}"));
                }
                ("nss.account".into(), d, true)
            }
            Op::Floor => {
                self.floor_slot ^= 1;
                let block = [self.floor_slot as u8 + 1; 512];
                let timer = Timer::start();
                self.floor
                    .write_all_at(&block, self.floor_slot * 512)
                    .unwrap();
                self.floor.sync_data().unwrap();
                ("floor".into(), timer.stop(), true)
            }
            Op::Load(m) => {
                let path = module_path(&self.confdir, m);
                let timer = Timer::start();
                let loaded = client::load_and_unload(&path);
                let d = timer.stop();
                if let Err(why) = loaded {
                    fail(&format!("loading {}: {why}", path.display()));
                }
                (format!("load.{}", m.key()), d, true)
            }
        };
        if measure {
            self.record(&key, d, accepted);
        }
    }

    /// Every operation of one round for user `i`, shuffled.
    fn round(&mut self, i: usize, round: usize, measure: bool) {
        let mut ops = vec![Op::Permit, Op::Permit, Op::Getpwnam, Op::Account, Op::Floor];
        for &m in &self.modules {
            ops.push(Op::Load(m));
            if m != Module::Permit {
                ops.extend([Op::Valid(m), Op::Wrong(m)]);
            }
        }
        shuffle(&mut ops, (i as u64) << 8 | round as u64);
        for op in ops {
            self.op(op, i, measure);
        }
    }

    /// pam_otpgate's stored state says each valid login was accepted at its
    /// step and each wrong one counted: the refusals were bad codes, not
    /// store or configuration errors.
    fn verify_state(&self) {
        for (&i, &(failures, step)) in &self.expected {
            let user = user_name(i);
            let r = self.store.load(&user).unwrap().unwrap();
            if r.failures != failures || r.last_step != step || r.hard_locked {
                fail(&format!(
                    "pam_otpgate state of {user}: failures {} last_step {} hard_locked {}, \
                     expected failures {failures} last_step {step}",
                    r.failures, r.last_step, r.hard_locked
                ));
            }
        }
    }

    /// One log line per pam_otpgate attempt, each saying what was intended
    /// (a refusal for a bad code, never a store or configuration fault).
    fn verify_log(&self, sink: &Sink) {
        let ok = sink.count(&["otpgate:", "result=success"], self.otpgate_ok);
        let bad = sink.count(&["otpgate:", "reason=bad_code"], self.otpgate_refused);
        let failed = sink.count(&["otpgate:", "result=fail"], self.otpgate_refused);
        if ok != self.otpgate_ok || bad != self.otpgate_refused || failed != bad {
            fail(&format!(
                "pam_otpgate logged {ok} successes, {bad} bad codes and {failed} failures; \
                 expected {} and {}: {:?}",
                self.otpgate_ok,
                self.otpgate_refused,
                sink.matching("result=fail")
            ));
        }
        eprintln!(
            "bench: {} syslog lines; pam_otpgate: {ok} success, {bad} bad_code, as intended",
            sink.total()
        );
    }

    fn print(&self) {
        for (key, samples) in &self.samples {
            let pct = |f: fn(&Sample) -> Duration, p: f64| {
                let mut ns: Vec<u128> = samples.iter().map(|s| f(s).as_nanos()).collect();
                ns.sort_unstable();
                ns[((ns.len() - 1) as f64 * p).round() as usize]
            };
            println!(
                "row\t{key}\t{}\t{}\t{}\t{}\t{}",
                samples.len(),
                self.accepted[key],
                pct(|s| s.wall, 0.5),
                pct(|s| s.wall, 0.99),
                pct(|s| s.cpu, 0.5),
            );
        }
    }
}

fn enroll(store: &Store, i: usize, kdf: KdfParams) -> String {
    let codes = RecoveryCodes::generate(10).unwrap();
    let hashes = RecoveryHashes::create(&codes, kdf).unwrap();
    let record = Record::new(&secret(i), OtpParams::default(), hashes, now());
    store
        .update(&user_name(i), |_| Ok::<_, ()>((Change::Put(record), ())))
        .unwrap()
        .unwrap();
    codes.display()[9].to_string()
}

/// The shared object a service of `setup` loads (its first line's module).
fn module_path(confdir: &Path, m: Module) -> PathBuf {
    let line = fs::read_to_string(confdir.join(m.key())).unwrap();
    PathBuf::from(line.split_whitespace().nth(2).unwrap())
}

fn service(confdir: &Path, m: Module, line: &str) {
    fs::write(confdir.join(m.key()), format!("auth required {line}\n")).unwrap();
}

/// The services, the otpgate store, pam_oath's users file; the modules found.
fn setup(dir: &Path, confdir: &Path, users: usize) -> (Vec<Module>, Store) {
    fs::create_dir(confdir).unwrap();
    let permit = pam_module("pam_permit.so").unwrap_or_else(|| fail("pam_permit.so not found"));
    service(confdir, Module::Permit, &permit.display().to_string());
    // As on a real system: without `other`, libpam logs its absence on every login.
    let deny = pam_module("pam_deny.so").unwrap_or_else(|| fail("pam_deny.so not found"));
    fs::write(
        confdir.join("other"),
        format!("auth required {}\n", deny.display()),
    )
    .unwrap();
    let mut modules = vec![Module::Permit, Module::Otpgate];

    let store_dir = dir.join("store");
    fs::create_dir(&store_dir).unwrap();
    fs::set_permissions(&store_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let store = Store::open(&store_dir, Trust::RootOnly).unwrap();
    // TOTP logins never hash: cheap recovery hashes keep 10,000 enrollments
    // short; the recovery-code logins below are re-enrolled at full cost.
    let cheap = KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };
    for i in 0..users {
        enroll(&store, i, cheap);
    }
    // A site config of our own so /etc/otpgate.toml is not read: the
    // example the package installs there (comments, an empty [policy]:
    // the default policy), which every login reads and parses.
    let config = dir.join("otpgate.toml");
    fs::write(
        &config,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/packaging/otpgate.toml"
        )),
    )
    .unwrap();
    service(
        confdir,
        Module::Otpgate,
        &format!(
            "{} store={} config={}",
            otpgate_so().display(),
            store_dir.display(),
            config.display()
        ),
    );

    match pam_module("pam_oath.so") {
        Some(oath) => {
            let file = dir.join("users.oath");
            let text: String = (0..users)
                .map(|i| {
                    let hex: String = secret(i).iter().map(|b| format!("{b:02x}")).collect();
                    format!("HOTP/T30 {} - {hex}\n", user_name(i))
                })
                .collect();
            fs::write(&file, text).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
            let line = format!(
                "{} usersfile={} window=1 digits=6",
                oath.display(),
                file.display()
            );
            service(confdir, Module::Oath, &line);
            modules.push(Module::Oath);
        }
        None => println!("missing\toath\tapt-get install libpam-oath"),
    }
    match pam_module("pam_google_authenticator.so") {
        // The default: ~/.google_authenticator, owned by the user.
        Some(ga) => {
            assert!(home(dir, 0).join(".google_authenticator").exists());
            service(confdir, Module::Ga, &ga.display().to_string());
            modules.push(Module::Ga);
        }
        None => println!("missing\tga\tapt-get install libpam-google-authenticator"),
    }
    // BENCH_MODULES=otpgate,oath: only these peers (pam_permit always runs).
    if let Ok(only) = std::env::var("BENCH_MODULES") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        modules.retain(|m| *m == Module::Permit || only.contains(&m.key()));
    }
    (modules, store)
}

pub fn run(dir: &Path) {
    let sink = syslog::install(dir);
    let users = env_number("BENCH_USERS").unwrap();
    for name in ["root".to_string(), user_name(0), user_name(users - 1)] {
        if otpgate::account::canonical_name(&name).unwrap().as_deref() != Some(name.as_str()) {
            fail(&format!(
                "NSS does not know {name}: is nss_wrapper preloaded (LD_PRELOAD, NSS_WRAPPER_PASSWD, NSS_WRAPPER_GROUP)?"
            ));
        }
    }
    let confdir = dir.join("pam.d");
    let (modules, store) = setup(dir, &confdir, users);
    let floor_path = dir.join("floor");
    fs::write(&floor_path, [0u8; 1024]).unwrap();
    let floor = File::options().write(true).open(&floor_path).unwrap();
    floor.sync_all().unwrap();
    let mut b = Bench {
        confdir,
        modules,
        store,
        floor,
        floor_slot: 0,
        samples: HashMap::new(),
        accepted: HashMap::new(),
        expected: HashMap::new(),
        otpgate_ok: 0,
        otpgate_refused: 0,
        nonce: 0,
    };
    let warm = (users / 10).clamp(1, 10);
    let measured = users - warm;
    let rounds = env_number("BENCH_ROUNDS")
        .unwrap_or_else(|| 800usize.div_ceil(measured).clamp(1, 3))
        .max(1);
    eprintln!("bench: {users} users: {warm} warm-up, {measured} measured, {rounds} round(s)");

    // Each user's first pam_otpgate login also grows the state file to its
    // two slots, a one-off: done here, unmeasured, so the rounds measure
    // users who have logged in before (every write in place).
    for i in 0..users {
        b.login(
            Module::Otpgate,
            i,
            &wrong_code(i, now() / PERIOD, u64::MAX),
            PAM_AUTH_ERR,
        );
        if i >= warm {
            b.expected.insert(i, (1, 0));
        }
    }
    for i in 0..warm {
        b.round(i, 0, false);
    }
    let mut end = Instant::now();
    for round in 0..rounds {
        if round > 0 {
            std::thread::sleep(ROUND_GAP.saturating_sub(end.elapsed()));
        }
        for i in warm..users {
            b.round(i, round, true);
        }
        end = Instant::now();
    }
    b.verify_state();

    // Recovery codes at production cost (Argon2id 19 MiB, t=2): new records
    // for a few measured users, one recovery-code login each.
    for i in (warm..users).take(RECOVERY_LOGINS) {
        let code = enroll(&b.store, i, KdfParams::DEFAULT);
        let d = b.login(Module::Otpgate, i, &code, PAM_SUCCESS);
        b.record("otpgate.recovery", d, true);
    }
    b.verify_log(&sink);
    if let Ok(path) = std::env::var("BENCH_SYSLOG") {
        sink.save(Path::new(&path));
    }
    b.print();
}
