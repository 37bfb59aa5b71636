//! Is the store usable, and is every record in it readable?

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{Finding, error, ok, warn};
use crate::store::Store;

pub fn check_store(dir: &Path) -> Vec<Finding> {
    let fix_dir = format!("install -d -o root -g root -m 0700 {}", dir.display());
    let store = match Store::open(dir) {
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
