//! Module options (`auth required pam_otpgate.so OPTIONS`) and the site
//! configuration file `/etc/otpgate.toml`, parsed once into typed values.

use serde::Deserialize;
use std::ffi::CStr;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::core::Policy;
use crate::core::otp::{self, Algorithm, OtpParams};
use crate::core::recovery;
use crate::store;

pub const DEFAULT_STORE: &str = "/var/lib/otpgate";
pub const SITE_CONFIG: &str = "/etc/otpgate.toml";
pub const DEFAULT_PROMPT: &str = "Verification code: ";
pub const FORWARD_PROMPT: &str = "Password & verification code: ";
/// The widest window (shared with `otpgate unlock`, see `core::decide::unlock`).
const MAX_WINDOW: u32 = crate::core::decide::MAX_WINDOW;

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

/// The login policy's knobs, as written in `[policy]` or as module options;
/// `None` means "not set here". Every value is bounded when parsed.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyValues {
    pub window: Option<u32>,
    pub deny: Option<u32>,
    pub unlock_time: Option<u64>,
    pub hard_deny: Option<u32>,
    pub no_recovery: Option<bool>,
    pub hotp_window: Option<u32>,
    /// Seconds after a code login in which the same host and service skip
    /// the code (0: off).
    pub grace_period: Option<u64>,
}

/// Bounds of the numeric policy values: (name, lowest, highest, what it means).
const BOUNDS: [(&str, u64, u64); 6] = [
    ("window", 0, MAX_WINDOW as u64),
    ("deny", 1, 1000),
    // Thirty days: longer is what hard_deny and `otpgate unlock` are for.
    ("unlock_time", 1, 30 * 24 * 3600),
    // 0 turns the permanent lock off.
    ("hard_deny", 0, 100_000),
    // HOTP look-ahead: each counter checked is one more code a guess may hit.
    ("hotp_window", 1, 100),
    ("grace_period", 0, crate::core::grace::MAX_GRACE_SECONDS),
];

fn check_bound(name: &str, value: u64) -> Result<(), ConfigError> {
    for (n, lo, hi) in BOUNDS {
        if n == name && !(lo..=hi).contains(&value) {
            return Err(ConfigError(format!(
                "{name} must be a whole number from {lo} to {hi}, not {value}"
            )));
        }
    }
    Ok(())
}

impl PolicyValues {
    fn validate(&self) -> Result<(), ConfigError> {
        let values = [
            ("window", self.window.map(u64::from)),
            ("deny", self.deny.map(u64::from)),
            ("unlock_time", self.unlock_time),
            ("hard_deny", self.hard_deny.map(u64::from)),
            ("hotp_window", self.hotp_window.map(u64::from)),
            ("grace_period", self.grace_period),
        ];
        for (name, v) in values {
            if let Some(v) = v {
                check_bound(name, v)?;
            }
        }
        Ok(())
    }

