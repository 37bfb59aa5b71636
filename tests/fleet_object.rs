//! pam_otpgate.so holds the file store only; a login whose site store is a
//! database goes to the fleet object beside it (src/pam/fleet.rs). These
//! tests need no database: the module decides from the site file alone,
//! and the fleet object, once run, shows itself by what it logs (it cannot
//! reach the database named here).

mod common;

use common::*;
use otpgate::core::otp::OtpParams;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A database the fleet object cannot reach: a socket directory that does not exist.
const NO_DATABASE: &str = "postgresql://otpgate@%2Fnonexistent-otpgate-socket-dir/otpgate";

struct Modules {
    f: Fixture,
    dir: PathBuf,
}

impl Modules {
    /// A module directory of the test's own with `pam_otpgate.so` in it, a
    /// site file whose store is `store` (else the fixture's store directory),
    /// and the service running that module.
    fn new(name: &str, store: Option<&str>) -> Modules {
        let f = Fixture::new(name, "");
        let store = store.map_or_else(|| f.store.display().to_string(), String::from);
        let dir = f.tmp.path().join("security");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::copy(module_path(), dir.join("pam_otpgate.so")).unwrap();
        let site = f.tmp.path().join("otpgate.toml");
        fs::write(&site, format!("store = \"{store}\"\n")).unwrap();
        fs::set_permissions(&site, fs::Permissions::from_mode(0o644)).unwrap();
        f.set_stack(&format!(
            "auth required {} config={} {}",
            dir.join("pam_otpgate.so").display(),
            site.display(),
            owner_ok()
        ));
        Modules { f, dir }
    }

    fn fleet(&self) -> PathBuf {
        self.dir.join("pam_otpgate_fleet.so")
    }

