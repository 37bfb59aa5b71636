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
    let mut findings = root_only(path, MODULE_IDS, install);
    if fleet_needed && let Some(fleet) = crate::pam::fleet::sibling(path) {
        findings.extend(check_fleet(&fleet));
    }
    findings
}

/// The fleet object beside the module (src/pam/fleet.rs checks the same
/// before loading it, and refuses the login otherwise).
fn check_fleet(path: &Path) -> Vec<Finding> {
    let at = path.display().to_string();
    let install = || {
        format!(
            "install the otpgate package, or copy the fleet object there as root: install -o root -g root -m 0644 pam_otpgate_fleet.so {at}"
        )
    };
    if !path.exists() {
        return vec![
            error(
                "module.fleet_missing",
                "the site's store is a database and the fleet object is not beside the module: every login is refused",
                install(),
            )
            .at(&at),
        ];
    }
    root_only(path, FLEET_IDS, install)
}

/// Finding ids: someone other than root can change it, fine, cannot stat.
const MODULE_IDS: [&str; 3] = ["module.unsafe", "module.ok", "module.unreadable"];
const FLEET_IDS: [&str; 3] = [
    "module.fleet_unsafe",
    "module.fleet_ok",
    "module.fleet_unreadable",
];

/// ok, or an error when someone other than root can change the file.
fn root_only(path: &Path, ids: [&'static str; 3], install: impl Fn() -> String) -> Vec<Finding> {
    let at = path.display().to_string();
    let [unsafe_id, ok_id, unreadable_id] = ids;
    match fs::metadata(path) {
        Ok(m) if m.uid() != 0 || m.mode() & 0o022 != 0 => vec![
            error(
                unsafe_id,
                format!(
                    "writable by someone other than root (owner uid {}, mode {:04o}): they can replace the code check",
                    m.uid(),
                    m.mode() & 0o7777
                ),
                format!("chown root:root {at} && chmod 0644 {at}"),
            )
            .at(&at),
        ],
        Ok(_) => vec![ok(ok_id, format!("{at} installed")).at(&at)],
        Err(e) => vec![error(unreadable_id, format!("cannot stat it: {}", io_why(&e)), install()).at(&at)],
    }
}
