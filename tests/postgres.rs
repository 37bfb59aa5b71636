//! The fleet store against a real PostgreSQL server (Debian's package,
//! started by the test in a temp dir, TLS from a test CA). Several "hosts"
//! are PAM services with their own site config copies sharing one database;
//! the races run as separate pamtester processes. Root only.

mod common;

use common::pg::{Clients, PgServer};
use common::proxy::{Cut, Proxy};
use common::*;
use otpgate::core::otp::OtpParams;
use otpgate::pam::client::{self, Login, PAM_AUTH_ERR, PAM_SUCCESS, Transcript};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_otpgate");
const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const SECRET_HEX: &str = "48656c6c6fdeadbeef48656c6c6fdeadbeef";
const USER: &str = "daemon";

/// One fleet: the server, the admin's site config, hosts' services.
struct Fleet {
    pg: PgServer,
    f: Fixture,
    admin: PathBuf,
}

impl Fleet {
    fn new(name: &str) -> Fleet {
        let pg = PgServer::start();
        let f = Fixture::new(name, "");
        let admin = pg.site_config(f.tmp.path(), "admin", "otpgate_admin", "localhost");
        let fleet = Fleet { pg, f, admin };
        let o = fleet.cli(&["db", "init", "--new-key"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        // It says where (the URL as given: it has no password to hide).
        let at = format!(
            "ready at postgresql://otpgate_admin@localhost:{}/otpgate.",
            fleet.pg.port
        );
        assert!(text(&o).contains(&at), "{}", text(&o));
        fleet.pg.grant_login_role();
        fleet
    }

    /// `otpgate --config ADMIN ARGS`.
    fn cli(&self, args: &[&str]) -> Output {
        cli_with(&self.admin, args)
    }

    fn enroll(&self) {
        self.enroll_with_codes(10);
    }

    /// Enrolls USER with SECRET and `codes` recovery codes; returns them.
    fn enroll_with_codes(&self, codes: usize) -> Vec<String> {
        let count = codes.to_string();
        let o = self.cli(&[
            "enroll",
            USER,
            "--secret",
            SECRET,
            "--no-verify",
            "--json",
            "--recovery-codes",
            &count,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    }

    /// A host whose site config is the login role's, edited by `edit`.
    fn host_with(&self, name: &str, edit: impl FnOnce(String) -> String) -> String {
        let conf = self
            .pg
            .site_config(self.f.tmp.path(), name, "otpgate_login", "localhost");
        let text = edit(fs::read_to_string(&conf).unwrap());
        fs::write(&conf, text).unwrap();
        self.service(name, &conf, "")
    }

    /// A host: its own site config (the module's role) and PAM service.
    fn host(&self, name: &str, options: &str) -> String {
        let conf = self
            .pg
            .site_config(self.f.tmp.path(), name, "otpgate_login", "localhost");
        self.service(name, &conf, options)
    }

    fn service(&self, name: &str, conf: &Path, options: &str) -> String {
        let service = format!("otpgate-test-pg-{name}");
        fs::write(
            self.f.confdir.join(&service),
            format!(
                "auth required {} config={} {options}\n",
                module_path().display(),
                conf.display()
            ),
        )
        .unwrap();
        service
    }

    fn login(&self, service: &str, answer: &str) -> Transcript {
        let answer = answer.to_string();
        let mut responder =
            |style: client::Style, _: &str| style.is_prompt().then(|| answer.clone());
        client::authenticate(
            &Login {
                confdir: &self.f.confdir,
                service,
                user: USER,
                rhost: Some("192.0.2.20"),
                flags: 0,
            },
            &mut responder,
        )
        .unwrap()
    }

    fn pamtester(&self, service: &str) -> Command {
        self.pamtester_for(service, USER)
    }

    fn pamtester_for(&self, service: &str, user: &str) -> Command {
        let mut c = Command::new("pamtester");
        c.args([service, user, "authenticate"])
            .env("LD_PRELOAD", "libpam_wrapper.so")
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", &self.f.confdir)
            .env("PAM_WRAPPER_DEBUGLEVEL", "2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// A login in its own process; its log lines.
    fn logged_login(&self, service: &str, answer: &str) -> (bool, Vec<String>) {
        let (ok, logs, _) = self
            .f
            .pamtester_run(self.pamtester(service), format!("{answer}\n").as_bytes());
        (ok, logs)
    }
}

/// A site config's text without its `ca_file` line (no TLS).
fn without_ca(conf: &str) -> String {
    conf.lines()
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A site config's text without `ca_file`, with `tls = "off"` written out:
/// plain TCP, which the proxy needs to read the protocol.
fn tls_off(conf: &str) -> String {
    without_ca(conf).replace("[postgres]\n", "[postgres]\ntls = \"off\"\n")
}

/// `otpgate --config CONF ARGS`, no terminal.
fn cli_with(conf: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(conf)
        .args(args)
        .env_remove("SUDO_USER")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn code(offset: i64) -> String {
    let t = unix_now() as i64 + offset * 30;
    oathtool(SECRET, OtpParams::default(), t as u64)
}

#[test]
fn one_enrollment_serves_every_host_and_each_code_works_once_fleet_wide() {
    if !runs_as_root("one_enrollment_serves_every_host_and_each_code_works_once_fleet_wide") {
        return;
    }
    let fleet = Fleet::new("pg-fleet");
    let recovery = fleet.enroll_with_codes(10);
    let a = fleet.host("a", "deny=3");
    let b = fleet.host("b", "deny=3");
    // A code accepted on one host is refused on the other.
    assert_eq!(fleet.login(&a, &code(0)).code, PAM_SUCCESS);
    let (ok, logs) = fleet.logged_login(&b, &code(0));
    assert!(!ok);
    assert!(logs[0].contains("reason=replay"), "{logs:?}");
    // A recovery code works once, fleet-wide.
    assert_eq!(fleet.login(&b, &recovery[0]).code, PAM_SUCCESS);
    assert_eq!(fleet.login(&a, &recovery[0]).code, PAM_AUTH_ERR);
    // A lockout reached on one host holds on the other.
    for _ in 0..3 {
        assert_eq!(fleet.login(&a, "000000x").code, PAM_AUTH_ERR);
    }
    let (ok, logs) = fleet.logged_login(&b, &code(1));
    assert!(!ok);
    assert!(logs[0].contains("reason=locked"), "{logs:?}");
    // status and unlock through the database.
    let s = fleet.cli(&["status", USER, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(v["failures"], 3, "{v}");
    assert_eq!(v["recovery_codes_left"], recovery.len() - 1);
    assert_eq!(fleet.cli(&["unlock", USER]).status.code(), Some(0));
    assert_eq!(fleet.login(&b, &code(1)).code, PAM_SUCCESS);
    // A backup of the database holds no secret.
    let dump = fleet.pg.dump();
    assert!(dump.contains("otpgate_users"));
    assert!(!dump.contains(SECRET) && !dump.contains(&SECRET.to_lowercase()));
    assert!(!dump.contains(&SECRET_HEX[..16]));
    for r in &recovery {
        assert!(!dump.contains(r.as_str()));
    }
    // disable through the database.
    assert_eq!(
        fleet.cli(&["disable", USER, "--yes"]).status.code(),
        Some(0)
    );
    assert_eq!(fleet.login(&a, &code(2)).code, PAM_AUTH_ERR);
}

#[test]
fn twenty_logins_over_four_hosts_with_one_code_exactly_one_succeeds() {
    if !runs_as_root("twenty_logins_over_four_hosts_with_one_code_exactly_one_succeeds") {
        return;
    }
    let fleet = Fleet::new("pg-race");
    fleet.enroll();
    let hosts: Vec<String> = (0..4)
        .map(|i| fleet.host(&format!("r{i}"), "deny=50"))
        .collect();
    let mut children: Vec<AtPrompt> = (0..20)
        .map(|i| AtPrompt::start(fleet.pamtester(&hosts[i % 4]), "Verification code: "))
        .collect();
    let answer = code(0);
    for c in &mut children {
        c.answer(&answer);
    }
    let mut wins = 0;
    for c in children {
        let done = c.finish();
        let logs = done.logs();
        assert_eq!(logs.len(), 1, "{}", done.stderr);
        if done.success() {
            wins += 1;
        } else {
            assert!(logs[0].contains("reason=replay"), "{logs:?}");
        }
    }
    assert_eq!(wins, 1);
}

#[test]
fn the_login_role_can_only_read_enrollments_and_write_login_state() {
    if !runs_as_root("the_login_role_can_only_read_enrollments_and_write_login_state") {
        return;
    }
    let fleet = Fleet::new("pg-roles");
    fleet.enroll();
    let pg = &fleet.pg;
    let login = |sql: &str| pg.psql_as("otpgate_login", "otpgate", sql);
    // The role the module uses through a password and TLS can log in...
    let a = fleet.host("a", "");
    assert_eq!(fleet.login(&a, &code(0)).code, PAM_SUCCESS);
    // ...but not enroll, delete, change a record or the schema.
    for sql in [
        "INSERT INTO otpgate_users (name, record) VALUES ('x', 'x')",
        "DELETE FROM otpgate_users",
        "UPDATE otpgate_users SET record = 'x'",
        "DROP TABLE otpgate_users",
        "UPDATE otpgate_schema SET version = 2",
    ] {
        let e = login(sql).unwrap_err();
        assert!(
            e.contains("permission denied") || e.contains("must be owner"),
            "{sql}: {e}"
        );
    }
    // The command line with the login role's config cannot enroll either.
    let host_conf = fleet.f.tmp.path().join("a.toml");
    let o = Command::new(BIN)
        .arg("--config")
        .arg(&host_conf)
        .args(["enroll", "bin", "--no-verify", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("permission denied"), "{}", text(&o));
}

#[test]
fn a_database_that_is_down_refuses_in_time_and_logins_resume_without_a_restart() {
    if !runs_as_root("a_database_that_is_down_refuses_in_time_and_logins_resume_without_a_restart")
    {
        return;
    }
    let fleet = Fleet::new("pg-down");
    fleet.enroll();
    let a = fleet.host("a", "");
    let doctor = |fleet: &Fleet| {
        let o = fleet.cli(&["doctor", "--check", "store", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["findings"][0]["id"].as_str().unwrap().to_string()
    };
    assert_eq!(doctor(&fleet), "store.ok");
    fleet.pg.pg_ctl("stop");
    assert_eq!(doctor(&fleet), "store.db_unavailable");
    let (ok, logs) = fleet.logged_login(&a, &code(0));
    assert!(!ok);
    assert!(logs[0].contains("reason=store_unavailable"), "{logs:?}");
    assert!(
        !logs[0].contains("login-pw"),
        "a password in the log: {logs:?}"
    );
    fleet.pg.pg_ctl("start");
    let (ok, logs) = fleet.logged_login(&a, &code(0));
    assert!(ok, "{logs:?}");
}

#[test]
fn a_wrong_ca_a_wrong_name_or_loose_secret_files_are_refused() {
    if !runs_as_root("a_wrong_ca_a_wrong_name_or_loose_secret_files_are_refused") {
        return;
    }
    let fleet = Fleet::new("pg-tls");
    fleet.enroll();
    let dir = fleet.f.tmp.path();
    let (ca, other_ca) = (
        fleet.pg.ca.display().to_string(),
        fleet.pg.other_ca.display().to_string(),
    );
    let wrong_ca = fleet.host_with("wrong-ca", |t| t.replace(&ca, &other_ca));
    // The certificate names localhost only.
    let wrong_name = fleet.host_with("wrong-name", |t| t.replace("@localhost:", "@127.0.0.1:"));
    for (service, why) in [(wrong_ca, "certificate"), (wrong_name, "certificate")] {
        let (ok, logs) = fleet.logged_login(&service, &code(0));
        assert!(!ok, "{service}");
        assert!(
            logs[0].contains("reason=store_unavailable") && logs[0].contains(why),
            "{service}: {logs:?}"
        );
    }
    // A password file or key file others can read is refused.
    let good_service = fleet.host("good", "");
    let pw = dir.join("good.pw");
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, logs) = fleet.logged_login(&good_service, &code(0));
    assert!(!ok);
    assert!(
        logs[0].contains("good.pw") && logs[0].contains("0644"),
        "{logs:?}"
    );
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&fleet.pg.key_file, fs::Permissions::from_mode(0o640)).unwrap();
    let (ok, logs) = fleet.logged_login(&good_service, &code(0));
    assert!(!ok);
    assert!(logs[0].contains("db.key"), "{logs:?}");
    fs::set_permissions(&fleet.pg.key_file, fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, logs) = fleet.logged_login(&good_service, &code(0));
    assert!(ok, "{logs:?}");
}

#[test]
fn db_import_moves_a_file_store_with_its_replay_guard() {
    if !runs_as_root("db_import_moves_a_file_store_with_its_replay_guard") {
        return;
    }
    let fleet = Fleet::new("pg-import");
    // A file store with a user who has logged in.
    let e = fleet.f.enroll(USER, OtpParams::default(), 3);
    let used = e.code(0);
    assert_eq!(fleet.f.login(USER, &used).code, PAM_SUCCESS);
    assert_eq!(fleet.f.login(USER, &e.recovery[0]).code, PAM_SUCCESS);
    let store = fleet.f.store.display().to_string();
    let o = fleet.cli(&["db", "import", "--from", &store]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("daemon: imported"), "{}", text(&o));
    // Again: nothing to do.
    let o = fleet.cli(&["db", "import", "--from", &store]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("daemon: already there"), "{}", text(&o));
    let a = fleet.host("a", "");
    assert_eq!(
        fleet.login(&a, &used).code,
        PAM_AUTH_ERR,
        "replay guard lost"
    );
    assert_eq!(
        fleet.login(&a, &e.recovery[0]).code,
        PAM_AUTH_ERR,
        "used code back"
    );
    assert_eq!(fleet.login(&a, &e.recovery[1]).code, PAM_SUCCESS);
    // A different enrollment in the database is a conflict unless --force.
    let o = fleet.cli(&["enroll", USER, "--force", "--no-verify", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = fleet.cli(&["db", "import", "--from", &store]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("conflict"), "{}", text(&o));
    let o = fleet.cli(&["db", "import", "--from", &store, "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A record that cannot be read stops neither the import nor its report:
/// every user gets a line, the others are imported, and the exit says not
/// all went in.
#[test]
fn db_import_reports_every_user_and_goes_on_past_a_broken_one() {
    if !runs_as_root("db_import_reports_every_user_and_goes_on_past_a_broken_one") {
        return;
    }
    let fleet = Fleet::new("pg-import-broken");
    fleet.f.enroll("bin", OtpParams::default(), 1);
    fleet.f.enroll(USER, OtpParams::default(), 1);
    // "bin" comes first, and does not parse.
    fs::write(fleet.f.store.join("bin.toml"), "version = \"x\"\n").unwrap();
    let store = fleet.f.store.display().to_string();
    let o = fleet.cli(&["db", "import", "--from", &store]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("bin: NOT imported"), "{}", text(&o));
    assert!(text(&o).contains("daemon: imported"), "{}", text(&o));
    let s = fleet.cli(&["status", USER, "--json"]);
    assert_eq!(s.status.code(), Some(0), "{}", text(&s));
}

#[test]
fn an_unknown_schema_version_is_refused_and_never_changed() {
    if !runs_as_root("an_unknown_schema_version_is_refused_and_never_changed") {
        return;
    }
    let fleet = Fleet::new("pg-schema");
    fleet.enroll();
    fleet
        .pg
        .psql_as(
            "postgres",
            "otpgate",
            "UPDATE otpgate_schema SET version = 2",
        )
        .unwrap();
    let a = fleet.host("a", "");
    let (ok, logs) = fleet.logged_login(&a, &code(0));
    assert!(!ok);
    assert!(
        logs[0].contains("reason=config_error") && logs[0].contains("schema version 2"),
        "{logs:?}"
    );
    let o = fleet.cli(&["db", "init"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("schema version 2"), "{}", text(&o));
    let version = || {
        fleet
            .pg
            .psql_as("postgres", "otpgate", "SELECT version FROM otpgate_schema")
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(version(), "2");
    // A schema table without its version row: logins refused until
    // `db init` writes it (and keeps the enrollments).
    fleet
        .pg
        .psql_as("postgres", "otpgate", "DELETE FROM otpgate_schema")
        .unwrap();
    let (ok, logs) = fleet.logged_login(&a, &code(0));
    assert!(!ok);
    assert!(logs[0].contains("not initialised"), "{logs:?}");
    let o = fleet.cli(&["db", "init"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(version(), otpgate::store::pg::SCHEMA_VERSION.to_string());
    let (ok, logs) = fleet.logged_login(&a, &code(0));
    assert!(ok, "{logs:?}");
}

#[test]
fn refusing_someone_not_enrolled_writes_the_decoy_row_as_an_attempt_would() {
    if !runs_as_root("refusing_someone_not_enrolled_writes_the_decoy_row_as_an_attempt_would") {
        return;
    }
    let fleet = Fleet::new("pg-decoy");
    fleet.enroll();
    let a = fleet.host("a", "");
    let decoy = || {
        fleet
            .pg
            .psql_as(
                "postgres",
                "otpgate",
                "SELECT coalesce(encode(state, 'hex'), '-') || ' ' || updated FROM otpgate_users WHERE name = '.decoy'",
            )
            .unwrap()
    };
    let before = decoy();
    assert!(before.starts_with("- "), "{before}");
    // `bin` has an account and no enrollment: asked, refused, and the
    // decoy row takes the write a wrong code of an enrolled user makes.
    let (ok, logs, _) = fleet
        .f
        .pamtester_run(fleet.pamtester_for(&a, "bin"), b"123456\n");
    assert!(!ok, "{logs:?}");
    assert!(logs[0].contains("reason=not_enrolled"), "{logs:?}");
    let after = decoy();
    assert!(!after.starts_with("- ") && after != before, "{after}");
}

#[test]
fn logins_killed_in_the_middle_of_a_commit_never_accept_a_code_twice() {
    if !runs_as_root("logins_killed_in_the_middle_of_a_commit_never_accept_a_code_twice") {
        return;
    }
    let fleet = Fleet::new("pg-kill");
    let recovery = fleet.enroll_with_codes(12);
    let hosts: Vec<String> = (0..2)
        .map(|i| fleet.host(&format!("k{i}"), "deny=1000 hard_deny=0"))
        .collect();
    let mut accepted: std::collections::HashMap<String, usize> = Default::default();
    let mut killed = 0;
    let mut attempts = 0;
    // Each of 10 recovery codes is tried by 4 logins; some are killed at once.
    for (i, code) in recovery.iter().take(10).enumerate() {
        let mut children: Vec<AtPrompt> = (0..4)
            .map(|j| AtPrompt::start(fleet.pamtester(&hosts[j % 2]), "Verification code: "))
            .collect();
        // The ones that live answer first; each doomed one is killed the
        // moment it has its answer, wherever it then is (reading, deciding,
        // waiting for the row lock, committing).
        let doomed = |j: usize| (i + j).is_multiple_of(3);
        for (j, c) in children.iter_mut().enumerate() {
            if !doomed(j) {
                c.answer(code);
            }
        }
        for (j, mut c) in children.into_iter().enumerate() {
            let done = if doomed(j) {
                c.answer(code);
                attempts += 1;
                let (hit, done) = c.kill();
                killed += usize::from(hit);
                done
            } else {
                c.finish()
            };
            if done.success() {
                *accepted.entry(code.clone()).or_default() += 1;
            }
        }
    }
    assert!(
        killed * 2 >= attempts,
        "only {killed} of {attempts} kills hit a running login"
    );
    for (code, n) in &accepted {
        assert_eq!(*n, 1, "{code} accepted {n} times");
    }
    // Every code tried is spent or still works exactly once now.
    for code in recovery.iter().take(10) {
        let now = fleet.login(&hosts[0], code).code;
        if accepted.contains_key(code) {
            assert_eq!(now, PAM_AUTH_ERR, "a used code worked again");
        }
    }
    // The untried ones still work.
    assert_eq!(fleet.login(&hosts[1], &recovery[10]).code, PAM_SUCCESS);
}

#[test]
fn a_corrupt_login_state_in_the_database_is_refused_never_read_as_none() {
    if !runs_as_root("a_corrupt_login_state_in_the_database_is_refused_never_read_as_none") {
        return;
    }
    let fleet = Fleet::new("pg-state");
    fleet.enroll();
    let a = fleet.host("a", "");
    let used = code(0);
    assert_eq!(fleet.login(&a, &used).code, PAM_SUCCESS);
    for garbage in ["'\\x5a5a'", "decode(repeat('00', 512), 'hex')"] {
        fleet
            .pg
            .psql_as(
                "postgres",
                "otpgate",
                &format!("UPDATE otpgate_users SET state = {garbage} WHERE name = '{USER}'"),
            )
            .unwrap();
        // Read as "no state" the used code would work again.
        let (ok, logs) = fleet.logged_login(&a, &used);
        assert!(!ok, "{logs:?}");
        assert!(
            logs[0].contains("reason=store_error") && logs[0].contains("login state is corrupt"),
            "{logs:?}"
        );
        // Which row: the database and the user.
        let row = format!("@localhost:{}/otpgate#{USER}", fleet.pg.port);
        assert!(logs[0].contains(&row), "{logs:?}");
    }
}

#[test]
fn a_grace_entry_written_into_the_database_without_the_secret_grants_nothing() {
    if !runs_as_root("a_grace_entry_written_into_the_database_without_the_secret_grants_nothing") {
        return;
    }
    use otpgate::core::grace::{GraceEntry, key};
    use otpgate::core::state;
    let fleet = Fleet::new("pg-grace");
    fleet.enroll();
    let a = fleet.host("a", "grace_period=600");
    assert_eq!(fleet.login(&a, &code(0)).code, PAM_SUCCESS);
    // The real entry: the next login from this host is not asked.
    let t = fleet.login(&a, "");
    assert_eq!(t.code, PAM_SUCCESS, "{t:?}");
    assert!(prompts(&t).is_empty(), "{t:?}");

    // Someone who can write the table but has no fleet key (so not the
    // secret): the state has a checksum anyone can compute, and an entry
    // for this host and service made without the secret.
    let hex_of = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let read = fleet
        .pg
        .psql_as(
            "postgres",
            "otpgate",
            &format!("SELECT encode(state, 'hex') FROM otpgate_users WHERE name = '{USER}'"),
        )
        .unwrap();
    let bytes: Vec<u8> = (0..read.trim().len() / 2)
        .map(|i| u8::from_str_radix(&read.trim()[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut st = state::one_slot(&bytes).unwrap();
    assert_eq!(st.grace.len(), 1);
    st.grace = vec![GraceEntry {
        key: hex_of(&key(&otpgate::account::host_name().unwrap(), &a, "192.0.2.20").unwrap()),
        at: unix_now(),
    }];
    fleet
        .pg
        .psql_as(
            "postgres",
            "otpgate",
            &format!(
                "UPDATE otpgate_users SET state = decode('{}', 'hex') WHERE name = '{USER}'",
                hex_of(&st.encode())
            ),
        )
        .unwrap();
    let t = fleet.login(&a, "");
    assert_eq!(t.code, PAM_AUTH_ERR, "{t:?}");
    assert_eq!(prompts(&t).len(), 1, "asked for a code: {t:?}");
}

#[test]
fn a_row_held_by_a_stuck_session_refuses_within_the_timeout_and_blocks_no_one_else() {
    if !runs_as_root(
        "a_row_held_by_a_stuck_session_refuses_within_the_timeout_and_blocks_no_one_else",
    ) {
        return;
    }
    let fleet = Fleet::new("pg-stuck");
    fleet.enroll();
    let o = fleet.cli(&["enroll", "bin", "--secret", SECRET, "--no-verify", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let a = fleet.host("a", "");
    // Another session locks daemon's row and sits on it (a stuck host).
    let pg = &fleet.pg;
    let mut holder = std::process::Command::new("su")
        .args(["postgres", "-s", "/bin/sh", "-c"])
        .arg(format!(
            "psql -X -q -h {} -p {} -d otpgate -c \"BEGIN; SELECT 1 FROM otpgate_users WHERE name = '{USER}' FOR UPDATE; SELECT pg_sleep(8); COMMIT;\"",
            pg.dir.path().display(),
            pg.port
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the lock is really held.
    let held = (0..200).any(|_| {
        let n = pg
            .psql_as(
                "postgres",
                "otpgate",
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.query LIKE '%pg_sleep%' AND l.mode = 'RowShareLock'",
            )
            .unwrap_or_default();
        n.trim() != "0" || {
            std::thread::yield_now();
            false
        }
    });
    assert!(held, "the holder never took the row");
    // daemon's login gives up after the lock timeout (3 s in the config)
    // instead of waiting for the stuck session, and says why.
    let (ok, logs) = fleet.logged_login(&a, &code(0));
    assert!(!ok);
    assert!(
        logs[0].contains("reason=store_unavailable") && logs[0].contains("timeout"),
        "{logs:?}"
    );
    // Another user's login is not held up by it.
    let (ok, logs, _) = fleet.f.pamtester_run(
        fleet.pamtester_for(&a, "bin"),
        format!("{}\n", code(0)).as_bytes(),
    );
    assert!(ok, "{logs:?}");
    let _ = holder.wait();
    // Once the stuck session is gone, daemon logs in.
    assert_eq!(fleet.login(&a, &code(0)).code, PAM_SUCCESS);
}

#[test]
fn a_url_with_several_hosts_fails_over_to_the_one_that_answers() {
    if !runs_as_root("a_url_with_several_hosts_fails_over_to_the_one_that_answers") {
        return;
    }
    let fleet = Fleet::new("pg-failover");
    fleet.enroll();
    let dead = common::system::free_port();
    let service = fleet.host_with("multi", |t| {
        let t = t.replace("@localhost:", &format!("@localhost:{dead},localhost:"));
        assert!(t.contains(&format!("localhost:{dead},localhost:")), "{t}");
        t
    });
    assert_eq!(fleet.login(&service, &code(0)).code, PAM_SUCCESS);
}

impl Fleet {
    /// A host that reaches the server through `proxy` on the loopback
    /// (no TLS there, so the proxy can see the COMMIT).
    fn host_via(&self, proxy: &Proxy, name: &str) -> String {
        let port = self.pg.port;
        self.host_with(name, |t| {
            let t = t.replace(
                &format!("@localhost:{port}/"),
                &format!("@127.0.0.1:{}/", proxy.port),
            );
            let t = tls_off(&t);
            assert!(t.contains(&format!("127.0.0.1:{}", proxy.port)), "{t}");
            t
        })
    }

    /// A login in its own process that must end by itself: a hang (no
    /// deadline on the database) fails the test instead of blocking it.
    fn bounded_login(&self, service: &str, answer: &str) -> (bool, Vec<String>) {
        use std::io::Write;
        let cmd = self.pamtester(service);
        let input = format!("{answer}\n");
        let (tx, rx) = std::sync::mpsc::channel();
        // Not scoped: a hung login must not hold the test's failure back.
        std::thread::spawn(move || {
            let mut p = AtPrompt::spawn(cmd);
            let mut stdin = p.child.stdin.take().unwrap();
            let _ = stdin.write_all(input.as_bytes());
            drop(stdin);
            let done = p.finish();
            let _ = tx.send((done.success(), done.logs()));
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the login hung on a database that stopped answering"))
    }
}

/// A fleet with USER enrolled (`codes` recovery codes, returned), a proxy
/// in front of the server set to `cut`, a host through the proxy and a
/// host straight to the server.
fn behind_a_proxy(
    name: &str,
    codes: usize,
    cut: Cut,
) -> (Fleet, Proxy, String, String, Vec<String>) {
    let fleet = Fleet::new(name);
    let recovery = fleet.enroll_with_codes(codes);
    let proxy = Proxy::start(fleet.pg.port);
    let via = fleet.host_via(&proxy, "via");
    let direct = fleet.host("direct", "");
    proxy.set(cut);
    (fleet, proxy, via, direct, recovery)
}

#[test]
fn a_connection_cut_before_the_commit_rolls_back_and_the_login_is_refused() {
    if !runs_as_root("a_connection_cut_before_the_commit_rolls_back_and_the_login_is_refused") {
        return;
    }
    let (fleet, proxy, cut, a, _) = behind_a_proxy("pg-cut-before", 10, Cut::BeforeCommit);
    let now = code(0);
    let (ok, logs) = fleet.bounded_login(&cut, &now);
    assert!(!ok, "{logs:?}");
    assert_eq!(proxy.cuts(), 1, "the cut never happened");
    assert!(logs[0].contains("reason=store_unavailable"), "{logs:?}");
    // Nothing was committed: the code was never accepted and is not spent,
    // and no failure was counted.
    let (ok, logs) = fleet.logged_login(&a, &now);
    assert!(ok, "{logs:?}");
    let (ok, logs) = fleet.logged_login(&a, &now);
    assert!(!ok && logs[0].contains("reason=replay"), "{logs:?}");
}

/// TCP without TLS, even to the loopback, only when the site file says
/// `tls = "off"`: without a `ca_file` the module refuses before it connects.
#[test]
fn tcp_without_a_ca_file_is_refused_unless_tls_off_is_written_out() {
    if !runs_as_root("tcp_without_a_ca_file_is_refused_unless_tls_off_is_written_out") {
        return;
    }
    let fleet = Fleet::new("pg-no-tls");
    fleet.enroll();
    let plain = fleet.host_with("plain", |t| {
        let t = without_ca(&t);
        assert!(!t.contains("ca_file") && !t.contains("tls"), "{t}");
        t
    });
    let (ok, logs) = fleet.logged_login(&plain, &code(0));
    assert!(!ok, "{logs:?}");
    assert!(logs[0].contains("reason=config_error"), "{logs:?}");
    assert!(
        logs[0].contains("needs [postgres] ca_file (TLS), or tls = \\x22off\\x22 written out"),
        "{logs:?}"
    );
    // The same site file with tls = "off" written out connects in clear.
    let off = fleet.host_with("off", |t| tls_off(&t));
    let (ok, logs) = fleet.logged_login(&off, &code(0));
    assert!(ok, "{logs:?}");
}

/// Where a change certainly did not happen, the store says so: only a
/// COMMIT whose answer went missing has an unknown outcome.
#[test]
fn a_connection_cut_before_the_transaction_began_is_not_called_unknown() {
    if !runs_as_root("a_connection_cut_before_the_transaction_began_is_not_called_unknown") {
        return;
    }
    let (fleet, proxy, cut, a, _) = behind_a_proxy("pg-cut-begin", 3, Cut::BeforeBegin);
    let now = code(0);
    let (ok, logs) = fleet.bounded_login(&cut, &now);
    assert!(!ok, "{logs:?}");
    assert_eq!(proxy.cuts(), 1, "the cut never happened");
    assert!(
        logs[0].contains("reason=store_unavailable") && !logs[0].contains("unknown"),
        "{logs:?}"
    );
    let (ok, logs) = fleet.logged_login(&a, &now);
    assert!(ok, "{logs:?}");
}

/// A COMMIT the server itself refuses (here a deferred trigger) was rolled
/// back, and the connection is still in step: the admin is told nothing
/// was saved, not "unknown", and the old codes still work.
#[test]
fn a_commit_the_server_refuses_says_nothing_was_saved() {
    if !runs_as_root("a_commit_the_server_refuses_says_nothing_was_saved") {
        return;
    }
    let fleet = Fleet::new("pg-commit-refused");
    let old = fleet.enroll_with_codes(3);
    let a = fleet.host("a", "");
    fleet
        .pg
        .psql_as(
            "postgres",
            "otpgate",
            "CREATE FUNCTION otpgate_test_refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
             CREATE CONSTRAINT TRIGGER otpgate_test_refuse AFTER UPDATE ON otpgate_users \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION otpgate_test_refuse();",
        )
        .unwrap();
    let o = fleet.cli(&["recovery", USER, "--count", "2", "--json"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(err.contains("refused at commit"), "{err}");
    assert!(!err.contains("unknown"), "{err}");
    // A login's COMMIT is refused the same way: not let in, not "unknown".
    let (ok, logs) = fleet.logged_login(&a, &code(0));
    assert!(!ok, "{logs:?}");
    assert!(
        logs[0].contains("reason=store_unavailable") && !logs[0].contains("unknown"),
        "{logs:?}"
    );
    fleet
        .pg
        .psql_as(
            "postgres",
            "otpgate",
            "DROP TRIGGER otpgate_test_refuse ON otpgate_users",
        )
        .unwrap();
    // Nothing was saved: the old recovery codes and the code still work.
    assert_eq!(fleet.login(&a, &old[0]).code, PAM_SUCCESS);
    assert_eq!(fleet.login(&a, &code(0)).code, PAM_SUCCESS);
}

#[test]
fn a_commit_whose_answer_is_lost_refuses_the_login_and_spends_the_code() {
    if !runs_as_root("a_commit_whose_answer_is_lost_refuses_the_login_and_spends_the_code") {
        return;
    }
    let (fleet, proxy, cut, a, recovery) = behind_a_proxy("pg-cut-answer", 3, Cut::AnswerLost);
    let now = code(0);
    // The server commits; the module cannot know it did, so it refuses,
    // and says the outcome is unknown.
    let (ok, logs) = fleet.bounded_login(&cut, &now);
    assert!(!ok, "{logs:?}");
    assert_eq!(proxy.cuts(), 1, "the cut never happened");
    assert!(
        logs[0].contains("reason=store_unavailable") && logs[0].contains("unknown"),
        "{logs:?}"
    );
    // What was committed holds everywhere: the code is spent.
    let (ok, logs) = fleet.logged_login(&a, &now);
    assert!(!ok && logs[0].contains("reason=replay"), "{logs:?}");
    // The same for a recovery code: refused, and never usable again.
    let (ok, logs) = fleet.bounded_login(&cut, &recovery[0]);
    assert!(
        !ok && logs[0].contains("reason=store_unavailable"),
        "{logs:?}"
    );
    assert_eq!(fleet.login(&a, &recovery[0]).code, PAM_AUTH_ERR);
    assert_eq!(fleet.login(&a, &recovery[1]).code, PAM_SUCCESS);
}

/// An admin's change whose COMMIT answer is lost: the command cannot know
/// whether it took effect, and must not say "nothing was saved" (the codes
/// it printed may be the valid ones, and the old ones gone).
#[test]
fn an_admin_change_whose_commit_answer_is_lost_says_unknown_never_not_saved() {
    if !runs_as_root("an_admin_change_whose_commit_answer_is_lost_says_unknown_never_not_saved") {
        return;
    }
    let fleet = Fleet::new("pg-admin-answer-lost");
    let old = fleet.enroll_with_codes(3);
    let direct = fleet.host("direct", "");
    let proxy = Proxy::start(fleet.pg.port);
    // The admin's own config, through the proxy (plain: it reads COMMIT).
    let admin_via = fleet.f.tmp.path().join("admin-via.toml");
    let conf = fs::read_to_string(&fleet.admin).unwrap().replace(
        &format!("@localhost:{}/", fleet.pg.port),
        &format!("@127.0.0.1:{}/", proxy.port),
    );
    fs::write(&admin_via, tls_off(&conf)).unwrap();
    // Each run: the cut happens, the command fails, and never says that
    // nothing was saved.
    let mut cuts = 0;
    let mut cut_run = |cut: Cut, args: &[&str]| {
        proxy.set(cut);
        let o = cli_with(&admin_via, args);
        cuts += 1;
        assert_eq!(proxy.cuts(), cuts, "the cut never happened: {}", text(&o));
        assert_ne!(o.status.code(), Some(0), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!err.contains("nothing was saved"), "{err}");
        (o, err)
    };
    let recovery = ["recovery", USER, "--count", "2", "--json"];
    let enroll = [
        "enroll",
        USER,
        "--force",
        "--secret",
        SECRET,
        "--no-verify",
        "--json",
    ];
    let (o, err) = cut_run(Cut::AnswerLost, &recovery);
    assert!(
        err.contains("unknown") && err.contains("otpgate status"),
        "{err}"
    );
    // The server did commit: the codes printed are the valid ones now.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let new = v["recovery_codes"][0].as_str().unwrap().to_string();
    assert_eq!(fleet.login(&direct, &old[0]).code, PAM_AUTH_ERR);
    assert_eq!(fleet.login(&direct, &new).code, PAM_SUCCESS);
    // The same for an enrollment.
    let (_, err) = cut_run(Cut::AnswerLost, &enroll);
    assert!(err.contains("may or may not have been saved"), "{err}");
    // Committed: a new enrollment, so the recovery code from before is gone.
    let before = v["recovery_codes"][1].as_str().unwrap();
    assert_eq!(fleet.login(&direct, before).code, PAM_AUTH_ERR);
    // A pooler that lost its server connection answers the COMMIT with a
    // FATAL error: just as unknown. So is any FATAL error, and any error
    // of the classes "connection exception" (08) and "operator
    // intervention" (57), whatever its severity.
    for (severity, sqlstate) in [
        ("FATAL", "08P01"),
        ("FATAL", "25P03"),
        ("ERROR", "08006"),
        ("ERROR", "57P01"),
    ] {
        let (o, err) = cut_run(Cut::ErrorForAnswer(severity, sqlstate), &recovery);
        assert!(err.contains("unknown"), "{severity} {sqlstate}: {err}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let new = v["recovery_codes"][0].as_str().unwrap().to_string();
        assert_eq!(fleet.login(&direct, &new).code, PAM_SUCCESS);
    }
    // And for a record that no longer opens, replaced without being read.
    fleet
        .pg
        .psql_as(
            "postgres",
            "otpgate",
            &format!("UPDATE otpgate_users SET record = '\\x5a5a' WHERE name = '{USER}'"),
        )
        .unwrap();
    let (_, err) = cut_run(Cut::AnswerLost, &enroll);
    assert!(err.contains("may or may not have been saved"), "{err}");
    assert_eq!(fleet.login(&direct, &code(0)).code, PAM_SUCCESS);
}

#[test]
fn a_connection_cut_after_the_commit_keeps_the_login_and_the_code_spent() {
    if !runs_as_root("a_connection_cut_after_the_commit_keeps_the_login_and_the_code_spent") {
        return;
    }
    let (fleet, proxy, cut, a, _) = behind_a_proxy("pg-cut-after", 10, Cut::AfterCommit);
    let now = code(0);
    let (ok, logs) = fleet.bounded_login(&cut, &now);
    assert!(ok, "{logs:?}");
    assert_eq!(proxy.cuts_after_the_login(), 1, "the cut never happened");
    let (ok, logs) = fleet.logged_login(&a, &now);
    assert!(!ok && logs[0].contains("reason=replay"), "{logs:?}");
}

#[test]
fn a_database_that_stops_answering_refuses_within_the_timeout() {
    if !runs_as_root("a_database_that_stops_answering_refuses_within_the_timeout") {
        return;
    }
    // A server that takes the connection and never says a word.
    let (fleet, proxy, stalled, a, recovery) = behind_a_proxy("pg-stall", 4, Cut::StallAtStart);
    let (ok, logs) = fleet.bounded_login(&stalled, &code(0));
    assert!(!ok, "{logs:?}");
    assert!(
        logs[0].contains("reason=store_unavailable") && logs[0].contains("no answer"),
        "{logs:?}"
    );
    // A server that goes silent after it has the COMMIT.
    proxy.set(Cut::StallAtCommit);
    let (ok, logs) = fleet.bounded_login(&stalled, &recovery[0]);
    assert!(!ok, "{logs:?}");
    assert_eq!(proxy.commits(), 1, "the stall never happened");
    assert!(
        logs[0].contains("reason=store_unavailable") && logs[0].contains("no answer"),
        "{logs:?}"
    );
    // Committed before it went silent: spent everywhere.
    assert_eq!(fleet.login(&a, &recovery[0]).code, PAM_AUTH_ERR);
    // Answering again: logins work, no restart of anything.
    proxy.set(Cut::Pass);
    let (ok, logs) = fleet.bounded_login(&stalled, &recovery[1]);
    assert!(ok, "{logs:?}");
    // A silent first host of several: its time runs out on its own and the
    // next host is tried (within one connect the silent one would use up
    // the whole time).
    proxy.set(Cut::StallAtStart);
    let port = fleet.pg.port;
    let failover = fleet.host_with("failover", |t| {
        t.replace(
            &format!("@localhost:{port}/"),
            &format!("@127.0.0.1:{},localhost:{port}/", proxy.port),
        )
        .replace("connect_timeout = 3", "connect_timeout = 1")
    });
    let (ok, logs) = fleet.bounded_login(&failover, &recovery[2]);
    assert!(ok, "{logs:?}");
}

#[test]
fn a_server_restarted_while_a_login_waits_on_its_commit_refuses_and_keeps_the_code() {
    if !runs_as_root(
        "a_server_restarted_while_a_login_waits_on_its_commit_refuses_and_keeps_the_code",
    ) {
        return;
    }
    let (fleet, proxy, held, a, recovery) = behind_a_proxy("pg-restart", 3, Cut::HoldCommit);
    std::thread::scope(|s| {
        let login = s.spawn(|| fleet.bounded_login(&held, &recovery[0]));
        proxy.wait_until_held();
        // The transaction is open on the server (row locked, state
        // written, not committed) when the server goes down and comes back.
        fleet.pg.pg_ctl("restart");
        proxy.release();
        let (ok, logs) = login.join().unwrap();
        assert!(!ok, "{logs:?}");
        assert!(logs[0].contains("reason=store_unavailable"), "{logs:?}");
    });
    // Never committed: the code was not spent, and works exactly once.
    assert_eq!(fleet.login(&a, &recovery[0]).code, PAM_SUCCESS);
    assert_eq!(fleet.login(&a, &recovery[0]).code, PAM_AUTH_ERR);
    let o = fleet.cli(&["status", USER, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["recovery_codes_left"], 2, "{v}");
}

#[test]
fn logins_through_pgbouncer_keep_the_fleet_wide_replay_guard_in_either_pool_mode() {
    if !runs_as_root(
        "logins_through_pgbouncer_keep_the_fleet_wide_replay_guard_in_either_pool_mode",
    ) {
        return;
    }
    let fleet = Fleet::new("pg-pooler");
    fleet.enroll();
    let session = fleet.pg.start_pooler(Clients::Password, "session");
    let transaction = fleet.pg.start_pooler(Clients::Password, "transaction");
    let port = fleet.pg.port;
    // The poolers serve the server's certificate for localhost: verified
    // TLS as for the server itself.
    let via = |name: &str, pooler: &common::pg::Pooler| {
        fleet.host_with(name, |t| {
            let t = t.replace(
                &format!("@localhost:{port}/"),
                &format!("@localhost:{}/", pooler.port),
            );
            assert!(t.contains(&format!("localhost:{}/", pooler.port)), "{t}");
            t
        })
    };
    let session = via("session", &session);
    let transaction = via("transaction", &transaction);
    let direct = fleet.host("direct", "");
    // A pooler on the host itself: root over its socket, no password, no TLS.
    let local_pooler = fleet.pg.start_pooler(Clients::LocalRoot, "transaction");
    let conf = fleet
        .pg
        .local_pooler_site_config(fleet.f.tmp.path(), "local", &local_pooler);
    let local = fleet.service("local", &conf, "");
    let (ok, logs) = fleet.logged_login(&session, &code(-1));
    assert!(ok, "{logs:?}");
    // The same code again, through each pooler (the server connection the
    // first login left, reset, serves the session one) and straight to the
    // server: spent.
    for service in [&session, &transaction, &direct, &local] {
        let (ok, logs) = fleet.logged_login(service, &code(-1));
        assert!(!ok, "{service}");
        assert!(logs[0].contains("reason=replay"), "{logs:?}");
    }
    let (ok, logs) = fleet.logged_login(&transaction, &code(0));
    assert!(ok, "{logs:?}");
    let (ok, logs) = fleet.logged_login(&session, &code(0));
    assert!(!ok && logs[0].contains("reason=replay"), "{logs:?}");
    // Its socket in a directory where anyone could have put one of their
    // own: refused before connecting.
    let dir = &local_pooler.socket_dir;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).unwrap();
    let (ok, logs) = fleet.logged_login(&local, &code(1));
    assert!(!ok && logs[0].contains("writable by anyone"), "{logs:?}");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, logs) = fleet.logged_login(&local, &code(1));
    assert!(ok, "{logs:?}");
    for service in [&session, &transaction, &local] {
        assert_eq!(fleet.login(service, "000000x").code, PAM_AUTH_ERR);
    }
    let s = fleet.cli(&["status", USER, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(v["failures"], 3, "{v}");
    // Each pooler ran its logins on one server backend, which stays for the
    // next (over the server's socket: no client address).
    let pooled_backends = fleet.pg.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'otpgate_login' AND client_addr IS NULL",
    );
    assert_eq!(pooled_backends.trim(), "2");
}

/// Real files are longer than the test's: a CA bundle, a certificate with
/// its chain, an RSA key. Each file here carries 5 KB of explanatory text
/// before its PEM section (which readers skip, RFC 7468), and is read whole.
#[test]
fn long_ca_certificate_and_key_files_are_read_whole() {
    if !runs_as_root("long_ca_certificate_and_key_files_are_read_whole") {
        return;
    }
    let fleet = Fleet::new("pg-cert-long");
    fleet.enroll();
    let dir = fleet.f.tmp.path();
    let conf = fleet.pg.cert_site_config(dir, "long", fleet.pg.port, false);
    let pad: String = (0..100)
        .map(|i| format!("explanatory text, line {i:03}, before the PEM section\n"))
        .collect();
    assert!(pad.len() > 5000);
    let mut text = fs::read_to_string(&conf).unwrap();
    for (setting, mode) in [
        ("ca_file", 0o644),
        ("client_cert", 0o644),
        ("client_key", 0o600),
    ] {
        let prefix = format!("{setting} = \"");
        let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap();
        let path = line[prefix.len()..line.len() - 1].to_string();
        let long = dir.join(format!("long-{setting}.pem"));
        fs::write(
            &long,
            format!("{pad}{}", fs::read_to_string(&path).unwrap()),
        )
        .unwrap();
        fs::set_permissions(&long, fs::Permissions::from_mode(mode)).unwrap();
        text = text.replace(&path, long.to_str().unwrap());
    }
    fs::write(&conf, &text).unwrap();
    let service = fleet.service("long", &conf, "");
    let (ok, logs) = fleet.logged_login(&service, &code(0));
    assert!(ok, "{logs:?}");
}

#[test]
fn a_host_with_a_client_certificate_needs_no_password_and_a_foreign_one_is_refused() {
    if !runs_as_root(
        "a_host_with_a_client_certificate_needs_no_password_and_a_foreign_one_is_refused",
    ) {
        return;
    }
    let fleet = Fleet::new("pg-cert");
    fleet.enroll();
    let dir = fleet.f.tmp.path();
    let conf = fleet.pg.cert_site_config(dir, "cert", fleet.pg.port, false);
    let cert = fleet.service("cert", &conf, "");
    let (ok, logs) = fleet.logged_login(&cert, &code(-1));
    assert!(ok, "{logs:?}");
    // doctor reads openssl's certificate: valid for two days, so it warns
    // with the date, and connects.
    let o = cli_with(&conf, &["doctor", "--check", "store", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["store.client_cert_expiring", "store.ok"], "{v}");
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("CN=otpgate_cert"),
        "{v}"
    );
    // Through the pooler, which checks the certificate itself.
    let pooler = fleet.pg.start_pooler(Clients::Certificate, "transaction");
    let conf = fleet
        .pg
        .cert_site_config(dir, "pooled-cert", pooler.port, false);
    let pooled = fleet.service("pooled-cert", &conf, "");
    let (ok, logs) = fleet.logged_login(&pooled, &code(-1));
    assert!(!ok);
    assert!(logs[0].contains("reason=replay"), "{logs:?}");
    let (ok, logs) = fleet.logged_login(&pooled, &code(0));
    assert!(ok, "{logs:?}");
    // A certificate from another CA, for the same name: refused by the
    // server and by the pooler.
    for (name, port) in [("rogue", fleet.pg.port), ("pooled-rogue", pooler.port)] {
        let conf = fleet.pg.cert_site_config(dir, name, port, true);
        let rogue = fleet.service(name, &conf, "");
        let (ok, logs) = fleet.logged_login(&rogue, &code(1));
        assert!(!ok, "{name}");
        assert!(logs[0].contains("reason=store_unavailable"), "{logs:?}");
    }
    // A client key others can read is refused before anything is sent.
    let key = dir.join("cert-client.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
    let (ok, logs) = fleet.logged_login(&cert, &code(1));
    assert!(!ok);
    assert!(
        logs[0].contains("reason=store_error") && logs[0].contains("cert-client.key"),
        "{logs:?}"
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, logs) = fleet.logged_login(&cert, &code(1));
    assert!(ok, "{logs:?}");
}