    fn put_fleet(&self, from: &Path) {
        fs::copy(from, self.fleet()).unwrap();
        fs::set_permissions(self.fleet(), fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// One login with `answer`; (accepted, the module's log lines, all output).
    fn login(&self, user: &str, answer: &str) -> (bool, Vec<String>, String) {
        self.f
            .pamtester_run(self.f.pamtester(user), format!("{answer}\n").as_bytes())
    }

    /// A database login that must be refused before any prompt, for `why`.
    fn refused_before_asking(&self, why: &str) -> String {
        let (ok, logs, text) = self.login("daemon", "123456");
        assert!(!ok, "{text}");
        assert!(!text.contains("Verification code"), "asked first:\n{text}");
        assert_eq!(logs.len(), 1, "{logs:?}");
        let line = &logs[0];
        assert!(line.contains("result=fail reason=config_error"), "{line}");
        assert!(line.contains(why), "{line}");
        line.clone()
    }
}

#[test]
fn the_fleet_object_runs_a_database_login() {
    let m = Modules::new("fleet-runs", Some(NO_DATABASE));
    m.put_fleet(&fleet_object_path());
    let (ok, logs, text) = m.login("daemon", "123456");
    assert!(!ok, "{text}");
    // Only the fleet object has the database store: this is its verdict
    // (it checks the socket directory before connecting).
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(
        logs[0].contains("result=fail reason=store_error"),
        "{logs:?}"
    );
    assert!(
        logs[0].contains("/nonexistent-otpgate-socket-dir: socket directory"),
        "{logs:?}"
    );
}

#[test]
fn a_database_login_without_the_fleet_object_is_refused_and_says_where_it_looked() {
    let m = Modules::new("fleet-missing", Some(NO_DATABASE));
    let line = m.refused_before_asking(&m.fleet().display().to_string());
    assert!(line.contains("No such file"), "{line}");
}

#[test]
fn a_fleet_object_others_could_have_replaced_is_not_loaded() {
    let m = Modules::new("fleet-writable", Some(NO_DATABASE));
    m.put_fleet(&fleet_object_path());
    fs::set_permissions(m.fleet(), fs::Permissions::from_mode(0o664)).unwrap();
    m.refused_before_asking("pam_otpgate_fleet.so: writable by group or others");
    fs::set_permissions(m.fleet(), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&m.dir, fs::Permissions::from_mode(0o777)).unwrap();
    m.refused_before_asking("security: writable by group or others");
    fs::set_permissions(&m.dir, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(m.fleet(), Some(1), None).unwrap();
    m.refused_before_asking("pam_otpgate_fleet.so: not owned by root");
}

#[test]
fn an_object_that_is_not_the_fleet_object_is_not_run() {
    let m = Modules::new("fleet-impostor", Some(NO_DATABASE));
    // A real PAM module that would say yes to anything.
    let permit = [
        "/lib/x86_64-linux-gnu/security",
        "/usr/lib/x86_64-linux-gnu/security",
    ]
    .iter()
    .map(|d| Path::new(d).join("pam_permit.so"))
    .find(|p| p.exists())
    .expect("pam_permit.so");
    m.put_fleet(&permit);
    m.refused_before_asking("is not otpgate's fleet object");
    // dlopen's own reason is in the line.
    fs::write(m.fleet(), "not an ELF file\n").unwrap();
    m.refused_before_asking("cannot load");
    m.refused_before_asking("file too short");
    // An object with only one of the two symbols: nothing of it is run.
    for (name, source) in [
        (
            "release only",
            "const char *otpgate_fleet_release(void) { return \"otpgate RELEASE\"; }\n",
        ),
        (
            "entry only",
            "int otpgate_fleet_authenticate(void *h, int f, int c, const char **v) { return 0; }\n",
        ),
    ] {
        let source = source.replace("RELEASE", env!("CARGO_PKG_VERSION"));
        let c = m.f.tmp.path().join("half.c");
        fs::write(&c, source).unwrap();
        let o = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(m.fleet())
            .arg(&c)
            .output()
            .expect("a C compiler (cc)");
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        fs::set_permissions(m.fleet(), fs::Permissions::from_mode(0o644)).unwrap();
        m.refused_before_asking("is not otpgate's fleet object");
    }
}

#[test]
fn a_fleet_object_of_another_release_is_not_run() {
    let m = Modules::new("fleet-release", Some(NO_DATABASE));
    let mut bytes = fs::read(fleet_object_path()).unwrap();
    let ours = format!("otpgate {}\0", env!("CARGO_PKG_VERSION"));
    let other = format!("otpgate {}\0", "9".repeat(ours.len() - "otpgate \0".len()));
    let at = bytes
        .windows(ours.len())
        .position(|w| w == ours.as_bytes())
        .expect("the release string in the fleet object");
    bytes[at..at + ours.len()].copy_from_slice(other.as_bytes());
    fs::write(m.fleet(), bytes).unwrap();
    fs::set_permissions(m.fleet(), fs::Permissions::from_mode(0o644)).unwrap();
    let line = m.refused_before_asking("install both from one release");
    assert!(line.contains(other.trim_end_matches('\0')), "{line}");
}

#[test]
fn file_store_logins_never_load_the_fleet_object() {
    let m = Modules::new("fleet-files", None);
    // Not loadable: a file-store login that tried would fail.
    fs::write(m.fleet(), "not an ELF file\n").unwrap();
    let e = m.f.enroll("daemon", OtpParams::default(), 0);
    let (ok, logs, text) = m.login("daemon", &e.code(0));
    assert!(ok, "{text}");
    assert!(logs[0].contains("result=success"), "{logs:?}");
}

#[test]
fn the_module_leaves_the_database_client_out() {
    let module = fs::read(module_path()).unwrap();
    let fleet = fs::read(fleet_object_path()).unwrap();
    let has = |b: &[u8], s: &str| b.windows(s.len()).any(|w| w == s.as_bytes());
    // The PostgreSQL client's SCRAM mechanism name, and the fleet entry.
    assert!(has(&fleet, "SCRAM-SHA-256"));
    assert!(!has(&module, "SCRAM-SHA-256"));
    let exports = |p: &Path| {
        let out = Command::new("nm")
            .args(["-D", "--defined-only"])
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(exports(&fleet_object_path()).contains("otpgate_fleet_authenticate"));
    assert!(!exports(&module_path()).contains("otpgate_fleet"));
    assert!(exports(&module_path()).contains("pam_sm_authenticate"));
}
