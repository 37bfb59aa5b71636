//! `otpgate doctor`: finds the misconfigurations that lock people out or
//! let them skip the code, and says the line that fixes each.
//!
//! Read-only: it opens, stats and reads; it never creates, repairs or
//! removes anything. Each finding has a stable `id` (`check.what`) that
//! scripts may rely on; the JSON layout is versioned by `schema`.

mod clock;
mod module;
mod options;
mod pam_conf;
mod pam_dispatch;
mod pam_stack;
mod sshd;
mod store;
mod syslog;

use serde::Serialize;
use std::path::PathBuf;

use super::{CliResult, Context, EXIT_OK, EXIT_REFUSED, emit};
use crate::config::bad_issuer;
use crate::pam::sys::clock_state;

pub use module::MODULE_FILE;
/// For the test that pam_otpgate(8) documents every option the module takes.
#[cfg(test)]
pub(crate) use options::KNOWN_OPTIONS;

/// Version of the `--json` layout; bumped when a field changes meaning.
pub const JSON_SCHEMA: u32 = 1;

/// Where the stacks this project ships are found on an installed system.
pub const EXAMPLES: &str = "/usr/share/doc/otpgate/examples/pam.d/";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, `check.what` (e.g. `pam.module_skippable`).
    pub id: &'static str,
    /// The check that produced it (the part of `id` before the dot).
    pub check: &'static str,
    pub level: Level,
    /// The file (and line) to look at: `/etc/pam.d/sudo:3`, a store path, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn new(id: &'static str, level: Level, message: String, fix: Option<String>) -> Finding {
        Finding {
            id,
            check: id.split('.').next().unwrap_or(id),
            level,
            location: None,
            message,
            fix,
        }
    }

    pub fn at(mut self, location: impl Into<String>) -> Finding {
        self.location = Some(location.into());
        self
    }
}

/// An OS error as a sentence fragment, without "(os error N)".
pub fn io_why(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}

fn ok(id: &'static str, message: impl Into<String>) -> Finding {
    Finding::new(id, Level::Ok, message.into(), None)
}

fn warn(id: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding::new(id, Level::Warn, message.into(), Some(fix.into()))
}

fn error(id: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding::new(id, Level::Error, message.into(), Some(fix.into()))
}

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Exit 1 on warnings too (by default only errors make doctor fail).
    #[arg(long)]
    strict: bool,
    /// Only these checks (comma-separated): module, store, pam, sshd, clock, syslog.
    #[arg(long, value_delimiter = ',', value_parser = ["module", "store", "pam", "sshd", "clock", "syslog"])]
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
    /// The syslog socket the module writes to (tests point it elsewhere).
    #[arg(long, value_name = "PATH", default_value = "/dev/log", hide = true)]
    syslog_socket: PathBuf,
}

pub fn run(ctx: &Context, args: DoctorArgs) -> CliResult {
    let wants = |c: &str| args.check.is_empty() || args.check.iter().any(|x| x == c);
    let mut findings = Vec::new();
    if wants("module") {
        let fleet_needed = matches!(
            ctx.site.store_location(),
            crate::config::StoreLocation::Postgres(_)
        );
        findings.extend(module::check_module(
            args.module_dir.as_deref(),
            fleet_needed,
        ));
    }
    if wants("store") {
        findings.extend(site_issuer(ctx));
        findings.extend(store::check_store(ctx));
    }
    let stacks = pam_stack::read_stacks(&args.pam_dir);
    if wants("pam") {
        findings.extend(pam_stack::check_pam(&stacks, &args.pam_dir));
    }
    if wants("sshd") {
        findings.extend(sshd::check_sshd(
            stacks.contains_key("sshd"),
            args.sshd_config.as_deref(),
        ));
    }
    if wants("clock") {
        findings.push(clock::clock_finding(clock_state()));
    }
    if wants("syslog") {
        findings.push(syslog::check_syslog(&args.syslog_socket));
    }
    let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
    let (errors, warnings) = (count(Level::Error), count(Level::Warn));
    // Written whole and checked (a reader that went away, `doctor | head`,
    // is an error message, not a panic).
    let report = if args.json {
        format!(
            "{}\n",
            serde_json::json!({
                "schema": JSON_SCHEMA,
                "healthy": errors == 0 && warnings == 0,
                "errors": errors,
                "warnings": warnings,
                "findings": findings,
            })
        )
    } else {
        report_text(&findings, errors, warnings, args.strict)
    };
    emit(&report)?;
    let failed = errors > 0 || (args.strict && warnings > 0);
    Ok(if failed { EXIT_REFUSED } else { EXIT_OK })
}

/// An issuer in the site file that no app can show (`enroll` refuses it;
/// logins never use it).
fn site_issuer(ctx: &Context) -> Option<Finding> {
    let issuer = ctx.site.issuer.as_deref().filter(|i| bad_issuer(i))?;
    Some(
        warn(
            "store.bad_issuer",
            format!(
                "issuer {issuer:?} has a colon or a control character, which no authenticator app shows: enroll refuses it (logins are not affected)"
            ),
            "set issuer to a name without colons or control characters",
        )
        .at(ctx.config.display().to_string()),
    )
}

fn report_text(findings: &[Finding], errors: usize, warnings: usize, strict: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for f in findings {
        let tag = match f.level {
            Level::Ok => "ok   ",
            Level::Warn => "WARN ",
            Level::Error => "ERROR",
        };
        match &f.location {
            Some(at) if f.level != Level::Ok => {
                let _ = writeln!(out, "{tag} {:<6} {at}: {}", f.check, f.message);
            }
            _ => {
                let _ = writeln!(out, "{tag} {:<6} {}", f.check, f.message);
            }
        }
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "      {:<6} fix: {fix}", "");
        }
    }
    let summary = match (errors, warnings) {
        (0, 0) => "Healthy.".to_string(),
        (0, w) if strict => format!("{w} warning(s); --strict makes them fail."),
        (0, w) => format!("No errors, {w} warning(s)."),
        (e, w) => format!("Problems found: {e} error(s), {w} warning(s)."),
    };
    let _ = writeln!(out, "{summary}");
    out
}
