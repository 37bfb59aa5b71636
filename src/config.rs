//! Module options (`auth required pam_otpgate.so OPTIONS`) and the site
//! configuration file `/etc/otpgate.toml`, parsed once into typed values.

use serde::Deserialize;
use std::ffi::CStr;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::core::Policy;
use crate::core::otp::{Algorithm, OtpParams};
use crate::core::recovery;
use crate::store;

pub const DEFAULT_STORE: &str = "/var/lib/otpgate";
pub const SITE_CONFIG: &str = "/etc/otpgate.toml";
pub const DEFAULT_PROMPT: &str = "Verification code: ";
pub const FORWARD_PROMPT: &str = "Password & verification code: ";
const MAX_WINDOW: u32 = 10;

/// How the module obtains the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TokenSource {
    /// Ask at the prompt.
    #[default]
    Prompt,
    /// Take PAM_AUTHTOK from an earlier module; never prompt.
    UseFirstPass,
    /// Try PAM_AUTHTOK, prompt if it is absent or fails.
    TryFirstPass,
    /// One prompt for password and code; pass the password on.
    ForwardPass,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleOptions {
    pub store: Option<PathBuf>,
    pub nullok: bool,
    pub policy: Policy,
    pub prompt: String,
    pub echo: bool,
    pub token: TokenSource,
    pub debug: bool,
    /// `owner_ok`: also trust a store owned by the process's own user.
    pub owner_ok: bool,
}

impl Default for ModuleOptions {
    fn default() -> Self {
        ModuleOptions {
            store: None,
            nullok: false,
            policy: Policy::default(),
            prompt: DEFAULT_PROMPT.to_string(),
            echo: false,
            token: TokenSource::Prompt,
            debug: false,
            owner_ok: false,
        }
    }
}

/// A configuration problem; the message names the option, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError(format!(
            "option {name}= needs a whole number, got {value:?}"
        ))
    })
}

impl ModuleOptions {
    /// Parses the module arguments; any unknown or malformed one is an error
    /// (the module then fails closed).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<ModuleOptions, ConfigError> {
        let mut o = ModuleOptions::default();
        for arg in args {
            let arg = arg.as_ref();
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (arg, None),
            };
            match (name, value) {
                ("store", Some(v)) if v.starts_with('/') => o.store = Some(PathBuf::from(v)),
                ("store", Some(_)) => {
                    return Err(ConfigError("store= needs an absolute path".into()));
                }
                ("nullok", None) => o.nullok = true,
                ("echo", None) => o.echo = true,
                ("debug", None) => o.debug = true,
                ("owner_ok", None) => o.owner_ok = true,
                ("no_recovery", None) => o.policy.recovery = false,
                ("use_first_pass", None) => o.token = TokenSource::UseFirstPass,
                ("try_first_pass", None) => o.token = TokenSource::TryFirstPass,
                ("forward_pass", None) => o.token = TokenSource::ForwardPass,
                ("prompt", Some(v)) => o.prompt = v.to_string(),
                ("window", Some(v)) => {
                    o.policy.window = number(name, v)?;
                    if o.policy.window > MAX_WINDOW {
                        return Err(ConfigError(format!("window= may be at most {MAX_WINDOW}")));
                    }
                }
                ("deny", Some(v)) => {
                    o.policy.deny = number(name, v)?;
                    if o.policy.deny == 0 {
                        return Err(ConfigError("deny= must be at least 1".into()));
                    }
                }
                ("unlock_time", Some(v)) => o.policy.unlock_time = number(name, v)?,
                ("hard_deny", Some(v)) => o.policy.hard_deny = number(name, v)?,
                _ => return Err(ConfigError(format!("unknown or malformed option {arg:?}"))),
            }
        }
        if o.token == TokenSource::ForwardPass && o.prompt == DEFAULT_PROMPT {
            o.prompt = FORWARD_PROMPT.to_string();
        }
        Ok(o)
    }

    /// Who may own the store: root, plus this process's user with `owner_ok`.
    pub fn store_trust(&self) -> store::Trust {
        if self.owner_ok {
            store::Trust::RootOrEuid
        } else {
            store::Trust::RootOnly
        }
    }

    pub fn from_pam_args(args: &[&CStr]) -> Result<ModuleOptions, ConfigError> {
        let strings: Vec<&str> = args
            .iter()
            .map(|a| {
                a.to_str()
                    .map_err(|_| ConfigError("option is not UTF-8".into()))
            })
            .collect::<Result<_, _>>()?;
        ModuleOptions::parse(&strings)
    }
}

/// `/etc/otpgate.toml`: where the store is and the site's enrollment defaults.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub store: Option<PathBuf>,
    pub issuer: Option<String>,
    pub algorithm: Option<Algorithm>,
    pub digits: Option<u8>,
    pub period: Option<u32>,
    pub recovery_codes: Option<usize>,
}

