//! `otpgate import google-authenticator | oath`: users keep their app (or
//! token), their codes and their scratch codes. Per user the command says
//! what was imported, what it became, what was left out and why; the
//! source files are only read. The whole report is written before anything
//! is saved; each enrollment is then saved in its own transaction, over
//! what the report was made from.

use clap::{Args, Subcommand};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{
    CliError, CliResult, Context, EXIT_OK, EXIT_REFUSED, account, audit, emit_before, note,
    same_enrollment, store_words, unix_now,
};
use crate::core::Record;
use crate::core::otp::Kind;
use crate::core::recovery::KdfParams;
use crate::import::source::{self, Mode, Owner};
use crate::import::{Plan, google, oath};
use crate::store::{AnyStore, Change, validate_user};

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(subcommand)]
    from: From,
}

#[derive(Subcommand, Debug)]
enum From {
    /// From google-authenticator-libpam: a user's ~/.google_authenticator.
    #[command(name = "google-authenticator")]
    GoogleAuthenticator {
        /// The user whose file to import.
        #[arg(
            long,
            required_unless_present = "all_homes",
            conflicts_with = "all_homes"
        )]
        user: Option<String>,
        /// Read this file instead of the user's ~/.google_authenticator (it
        /// must belong to the user or to root).
        #[arg(long, requires = "user", value_name = "PATH")]
        file: Option<PathBuf>,
        /// Every account in passwd whose home holds a .google_authenticator.
        #[arg(long)]
        all_homes: bool,
        #[command(flatten)]
        opts: Opts,
    },
    /// From pam_oath: its users file (e.g. /etc/users.oath), owned by root.
    Oath {
        /// The users file.
        file: PathBuf,
        #[command(flatten)]
        opts: Opts,
    },
}

#[derive(Args, Debug, Clone, Copy)]
struct Opts {
    /// Report what would be imported; save nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object on stdout and nothing else.
    #[arg(long)]
    json: bool,
    /// Replace existing enrollments (their old devices stop working).
    #[arg(long)]
    force: bool,
}

/// How one user's import ended (the JSON `result` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Imported,
    WouldImport,
    /// Already enrolled, no --force.
    Kept,
    /// Nothing otpgate can take (e.g. a static password, an odd option).
    Skipped,
    /// The file or the account was refused.
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Imported => "imported",
            Outcome::WouldImport => "would_import",
            Outcome::Kept => "kept",
            Outcome::Skipped => "skipped",
            Outcome::Refused => "refused",
        }
    }
}

/// One user's part of the report, and what to save for them.
struct Entry {
    user: String,
    file: PathBuf,
    line: Option<usize>,
    outcome: Outcome,
    reason: Option<String>,
    plan: Option<Plan>,
    /// The enrollment this replaces (checked again when saving).
    base: Option<Record>,
    record: Option<Record>,
}

impl Entry {
    fn new(user: String, file: &Path, line: Option<usize>) -> Entry {
        Entry {
            user,
            file: file.to_path_buf(),
            line,
            outcome: Outcome::Refused,
            reason: None,
            plan: None,
            base: None,
            record: None,
        }
    }

    fn not(mut self, outcome: Outcome, why: impl Into<String>) -> Entry {
        self.outcome = outcome;
        self.reason = Some(why.into());
        self
    }

    fn planned(mut self, plan: Result<Plan, String>) -> Entry {
        match plan {
            Ok(p) => {
                self.outcome = Outcome::WouldImport;
                self.plan = Some(p);
                self
            }
            Err(why) => self.not(Outcome::Skipped, why),
        }
    }
}

