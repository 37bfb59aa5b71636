//! Is the module where PAM loads it, and only root can change it?

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Finding, error, io_why, ok};

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

/// Where PAM looks for modules on this machine (the directory of pam_unix.so).
fn pam_module_dir() -> &'static str {
    MODULE_DIRS
        .iter()
        .find(|d| Path::new(d).join("pam_unix.so").exists())
        .unwrap_or(&MODULE_DIRS[0])
}

/// The module, and its fleet object where the site's store is a database
/// (`fleet_needed`): without it every database login is refused.
pub fn check_module(dir: Option<&Path>, fleet_needed: bool) -> Vec<Finding> {
    let candidates: Vec<PathBuf> = match dir {
        Some(d) => vec![d.join(MODULE_FILE)],
        None => MODULE_DIRS
            .iter()
            .map(|d| Path::new(d).join(MODULE_FILE))
            .collect(),
    };
    let install = || {
        let target = dir.map_or_else(
            || Path::new(pam_module_dir()).join(MODULE_FILE),
            |d| d.join(MODULE_FILE),
        );
        format!(
            "install the otpgate package, or copy the module there as root: install -o root -g root -m 0644 pam_otpgate.so {}",
            target.display()
        )
    };
    let Some(path) = candidates.iter().find(|p| p.exists()) else {
        let at = dir.map_or(pam_module_dir().to_string(), |d| d.display().to_string());
        return vec![
            error(
                "module.missing",
                format!("{MODULE_FILE} is not installed where PAM looks: every service that names it fails"),
                install(),
            )
            .at(at),
        ];
    };
    let mut findings = root_only(path, install);
    if fleet_needed && let Some(fleet) = crate::pam::fleet::sibling(path) {
        findings.push(check_fleet(&fleet));
    }
    findings
}

/// The fleet object beside the module: what a login does before handing
/// over (src/pam/fleet.rs), short of handing over: the path resolved, the
/// file and every directory above it root's only, loaded, otpgate's, of
/// this build.
fn check_fleet(fleet: &Path) -> Finding {
    let at = fleet.display().to_string();
    if fs::symlink_metadata(fleet).is_err() {
        return error(
            "module.fleet_missing",
            "the site's store is a database and the fleet object is not beside the module: every login is refused",
            format!(
                "install the otpgate package, or copy the fleet object there as root: install -o root -g root -m 0644 pam_otpgate_fleet.so {at}"
            ),
        )
        .at(&at);
    }
    match crate::pam::fleet::probe(fleet) {
        Ok(real) => ok(
            "module.fleet_ok",
            format!("{} loads and is of this build", real.display()),
        )
        .at(&at),
        Err(why) => error(
            "module.fleet_refused",
            format!("every database login is refused: {why}"),
            "install the module and its fleet object from one build (the otpgate package does), as root-owned files (0644) in root-owned directories no one else can write to",
        )
        .at(&at),
    }
}

/// ok, or an error when someone other than root can change the file.
fn root_only(path: &Path, install: impl Fn() -> String) -> Vec<Finding> {
    let at = path.display().to_string();
    match fs::metadata(path) {
        Ok(m) if m.uid() != 0 || m.mode() & 0o022 != 0 => vec![
            error(
                "module.unsafe",
                format!(
                    "writable by someone other than root (owner uid {}, mode {:04o}): they can replace the code check",
                    m.uid(),
                    m.mode() & 0o7777
                ),
                format!("chown root:root {at} && chmod 0644 {at}"),
            )
            .at(&at),
        ],
        Ok(_) => vec![ok("module.ok", format!("{at} installed")).at(&at)],
        Err(e) => vec![error("module.unreadable", format!("cannot stat it: {}", io_why(&e)), install()).at(&at)],
    }
}
