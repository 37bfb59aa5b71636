//! `otpgate db init | status | import`: the PostgreSQL fleet store.

use clap::{Args, Subcommand};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use super::{CliError, CliResult, Context, EXIT_OK, EXIT_REFUSED, audit, emit, store_words};
use crate::config::StoreLocation;
use crate::store::pg::{self, PgStore, SealKey};
use crate::store::{Change, Store};

#[derive(Args, Debug)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Subcommand, Debug)]
enum DbCommand {
    /// Create the schema (versioned; idempotent) and the decoy row.
    Init {
        /// Also create the site key file ([postgres] key_file) if it is
        /// missing: 32 random bytes, root-owned 0600. Copy it to every host.
        #[arg(long)]
        new_key: bool,
    },
    /// Show the schema version, the number of enrolled users and the settings.
    Status,
    /// Move a file store's records (replay guard, failures and remaining
    /// recovery codes included) into the database.
    Import {
        /// The file store directory to read (it is not changed).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Replace users already in the database with a different enrollment.
        #[arg(long)]
        force: bool,
    },
}

fn url(ctx: &Context) -> Result<String, CliError> {
    match ctx.site.store_location() {
        StoreLocation::Postgres(url) => Ok(url),
        StoreLocation::Dir(_) => Err(CliError::usage(
            "no database configured",
            "set store = \"postgresql://...\" in the site configuration",
        )),
    }
}

pub fn run(ctx: &Context, args: DbArgs) -> CliResult {
    match args.command {
        DbCommand::Init { new_key } => init(ctx, new_key),
        DbCommand::Status => status(ctx),
        DbCommand::Import { from, force } => import(ctx, &from, force),
    }
}

fn init(ctx: &Context, new_key: bool) -> CliResult {
    let url = url(ctx)?;
    let key_file = ctx.site.postgres.key_file();
    if new_key && !key_file.exists() {
        write_new_key(&key_file)?;
        emit(&format!(
            "Created the site key {} (copy it, root-owned 0600, to every host).\n",
            key_file.display()
        ))?;
    }
    let store = pg::connect_for_init(&url, &ctx.site.postgres, ctx.trust)?;
    store.init_schema()?;
    audit(
        ctx,
        "db-init",
        "-",
        &format!("schema={}", pg::SCHEMA_VERSION),
    );
    emit(&format!(
        "Schema version {} ready at {}.\n",
        pg::SCHEMA_VERSION,
        store.describe()
    ))?;
    Ok(EXIT_OK)
}

fn write_new_key(path: &std::path::Path) -> Result<(), CliError> {
    let key = SealKey::generate().map_err(|e| CliError::usage("no randomness", e))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::usage(format!("cannot create {}", dir.display()), e.to_string())
        })?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| CliError::usage(format!("cannot create {}", path.display()), e.to_string()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| f.write_all(key.bytes()))
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::usage(format!("cannot write {}", path.display()), e.to_string()))
}

fn status(ctx: &Context) -> CliResult {
    let url = url(ctx)?;
    let store = PgStore::connect(&url, &ctx.site.postgres, ctx.trust)?;
    let users = store.users()?;
    let tls = if ctx.site.postgres.ca_file.is_some() {
        "verified TLS"
    } else {
        "no TLS (a Unix socket, or tls = \"off\")"
    };
    emit(&format!(
        "{}: schema version {}, {} enrolled user(s), {tls}, key {}\n",
        store.describe(),
        pg::SCHEMA_VERSION,
        users.len(),
        ctx.site.postgres.key_file().display()
    ))?;
    Ok(EXIT_OK)
}

/// Each file-store user into the database: the record as logins left it
/// (replay guard, failures, remaining recovery codes). The same enrollment
/// already there is skipped (re-running is harmless); a different one is a
/// conflict unless --force.
fn import(ctx: &Context, from: &std::path::Path, force: bool) -> CliResult {
    let url = url(ctx)?;
    let files = Store::open(from, ctx.trust)?;
    let db = PgStore::connect(&url, &ctx.site.postgres, ctx.trust)?;
    let mut report = String::new();
    let mut conflicts = 0;
    // One user's failure stops neither the others nor the report: every
    // user gets a line saying what happened to them.
    let mut failed = 0;
    for user in files.users()? {
        let record = match files.load(&user) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                failed += 1;
                report.push_str(&format!("{user}: NOT imported: {}\n", store_words(&e)));
                continue;
            }
        };
        let outcome = match db.update(&user, |current| match current {
            Some(c) if c.secret == record.secret && c.recovery.salt == record.recovery.salt => {
                Ok((Change::Keep, "already there"))
            }
            Some(_) if !force => Err(()),
            Some(_) => Ok((Change::Put(record.clone()), "replaced")),
            None => Ok((Change::Put(record.clone()), "imported")),
        }) {
            Ok(outcome) => outcome,
            Err(e) if e.outcome_unknown() => {
                failed += 1;
                report.push_str(&format!(
                    "{user}: may or may not have been imported ({}); check with: otpgate status {user}\n",
                    store_words(&e)
                ));
                continue;
            }
            Err(e) => {
                failed += 1;
                report.push_str(&format!("{user}: NOT imported: {}\n", store_words(&e)));
                continue;
            }
        };
        match outcome {
            Ok(what) => report.push_str(&format!("{user}: {what}\n")),
            Err(()) => {
                conflicts += 1;
                report.push_str(&format!(
                    "{user}: conflict: the database has another enrollment (use --force to replace it)\n"
                ));
            }
        }
    }
    emit(&report)?;
    audit(
        ctx,
        "db-import",
        "-",
        &format!("conflicts={conflicts} failed={failed}"),
    );
    if failed > 0 {
        return Err(CliError::usage(
            format!("{failed} user(s) not imported, or not known to be"),
            "see their lines above; the others are as shown",
        ));
    }
    Ok(if conflicts > 0 { EXIT_REFUSED } else { EXIT_OK })
}
