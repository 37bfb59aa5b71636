//! The children's rows side by side: one table, the ratios to the peers,
//! and the targets of issue 8. Prints; judges nothing by its exit code.

use std::collections::HashMap;

/// One series: logins, how many were accepted, wall-clock p50 and p99 and
/// CPU-time p50, in ms.
#[derive(Clone, Copy)]
struct Row {
    n: usize,
    accepted: usize,
    p50: f64,
    p99: f64,
    cpu: f64,
}

pub struct Run {
    users: usize,
    rows: HashMap<String, Row>,
    missing: Vec<(String, String)>,
}

/// (key, module, answer) in table order.
const LINES: [(&str, &str, &str); 15] = [
    ("permit", "pam_permit", "(the floor)"),
    ("otpgate.valid", "pam_otpgate", "valid code"),
    ("otpgate.refused", "pam_otpgate", "wrong code"),
    ("oath.valid", "pam_oath", "valid code"),
    ("oath.refused", "pam_oath", "wrong code"),
    ("ga.valid", "google-authenticator", "valid code"),
    ("ga.refused", "google-authenticator", "wrong code"),
    ("otpgate.recovery", "pam_otpgate", "recovery code"),
    ("nss.getpwnam", "NSS getpwnam", "nss_wrapper"),
    ("nss.account", "NSS getpwnam+getpwuid", "as pam_otpgate"),
    ("floor", "disk: 512 B pwrite+fdatasync", "in place"),
    ("load.permit", "load: pam_permit.so", "dlopen+dlclose"),
    ("load.otpgate", "load: pam_otpgate.so", "dlopen+dlclose"),
    ("load.oath", "load: pam_oath.so", "dlopen+dlclose"),
    ("load.ga", "load: pam_google_auth...", "dlopen+dlclose"),
];

const PEERS: [(&str, &str); 2] = [("oath", "pam_oath"), ("ga", "google-authenticator")];

impl Run {
    pub fn parse(users: usize, text: &str) -> Run {
        let mut run = Run {
            users,
            rows: HashMap::new(),
            missing: Vec::new(),
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["row", key, n, acc, p50, p99, cpu] => {
                    let ms = |s: &str| s.parse::<f64>().unwrap() / 1e6;
                    let row = Row {
                        n: n.parse().unwrap(),
                        accepted: acc.parse().unwrap(),
                        p50: ms(p50),
                        p99: ms(p99),
                        cpu: ms(cpu),
                    };
                    run.rows.insert(key.to_string(), row);
                }
                ["missing", key, hint] => run.missing.push((key.to_string(), hint.to_string())),
                _ => eprintln!("bench: ignored child output {line:?}"),
            }
        }
        run
    }

    fn p50(&self, key: &str) -> Option<f64> {
        self.rows.get(key).map(|r| r.p50)
    }

    /// What `key` adds to pam_permit's p50.
    fn added(&self, key: &str) -> Option<f64> {
        Some(self.p50(key)? - self.p50("permit")?)
    }

    /// What `key` adds to pam_permit's CPU time p50.
    fn added_cpu(&self, key: &str) -> Option<f64> {
        Some(self.rows.get(key)?.cpu - self.rows.get("permit")?.cpu)
    }

    /// pam_otpgate's added p50 less its NSS look-up (the system's cost).
    fn own(&self, key: &str) -> Option<f64> {
        Some(self.added(key)? - self.p50("nss.account")?)
    }

    /// The added CPU time less NSS's: no waiting at all.
    fn own_cpu(&self, key: &str) -> Option<f64> {
        Some(self.added_cpu(key)? - self.rows.get("nss.account")?.cpu)
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

fn table(runs: &[Run]) {
    println!(
        "{:>6}  {:<29} {:<16} {:>6} {:>8} {:>7} {:>7} {:>9} {:>9} {:>7} {:>9}",
        "users",
        "module",
        "answer",
        "logins",
        "accepted",
        "p50",
        "p99",
        "added p50",
        "added p99",
        "cpu p50",
        "added cpu"
    );
    for run in runs {
        let permit = run.rows.get("permit").copied();
        let load_permit = run.rows.get("load.permit").copied();
        for (key, module, answer) in LINES {
            let Some(r) = run.rows.get(key) else { continue };
            let is_login = !key.starts_with("nss")
                && !key.starts_with("load.")
                && key != "floor"
                && key != "permit";
            // A module's load is shown over pam_permit.so's load.
            let base = match key.strip_prefix("load.") {
                Some("permit") => None,
                Some(_) => load_permit,
                None if is_login => permit,
                None => None,
            };
            let (a50, a99, acpu) = match base {
                Some(p) => (
                    Some(r.p50 - p.p50),
                    Some(r.p99 - p.p99),
                    Some(r.cpu - p.cpu),
                ),
                _ => (None, None, None),
            };
            println!(
                "{:>6}  {module:<29} {answer:<16} {:>6} {:>8} {:>7.3} {:>7.3} {:>9} {:>9} {:>7.3} {:>9}",
                run.users,
                r.n,
                r.accepted,
                r.p50,
                r.p99,
                ms(a50),
                ms(a99),
                r.cpu,
                ms(acpu)
            );
        }
        for (key, hint) in &run.missing {
            println!("{:>6}  {key:<29} not installed ({hint})", run.users);
        }
    }
}

fn ratios(runs: &[Run]) {
    let cases = [
        (
            "wall-clock p50",
            Run::added as fn(&Run, &str) -> Option<f64>,
        ),
        ("CPU time p50", Run::added_cpu),
    ];
    for (what, added) in cases {
        println!();
        println!(
            "pam_otpgate's added {what} against each peer's (otpgate / peer; below 1 is cheaper)"
        );
        for run in runs {
            for (answer, label) in [("valid", "valid code"), ("refused", "wrong code")] {
                let mut line = format!("{:>6}  {label:<11}", run.users);
                for (peer, name) in PEERS {
                    let ours = added(run, &format!("otpgate.{answer}"));
                    let theirs = added(run, &format!("{peer}.{answer}"));
                    let cell = match (ours, theirs) {
                        (Some(o), Some(t)) if t > 0.0 && o > 0.0 => {
                            format!("{name} {:.2} ({:.1}x less)", o / t, t / o)
                        }
                        _ => format!("{name} -"),
                    };
                    line.push_str(&format!("  {cell:<38}"));
                }
                println!("{}", line.trim_end());
            }
        }
    }
}

fn target(what: &str, value: Option<f64>, unit: &str, goal: &str, met: Option<bool>) {
    let value = value.map_or("-".into(), |v| format!("{v:.3}{unit}"));
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    };
    println!("  {what:<58} {value:>10}  {goal:<10} {verdict}");
}

