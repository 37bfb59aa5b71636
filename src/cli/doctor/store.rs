//! Is the store safe and usable: its parent directories, every record, the
//! per-user lock and temp paths, and the stored time steps? Read-only: the
//! directory is listed and stat'ed, records are read through the store.

use std::fs::{self, FileType, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::{Finding, error, io_why, ok, warn};
use crate::cli::text::utc;
use crate::cli::{Context, unix_now};
use crate::store::{FILE_FORBIDDEN, StoreError};

const LOCK_SUFFIX: &str = ".lock";
const TEMP_SUFFIX: &str = ".toml.tmp";

/// Warn this many days before this host's client certificate runs out.
const CERT_WARN_DAYS: u64 = 30;

/// This host's client certificate (`[postgres] client_cert`): the server
/// refuses one past its end, and with it every login of this host, so say
/// so, and warn a month ahead. (The site CA is not checked: rustls takes
/// it as a trust anchor, whose dates it does not read.) A file that cannot
/// be read is left to the connection check, which says why; one whose
/// dates cannot be parsed is a warning.
fn check_client_certificate(ctx: &Context, now: u64) -> Vec<Finding> {
    let Some(path) = ctx.site.postgres.client_cert.as_deref() else {
        return Vec::new();
    };
    let Ok(Some(pem)) = crate::store::read_trusted_public_file(path, 1024 * 1024, ctx.trust) else {
        return Vec::new();
    };
    let at = path.display().to_string();
    match crate::store::pg::certificate_expiries(&pem) {
        Ok(certs) => expiry_findings(&at, &certs, now),
        // rustls sends the certificate without reading its dates, so the
        // connection check may not notice: say it here.
        Err(why) => vec![
            warn(
                "store.client_cert_unreadable",
                format!("cannot read the dates of the client certificate ({why}): doctor cannot warn before it runs out"),
                format!("check {at}: openssl x509 -noout -enddate -in {at}"),
            )
            .at(at.as_str()),
        ],
    }
}

fn expiry_findings(at: &str, certs: &[(String, u64)], now: u64) -> Vec<Finding> {
    let renew = format!(
        "install a new certificate for this host (and its key) at {at}, then: otpgate doctor"
    );
    let mut out = Vec::new();
    for (i, (subject, end)) in certs.iter().enumerate() {
        // The first is this host's; any after it, the chain sent with it.
        let which = if i == 0 {
            format!("the client certificate {subject}")
        } else {
            format!("the certificate {subject} sent with the client certificate")
        };
        if *end <= now {
            out.push(error(
                "store.client_cert_expired",
                format!("{which} expired on {}: the database refuses it, so every login of this host is refused", utc(*end)),
                renew.clone(),
            ).at(at));
        } else if end - now < CERT_WARN_DAYS * 86_400 {
            out.push(warn(
                "store.client_cert_expiring",
                format!("{which} expires on {} (in {} days); from then on every login of this host is refused", utc(*end), (end - now) / 86_400),
                format!("{renew}, before it runs out"),
            ).at(at));
        }
    }
    out
}

/// The fleet store: connectivity (bounded by connect_timeout), TLS, the
/// schema version, the key file and the role's rights, in one finding;
/// before it, the client certificate's dates.
fn check_database(ctx: &Context) -> Vec<Finding> {
    let mut out = check_client_certificate(ctx, unix_now());
    out.extend(check_connection(ctx));
    out
}

fn check_connection(ctx: &Context) -> Vec<Finding> {
    let at = ctx.store_desc();
    let fix = "check the URL, [postgres] password_file/ca_file/client_cert/client_key/key_file (root-owned; secrets 0600) and that the server runs; then: otpgate db status".to_string();
    let store = match ctx.open_store() {
        Ok(s) => s,
        Err(e) => {
            return vec![
                error(
                    "store.db_unavailable",
                    format!("{}: every login through the module is refused", e.why),
                    fix,
                )
                .at(&at),
            ];
        }
    };
    let users = match store.users() {
        Ok(u) => u,
        Err(e) => return vec![error("store.db_unavailable", e.to_string(), fix).at(&at)],
    };
    let tls = if ctx.site.postgres.ca_file.is_some() {
        "TLS verified against the site CA"
    } else {
        "no TLS (a Unix socket, or tls = \"off\")"
    };
    vec![
        ok(
            "store.ok",
            format!(
                "{at}: schema version {}, {} enrolled user(s), {tls}, key file readable",
                crate::store::pg::SCHEMA_VERSION,
                users.len()
            ),
        )
        .at(&at),
    ]
}

pub fn check_store(ctx: &Context) -> Vec<Finding> {
    if ctx.is_postgres() {
        return check_database(ctx);
    }
    let dir = &ctx.store_dir;
    let at = dir.display().to_string();
    let mut out = check_parents(dir);
    let fix_dir = format!("install -d -o root -g root -m 0700 {at}");
    let store = match ctx.open_store() {
        Ok(s) => s,
        Err(e) => {
            let why = match fs::symlink_metadata(dir) {
                Err(e) => format!(
                    "cannot open the store directory ({}): every login through the module is refused",
                    io_why(&e)
                ),
                Ok(_) => e.why,
            };
            out.push(error("store.unusable", why, fix_dir).at(&at));
            return out;
        }
    };
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
        Err(e) => {
            out.push(error("store.unusable", e.to_string(), fix_dir).at(&at));
            return out;
        }
    };
    let now = unix_now();
    for user in &users {
        let p = store.record_path(user).display().to_string();
        match store.load(user) {
            // A broken lock/state path is reported once, by check_user_paths.
            Err(StoreError::Unsafe { path, .. }) if path != store.record_path(user) => {}
            // A login state that does not read is never reset (that would
            // bring back used recovery codes): no mode change mends it.
            Err(e @ StoreError::State { .. }) => out.push(error(
                "store.record_unreadable",
                format!("{e}; every login of {user} fails"),
                format!("replace the enrollment: otpgate enroll {user} --force (or remove it: otpgate disable {user} --yes)"),
            ).at(p)),
            Err(e) => out.push(error(
                "store.record_unreadable",
                format!("{e}; every login of {user} fails"),
                format!("chown root:root {p} && chmod 0600 {p}; if it does not parse, replace it: otpgate enroll {user} --force (or remove it: otpgate disable {user} --yes)"),
            ).at(p)),
            Ok(Some(r)) => {
                // Within the widest window it is a code accepted early and
                // passes by itself (`otpgate unlock` leaves it, see
                // core::decide::unlock); beyond it the clock was set back.
                let widest = crate::core::decide::MAX_WINDOW;
                if let Some(ahead) = crate::core::decide::seconds_ahead(&r, widest, now) {
                    out.push(error(
                        "store.clock_behind",
                        format!("{user}'s last accepted code is for a time {ahead} s ahead of this clock (was the clock set back?): every code of {user} is refused as clock_behind until then"),
                        format!("check the clock first (chrony or systemd-timesyncd), then: otpgate unlock {user}"),
                    ).at(p));
                }
            }
            Ok(None) => {}
        }
    }
    out.extend(check_user_paths(dir));
    if out.iter().all(|f| f.level == super::Level::Ok) {
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

/// Root (or, for a non-root run on a store of one's own, oneself).
fn trusted(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Every directory above the store must be root-owned and not writable by
/// group or other (a root-owned sticky directory such as /tmp is fine), as
/// sshd's StrictModes checks: whoever can write one can swap the store.
fn check_parents(dir: &Path) -> Vec<Finding> {
    let Ok(real) = fs::canonicalize(dir) else {
        return Vec::new(); // the store check itself reports a missing store
    };
    let mut out = Vec::new();
    for parent in real.ancestors().skip(1) {
        let Ok(m) = fs::metadata(parent) else {
            continue;
        };
        let sticky_root = m.uid() == 0 && m.mode() & 0o1000 != 0;
        let why = if !trusted(m.uid()) {
            format!("is owned by uid {}, not root", m.uid())
        } else if m.mode() & 0o022 != 0 && !sticky_root {
            format!(
                "is writable by group/other (mode {:04o})",
                m.mode() & 0o7777
            )
        } else {
            continue;
        };
        let p = parent.display().to_string();
        out.push(
            error(
                "store.parent_unsafe",
                format!("{p} {why}: whoever can write it can replace the store {} with a directory of their choice", dir.display()),
                format!("chown root:root {p} && chmod go-w {p}, or keep the store below root-owned directories (the default is /var/lib/otpgate)"),
            )
            .at(p),
        );
    }
    out
}

fn kind(t: FileType) -> &'static str {
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// What the store would refuse in a lock file: `None` when it is usable.
fn lock_problem(m: &Metadata) -> Option<String> {
    let t = m.file_type();
    if !t.is_file() {
        Some(format!("is {}, not a regular file", kind(t)))
    } else if !trusted(m.uid()) {
        Some(format!("is owned by uid {}, not root", m.uid()))
    } else if m.mode() & FILE_FORBIDDEN != 0 {
        // The store's own rule: any bit beyond 0600, execute, setuid,
        // setgid and sticky included, and it refuses the file.
        Some(format!("is mode {:04o}, not 0600", m.mode() & 0o7777))
    } else if m.nlink() != 1 {
        Some(format!("has {} hard links", m.nlink()))
    } else {
        None
    }
}

/// `.USER.lock` (taken by every login) and `.USER.toml.tmp` (written by
/// every change): anything the store cannot use there fails every login of
/// that user while the record itself looks fine.
fn check_user_paths(dir: &Path) -> Vec<Finding> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let Ok(m) = fs::symlink_metadata(&path) else {
            continue;
        };
        let p = path.display().to_string();
        if let Some(user) = name[1..].strip_suffix(LOCK_SUFFIX) {
            if let Some(why) = lock_problem(&m) {
                let fix = if m.file_type().is_file() {
                    format!("chown root:root {p} && chmod 0600 {p}")
                } else {
                    format!(
                        "remove it: rm -r -- {p} (it holds no login state; the next login creates a new lock file)"
                    )
                };
                out.push(
                    error(
                        "store.lock_unusable",
                        format!("{user}'s lock file {why}: every login of {user} fails"),
                        fix,
                    )
                    .at(p),
                );
            }
        } else if let Some(user) = name[1..].strip_suffix(TEMP_SUFFIX)
            && !m.file_type().is_file()
        {
            out.push(
                error(
                    "store.temp_unusable",
                    format!(
                        "{user}'s temporary file is {}: every change to {user}'s record fails, logins included",
                        kind(m.file_type())
                    ),
                    format!("remove it: rm -r -- {p} (a leftover; no record data is in it)"),
                )
                .at(p),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::doctor::Level;

    /// `openssl req -x509 -subj "/O=otpgate tests/CN=db-client.example"
    /// -days 30`, made on 2026-11-29: valid until 2026-12-29 00:39:33 UTC.
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBvDCCAWOgAwIBAgIUO/RRMshpjY2Gt2IPLdNSHI13a38wCgYIKoZIzj0EAwIw
NDEWMBQGA1UECgwNb3RwZ2F0ZSB0ZXN0czEaMBgGA1UEAwwRZGItY2xpZW50LmV4
YW1wbGUwHhcNMjYxMTI5MDAzOTMzWhcNMjYxMjI5MDAzOTMzWjA0MRYwFAYDVQQK
DA1vdHBnYXRlIHRlc3RzMRowGAYDVQQDDBFkYi1jbGllbnQuZXhhbXBsZTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABHDupnjYTT6VxI8qpXBc3CTqh3KIKz4HtVl6
z6jad3/Fma2Eq5XbYzqK+g9yo7J6ZbIlL280bHMnnWHkRxxe8SyjUzBRMB0GA1Ud
DgQWBBQ7/pLSivAG5kHBm4W7ypTVW2wXjzAfBgNVHSMEGDAWgBQ7/pLSivAG5kHB
m4W7ypTVW2wXjzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIFml
yuJpE2PdV6+o7rDz4UbKWX9N9/HmHzMUx0HN1ZBqAiBZ+HNUceoJ8V3Z8kysCvyG
kQ8a74UH/JPWaLC5Owxovw==
-----END CERTIFICATE-----
";
    const END: u64 = 1_798_504_773;

    #[test]
    fn a_client_certificate_is_reported_a_month_before_and_after_its_end() {
        let certs = crate::store::pg::certificate_expiries(CERT.as_bytes()).unwrap();
        assert_eq!(certs.len(), 1);
        assert!(
            certs[0].0.contains("CN=db-client.example"),
            "{}",
            certs[0].0
        );
        assert_eq!(certs[0].1, END);
        let day = 86_400;
        let at = "/etc/otpgate/host.crt";
        // More than 30 days left: nothing to say.
        assert!(expiry_findings(at, &certs, END - 30 * day).is_empty());
        // Less: a warning with the date and the days left.
        let soon = expiry_findings(at, &certs, END - 30 * day + 1);
        assert_eq!(soon.len(), 1);
        assert_eq!(soon[0].level, Level::Warn);
        assert!(
            soon[0].message.contains("2026-12-29 00:39:33 UTC"),
            "{}",
            soon[0].message
        );
        assert!(
            soon[0].message.contains("in 29 days"),
            "{}",
            soon[0].message
        );
        let last = expiry_findings(at, &certs, END - 1);
        assert_eq!(last[0].level, Level::Warn);
        // At its end and after: an error, every login refused.
        for now in [END, END + 365 * day] {
            let gone = expiry_findings(at, &certs, now);
            assert_eq!(gone.len(), 1);
            assert_eq!(gone[0].level, Level::Error);
            assert!(
                gone[0].message.contains("expired on 2026-12-29"),
                "{}",
                gone[0].message
            );
            assert!(
                gone[0]
                    .message
                    .contains("every login of this host is refused")
            );
        }
    }

    #[test]
    fn a_chain_names_which_certificate_runs_out() {
        let two = format!("{CERT}{CERT}");
        let certs = crate::store::pg::certificate_expiries(two.as_bytes()).unwrap();
        let f = expiry_findings("/c.pem", &certs, END);
        assert_eq!(f.len(), 2);
        assert!(
            f[0].message.starts_with("the client certificate "),
            "{}",
            f[0].message
        );
        assert!(
            f[1].message.contains("sent with the client certificate"),
            "{}",
            f[1].message
        );
    }

    #[test]
    fn a_file_that_is_not_a_certificate_is_an_error_not_an_empty_list() {
        let broken = CERT.replace("MIIBvDCC", "MIIBvDCD");
        assert!(crate::store::pg::certificate_expiries(broken.as_bytes()).is_err());
        assert_eq!(
            crate::store::pg::certificate_expiries(b"no PEM here").unwrap(),
            Vec::<(String, u64)>::new()
        );
    }
}
