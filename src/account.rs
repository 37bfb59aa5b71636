//! One account, one enrollment: the name PAM or the command line was given
//! is resolved through NSS (name -> uid -> canonical name) before anything
//! is looked up, so `ALICE`, `alice@REALM` or a second passwd entry with the
//! same uid all reach the same record, or none.

use nix::unistd::{Uid, User};

/// The canonical name of the account `name` belongs to; `Ok(None)` when NSS
/// does not know it; `Err` when NSS itself failed (fail closed either way).
pub fn canonical_name(name: &str) -> Result<Option<String>, String> {
    let Some(user) = User::from_name(name).map_err(|e| format!("account look-up: {e}"))? else {
        return Ok(None);
    };
    by_uid(user.uid)
}

fn by_uid(uid: Uid) -> Result<Option<String>, String> {
    User::from_uid(uid)
        .map(|u| u.map(|u| u.name))
        .map_err(|e| format!("account look-up: {e}"))
}

/// This machine's host name (the kernel's), if it has one.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_name_is_the_one_uname_gives() {
        let out = std::process::Command::new("uname")
            .arg("-n")
            .output()
            .unwrap();
        let uname = String::from_utf8(out.stdout).unwrap();
        assert!(!uname.trim().is_empty());
        assert_eq!(host_name().as_deref(), Some(uname.trim()));
    }

    #[test]
    fn root_is_root_and_unknown_names_are_none() {
        assert_eq!(canonical_name("root").unwrap().as_deref(), Some("root"));
        assert_eq!(canonical_name("ROOT").unwrap(), None);
        assert_eq!(canonical_name("otpgate-no-such-user").unwrap(), None);
    }
}