    /// These values over `base` (each set value wins).
    pub fn over(&self, base: &Policy) -> Policy {
        Policy {
            window: self.window.unwrap_or(base.window),
            deny: self.deny.unwrap_or(base.deny),
            unlock_time: self.unlock_time.unwrap_or(base.unlock_time),
            hard_deny: self.hard_deny.unwrap_or(base.hard_deny),
            recovery: self.no_recovery.map_or(base.recovery, |n| !n),
            hotp_window: self.hotp_window.unwrap_or(base.hotp_window),
            grace_period: self.grace_period.unwrap_or(base.grace_period),
            ..base.clone()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleOptions {
    /// `config=`: the site file to read instead of /etc/otpgate.toml.
    pub config: Option<PathBuf>,
    pub store: Option<PathBuf>,
    pub nullok: bool,
    /// Module options that override the site's `[policy]` for this service.
    pub policy: PolicyValues,
    pub prompt: String,
    pub echo: bool,
    pub token: TokenSource,
    pub debug: bool,
    /// `owner_ok`: also trust a store owned by the process's own user.
    pub owner_ok: bool,
    /// `panic_for_test`: the hook panics (feature `panic-test` only);
    /// `panic_for_test=fleet`: the fleet object does, for a database login.
    #[cfg(feature = "panic-test")]
    pub panic_for_test: bool,
    #[cfg(feature = "panic-test")]
    pub panic_in_fleet: bool,
}

impl Default for ModuleOptions {
    fn default() -> Self {
        ModuleOptions {
            config: None,
            store: None,
            nullok: false,
            policy: PolicyValues::default(),
            prompt: DEFAULT_PROMPT.to_string(),
            echo: false,
            token: TokenSource::Prompt,
            debug: false,
            owner_ok: false,
            #[cfg(feature = "panic-test")]
            panic_for_test: false,
            #[cfg(feature = "panic-test")]
            panic_in_fleet: false,
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

fn number<T: std::str::FromStr + Into<u64> + Copy>(
    name: &str,
    value: &str,
) -> Result<T, ConfigError> {
    let n: T = value.parse().map_err(|_| {
        ConfigError(format!(
            "option {name}= needs a whole number, got {value:?}"
        ))
    })?;
    check_bound(name, n.into()).map_err(|ConfigError(e)| ConfigError(format!("option {e}")))?;
    Ok(n)
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
                ("config", Some(v)) if v.starts_with('/') => o.config = Some(PathBuf::from(v)),
                ("config", Some(_)) => {
                    return Err(ConfigError("config= needs an absolute path".into()));
                }
                ("store", Some(v)) if v.starts_with('/') => o.store = Some(PathBuf::from(v)),
                ("store", Some(_)) => {
                    return Err(ConfigError("store= needs an absolute path".into()));
                }
                ("nullok", None) => o.nullok = true,
                ("echo", None) => o.echo = true,
                ("debug", None) => o.debug = true,
                ("owner_ok", None) => o.owner_ok = true,
                #[cfg(feature = "panic-test")]
                ("panic_for_test", None) => o.panic_for_test = true,
                #[cfg(feature = "panic-test")]
                ("panic_for_test", Some("fleet")) => o.panic_in_fleet = true,
                ("no_recovery", None) => o.policy.no_recovery = Some(true),
                ("use_first_pass", None) => o.token = TokenSource::UseFirstPass,
                ("try_first_pass", None) => o.token = TokenSource::TryFirstPass,
                ("forward_pass", None) => o.token = TokenSource::ForwardPass,
                ("prompt", Some(v)) => o.prompt = v.to_string(),
                ("window", Some(v)) => o.policy.window = Some(number(name, v)?),
                ("deny", Some(v)) => o.policy.deny = Some(number(name, v)?),
                ("unlock_time", Some(v)) => o.policy.unlock_time = Some(number(name, v)?),
                ("hard_deny", Some(v)) => o.policy.hard_deny = Some(number(name, v)?),
                ("hotp_window", Some(v)) => o.policy.hotp_window = Some(number(name, v)?),
                ("grace_period", Some(v)) => o.policy.grace_period = Some(number(name, v)?),
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

    /// The site file this service reads.
    pub fn site_config<'a>(&'a self, default: &'a Path) -> &'a Path {
        self.config.as_deref().unwrap_or(default)
    }
}

/// Whether the site file's `text` sets nothing: only blank lines, comment
/// lines and the empty tables `[policy]` and `[postgres]` (each once), so
/// that it reads as [`SiteConfig::default`], as the TOML parser reads it
/// (the tests compare the two). Anything else, a line with spaces before
/// its `#` or a CR included, is for the TOML parser.
pub(crate) fn sets_nothing(text: &str) -> bool {
    let (mut policy, mut postgres) = (false, false);
    for line in text.split('\n') {
        let seen = match line {
            "" => continue,
            "[policy]" => &mut policy,
            "[postgres]" => &mut postgres,
            _ if line.starts_with('#') => {
                if !crate::core::record_text::valid_comment(line) {
                    return false;
                }
                continue;
            }
            _ => return false,
        };
        if *seen {
            return false;
        }
        *seen = true;
    }
    true
}

/// `/etc/otpgate.toml`: where the store is and the site's enrollment defaults.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// A directory, or a `postgresql://` URL for the fleet store.
    pub store: Option<String>,
    pub issuer: Option<String>,
    /// The CLI's spellings, in any case.
    #[serde(default, deserialize_with = "algorithm_any_case")]
    pub algorithm: Option<Algorithm>,
    pub digits: Option<u8>,
    pub period: Option<u32>,
    pub recovery_codes: Option<usize>,
    /// The login policy every service and the CLI start from.
    #[serde(default)]
    pub policy: PolicyValues,
    /// How to reach the fleet store, when `store` is a URL.
    #[serde(default)]
    pub postgres: PostgresConfig,
}

/// `[postgres]`: connection and sealing settings of the fleet store.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The database password (root-owned, 0600).
    pub password_file: Option<PathBuf>,
    /// With it TLS is required and the server's certificate (and name) verified.
    pub ca_file: Option<PathBuf>,
    /// `"off"` allows a non-local server without TLS (never the default).
    pub tls: Option<TlsSetting>,
    /// Seconds to connect, and the bound of every statement (1 to 30).
    pub connect_timeout: Option<u64>,
    /// 32 random bytes (root-owned, 0600), the same on every host: seals
    /// the secrets in the database.
    pub key_file: Option<PathBuf>,
    /// A TLS client certificate (PEM, root-owned) for the server's `cert`
    /// authentication, with its key (`client_key`, PEM, root-owned 0600):
    /// per-host credentials instead of a shared password, and no SCRAM
    /// rounds at each login. Both or neither; needs `ca_file`.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsSetting {
    On,
    Off,
}

/// Where the store is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    Dir(PathBuf),
    Postgres(String),
}

pub const DEFAULT_KEY_FILE: &str = "/etc/otpgate/db.key";
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 3;

impl PostgresConfig {
    pub fn connect_timeout(&self) -> u64 {
        self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }

    pub fn key_file(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_FILE))
    }
}

/// `algorithm` as `otpgate enroll --algorithm` takes it: sha1, sha256 or
/// sha512 in any case.
fn algorithm_any_case<'de, D>(d: D) -> Result<Option<Algorithm>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let word = String::deserialize(d)?;
    match word.to_ascii_lowercase().as_str() {
        "sha1" => Ok(Some(Algorithm::Sha1)),
        "sha256" => Ok(Some(Algorithm::Sha256)),
        "sha512" => Ok(Some(Algorithm::Sha512)),
        _ => Err(serde::de::Error::custom(
            "algorithm must be sha1, sha256 or sha512 (any case)",
        )),
    }
}

