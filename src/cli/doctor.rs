//! `otpgate doctor`: finds the misconfigurations that lock people out or
//! let them skip the code, and says the line that fixes each.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{CliResult, Context, EXIT_OK, EXIT_REFUSED};
use crate::config::ModuleOptions;
use crate::pam::sys::{ClockState, clock_state};
use crate::store::Store;

pub const MODULE_FILE: &str = "pam_otpgate.so";
const MODULE_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu/security",
    "/usr/lib/x86_64-linux-gnu/security",
    "/lib/aarch64-linux-gnu/security",
    "/usr/lib/aarch64-linux-gnu/security",
    "/lib/security",
    "/usr/lib/security",
    "/lib64/security",
    "/usr/lib64/security",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(check: &'static str, message: impl Into<String>) -> Finding {
    Finding {
        check,
        level: Level::Ok,
        message: message.into(),
        fix: None,
    }
}

fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        check,
        level: Level::Warn,
        message: message.into(),
        fix: Some(fix.into()),
    }
}

fn error(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        check,
        level: Level::Error,
        message: message.into(),
        fix: Some(fix.into()),
    }
}

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Only these checks (comma-separated): module, store, pam, sshd, clock.
    #[arg(long, value_delimiter = ',', value_parser = ["module", "store", "pam", "sshd", "clock"])]
    check: Vec<String>,
    /// PAM service directory to inspect.
    #[arg(long, default_value = "/etc/pam.d", value_name = "DIR")]
    pam_dir: PathBuf,
    /// Look for the module here instead of the system's PAM module directories.
    #[arg(long, value_name = "DIR")]
    module_dir: Option<PathBuf>,
    /// sshd configuration to evaluate with `sshd -T -f FILE`.
    #[arg(long, value_name = "FILE")]
    sshd_config: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: DoctorArgs) -> CliResult {
    let wants = |c: &str| args.check.is_empty() || args.check.iter().any(|x| x == c);
    let mut findings = Vec::new();
    if wants("module") {
        findings.extend(check_module(args.module_dir.as_deref()));
    }
    if wants("store") {
        findings.extend(check_store(&ctx.store_dir, ctx.trust));
    }
    let stacks = read_stacks(&args.pam_dir);
    if wants("pam") {
        findings.extend(check_pam(&stacks, &args.pam_dir));
    }
    if wants("sshd") {
        findings.extend(check_sshd(&stacks, args.sshd_config.as_deref()));
    }
    if wants("clock") {
        findings.push(clock_finding(clock_state()));
    }
    let healthy = findings.iter().all(|f| f.level == Level::Ok);
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "healthy": healthy, "findings": findings })
        );
    } else {
        for f in &findings {
            let tag = match f.level {
                Level::Ok => "ok   ",
                Level::Warn => "WARN ",
                Level::Error => "ERROR",
            };
            println!("{tag} {:<6} {}", f.check, f.message);
            if let Some(fix) = &f.fix {
                println!("      {:<6} fix: {fix}", "");
            }
        }
        println!(
            "{}",
            if healthy {
                "Healthy."
            } else {
                "Problems found."
            }
        );
    }
    Ok(if healthy { EXIT_OK } else { EXIT_REFUSED })
}

fn check_module(dir: Option<&Path>) -> Vec<Finding> {
    let candidates: Vec<PathBuf> = match dir {
        Some(d) => vec![d.join(MODULE_FILE)],
        None => MODULE_DIRS
            .iter()
            .map(|d| Path::new(d).join(MODULE_FILE))
            .collect(),
    };
    let Some(path) = candidates.iter().find(|p| p.exists()) else {
        return vec![error(
            "module",
            format!("{MODULE_FILE} is not installed where PAM looks"),
            "sudo scripts/install.sh",
        )];
    };
    match fs::metadata(path) {
        Ok(m) if m.uid() != 0 || m.mode() & 0o022 != 0 => vec![error(
            "module",
            format!(
                "{} is writable by someone other than root (owner uid {}, mode {:04o})",
                path.display(),
                m.uid(),
                m.mode() & 0o7777
            ),
            format!("chown root:root {p} && chmod 0644 {p}", p = path.display()),
        )],
        Ok(_) => vec![ok("module", format!("{} installed", path.display()))],
        Err(e) => vec![error(
            "module",
            format!("{}: {e}", path.display()),
            "sudo scripts/install.sh",
        )],
    }
}