pub fn run(ctx: &Context, args: ImportArgs) -> CliResult {
    let now = unix_now();
    let (source, opts, entries) = match args.from {
        From::GoogleAuthenticator {
            user,
            file,
            all_homes,
            opts,
        } => {
            let entries = match user {
                Some(u) if !all_homes => vec![google_user(&u, file.as_deref(), now)],
                _ => all_home_files(now)?,
            };
            ("google-authenticator", opts, entries)
        }
        From::Oath { file, opts } => ("oath", opts, oath_users(&file, now)?),
    };
    let store = open_store(ctx, opts.dry_run)?;
    let mut entries: Vec<Entry> = entries
        .into_iter()
        .map(|e| check_existing(e, store.as_ref(), opts, now))
        .collect();
    if opts.dry_run {
        let text = report(source, &entries, opts);
        super::emit(&text)?;
        return Ok(exit_code(&entries));
    }
    // Shown first: what was not shown is not saved.
    emit_before(&report(source, &entries, opts), "nothing was saved")?;
    let Some(store) = store else {
        return Ok(exit_code(&entries));
    };
    let mut lost = false;
    for e in entries
        .iter_mut()
        .filter(|e| e.outcome == Outcome::Imported)
    {
        let Some(record) = e.record.take() else {
            continue;
        };
        let kind = record.kind;
        let base = e.base.take();
        let saved = store.update(&e.user, |current| {
            if !same_enrollment(base.as_ref(), current) {
                return Err("the enrollment changed while this ran");
            }
            Ok((Change::Put(record), ()))
        });
        let failed = match saved {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why.to_string()),
            Err(err) if err.change_in_force() => {
                lost = true;
                note(&format!(
                    "otpgate: {} was imported, but not safely on disk ({}); check with: otpgate status {}",
                    e.user,
                    store_words(&err),
                    e.user
                ));
                None
            }
            Err(err) if err.outcome_unknown() => {
                lost = true;
                note(&format!(
                    "otpgate: {} may or may not have been imported ({}); check with: otpgate status {}",
                    e.user,
                    store_words(&err),
                    e.user
                ));
                audit(
                    ctx,
                    "import",
                    &e.user,
                    &format!("source={source} kind={kind} outcome=unknown"),
                );
                continue;
            }
            Err(err) => Some(store_words(&err)),
        };
        if let Some(why) = failed {
            lost = true;
            note(&format!(
                "otpgate: {} was shown as imported but NOT saved ({why}); run the import for them again",
                e.user
            ));
            continue;
        }
        let scratch = e.plan.as_ref().map_or(0, |p| p.scratch.len());
        audit(
            ctx,
            "import",
            &e.user,
            &format!("source={source} kind={kind} recovery_codes={scratch}"),
        );
    }
    if lost {
        return Err(CliError::usage(
            "some imports were not saved, or not safely",
            "see the notes above; the others were saved",
        ));
    }
    Ok(exit_code(&entries))
}

fn exit_code(entries: &[Entry]) -> i32 {
    if entries
        .iter()
        .all(|e| matches!(e.outcome, Outcome::Imported | Outcome::WouldImport))
    {
        EXIT_OK
    } else {
        EXIT_REFUSED
    }
}

/// The store; for a dry run only if it exists (an empty site has none yet).
fn open_store(ctx: &Context, dry_run: bool) -> Result<Option<AnyStore>, CliError> {
    if dry_run {
        if ctx.is_postgres() || ctx.store_dir.exists() {
            return Ok(Some(ctx.open_store()?));
        }
        return Ok(None);
    }
    Ok(Some(ctx.create_store()?))
}

/// Existing enrollments are kept unless --force; records are made (the
/// scratch codes hashed) for the rest, unless this is a dry run.
fn check_existing(mut e: Entry, store: Option<&AnyStore>, opts: Opts, now: u64) -> Entry {
    if e.outcome != Outcome::WouldImport {
        return e;
    }
    if let Some(store) = store {
        match store.load(&e.user) {
            Ok(Some(_)) if !opts.force => {
                return e.not(
                    Outcome::Kept,
                    "already enrolled (--force replaces the enrollment; the old device then stops working)",
                );
            }
            Ok(base) => e.base = base,
            Err(err) => {
                return e.not(Outcome::Refused, format!("store: {}", store_words(&err)));
            }
        }
    }
    if opts.dry_run {
        return e;
    }
    let Some(plan) = &e.plan else { return e };
    match plan.record(KdfParams::DEFAULT, now) {
        Ok(r) => {
            e.record = Some(r);
            e.outcome = Outcome::Imported;
            e
        }
        Err(why) => e.not(Outcome::Refused, why),
    }
}

