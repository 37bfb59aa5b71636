//! pam_otpgate.so holds the file store only; a login whose site store is a
//! database goes to the fleet object beside it (src/pam/fleet.rs). These
//! tests need no database: the module decides from the site file alone,
//! and the fleet object, once run, shows itself by what it logs (it cannot
//! reach the database named here).

mod common;

use common::*;
use otpgate::core::otp::OtpParams;
use otpgate::pam::fleet::RELEASE;
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

/// The fleet object with its build string changed by `change`.
fn patched_fleet(to: &Path, change: impl Fn(&mut [u8])) -> String {
    let mut bytes = fs::read(fleet_object_path()).unwrap();
    let ours = RELEASE.to_bytes_with_nul();
    let at = bytes
        .windows(ours.len())
        .position(|w| w == ours)
        .expect("the build string in the fleet object");
    let field = &mut bytes[at..at + ours.len() - 1];
    change(field);
    let other = String::from_utf8(field.to_vec()).unwrap();
    fs::write(to, bytes).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(0o644)).unwrap();
    other
}

#[test]
fn a_fleet_object_of_another_release_or_build_is_not_run() {
    let m = Modules::new("fleet-release", Some(NO_DATABASE));
    // Another version: "otpgate 0.1.0 (...)" -> "otpgate 9.9.9 (...)".
    let other = patched_fleet(&m.fleet(), |f| {
        let end = f.iter().position(|&b| b == b' ').unwrap() + 1;
        for b in f[end..].iter_mut().take_while(|b| **b != b' ') {
            if b.is_ascii_digit() {
                *b = b'9';
            }
        }
    });
    let line = m.refused_before_asking("install both from one build");
    assert!(line.contains(&other), "{line}");
    // The same version built from another tree: only the id differs.
    let other = patched_fleet(&m.fleet(), |f| {
        let n = f.len();
        for b in &mut f[n - 17..n - 1] {
            *b = if *b == b'0' { b'1' } else { b'0' };
        }
    });
    let line = m.refused_before_asking("install both from one build");
    assert!(line.contains(&other), "{line}");
}

#[test]
fn a_fleet_object_reached_through_a_directory_someone_else_owns_is_not_loaded() {
    let m = Modules::new("fleet-symlink", Some(NO_DATABASE));
    // A root-owned link to a root-owned file, in a directory another user
    // owns: that user could swap the file between the check and the load.
    let theirs = m.f.tmp.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    fs::copy(fleet_object_path(), theirs.join("fleet.so")).unwrap();
    fs::set_permissions(theirs.join("fleet.so"), fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&theirs, Some(1), None).unwrap();
    std::os::unix::fs::symlink(theirs.join("fleet.so"), m.fleet()).unwrap();
    m.refused_before_asking("theirs: not owned by root");
    // The same link into root's own directory is followed and run.
    std::os::unix::fs::chown(&theirs, Some(0), None).unwrap();
    let (ok, logs, text) = m.login("daemon", "123456");
    assert!(!ok, "{text}");
    assert!(logs[0].contains("socket directory"), "{logs:?}");
    // So is a directory above it that others may write to.
    fs::set_permissions(m.f.tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
    m.refused_before_asking("writable by group or others");
    fs::set_permissions(m.f.tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn the_fleet_object_named_in_a_stack_says_it_is_not_the_module() {
    let m = Modules::new("fleet-as-module", Some(NO_DATABASE));
    m.put_fleet(&fleet_object_path());
    let site = m.f.tmp.path().join("otpgate.toml");
    m.f.set_stack(&format!(
        "auth required {} config={}",
        m.fleet().display(),
        site.display()
    ));
    m.refused_before_asking("is the fleet object, not the module");
}

/// A host that lives on (a VPN or mail server's PAM client): two logins in
/// one process, with a line on stdin awaited in between.
const LONG_LIVED_HOST: &str = r#"
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int conv(int n, const struct pam_message **m, struct pam_response **r, void *d) {
    *r = calloc(n, sizeof **r);
    for (int i = 0; i < n; i++)
        if (m[i]->msg_style == PAM_PROMPT_ECHO_OFF || m[i]->msg_style == PAM_PROMPT_ECHO_ON)
            (*r)[i].resp = strdup("123456");
    return PAM_SUCCESS;
}
int main(int argc, char **argv) {
    struct pam_conv c = {conv, 0};
    char line[16];
    for (int i = 0; i < 2; i++) {
        pam_handle_t *h;
        if (pam_start(argv[1], argv[2], &c, &h) != PAM_SUCCESS) return 2;
        int rc = pam_authenticate(h, 0);
        pam_end(h, rc);
        printf("login %d: %d\n", i, rc);
        fflush(stdout);
        if (i == 0 && !fgets(line, sizeof line, stdin)) return 3;
    }
    return 0;
}
"#;

#[test]
fn a_host_that_still_has_the_old_fleet_object_loaded_refuses_and_says_restart() {
    use std::io::{BufRead, BufReader, Write};
    // A database the fleet object starts its runtime for (TCP, refused at
    // once): its thread-local destructors keep it loaded in this process.
    let m = Modules::new(
        "fleet-stale",
        Some("postgresql://otpgate@127.0.0.1:9/otpgate"),
    );
    let site = m.f.tmp.path().join("otpgate.toml");
    let key = m.f.tmp.path().join("db.key");
    fs::write(&key, [7u8; 32]).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(
        &site,
        format!(
            "store = \"postgresql://otpgate@127.0.0.1:9/otpgate\"\n[postgres]\ntls = \"off\"\nconnect_timeout = 2\nkey_file = \"{}\"\n",
            key.display()
        ),
    )
    .unwrap();
    m.put_fleet(&fleet_object_path());
    let src = m.f.tmp.path().join("host.c");
    let host = m.f.tmp.path().join("host");
    fs::write(&src, LONG_LIVED_HOST).unwrap();
    let o = Command::new("cc")
        .arg("-o")
        .arg(&host)
        .arg(&src)
        .arg("-lpam")
        .output()
        .expect("a C compiler (cc)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // libpam-wrapper's environment, as the fixture gives it to pamtester.
    let p = m.f.pamtester("daemon");
    let mut cmd = Command::new(&host);
    for (k, v) in p.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .arg(&m.f.service)
        .arg("daemon")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "login 0: 7", "PAM_AUTH_ERR");
    // An upgrade, as dpkg makes it: the new file renamed over the old.
    let next = m.dir.join(".pam_otpgate_fleet.so.new");
    fs::copy(fleet_object_path(), &next).unwrap();
    fs::set_permissions(&next, fs::Permissions::from_mode(0o644)).unwrap();
    fs::rename(&next, m.fleet()).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut second = String::new();
    out.read_line(&mut second).unwrap();
    let done = child.wait_with_output().unwrap();
    let logs = log_lines_of(&String::from_utf8_lossy(&done.stderr));
    assert_eq!(second.trim(), "login 1: 7", "{logs:?}");
    assert_eq!(logs.len(), 2, "{logs:?}");
    // The first login was the fleet object's (it tried the database).
    assert!(logs[0].contains("reason=store_unavailable"), "{logs:?}");
    // The second is refused: the old code is what this process would run.
    assert!(
        logs[1].contains("reason=config_error")
            && logs[1].contains("still has an older")
            && logs[1].contains("restart it"),
        "{logs:?}"
    );
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