fn check_store(dir: &Path, trust: crate::store::Trust) -> Vec<Finding> {
    let fix_dir = format!("install -d -o root -g root -m 0700 {}", dir.display());
    let store = match Store::open(dir, trust) {
        Ok(s) => s,
        Err(e) => return vec![error("store", e.to_string(), fix_dir)],
    };
    let mut out = Vec::new();
    if let Ok(m) = fs::metadata(dir)
        && m.mode() & 0o077 != 0
    {
        out.push(warn(
            "store",
            format!(
                "{} is mode {:04o}; records' names are visible",
                dir.display(),
                m.mode() & 0o7777
            ),
            format!("chmod 0700 {}", dir.display()),
        ));
    }
    let users = match store.users() {
        Ok(u) => u,
        Err(e) => return vec![error("store", e.to_string(), fix_dir)],
    };
    let mut bad = 0;
    for user in &users {
        if let Err(e) = store.load(user) {
            bad += 1;
            let p = store.record_path(user);
            out.push(error(
                "store",
                e.to_string(),
                format!("chown root:root {p} && chmod 0600 {p}; if it does not parse, re-enroll: otpgate enroll {user} --force", p = p.display()),
            ));
        }
    }
    if bad == 0 {
        out.push(ok(
            "store",
            format!(
                "{}: {} enrolled user(s), all records readable",
                dir.display(),
                users.len()
            ),
        ));
    }
    out
}

/// One `auth` line of a PAM stack after @include expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthLine {
    pub file: String,
    pub line: usize,
    pub control: String,
    pub module: String,
    pub args: Vec<String>,
}

impl AuthLine {
    fn is_ours(&self) -> bool {
        self.module
            .rsplit('/')
            .next()
            .is_some_and(|m| m == MODULE_FILE || m == "libotpgate.so")
    }
    fn module_name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }
    fn ends_on_success(&self) -> bool {
        self.control == "sufficient"
            || (self.control.starts_with('[') && self.control.contains("success=done"))
    }
}

/// Parses a service file's auth lines, following `@include` and
/// `include`/`substack` within `dir` (depth-limited).
pub fn auth_lines(dir: &Path, service: &str, text: &str, depth: usize) -> Vec<AuthLine> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(inc) = line.strip_prefix("@include") {
            if depth > 0
                && let Ok(t) = fs::read_to_string(dir.join(inc.trim()))
            {
                out.extend(auth_lines(dir, inc.trim(), &t, depth - 1));
            }
            continue;
        }
        let tokens = split_pam_line(line);
        if tokens.len() < 3
            || !tokens[0].eq_ignore_ascii_case("auth") && !tokens[0].eq_ignore_ascii_case("-auth")
        {
            continue;
        }
        if matches!(tokens[1].as_str(), "include" | "substack") {
            if depth > 0
                && let Ok(t) = fs::read_to_string(dir.join(&tokens[2]))
            {
                out.extend(auth_lines(dir, &tokens[2], &t, depth - 1));
            }
            continue;
        }
        out.push(AuthLine {
            file: service.to_string(),
            line: n + 1,
            control: tokens[1].clone(),
            module: tokens[2].clone(),
            args: tokens[3..].to_vec(),
        });
    }
    out
}

