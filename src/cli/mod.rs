//! The `otpgate` command: enrollment and administration. The only place
//! that prints; errors go to stderr as `otpgate: <what> (<why>)`.

mod admin;
pub mod doctor;
mod enroll;
pub mod qr;
pub mod text;

use clap::{Parser, Subcommand};
use std::fmt;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use crate::config::{self, SiteConfig};
use crate::store::{Store, StoreError, Trust, validate_user};

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
        /// Number of codes.
        #[arg(long)]
        count: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show one user's enrollment, or every enrolled user.
    Status {
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Clear failed attempts and any lock.
    Unlock { user: String },
    /// Check the installation, store, PAM stacks, sshd settings and clock.
    Doctor(doctor::DoctorArgs),
    /// Remove a user's enrollment (their codes and recovery codes stop working).
    Disable {
        user: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
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
        match e {
            StoreError::BadUser(why) => CliError::usage("invalid user name", why),
            other => CliError::usage("store refused", other.to_string()),
        }
    }
}

pub type CliResult = Result<i32, CliError>;

/// Shared context: where the store is and the site defaults.
pub struct Context {
    pub store_dir: PathBuf,
    pub site: SiteConfig,
    /// `--store` was given on the command line.
    pub store_given: bool,
    /// Who may own the store (see [`cli_trust`]).
    pub trust: Trust,
}

impl Context {
    pub fn open_store(&self) -> Result<Store, CliError> {
        Store::open(&self.store_dir, self.trust).map_err(CliError::from)
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
            eprintln!("{e}");
            e.code
        }
    }
}

fn run(cli: Cli) -> CliResult {
    if !nix::unistd::geteuid().is_root() && cli.store.is_none() {
        return Err(CliError::usage(
            "must run as root",
            "the store is readable by root only; try: sudo otpgate ...",
        ));
    }
    let site = SiteConfig::load(&cli.config)
        .map_err(|e| CliError::usage("site configuration refused", e.to_string()))?;
    let store_dir = cli.store.clone().unwrap_or_else(|| site.store_dir());
    let ctx = Context {
        store_dir,
        site,
        store_given: cli.store.is_some(),
        trust: cli_trust(),
    };
    match cli.command {
        Command::Enroll(args) => enroll::run(&ctx, args),
        Command::Recovery { user, count, json } => {
            admin::recovery(&ctx, &resolve_user(user)?, count, json)
        }
        Command::Status { user, json } => {
            let user = user.map(|u| enrolled(u, &ctx)).transpose()?;
            admin::status(&ctx, user.as_deref(), json)
        }
        Command::Unlock { user } => admin::unlock(&ctx, &enrolled(user, &ctx)?),
        Command::Disable { user, yes } => admin::disable(&ctx, &enrolled(user, &ctx)?, yes),
        Command::Doctor(args) => doctor::run(&ctx, args),
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
        escape(&ctx.store_dir.display().to_string())
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

/// Current unix time, read once per command.
#[allow(clippy::disallowed_methods)]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads one line from stdin after printing `prompt` on stderr. `None` at end of input.
pub fn ask(prompt: &str) -> Option<String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
    }
}