impl SiteConfig {
    pub fn parse(text: &str) -> Result<SiteConfig, ConfigError> {
        let c: SiteConfig = toml::from_str(text).map_err(|e| {
            ConfigError(format!(
                "{SITE_CONFIG}: {}",
                e.message().lines().next().unwrap_or("")
            ))
        })?;
        if let Some(s) = &c.store
            && !s.is_absolute()
        {
            return Err(ConfigError(format!(
                "{SITE_CONFIG}: store must be an absolute path"
            )));
        }
        c.otp_params()
            .validate()
            .map_err(|e| ConfigError(format!("{SITE_CONFIG}: {e}")))?;
        if c.recovery_codes.is_some_and(|n| n > recovery::MAX_COUNT) {
            return Err(ConfigError(format!(
                "{SITE_CONFIG}: at most {} recovery codes",
                recovery::MAX_COUNT
            )));
        }
        Ok(c)
    }

    /// Reads the site file; a missing file means defaults. The file must be
    /// owned by root and not writable by others (it decides where the store is).
    pub fn load(path: &Path) -> Result<SiteConfig, ConfigError> {
        match store::read_trusted_file(path, 64 * 1024) {
            Ok(None) => Ok(SiteConfig::default()),
            Ok(Some(bytes)) => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| ConfigError(format!("{}: not UTF-8", path.display())))?;
                SiteConfig::parse(text)
            }
            Err(e) => Err(ConfigError(e.to_string())),
        }
    }

    pub fn otp_params(&self) -> OtpParams {
        let d = OtpParams::default();
        OtpParams {
            algorithm: self.algorithm.unwrap_or(d.algorithm),
            digits: self.digits.unwrap_or(d.digits),
            period: self.period.unwrap_or(d.period),
        }
    }

    pub fn store_dir(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
    }
}

/// The store directory: an explicit choice wins, then the site file, then the default.
pub fn resolve_store(explicit: Option<&Path>, site: &Path) -> Result<PathBuf, ConfigError> {
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None => Ok(SiteConfig::load(site)?.store_dir()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let o = ModuleOptions::parse::<&str>(&[]).unwrap();
        assert_eq!(o.prompt, "Verification code: ");
        assert_eq!(
            (
                o.policy.window,
                o.policy.deny,
                o.policy.unlock_time,
                o.policy.hard_deny
            ),
            (1, 10, 600, 100)
        );
        assert!(!o.nullok && !o.echo && o.policy.recovery);
        assert!(!o.owner_ok && o.store_trust() == store::Trust::RootOnly);
    }

    #[test]
    fn every_option_parses() {
        let o = ModuleOptions::parse(&[
            "store=/tmp/s",
            "nullok",
            "window=3",
            "deny=5",
            "unlock_time=30",
            "hard_deny=50",
            "prompt=Code please: ",
            "echo",
            "no_recovery",
            "debug",
            "try_first_pass",
            "owner_ok",
        ])
        .unwrap();
        assert_eq!(o.store.as_deref(), Some(Path::new("/tmp/s")));
        assert_eq!(o.prompt, "Code please: "); // PAM passes `[prompt=Code please: ]` as one argument
        assert_eq!(o.token, TokenSource::TryFirstPass);
        assert!(o.nullok && o.echo && o.debug && !o.policy.recovery);
        assert!(o.owner_ok && o.store_trust() == store::Trust::RootOrEuid);
        assert_eq!(
            (
                o.policy.window,
                o.policy.deny,
                o.policy.unlock_time,
                o.policy.hard_deny
            ),
            (3, 5, 30, 50)
        );
        let f = ModuleOptions::parse(&["forward_pass"]).unwrap();
        assert_eq!(f.prompt, FORWARD_PROMPT);
    }

    #[test]
    fn unknown_or_malformed_options_are_errors() {
        for bad in [
            "nulok",
            "window=x",
            "window=11",
            "deny=0",
            "store=relative",
            "nullok=1",
            "store",
            "window=-1",
            "owner_ok=1",
        ] {
            assert!(ModuleOptions::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn site_config_parses_and_validates() {
        let c = SiteConfig::parse("store = \"/srv/otp\"\nissuer = \"Acme\"\ndigits = 8\nalgorithm = \"SHA256\"\nperiod = 60\nrecovery_codes = 5\n").unwrap();
        assert_eq!(c.store_dir(), PathBuf::from("/srv/otp"));
        assert_eq!(c.otp_params().digits, 8);
        assert!(SiteConfig::parse("digits = 7").is_err());
        assert!(SiteConfig::parse("stor = \"/x\"").is_err());
        assert!(SiteConfig::parse("store = \"x\"").is_err());
        assert_eq!(
            SiteConfig::parse("").unwrap().store_dir(),
            PathBuf::from(DEFAULT_STORE)
        );
    }
}
