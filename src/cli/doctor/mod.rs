//! `otpgate doctor`: finds the misconfigurations that lock people out or
//! let them skip the code, and says the line that fixes each.

mod clock;
mod module;
mod pam_stack;
mod sshd;
mod store;

use serde::Serialize;
use std::path::PathBuf;

use super::{CliResult, Context, EXIT_OK, EXIT_REFUSED};
use crate::pam::sys::clock_state;

pub use module::MODULE_FILE;

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
        findings.extend(module::check_module(args.module_dir.as_deref()));
    }
    if wants("store") {
        findings.extend(store::check_store(&ctx.store_dir));
    }
    let stacks = pam_stack::read_stacks(&args.pam_dir);
    if wants("pam") {
        findings.extend(pam_stack::check_pam(&stacks, &args.pam_dir));
    }
    if wants("sshd") {
        findings.extend(sshd::check_sshd(&stacks, args.sshd_config.as_deref()));
    }
    if wants("clock") {
        findings.push(clock::clock_finding(clock_state()));
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