/// Splits a PAM line into words, keeping `[...]` groups (controls and
/// arguments with spaces) whole.
fn split_pam_line(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in line.chars() {
        match c {
            '[' => {
                depth += 1;
                if depth > 1 || !cur.is_empty() {
                    cur.push(c);
                }
            }
            ']' if depth > 0 => {
                depth -= 1;
                if depth > 0 {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    // Controls in brackets keep their brackets so they can be told apart.
    if let Some(first) = line.split_whitespace().nth(1)
        && first.starts_with('[')
        && words.len() > 1
    {
        words[1] = format!("[{}]", words[1]);
    }
    words
}

/// Findings for one service's expanded auth stack.
pub fn analyse_stack(service: &str, lines: &[AuthLine]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !l.is_ours() {
            continue;
        }
        let at = format!("{service}: {} line {}", l.file, l.line);
        if let Err(e) = ModuleOptions::parse(&l.args) {
            out.push(error(
                "pam",
                format!("{at}: {e}; every login through it fails"),
                "fix the option (see README, Module options)",
            ));
        }
        if l.control == "optional" {
            out.push(error(
                "pam",
                format!(
                    "{at}: `auth optional` does not decide the result, so any code (or none) passes"
                ),
                format!(
                    "change the line to: auth required {} {}",
                    l.module,
                    l.args.join(" ")
                ),
            ));
        } else if l.control == "sufficient" {
            out.push(warn(
                "pam",
                format!("{at}: `auth sufficient` lets a code alone log in and skips the rest of the stack"),
                "use `required` unless the code is meant to replace the password",
            ));
        }
        for earlier in &lines[..i] {
            if earlier.ends_on_success() && !earlier.is_ours() {
                out.push(error(
                    "pam",
                    format!(
                        "{at}: {} `{}` comes before the code (line {} of {}); its success skips the code",
                        earlier.module_name(),
                        earlier.control,
                        earlier.line,
                        earlier.file
                    ),
                    "change that line to `required`, or move the code line above it",
                ));
            }
        }
        if l.args.iter().any(|a| a == "nullok") {
            let others = lines.iter().any(|o| {
                !o.is_ours()
                    && !matches!(
                        o.module_name(),
                        "pam_deny.so"
                            | "pam_faildelay.so"
                            | "pam_nologin.so"
                            | "pam_env.so"
                            | "pam_faillock.so"
                    )
            });
            if !others {
                out.push(warn(
                    "pam",
                    format!("{at}: nullok without another module that can succeed: users who are not enrolled are refused"),
                    "add `auth required pam_permit.so` after it (key logins) or include common-auth before it",
                ));
            }
        }
        if !out
            .iter()
            .any(|f| f.level != Level::Ok && f.message.starts_with(&at))
        {
            out.push(ok(
                "pam",
                format!("{at}: auth {} {}", l.control, l.module_name()),
            ));
        }
    }
    out
}

fn read_stacks(dir: &Path) -> BTreeMap<String, Vec<AuthLine>> {
    let mut stacks = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return stacks;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || name.ends_with('~')
            || name.contains(".dpkg-")
            || name.starts_with("common-")
        {
            continue;
        }
        if let Ok(text) = fs::read_to_string(e.path()) {
            let lines = auth_lines(dir, &name, &text, 4);
            if lines.iter().any(AuthLine::is_ours) {
                stacks.insert(name, lines);
            }
        }
    }
    stacks
}

fn check_pam(stacks: &BTreeMap<String, Vec<AuthLine>>, dir: &Path) -> Vec<Finding> {
    if stacks.is_empty() {
        return vec![warn(
            "pam",
            format!(
                "no PAM service in {} uses {MODULE_FILE}: nothing asks for a code",
                dir.display()
            ),
            "copy a stack from /usr/local/share/otpgate/pam.d (see README, Wiring sshd and sudo)",
        )];
    }
    stacks
        .iter()
        .flat_map(|(s, l)| analyse_stack(s, l))
        .collect()
}

/// Findings from `sshd -T` output (lower-case keys).
pub fn analyse_sshd(settings: &BTreeMap<String, String>) -> Vec<Finding> {
    let get = |k: &str| settings.get(k).map(String::as_str).unwrap_or("");
    let mut out = Vec::new();
    if get("usepam") != "yes" {
        out.push(error(
            "sshd",
            "UsePAM is not yes: sshd never asks PAM, so no code is asked",
            "in sshd_config: UsePAM yes",
        ));
    }
    if get("kbdinteractiveauthentication") != "yes" {
        out.push(error(
            "sshd",
            "KbdInteractiveAuthentication is not yes: the code prompt cannot be shown",
            "in sshd_config: KbdInteractiveAuthentication yes",
        ));
    }
    let methods = get("authenticationmethods");
    if methods.is_empty() || methods == "any" {
        out.push(warn(
            "sshd",
            "AuthenticationMethods is `any`: a key alone logs in without a code",
            "in sshd_config: AuthenticationMethods publickey,keyboard-interactive",
        ));
    } else if !methods.split_whitespace().all(|list| {
        list.split(',')
            .any(|m| m.starts_with("keyboard-interactive"))
    }) {
        out.push(error(
            "sshd",
            format!("AuthenticationMethods `{methods}` has a list without keyboard-interactive: that way in skips the code"),
            "put keyboard-interactive in every list, e.g. publickey,keyboard-interactive",
        ));
    }
    if get("passwordauthentication") == "yes" {
        out.push(warn(
            "sshd",
            "PasswordAuthentication yes runs the PAM stack with a single prompt: the code cannot be asked there",
            "in sshd_config: PasswordAuthentication no (passwords then go through keyboard-interactive)",
        ));
    }
    if out.is_empty() {
        out.push(ok(
            "sshd",
            format!("UsePAM, keyboard-interactive and AuthenticationMethods {methods}"),
        ));
    }
    out
}

fn check_sshd(stacks: &BTreeMap<String, Vec<AuthLine>>, config: Option<&Path>) -> Vec<Finding> {
    if !stacks.contains_key("sshd") && config.is_none() {
        return vec![ok(
            "sshd",
            "the sshd PAM service does not use the module; sshd settings not checked",
        )];
    }
    let mut cmd = Command::new("sshd");
    cmd.arg("-T");
    if let Some(c) = config {
        cmd.arg("-f").arg(c);
    }
    let out = match cmd.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").output() {
        Ok(o) => o,
        Err(e) => {
            return vec![warn(
                "sshd",
                format!("cannot run sshd -T: {e}"),
                "install openssh-server, or ignore if sshd is not used",
            )];
        }
    };
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        return vec![warn(
            "sshd",
            format!("sshd -T failed: {why}"),
            "run `sshd -t` and fix what it reports",
        )];
    }
    let settings = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    analyse_sshd(&settings)
}

