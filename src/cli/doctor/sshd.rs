//! Does sshd hand logins to PAM in a way that lets the code be asked?

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};

use super::{Finding, error, ok, warn};

const DEFAULT_CONFIG: &str = "/etc/ssh/sshd_config";

/// Findings from `sshd -T` output (lower-case keys); `at` names the config.
pub fn analyse_sshd(settings: &BTreeMap<String, String>, at: &str) -> Vec<Finding> {
    let get = |k: &str| settings.get(k).map(String::as_str).unwrap_or("");
    let mut out = Vec::new();
    if get("usepam") != "yes" {
        out.push(error(
            "sshd.usepam_off",
            "UsePAM is not yes: sshd never asks PAM, so no code is asked",
            "in sshd_config: UsePAM yes",
        ));
    }
    if get("kbdinteractiveauthentication") != "yes" {
        out.push(error(
            "sshd.kbdinteractive_off",
            "KbdInteractiveAuthentication is not yes: the code prompt cannot be shown",
            "in sshd_config: KbdInteractiveAuthentication yes",
        ));
    }
    let methods = get("authenticationmethods");
    if methods.is_empty() || methods == "any" {
        out.push(warn(
            "sshd.methods_any",
            "AuthenticationMethods is `any`: a key alone logs in without a code",
            "in sshd_config: AuthenticationMethods publickey,keyboard-interactive",
        ));
    } else if !methods.split_whitespace().all(|list| {
        list.split(',')
            .any(|m| m.starts_with("keyboard-interactive"))
    }) {
        out.push(error(
            "sshd.methods_skip_code",
            format!("AuthenticationMethods `{methods}` has a list without keyboard-interactive: that way in skips the code"),
            "put keyboard-interactive in every list, e.g. publickey,keyboard-interactive",
        ));
    }
    if get("passwordauthentication") == "yes" {
        out.push(warn(
            "sshd.password_auth",
            "PasswordAuthentication yes runs the PAM stack with a single prompt: the code cannot be asked there",
            "in sshd_config: PasswordAuthentication no (passwords then go through keyboard-interactive)",
        ));
    }
    if out.is_empty() {
        out.push(ok(
            "sshd.ok",
            format!("UsePAM, keyboard-interactive and AuthenticationMethods {methods}"),
        ));
    }
    out.into_iter().map(|f| f.at(at)).collect()
}

/// sshd's privilege separation directory: sshd creates it when it starts,
/// and `sshd -T` as root refuses to run without it.
const PRIVSEP_DIR: &str = "/run/sshd";

/// When /run/sshd is missing (sshd has not run since boot), `sshd -T` runs
/// in a private mount namespace with an empty tmpfs on /run holding the
/// directory: nothing is created on the system, and the result is the same.
const PRIVATE_RUN: &str = "mount -t tmpfs -o mode=0755 otpgate-doctor /run && mkdir -m 0755 /run/sshd && exec \"$0\" \"$@\"";

fn sshd_test(config: Option<&Path>) -> std::io::Result<Output> {
    let mut args: Vec<OsString> = vec!["-T".into()];
    if let Some(c) = config {
        args.push("-f".into());
        args.push(c.into());
    }
    let mut cmd = if !Path::new(PRIVSEP_DIR).is_dir() && nix::unistd::geteuid().is_root() {
        let mut c = Command::new("unshare");
        c.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            PRIVATE_RUN,
            "sshd",
        ]);
        c
    } else {
        Command::new("sshd")
    };
    cmd.args(&args)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
}

/// `sshd -T` on `config` (default: sshd's own) when the sshd service uses
/// the module or a config was named.
pub fn check_sshd(sshd_uses_module: bool, config: Option<&Path>) -> Vec<Finding> {
    if !sshd_uses_module && config.is_none() {
        return vec![ok(
            "sshd.not_used",
            "the sshd PAM service does not use the module; sshd settings not checked",
        )];
    }
    let at = config.map_or(DEFAULT_CONFIG.to_string(), |c| c.display().to_string());
    let out = match sshd_test(config) {
        Ok(o) => o,
        Err(e) => {
            return vec![
                warn(
                    "sshd.cannot_run",
                    format!("cannot run sshd -T: {e}"),
                    "install openssh-server, or ignore if sshd is not used",
                )
                .at(at),
            ];
        }
    };
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let fix = if why.contains(PRIVSEP_DIR) {
            format!(
                "create the directory sshd makes when it starts (install -d -m 0755 {PRIVSEP_DIR}), then run doctor again"
            )
        } else {
            "run `sshd -t` and fix what it reports".to_string()
        };
        return vec![warn("sshd.test_failed", format!("sshd -T failed: {why}"), fix).at(at)];
    }
    let settings = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    analyse_sshd(&settings, &at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::doctor::Level;

    fn levels(f: &[Finding]) -> Vec<Level> {
        f.iter().map(|f| f.level).collect()
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
        assert_eq!(levels(&analyse_sshd(&s, "x")), [Level::Ok]);
        s.insert("authenticationmethods".into(), "any".into());
        s.insert("passwordauthentication".into(), "yes".into());
        s.insert("usepam".into(), "no".into());
        assert_eq!(
            levels(&analyse_sshd(&s, "x")),
            [Level::Error, Level::Warn, Level::Warn]
        );
        s.insert(
            "authenticationmethods".into(),
            "publickey,keyboard-interactive publickey".into(),
        );
        assert!(
            analyse_sshd(&s, "x")
                .iter()
                .any(|f| f.message.contains("without keyboard-interactive"))
        );
    }
}