/// The account's canonical name and passwd entry.
fn passwd(name: &str) -> Result<(String, nix::unistd::User), String> {
    let canonical = account(name, None).map_err(|e| e.what)?;
    let pw = nix::unistd::User::from_name(&canonical)
        .ok()
        .flatten()
        .ok_or_else(|| format!("there is no account named {name}"))?;
    Ok((canonical, pw))
}

fn google_user(name: &str, file: Option<&Path>, now: u64) -> Entry {
    let (user, pw) = match passwd(name) {
        Ok(v) => v,
        Err(why) => {
            return Entry::new(name.to_string(), file.unwrap_or(Path::new("")), None)
                .not(Outcome::Refused, why);
        }
    };
    let (path, owner) = match file {
        Some(f) => (f.to_path_buf(), Owner::UserOrRoot(pw.uid.as_raw())),
        None => (
            pw.dir.join(".google_authenticator"),
            Owner::User(pw.uid.as_raw()),
        ),
    };
    let e = Entry::new(user, &path, None);
    match source::read(&path, owner, Mode::Private) {
        Ok(Some(bytes)) => google_entry(e, &bytes, now),
        Ok(None) => e.not(
            Outcome::Refused,
            format!("{}: no such file", path.display()),
        ),
        Err(err) => e.not(Outcome::Refused, err.to_string()),
    }
}

fn google_entry(e: Entry, bytes: &[u8], now: u64) -> Entry {
    match google::parse_google_authenticator(bytes) {
        Ok(file) => e.planned(google::plan(&file, now)),
        Err(err) => {
            let why = format!("{}: {err}", e.file.display());
            e.not(Outcome::Refused, why)
        }
    }
}

/// Every passwd account (NSS, as `getent passwd` lists them) whose home
/// holds a .google_authenticator; accounts without one are not listed.
fn all_home_files(now: u64) -> Result<Vec<Entry>, CliError> {
    let out = std::process::Command::new("getent")
        .arg("passwd")
        .output()
        .map_err(|e| CliError::usage("cannot list the accounts (getent passwd)", e.to_string()))?;
    if !out.status.success() {
        return Err(CliError::usage(
            "cannot list the accounts",
            "getent passwd failed",
        ));
    }
    let mut entries = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let (Some(name), Some(home)) = (fields.first(), fields.get(5)) else {
            continue;
        };
        if validate_user(name).is_err() || !home.starts_with('/') {
            continue;
        }
        // One account, one entry, whatever names reach it.
        let Ok((user, pw)) = passwd(name) else {
            continue;
        };
        if !seen.insert(pw.uid.as_raw()) {
            continue;
        }
        let path = pw.dir.join(".google_authenticator");
        let e = Entry::new(user, &path, None);
        match source::read(&path, Owner::User(pw.uid.as_raw()), Mode::Private) {
            Ok(None) => {}
            // A home that cannot be entered has no file we could import.
            Err(err) if err.why.contains("permission denied") => {}
            Ok(Some(bytes)) => entries.push(google_entry(e, &bytes, now)),
            Err(err) => entries.push(e.not(Outcome::Refused, err.to_string())),
        }
    }
    Ok(entries)
}