/// TIME_ERROR (5) or STA_UNSYNC (0x40) mean the kernel clock is not kept in
/// step by NTP (chrony, systemd-timesyncd, ntpd).
pub fn clock_finding(state: Option<ClockState>) -> Finding {
    const TIME_ERROR: i32 = 5;
    const STA_UNSYNC: i32 = 0x40;
    match state {
        None => warn(
            "clock",
            "cannot read the clock discipline (adjtimex failed)",
            "check that chrony or systemd-timesyncd runs",
        ),
        Some(s) if s.state == TIME_ERROR || s.status & STA_UNSYNC != 0 => warn(
            "clock",
            "the system clock is not synchronised (adjtimex reports unsynchronised): codes drift out of the window",
            "install and start a time daemon: apt-get install chrony (or systemctl enable --now systemd-timesyncd)",
        ),
        Some(s) => ok(
            "clock",
            format!("clock synchronised (estimated error {} us)", s.esterror),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(text: &str) -> Vec<AuthLine> {
        auth_lines(Path::new("/nonexistent"), "svc", text, 0)
    }

    fn levels(f: &[Finding]) -> Vec<Level> {
        f.iter().map(|f| f.level).collect()
    }

    #[test]
    fn a_plain_required_line_is_fine() {
        let f = analyse_stack(
            "sudo",
            &stack("auth required pam_unix.so\nauth required pam_otpgate.so\n"),
        );
        assert_eq!(levels(&f), [Level::Ok]);
    }

    #[test]
    fn optional_sufficient_before_and_bad_options_are_flagged() {
        let f = analyse_stack("s", &stack("auth optional pam_otpgate.so"));
        assert_eq!(levels(&f), [Level::Error]);
        assert!(f[0].fix.as_deref().unwrap().contains("auth required"));
        let f = analyse_stack(
            "s",
            &stack("auth sufficient pam_permit.so\nauth required pam_otpgate.so"),
        );
        assert_eq!(levels(&f), [Level::Error]);
        assert!(
            f[0].message
                .contains("pam_permit.so `sufficient` comes before the code"),
            "{f:?}"
        );
        let f = analyse_stack(
            "s",
            &stack("auth [success=done default=ignore] pam_unix.so\nauth required pam_otpgate.so"),
        );
        assert_eq!(levels(&f), [Level::Error]);
        let f = analyse_stack("s", &stack("auth required pam_otpgate.so nulok"));
        assert_eq!(levels(&f), [Level::Error]);
        // Debian's common-auth jump (success=1) is not a bypass.
        let f = analyse_stack(
            "s",
            &stack(
                "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\nauth required pam_otpgate.so",
            ),
        );
        assert_eq!(levels(&f), [Level::Ok]);
    }

    #[test]
    fn nullok_needs_another_module_that_can_succeed() {
        let f = analyse_stack("s", &stack("auth required pam_otpgate.so nullok"));
        assert_eq!(levels(&f), [Level::Warn]);
        let f = analyse_stack(
            "s",
            &stack("auth required pam_otpgate.so nullok\nauth required pam_permit.so"),
        );
        assert_eq!(levels(&f), [Level::Ok]);
    }

    #[test]
    fn bracketed_arguments_stay_whole() {
        let l = stack("auth required /x/pam_otpgate.so [prompt=Your code: ] echo");
        assert_eq!(l[0].args, ["prompt=Your code: ", "echo"]);
        assert_eq!(levels(&analyse_stack("s", &l)), [Level::Ok]);
    }

    #[test]
    fn sshd_settings() {
        let mut s: BTreeMap<String, String> = [
            ("usepam", "yes"),
            ("kbdinteractiveauthentication", "yes"),
            ("authenticationmethods", "publickey,keyboard-interactive"),
            ("passwordauthentication", "no"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(levels(&analyse_sshd(&s)), [Level::Ok]);
        s.insert("authenticationmethods".into(), "any".into());
        s.insert("passwordauthentication".into(), "yes".into());
        s.insert("usepam".into(), "no".into());
        assert_eq!(
            levels(&analyse_sshd(&s)),
            [Level::Error, Level::Warn, Level::Warn]
        );
        s.insert(
            "authenticationmethods".into(),
            "publickey,keyboard-interactive publickey".into(),
        );
        assert!(
            analyse_sshd(&s)
                .iter()
                .any(|f| f.message.contains("without keyboard-interactive"))
        );
    }

    #[test]
    fn clock_states() {
        let synced = ClockState {
            state: 0,
            status: 0x2001,
            esterror: 400,
        };
        assert_eq!(clock_finding(Some(synced)).level, Level::Ok);
        assert_eq!(
            clock_finding(Some(ClockState {
                state: 5,
                status: 0x40,
                esterror: 16_000_000
            }))
            .level,
            Level::Warn
        );
        assert_eq!(
            clock_finding(Some(ClockState {
                state: 0,
                status: 0x40,
                esterror: 0
            }))
            .level,
            Level::Warn
        );
        assert_eq!(clock_finding(None).level, Level::Warn);
    }
}