/// Whether `issuer` cannot name an account in an app: the otpauth URI's
/// label is `issuer:user`, so no colon, and no control characters. Checked
/// where it is used (enrollment), not when the site file is read: logins
/// never use it, and an old site file must not stop them.
pub fn bad_issuer(issuer: &str) -> bool {
    issuer.contains(':') || issuer.chars().any(char::is_control)
}

/// Whether `s` names the PostgreSQL store.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

impl SiteConfig {
    /// Parses the text of the site file; errors name `SITE_CONFIG` (see
    /// [`SiteConfig::load`] for the path actually read).
    pub fn parse(text: &str) -> Result<SiteConfig, ConfigError> {
        // Every login reads this file. As installed it sets nothing (all
        // comments): read that without the TOML parser, whose code a
        // login would otherwise fault in for nothing.
        let c: SiteConfig = if sets_nothing(text) {
            SiteConfig::default()
        } else {
            toml::from_str(text).map_err(|e| {
                ConfigError(format!(
                    "{SITE_CONFIG}: {}",
                    e.message().lines().next().unwrap_or("")
                ))
            })?
        };
        c.policy
            .validate()
            .map_err(|ConfigError(e)| ConfigError(format!("{SITE_CONFIG}: [policy] {e}")))?;
        if let Some(s) = &c.store
            && !s.starts_with('/')
            && !is_postgres_url(s)
        {
            return Err(ConfigError(format!(
                "{SITE_CONFIG}: store must be an absolute path or a postgresql:// URL"
            )));
        }
        if let Some(t) = c.postgres.connect_timeout
            && !(1..=30).contains(&t)
        {
            return Err(ConfigError(format!(
                "{SITE_CONFIG}: [postgres] connect_timeout must be a whole number from 1 to 30, not {t}"
            )));
        }
        for (name, p) in [
            ("password_file", &c.postgres.password_file),
            ("ca_file", &c.postgres.ca_file),
            ("key_file", &c.postgres.key_file),
            ("client_cert", &c.postgres.client_cert),
            ("client_key", &c.postgres.client_key),
        ] {
            if p.as_ref().is_some_and(|p| !p.is_absolute()) {
                return Err(ConfigError(format!(
                    "{SITE_CONFIG}: [postgres] {name} must be an absolute path"
                )));
            }
        }
        match (&c.postgres.client_cert, &c.postgres.client_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError(format!(
                    "{SITE_CONFIG}: [postgres] client_cert and client_key go together"
                )));
            }
            (Some(_), Some(_)) if c.postgres.ca_file.is_none() => {
                return Err(ConfigError(format!(
                    "{SITE_CONFIG}: [postgres] client_cert needs ca_file (TLS that verifies the server)"
                )));
            }
            _ => {}
        }
        c.otp_params()
            .validate()
            .map_err(|e| ConfigError(format!("{SITE_CONFIG}: {e}")))?;
        // 7 digits exist only on imported pam_oath tokens; apps offer 6 or 8.
        if c.digits.is_some_and(|d| !otp::ENROLL_DIGITS.contains(&d)) {
            return Err(ConfigError(format!("{SITE_CONFIG}: digits must be 6 or 8")));
        }
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
                // Name the file that was actually read.
                SiteConfig::parse(text).map_err(|ConfigError(e)| {
                    ConfigError(match e.strip_prefix(SITE_CONFIG) {
                        Some(rest) => format!("{}{rest}", path.display()),
                        None => e,
                    })
                })
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

    /// The site's policy: built-in defaults under `[policy]`.
    pub fn policy(&self) -> Policy {
        self.policy.over(&Policy::default())
    }

    /// Where the store is: the site's `store`, else the default directory.
    pub fn store_location(&self) -> StoreLocation {
        match &self.store {
            Some(s) if is_postgres_url(s) => StoreLocation::Postgres(s.clone()),
            Some(s) => StoreLocation::Dir(PathBuf::from(s)),
            None => StoreLocation::Dir(PathBuf::from(DEFAULT_STORE)),
        }
    }

    /// Where a login's or command's store is: a directory named by the
    /// module's `store=` or the CLI's `--store` wins over the site's.
    pub fn store_location_for(&self, explicit: Option<&Path>) -> StoreLocation {
        match explicit {
            Some(dir) => StoreLocation::Dir(dir.to_path_buf()),
            None => self.store_location(),
        }
    }

    /// The store directory (the default one when the store is a database).
    pub fn store_dir(&self) -> PathBuf {
        match self.store_location() {
            StoreLocation::Dir(d) => d,
            StoreLocation::Postgres(_) => PathBuf::from(DEFAULT_STORE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKAGED: &str = include_str!("../packaging/otpgate.toml");

    /// What the TOML parser makes of a site file that `sets_nothing`.
    fn by_toml(text: &str) -> Option<SiteConfig> {
        toml::from_str::<SiteConfig>(text).ok()
    }

    #[test]
    fn the_packaged_site_file_sets_nothing_and_reads_as_the_parser_reads_it() {
        assert!(sets_nothing(PACKAGED));
        assert_eq!(by_toml(PACKAGED), Some(SiteConfig::default()));
        assert_eq!(SiteConfig::parse(PACKAGED).unwrap(), SiteConfig::default());
        for text in ["", "\n", "[policy]\n[postgres]\n", "# only\n\n# comments"] {
            assert!(sets_nothing(text), "{text:?}");
            assert_eq!(by_toml(text), Some(SiteConfig::default()), "{text:?}");
        }
        // A key set, spaces, CRLF, a table twice or another table: the parser's.
        for text in [
            PACKAGED.replace("#deny = 10", "deny = 10"),
            PACKAGED.replace("#store = ", "store = "),
            PACKAGED.replace('\n', "\r\n"),
            format!("{PACKAGED}[policy]\n"),
            format!("{PACKAGED}[other]\n"),
            format!("{PACKAGED}  # indented\n"),
            format!("{PACKAGED}# a bell \u{7}\n"),
        ] {
            assert!(!sets_nothing(&text), "{text}");
        }
        assert!(
            SiteConfig::parse(&PACKAGED.replace("#deny = 10", "deny = 3"))
                .unwrap()
                .policy
                .deny
                .is_some_and(|d| d == 3)
        );
    }

    /// Every one-byte change of the packaged file: what `sets_nothing`
    /// takes, the TOML parser reads as the defaults too.
    #[test]
    fn no_small_change_that_sets_nothing_reads_otherwise_than_by_the_parser() {
        let bytes = PACKAGED.as_bytes();
        let mut taken = 0;
        let mut check = |t: &[u8]| {
            if let Ok(t) = std::str::from_utf8(t)
                && sets_nothing(t)
            {
                taken += 1;
                assert_eq!(by_toml(t), Some(SiteConfig::default()), "{t}");
            }
        };
        crate::core::record_text::tests::each_byte_change(bytes, b" #=[]\n\t\r\"'a0_", &mut check);
        assert!(taken > 1000, "sets_nothing took only {taken} variants");
    }

    fn policy_of(args: &[&str], site: &str) -> Policy {
        let o = ModuleOptions::parse(args).unwrap();
        o.policy.over(&SiteConfig::parse(site).unwrap().policy())
    }

    #[test]
    fn defaults_match_the_design() {
        let o = ModuleOptions::parse::<&str>(&[]).unwrap();
        assert_eq!(o.prompt, "Verification code: ");
        let p = policy_of(&[], "");
        assert_eq!(
            (p.window, p.deny, p.unlock_time, p.hard_deny, p.recovery),
            (1, 10, 600, 100, true)
        );
        assert!(!o.nullok && !o.echo && o.config.is_none());
        assert!(!o.owner_ok && o.store_trust() == store::Trust::RootOnly);
    }

    #[test]
    fn every_option_parses() {
        let o = ModuleOptions::parse(&[
            "hotp_window=25",
            "config=/etc/otpgate-ssh.toml",
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
        assert_eq!(
            o.site_config(Path::new(SITE_CONFIG)),
            Path::new("/etc/otpgate-ssh.toml")
        );
        assert_eq!(o.prompt, "Code please: "); // PAM passes `[prompt=Code please: ]` as one argument
        assert_eq!(o.token, TokenSource::TryFirstPass);
        assert!(o.nullok && o.echo && o.debug);
        assert!(o.owner_ok && o.store_trust() == store::Trust::RootOrEuid);
        let p = o.policy.over(&Policy::default());
        assert_eq!(
            (p.window, p.deny, p.unlock_time, p.hard_deny, p.recovery),
            (3, 5, 30, 50, false)
        );
        assert_eq!(p.hotp_window, 25);
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
            "deny=1001",
            "store=relative",
            "config=relative",
            "nullok=1",
            "store",
            "window=-1",
            "owner_ok=1",
            "unlock_time=0",
            "unlock_time=18446744073709551615",
            "unlock_time=9223372036854775808",
            "unlock_time=2592001",
            "hard_deny=100001",
            "hard_deny=4294967296",
            "grace_period=86401",
            "grace_period=-1",
            "hotp_window=0",
            "hotp_window=101",
            "hotp_window",
        ] {
            assert!(ModuleOptions::parse(&[bad]).is_err(), "{bad}");
        }
        let e = ModuleOptions::parse(&["unlock_time=18446744073709551615"]).unwrap_err();
        assert_eq!(
            e.0,
            "option unlock_time must be a whole number from 1 to 2592000, not 18446744073709551615"
        );
    }

    #[test]
    fn the_site_policy_applies_and_module_options_override_it() {
        let site =
            "[policy]\nwindow = 2\ndeny = 3\nunlock_time = 60\nhard_deny = 5\nno_recovery = true\n";
        let p = policy_of(&[], site);
        assert_eq!(
            (p.window, p.deny, p.unlock_time, p.hard_deny, p.recovery),
            (2, 3, 60, 5, false)
        );
        let p = policy_of(&["deny=7", "window=0"], site);
        assert_eq!((p.window, p.deny, p.hard_deny), (0, 7, 5));
        assert_eq!(policy_of(&[], "").hotp_window, 10);
        let hotp = "[policy]\nhotp_window = 40\n";
        assert_eq!(policy_of(&[], hotp).hotp_window, 40);
        assert_eq!(policy_of(&["hotp_window=3"], hotp).hotp_window, 3);
        for bad in [
            "[policy]\ndeny = 0",
            "[policy]\nunlock_time = 9223372036854775807",
            "[policy]\nwindow = 11",
            "[policy]\nwindo = 1",
            "[policy]\nno_recovery = 1",
            "[policy]\nhotp_window = 0",
            "[policy]\nhotp_window = 101",
        ] {
            let e = SiteConfig::parse(bad).unwrap_err();
            assert!(e.0.starts_with("/etc/otpgate.toml: "), "{bad}: {e}");
        }
    }

    #[test]
    fn the_site_file_takes_the_clis_spellings_and_leaves_the_issuer_to_enroll() {
        for (word, algorithm) in [
            ("Sha256", Algorithm::Sha256),
            ("sHa1", Algorithm::Sha1),
            ("SHA512", Algorithm::Sha512),
        ] {
            let c = SiteConfig::parse(&format!("algorithm = \"{word}\"")).unwrap();
            assert_eq!(c.otp_params().algorithm, algorithm, "{word}");
        }
        let e = SiteConfig::parse("algorithm = \"md5\"").unwrap_err();
        assert!(e.0.contains("sha1, sha256 or sha512"), "{e}");
        // An issuer no app can show is refused where it is used (enroll),
        // never when the file is read: logins do not use it.
        for bad in ["Acme:VPN", "Acme\\u0007", "Acme\\nVPN"] {
            let c = SiteConfig::parse(&format!("issuer = \"{bad}\"")).unwrap();
            assert!(bad_issuer(c.issuer.as_deref().unwrap()), "{bad}");
        }
        assert!(!bad_issuer("Acme VPN (prod)"));
    }

    #[test]
    fn site_config_parses_and_validates() {
        let c = SiteConfig::parse("store = \"/srv/otp\"\nissuer = \"Acme\"\ndigits = 8\nalgorithm = \"SHA256\"\nperiod = 60\nrecovery_codes = 5\n").unwrap();
        assert_eq!(c.store_dir(), PathBuf::from("/srv/otp"));
        assert_eq!(c.otp_params().digits, 8);
        // The CLI's spelling works in the file too.
        let c = SiteConfig::parse("algorithm = \"sha512\"").unwrap();
        assert_eq!(c.otp_params().algorithm, Algorithm::Sha512);
        assert!(SiteConfig::parse("digits = 7").is_err());
        assert!(SiteConfig::parse("stor = \"/x\"").is_err());
        assert!(SiteConfig::parse("store = \"x\"").is_err());
        assert_eq!(
            SiteConfig::parse("").unwrap().store_dir(),
            PathBuf::from(DEFAULT_STORE)
        );
    }

    #[test]
    fn load_names_the_file_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.toml");
        std::fs::write(&path, "digits = 7\n").unwrap();
        let e = SiteConfig::load(&path).unwrap_err();
        assert!(e.0.starts_with(&path.display().to_string()), "{e}");
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_a_verified_server() {
        let pg = "store = \"postgresql://h@db/otpgate\"\n[postgres]\n";
        let with = |rest: &str| SiteConfig::parse(&format!("{pg}{rest}"));
        let ok = with("ca_file = \"/ca\"\nclient_cert = \"/c\"\nclient_key = \"/k\"\n").unwrap();
        assert_eq!(ok.postgres.client_cert, Some(PathBuf::from("/c")));
        assert_eq!(ok.postgres.client_key, Some(PathBuf::from("/k")));
        for (rest, says) in [
            ("ca_file = \"/ca\"\nclient_cert = \"/c\"\n", "go together"),
            ("ca_file = \"/ca\"\nclient_key = \"/k\"\n", "go together"),
            (
                "client_cert = \"/c\"\nclient_key = \"/k\"\n",
                "needs ca_file",
            ),
            (
                "ca_file = \"/ca\"\nclient_cert = \"c\"\nclient_key = \"/k\"\n",
                "client_cert must be an absolute path",
            ),
            (
                "ca_file = \"/ca\"\nclient_cert = \"/c\"\nclient_key = \"k\"\n",
                "client_key must be an absolute path",
            ),
        ] {
            let e = with(rest).unwrap_err();
            assert!(e.0.contains(says), "{rest}: {e}");
        }
    }
}
