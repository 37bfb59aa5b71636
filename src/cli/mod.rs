//! The `otpgate` command: enrollment and administration. The only place
//! that prints; errors go to stderr as `otpgate: <what> (<why>)`.

mod admin;
pub mod console;
mod db;
mod docs;
pub mod doctor;
mod enroll;
mod import;
pub mod qr;
mod self_service;
pub mod text;

use clap::{CommandFactory, Parser, Subcommand};
use std::fmt;
use std::path::PathBuf;

pub use console::{ask, ask_hidden, emit, emit_before, note, stdout_is_read};

use crate::config::StoreLocation;
use crate::config::{self, SiteConfig};
use crate::core::{Policy, Record};
use crate::store::{AnyStore, Store, StoreError, Trust, validate_user};
use subtle::ConstantTimeEq;

/// Exit codes (DESIGN.md): 0 ok, 1 refused/failed, 2 usage or environment error.
pub const EXIT_OK: i32 = 0;
pub const EXIT_REFUSED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "otpgate",
    version,
    about = "Enroll users for one-time-code logins and manage their second factor"
)]
struct Cli {
    /// Store directory (default: `store` in the site config, else /var/lib/otpgate).
    #[arg(long, global = true, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Site configuration file.
    #[arg(long, global = true, value_name = "PATH", default_value = config::SITE_CONFIG, hide_default_value = false)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a secret, show it as a QR code, verify a first code, save, print recovery codes.
    Enroll(enroll::EnrollArgs),
    /// Make new recovery codes; all earlier ones stop working.
    Recovery {
        /// User (default: $SUDO_USER, else you).
        user: Option<String>,
        /// Self-service through sudo: new codes for $SUDO_USER after proving
        /// the current factor (a code from the app or a recovery code).
        #[arg(long = "self", conflicts_with = "user")]
        self_service: bool,
        /// Number of codes, 0 to 100; 0 voids the old ones and makes none
        /// (default: site config, else 10).
        #[arg(long, value_name = "N", value_parser = recovery_count)]
        count: Option<usize>,
        /// Print one JSON object on stdout and nothing else.
        #[arg(long)]
        json: bool,
    },
    /// Show one user's enrollment, or every enrolled user.
    Status {
        /// User to show (default: every enrolled user).
        user: Option<String>,
        /// Self-service through sudo: show $SUDO_USER's own enrollment.
        #[arg(long = "self", conflicts_with = "user")]
        self_service: bool,
        /// Print JSON (one object for a user, an array for all).
        #[arg(long)]
        json: bool,
    },
    /// Clear failed attempts and any lock.
    Unlock {
        /// User whose second factor to unlock.
        user: String,
    },
    /// Check the installation, store, PAM stacks, sshd settings and clock.
    Doctor(doctor::DoctorArgs),
    /// The PostgreSQL fleet store: create the schema, show it, import a file store.
    Db(db::DbArgs),
    /// Import enrollments from google-authenticator or pam_oath; users keep
    /// their apps, tokens and scratch codes (the source is only read).
    Import(import::ImportArgs),
    /// Remove a user's enrollment (their codes and recovery codes stop working).
    Disable {
        /// User whose enrollment to remove.
        user: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Print a shell completion script (for packagers: scripts/package.sh).
    #[command(hide = true)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the otpgate(8) manual page as roff (for packagers).
    #[command(hide = true)]
    Manpage,
}

/// A command failure with its exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub what: String,
    pub why: String,
}

impl CliError {
    pub fn refused(what: impl Into<String>, why: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_REFUSED,
            what: what.into(),
            why: why.into(),
        }
    }
    pub fn usage(what: impl Into<String>, why: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_USAGE,
            what: what.into(),
            why: why.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "otpgate: {} ({})", self.what, self.why)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> CliError {
        CliError::usage(
            match e {
                StoreError::BadUser(_) => "invalid user name",
                _ => "store refused",
            },
            store_words(&e),
        )
    }
}

/// What of an enrollment a store error says is broken, so that an admin
/// may replace (`enroll --force`) or remove (`disable --yes`) it: the
/// record at `record` (does not parse, bad mode) or the login state (does
/// not read). The store's own rule ([`StoreError::breaks_enrollment`], the
/// one `replace_broken` checks again under the lock): an unsafe lock file
/// is for the admin to look at, as replacing the record would not get past
/// it. (A fleet store row that does not open with the key is an unsafe
/// record.)
pub fn broken_part(e: &StoreError, record: &std::path::Path) -> Option<&'static str> {
    match e {
        _ if !e.breaks_enrollment(record) => None,
        StoreError::State { .. } => Some("login state"),
        _ => Some("record"),
    }
}

