//! Is the module where PAM loads it, and only root can change it?

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Finding, error, ok};

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

pub fn check_module(dir: Option<&Path>) -> Vec<Finding> {
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