fn oath_users(file: &Path, now: u64) -> Result<Vec<Entry>, CliError> {
    let refused = |why: String| CliError::refused(format!("cannot import {}", file.display()), why);
    let bytes = match source::read(file, Owner::Root, Mode::NotWritableByOthers) {
        Ok(Some(b)) => b,
        Ok(None) => return Err(refused("no such file".into())),
        Err(err) => return Err(refused(err.why)),
    };
    let lines = oath::parse_oath_users(&bytes).map_err(|e| refused(e.to_string()))?;
    let local = |t: &oath::LocalTime| {
        crate::pam::sys::local_to_unix(t.year, t.month, t.day, t.hour, t.minute, t.second)
    };
    let mut entries = Vec::new();
    for line in lines {
        match line {
            oath::OathLine::Skipped { line, user, why } => {
                let user = user.unwrap_or_else(|| format!("(line {line})"));
                entries.push(Entry::new(user, file, Some(line)).not(Outcome::Skipped, why));
            }
            oath::OathLine::Entry(e) => {
                let entry =
                    match passwd(&e.user) {
                        Ok((user, _)) => Entry::new(user, file, Some(e.line))
                            .planned(oath::plan(&e, now, &local)),
                        Err(why) => Entry::new(e.user.clone(), file, Some(e.line))
                            .not(Outcome::Refused, why),
                    };
                entries.push(entry);
            }
        }
    }
    Ok(entries)
}

fn report(source: &str, entries: &[Entry], opts: Opts) -> String {
    let imported = entries
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Imported | Outcome::WouldImport))
        .count();
    if opts.json {
        let users: Vec<_> = entries.iter().map(entry_json).collect();
        return format!(
            "{}\n",
            json!({
                "source": source,
                "dry_run": opts.dry_run,
                "imported": imported,
                "not_imported": entries.len() - imported,
                "users": users,
            })
        );
    }
    let mut out = String::new();
    if opts.dry_run {
        let _ = writeln!(out, "Dry run: nothing is saved.");
    }
    if entries.is_empty() {
        let _ = writeln!(out, "No {source} enrollments found.");
    }
    for e in entries {
        let at = match e.line {
            Some(n) => format!("{}, line {n}", e.file.display()),
            None => e.file.display().to_string(),
        };
        match (&e.plan, e.outcome) {
            (Some(p), Outcome::Imported | Outcome::WouldImport) => {
                let verb = match (e.outcome, e.base.is_some()) {
                    (Outcome::WouldImport, false) => "would import",
                    (Outcome::WouldImport, true) => "would import, replacing the enrollment,",
                    (_, false) => "imported",
                    (_, true) => "imported, replacing the earlier enrollment,",
                };
                let _ = writeln!(out, "{}: {verb} from {at} ({})", e.user, p.describe());
                for m in &p.mapped {
                    let _ = writeln!(out, "  mapped:  {m}");
                }
                for s in &p.skipped {
                    let _ = writeln!(out, "  skipped: {s}");
                }
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{}: not imported ({at}): {}",
                    e.user,
                    e.reason.as_deref().unwrap_or("")
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "Summary: {imported} {}, {} not imported. The source file{} not changed.",
        if opts.dry_run {
            "would be imported"
        } else {
            "imported"
        },
        entries.len() - imported,
        if source == "oath" { " was" } else { "s were" }
    );
    out
}

fn entry_json(e: &Entry) -> serde_json::Value {
    let p = e
        .plan
        .as_ref()
        .filter(|_| matches!(e.outcome, Outcome::Imported | Outcome::WouldImport));
    json!({
        "user": e.user,
        "file": e.file.display().to_string(),
        "line": e.line,
        "result": e.outcome.as_str(),
        "replaces_enrollment": e.base.is_some(),
        "reason": e.reason,
        "kind": p.map(|p| p.kind.as_str()),
        "algorithm": p.map(|p| p.params.algorithm.as_str()),
        "digits": p.map(|p| p.params.digits),
        "period": p.filter(|p| p.kind == Kind::Totp).map(|p| p.params.period),
        "counter": p.filter(|p| p.kind == Kind::Hotp).map(|p| p.replay_guard),
        "recovery_codes": p.map(|p| p.scratch.len()),
        "mapped": p.map(|p| p.mapped.clone()).unwrap_or_default(),
        "skipped": p.map(|p| p.skipped.clone()).unwrap_or_default(),
    })
}