/// A store error in words (no `os error N`).
pub fn store_words(e: &StoreError) -> String {
    match e {
        StoreError::BadUser(why) => why.clone(),
        StoreError::State { .. } => format!(
            "{e}; it is never reset, as that would bring back used recovery codes: \
             replace the enrollment with `otpgate enroll USER --force` or remove it \
             with `otpgate disable USER --yes`"
        ),
        StoreError::Io { path, op, err } => {
            format!("{}: {op}: {}", path.display(), console::words(err))
        }
        StoreError::StateLeft { path, err } => format!(
            "{}: {}",
            path.display(),
            crate::store::state_left_words(console::words(err))
        ),
        StoreError::NotDurable { path, op, err } => format!(
            "{}: {op}: {}; the change is in force, but a crash before the disk recovers may undo it",
            path.display(),
            console::words(err)
        ),
        other => other.to_string(),
    }
}

pub type CliResult = Result<i32, CliError>;

/// Shared context: where the store is and the site defaults.
pub struct Context {
    pub store_dir: PathBuf,
    pub site: SiteConfig,
    /// Where `site` was read from (`--config`).
    pub config: PathBuf,
    /// `--store` was given on the command line.
    pub store_given: bool,
    /// Who may own the store (see [`cli_trust`]).
    pub trust: Trust,
}

impl Context {
    /// `--store DIR` when given, else the site's store (a directory or the
    /// PostgreSQL fleet store).
    pub fn open_store(&self) -> Result<AnyStore, CliError> {
        AnyStore::open(&self.site, self.explicit_dir(), self.trust, false).map_err(CliError::from)
    }

    /// Like [`Context::open_store`], creating a missing store directory.
    pub fn create_store(&self) -> Result<AnyStore, CliError> {
        AnyStore::open(&self.site, self.explicit_dir(), self.trust, true).map_err(CliError::from)
    }

    /// The file store itself, for checks only it has (doctor).
    pub fn open_file_store(&self) -> Result<Store, CliError> {
        Store::open(&self.store_dir, self.trust).map_err(CliError::from)
    }

    /// Whether the store is the PostgreSQL fleet store.
    pub fn is_postgres(&self) -> bool {
        !self.store_given && matches!(self.site.store_location(), StoreLocation::Postgres(_))
    }

    /// Where the store is, for audit lines and messages (no password).
    pub fn store_desc(&self) -> String {
        match (self.store_given, self.site.store_location()) {
            (false, StoreLocation::Postgres(url)) => crate::store::pg::redact(&url),
            _ => self.store_dir.display().to_string(),
        }
    }

    fn explicit_dir(&self) -> Option<&std::path::Path> {
        self.store_given.then_some(self.store_dir.as_path())
    }

    /// The login policy every command judges by (locks, recovery codes):
    /// the site file's `[policy]`, as every service starts from.
    pub fn policy(&self) -> Policy {
        self.site.policy()
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            note(&e.to_string());
            e.code
        }
    }
}

fn run(cli: Cli) -> CliResult {
    // Documents made from the definitions above: no root, no site file.
    match cli.command {
        Command::Completions { shell } => return docs::print_completions(Cli::command(), shell),
        Command::Manpage => return docs::print_manpage(&Cli::command()),
        _ => {}
    }
    if !nix::unistd::geteuid().is_root() && cli.store.is_none() {
        return Err(CliError::usage(
            "must run as root",
            "the store is readable by root only; try: sudo otpgate ...",
        ));
    }
    let site = SiteConfig::load(&cli.config).map_err(|e| {
        CliError::usage(
            format!("cannot use the site configuration {}", cli.config.display()),
            e.to_string(),
        )
    })?;
    let store_dir = cli.store.clone().unwrap_or_else(|| site.store_dir());
    let ctx = Context {
        store_dir,
        site,
        config: cli.config.clone(),
        store_given: cli.store.is_some(),
        trust: cli_trust(),
    };
    match cli.command {
        Command::Enroll(args) => enroll::run(&ctx, args),
        Command::Recovery {
            user,
            count,
            json,
            self_service: false,
        } => admin::recovery(&ctx, &resolve_user(user)?, count, json, None),
        Command::Recovery {
            count,
            json,
            self_service: true,
            ..
        } => {
            let user = self_service::sudo_user(&ctx)?;
            let store = ctx.open_store()?;
            if !store.is_enrolled(&user)? {
                return Err(CliError::refused(
                    format!("{user} is not enrolled"),
                    "enroll first: sudo otpgate enroll --self",
                ));
            }
            let proof = self_service::prove_current_factor(&ctx, &store, &user)?;
            drop(store);
            admin::recovery(&ctx, &user, count, json, Some(&proof))
        }
        Command::Status {
            user,
            json,
            self_service,
        } => {
            let user = if self_service {
                Some(self_service::sudo_user(&ctx)?)
            } else {
                user.map(|u| enrolled(u, &ctx)).transpose()?
            };
            admin::status(&ctx, user.as_deref(), json)
        }
        Command::Unlock { user } => admin::unlock(&ctx, &enrolled(user, &ctx)?),
        Command::Disable { user, yes } => admin::disable(&ctx, &enrolled(user, &ctx)?, yes),
        Command::Doctor(args) => doctor::run(&ctx, args),
        Command::Db(args) => db::run(&ctx, args),
        Command::Import(args) => import::run(&ctx, args),
        Command::Completions { .. } | Command::Manpage => Ok(EXIT_OK),
    }
}