fn targets(runs: &[Run]) {
    let Some(small) = runs.iter().min_by_key(|r| r.users) else {
        return;
    };
    let large = runs
        .iter()
        .max_by_key(|r| r.users)
        .filter(|r| r.users > small.users);
    let (s, nss) = (small.users, small.p50("nss.account"));
    println!();
    println!("issue 8 targets (p50; added = over pam_permit; NSS = getpwnam+getpwuid)");
    for (answer, label) in [("valid", "valid"), ("refused", "wrong")] {
        let key = format!("otpgate.{answer}");
        let added = small.added(&key);
        let own = small.own(&key);
        let within = |v: Option<f64>| v.map(|v| v <= 0.30);
        target(
            &format!("pam_otpgate added, {s} users, {label} code"),
            added,
            " ms",
            "<= 0.30",
            within(added),
        );
        target(
            &format!("  the same less NSS ({} ms)", ms(nss)),
            own,
            " ms",
            "<= 0.30",
            within(own),
        );
    }
    if let Some(large) = large {
        let l = large.users;
        for (answer, label) in [("valid", "valid"), ("refused", "wrong")] {
            let key = format!("otpgate.{answer}");
            let ratio = |f: fn(&Run, &str) -> Option<f64>| Some(f(large, &key)? / f(small, &key)?);
            let (all, own) = (ratio(Run::added), ratio(Run::own));
            target(
                &format!("pam_otpgate added, {l} / {s} users, {label} code"),
                all,
                "x",
                "<= 1.3x",
                all.map(|r| r <= 1.3),
            );
            target(
                &format!(
                    "  the same less NSS ({} / {} ms)",
                    ms(large.p50("nss.account")),
                    ms(nss)
                ),
                own,
                "x",
                "<= 1.3x",
                own.map(|r| r <= 1.3),
            );
            let cpu = ratio(Run::own_cpu);
            target(
                "  CPU time less NSS",
                cpu,
                "x",
                "<= 1.3x",
                cpu.map(|r| r <= 1.3),
            );
        }
    }
    for ((peer, name), goal) in PEERS.iter().zip([2.5, 8.0]) {
        let r = small
            .added(&format!("{peer}.valid"))
            .zip(small.added("otpgate.valid"))
            .map(|(t, o)| t / o);
        target(
            &format!("{name} added / pam_otpgate added, {s} users, valid"),
            r,
            "x",
            &format!(">= {goal}x"),
            r.map(|r| r >= goal),
        );
    }
    for (answer, label) in [("valid", "valid"), ("refused", "wrong")] {
        target(
            &format!("pam_otpgate added CPU time, {s} users, {label} code"),
            small.added_cpu(&format!("otpgate.{answer}")),
            " ms",
            "(context)",
            None,
        );
    }
    let floor = small.p50("floor");
    target(
        &format!(
            "pam_otpgate added / disk floor ({} ms), {s} users, valid",
            ms(floor)
        ),
        small.added("otpgate.valid").zip(floor).map(|(a, f)| a / f),
        "x",
        "(context)",
        None,
    );
    for run in runs {
        target(
            &format!(
                "pam_otpgate added less the disk floor ({} ms), {} users, valid",
                ms(run.p50("floor")),
                run.users
            ),
            run.added("otpgate.valid")
                .zip(run.p50("floor"))
                .map(|(a, f)| a - f),
            " ms",
            "(context)",
            None,
        );
    }
    target(
        &format!("pam_otpgate recovery-code login, {s} users (Argon2id 19 MiB, t=2)"),
        small.p50("otpgate.recovery"),
        " ms",
        "(report)",
        None,
    );
}

/// The 1-minute load average, from /proc/loadavg.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

pub fn print(runs: &[Run], load_before: &str) {
    println!();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{cores} cores; load average {load_before} before the runs, {} after",
        load()
    );
    println!(
        "Logins through libpam (pam_start_confdir .. pam_end), times in ms; every login checked"
    );
    println!(
        "(accepted = PAM_SUCCESS); added = minus pam_permit's p50 (p99); NSS via nss_wrapper;"
    );
    println!(
        "cpu = CPU time of the call (user + system), which waiting for the disk or a core leaves out."
    );
    println!();
    table(runs);
    ratios(runs);
    targets(runs);
}
