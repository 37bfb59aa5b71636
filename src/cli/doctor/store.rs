//! Is the store usable, and is every record in it readable?

use std::fs;
use std::os::unix::fs::MetadataExt;

use super::{Finding, error, ok, warn};
use crate::cli::Context;

pub fn check_store(ctx: &Context) -> Vec<Finding> {
    let dir = &ctx.store_dir;
    let at = dir.display().to_string();
    let fix_dir = format!("install -d -o root -g root -m 0700 {at}");
    let store = match ctx.open_store() {
        Ok(s) => s,
        Err(e) => return vec![error("store.unusable", e.why, fix_dir).at(&at)],
    };
    let mut out = Vec::new();
    if let Ok(m) = fs::metadata(dir)
        && m.mode() & 0o077 != 0
    {
        out.push(
            warn(
                "store.dir_mode",
                format!(
                    "mode {:04o}: others can see who is enrolled",
                    m.mode() & 0o7777
                ),
                format!("chmod 0700 {at}"),
            )
            .at(&at),
        );
    }
    let users = match store.users() {
        Ok(u) => u,
        Err(e) => return vec![error("store.unusable", e.to_string(), fix_dir).at(&at)],
    };
    let mut bad = 0;
    for user in &users {
        if let Err(e) = store.load(user) {
            bad += 1;
            let p = store.record_path(user).display().to_string();
            out.push(error(
                "store.record_unreadable",
                format!("{e}; every login of {user} fails"),
                format!("chown root:root {p} && chmod 0600 {p}; if it does not parse, replace it: otpgate enroll {user} --force (or remove it: otpgate disable {user} --yes)"),
            ).at(p));
        }
    }
    if bad == 0 {
        out.push(
            ok(
                "store.ok",
                format!(
                    "{at}: {} enrolled user(s), all records readable",
                    users.len()
                ),
            )
            .at(&at),
        );
    }
    out
}