/// Root trusts root only, as the module does by default. A non-root user
/// gets this far only with `--store` (see `run`) and can only use a store of
/// their own, which harms nobody else: trust their own uid then, so the
/// command works on a personal or test store without root.
fn cli_trust() -> Trust {
    if nix::unistd::geteuid().is_root() {
        Trust::RootOnly
    } else {
        Trust::RootOrEuid
    }
}

/// Audit line for a change an admin (or a user via `--self`) made, to
/// syslog LOG_AUTHPRIV: `otpgate: action=... user=... by=... store=...`.
pub fn audit(ctx: &Context, action: &str, user: &str, detail: &str) {
    use crate::logline::escape;
    let uid = nix::unistd::getuid();
    let invoker = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| format!("uid{uid}"), |u| u.name);
    let by = match std::env::var("SUDO_USER") {
        Ok(s) if !s.is_empty() => format!("{}(sudo:{})", escape(&invoker), escape(&s)),
        _ => escape(&invoker),
    };
    let mut line = format!(
        "otpgate: action={action} user={} by={by} store={}",
        escape(user),
        escape(&ctx.store_desc())
    );
    if !detail.is_empty() {
        line.push(' ');
        line.push_str(detail);
    }
    crate::pam::sys::audit_syslog(&line);
}

/// The account's canonical name (NSS: name -> uid -> name), so every
/// spelling of one account reaches one enrollment. A name NSS does not know
/// is refused, except that `orphans` lets an admin still see, unlock or
/// remove an enrollment whose account was deleted since.
fn account(user: &str, orphans: Option<&Context>) -> Result<String, CliError> {
    validate_user(user)?;
    match crate::account::canonical_name(user) {
        Ok(Some(name)) => {
            validate_user(&name)?;
            Ok(name)
        }
        Ok(None) => {
            if let Some(ctx) = orphans
                && ctx.open_store()?.is_enrolled(user)?
            {
                return Ok(user.to_string());
            }
            Err(CliError::refused(
                format!("there is no account named {user}"),
                "check the name: only existing accounts can be enrolled (getent passwd NAME)",
            ))
        }
        Err(e) => Err(CliError::usage("cannot look up the account", e)),
    }
}

/// Whether `current` is still the enrollment `base` was read as (the same
/// secret and the same set of recovery codes; logins may have changed the
/// rest). A run that shows codes saves them only over what it started from.
pub fn same_enrollment(base: Option<&Record>, current: Option<&Record>) -> bool {
    match (base, current) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            bool::from(a.secret.as_bytes().ct_eq(b.secret.as_bytes()))
                && a.recovery.salt == b.recovery.salt
        }
        _ => false,
    }
}

fn checked(user: String) -> Result<String, CliError> {
    account(&user, None)
}

/// Like [`checked`], for commands that act on an existing enrollment.
fn enrolled(user: String, ctx: &Context) -> Result<String, CliError> {
    account(&user, Some(ctx))
}

/// USER, else $SUDO_USER, else the invoking user.
pub fn resolve_user(user: Option<String>) -> Result<String, CliError> {
    let name = match user {
        Some(u) => u,
        None => match std::env::var("SUDO_USER") {
            Ok(u) if !u.is_empty() => u,
            _ => nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
                .ok_or_else(|| {
                    CliError::usage("no user given", "cannot find the invoking user; name one")
                })?,
        },
    };
    checked(name)
}

/// `--recovery-codes` / `--count`: a whole number from 0 to the maximum.
fn recovery_count(text: &str) -> Result<usize, String> {
    text.trim()
        .parse()
        .ok()
        .filter(|&n| n <= crate::core::recovery::MAX_COUNT)
        .ok_or_else(|| {
            format!(
                "use a whole number of codes, at most {}",
                crate::core::recovery::MAX_COUNT
            )
        })
}

/// `--period`: whole seconds within the range every app accepts.
fn period_seconds(text: &str) -> Result<u32, String> {
    use crate::core::otp::{PERIOD_MAX, PERIOD_MIN};
    text.trim()
        .parse()
        .ok()
        .filter(|p| (PERIOD_MIN..=PERIOD_MAX).contains(p))
        .ok_or_else(|| {
            format!(
                "use a whole number of seconds between {PERIOD_MIN} and {PERIOD_MAX}; most apps expect 30"
            )
        })
}

/// Current unix time, read once per command.
#[allow(clippy::disallowed_methods)]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of every subcommand, as `command: --name`.
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() {
                out.push(format!("{path}: {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() != "help" && sub.get_about().is_none() {
                out.push(format!("{path} {}: no description", sub.get_name()));
            }
            undocumented(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_argument_of_every_subcommand_has_a_help_text() {
        let mut missing = Vec::new();
        undocumented(&Cli::command(), "otpgate", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
        Cli::command().debug_assert();
    }
}
