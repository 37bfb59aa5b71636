//! The fleet store's cost per login, side by side with the file store:
//! `scripts/bench.sh --fleet` (root). A private PostgreSQL server (Debian's
//! package) on 127.0.0.1 over verified TLS, FLEET_USERS enrolled users
//! (default 10,000), 1 and 8 concurrent clients. Each login is what the
//! module does after the account look-up: a fresh connection with TLS and
//! the schema check, the row read and locked, the decision, the state
//! written, the commit, the connection closed. The same again through
//! PgBouncer in session pooling. Prints numbers; asserts nothing about them.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/system.rs"]
mod system;

#[path = "../tests/common/pg.rs"]
mod pg;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use otpgate::config::SiteConfig;
use otpgate::core::otp::{Generator, OtpParams};
use otpgate::core::{Policy, Record, RecoveryHashes, decide_login};
use otpgate::store::pg::PgStore;
use otpgate::store::{Change, Store, Trust, UserStore};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn secret(i: usize) -> Vec<u8> {
    (0..20u8)
        .map(|b| b.wrapping_mul(31).wrapping_add(i as u8) ^ (i >> 8) as u8)
        .collect()
}

fn name(i: usize) -> String {
    format!("fleet{i}")
}

/// One login through `store` for user `i` at `t`: Ok(true) when accepted.
fn login(store: &impl UserStore, i: usize, t: u64) -> bool {
    let code = Generator::new(&secret(i), OtpParams::default())
        .code_at_step(t / 30)
        .to_string();
    store
        .update(&name(i), |cur| {
            let d = decide_login(cur.unwrap(), code.as_bytes(), &Policy::default(), t, "").unwrap();
            Ok::<_, ()>((d.new_record.map_or(Change::Keep, Change::Put), d.result))
        })
        .unwrap()
        .unwrap()
        .is_ok()
}

fn stats(mut t: Vec<Duration>, wall: Duration, label: &str) {
    t.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pct = |p: f64| ms(t[((t.len() as f64 - 1.0) * p) as usize]);
    println!(
        "{label:<36} {:>6} {:>9.2} {:>9.2} {:>10.0}",
        t.len(),
        pct(0.5),
        pct(0.99),
        t.len() as f64 / wall.as_secs_f64()
    );
}

type Opener<'a> = &'a (dyn Fn() -> Box<dyn Fn(usize, u64) -> bool> + Sync);

/// `clients` threads, each logging in `per` users once; login number
/// `base + n` goes to a user no earlier login of this run used.
fn run(
    clients: usize,
    per: usize,
    base: usize,
    users: usize,
    open: Opener<'_>,
) -> (Vec<Duration>, Duration) {
    let t = now();
    let start = Instant::now();
    let times = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let mut out = Vec::with_capacity(per);
                    for k in 0..per {
                        // Spread over the users, never the same one twice.
                        let i = (base + c * per + k) * 7919 % users;
                        let t0 = Instant::now();
                        let ok = open()(i, t);
                        out.push(t0.elapsed());
                        assert!(ok, "login of {} refused", name(i));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    (times, start.elapsed())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --benches` builds it; only bench.sh runs it
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "the fleet bench starts PostgreSQL as the postgres user: run as root"
    );
    let users: usize = std::env::var("FLEET_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let per: usize = std::env::var("FLEET_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let server = pg::PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let admin = server.site_config(dir.path(), "admin", "otpgate_admin", "localhost");
    let out = Command::new(env!("CARGO_BIN_EXE_otpgate"))
        .arg("--config")
        .arg(&admin)
        .args(["db", "init", "--new-key"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.grant_login_role();
    // The same server behind PgBouncer (session pooling): each login still
    // opens a fresh TLS connection, to the pooler, which hands it a server
    // backend it keeps instead of starting one. Both with SCRAM (a password)
    // and with a client certificate instead.
    let pooler = server.start_pooler(pg::Clients::Password, "session");
    let cert_pooler = server.start_pooler(pg::Clients::Certificate, "session");
    // A pooler on each host: the module reaches it over a local socket (no
    // TLS, no password: peer), and it keeps its TLS connection to the server.
    let local_pooler = server.start_pooler(pg::Clients::LocalRoot, "transaction");
    let ways = [
        (
            "postgresql+TLS, password",
            server.site_config(dir.path(), "pw", "otpgate_login", "localhost"),
        ),
        (
            "postgresql+TLS, certificate",
            server.cert_site_config(dir.path(), "cert", server.port, false),
        ),
        (
            "pgbouncer+TLS, password",
            server.site_config_at(
                dir.path(),
                "pooled",
                "otpgate_login",
                "localhost",
                pooler.port,
            ),
        ),
        (
            "pgbouncer+TLS, certificate",
            server.cert_site_config(dir.path(), "pooled-cert", cert_pooler.port, false),
        ),
        (
            "pgbouncer on the host, socket",
            server.local_pooler_site_config(dir.path(), "local", &local_pooler),
        ),
    ]
    .map(|(label, conf)| (label, SiteConfig::load(&conf).unwrap()));
    let admin_site = SiteConfig::load(&admin).unwrap();
    let admin_url = admin_site.store.clone().unwrap();

    eprintln!("fleet bench: enrolling {users} users...");
    let db = PgStore::connect(&admin_url, &admin_site.postgres, Trust::RootOnly).unwrap();
    let files_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        files_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let files = Store::open(files_dir.path(), Trust::RootOnly).unwrap();
    for i in 0..users {
        let record = Record::new(
            &secret(i),
            OtpParams::default(),
            RecoveryHashes::default(),
            now(),
        );
        db.update(&name(i), |_| Ok::<_, ()>((Change::Put(record.clone()), ())))
            .unwrap()
            .unwrap();
        files
            .update(&name(i), |_| Ok::<_, ()>((Change::Put(record), ())))
            .unwrap()
            .unwrap();
    }
    drop(db);

    println!(
        "fleet store vs file store, {users} users, p50/p99 in ms per login (a fresh connection each: TLS to the server or to PgBouncer, or a socket to PgBouncer on the host)"
    );
    println!(
        "{:<36} {:>6} {:>9} {:>9} {:>10}",
        "store, clients", "logins", "p50", "p99", "logins/s"
    );
    let pg_open = |site: &SiteConfig| -> Box<dyn Fn(usize, u64) -> bool> {
        // What the module does: connect (TLS, authentication, the
        // read-write and schema checks), then the login's transaction.
        let url = site.store.clone().unwrap();
        let pg = site.postgres.clone();
        Box::new(move |i, t| {
            let s = PgStore::connect(&url, &pg, Trust::RootOnly).unwrap();
            login(&s, i, t)
        })
    };
    let dir_path = files_dir.path().to_path_buf();
    let file_open = || -> Box<dyn Fn(usize, u64) -> bool> {
        let dir = dir_path.clone();
        Box::new(move |i, t| {
            let s = Store::open(&dir, Trust::RootOnly).unwrap();
            login(&s, i, t)
        })
    };
    let mut base = 0;
    for clients in [1, 8] {
        let each = per / clients;
        let (t, wall) = run(clients, each, base, users, &file_open);
        stats(t, wall, &format!("files, {clients} client(s)"));
        for (label, site) in &ways {
            let open = || pg_open(site);
            let (t, wall) = run(clients, each, base, users, &open);
            stats(t, wall, &format!("{label}, {clients}"));
            base += each * clients;
        }
    }
}
