//! `otpgate doctor` as an admin runs it, against copies of /etc/pam.d and
//! sshd_config in a temp dir. What doctor says about a PAM stack is checked
//! against what real libpam does with the same stack.

mod common;

use common::*;
use otpgate::pam::client::{self, Login, PAM_SUCCESS};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_otpgate");

/// Debian 12's /etc/pam.d/common-auth without its comments.
const DEBIAN_COMMON_AUTH: &str = "auth [success=1 default=ignore] pam_unix.so nullok\n\
                                  auth requisite pam_deny.so\n\
                                  auth required pam_permit.so\n";

/// A store, a PAM directory and a module directory of our own.
struct Setup {
    f: Fixture,
    pam: PathBuf,
    modules: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let f = Fixture::new(name, "");
        let pam = f.tmp.path().join("etc-pam.d");
        let modules = f.tmp.path().join("security");
        fs::create_dir_all(&pam).unwrap();
        fs::create_dir_all(&modules).unwrap();
        fs::copy(module_path(), modules.join("pam_otpgate.so")).unwrap();
        fs::set_permissions(
            modules.join("pam_otpgate.so"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        Setup { f, pam, modules }
    }

    fn write(&self, service: &str, text: &str) {
        fs::write(self.pam.join(service), text).unwrap();
    }

    fn clear_pam(&self) {
        for e in fs::read_dir(&self.pam).unwrap() {
            fs::remove_file(e.unwrap().path()).unwrap();
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--store")
            .arg(&self.f.store)
            .arg("--config")
            .arg(self.f.tmp.path().join("no-site-config.toml"))
            .arg("doctor")
            .arg("--pam-dir")
            .arg(&self.pam)
            .arg("--module-dir")
            .arg(&self.modules)
            .args(args)
            .env_remove("SUDO_USER")
            .output()
            .unwrap()
    }

    /// `doctor --json ARGS`: exit code and the JSON object.
    fn json(&self, args: &[&str]) -> (Option<i32>, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let o = self.cmd(&all);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "not one JSON object ({e}): {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
        assert_findings_are_well_formed(&v);
        (o.status.code(), v)
    }

    /// `doctor --json --check pam`.
    fn pam_check(&self) -> (Option<i32>, Value) {
        self.json(&["--check", "pam"])
    }
}

fn findings(v: &Value) -> &Vec<Value> {
    v["findings"].as_array().unwrap()
}

/// Ids of the findings that are not `ok`.
fn problems(v: &Value) -> Vec<String> {
    findings(v)
        .iter()
        .filter(|x| x["level"] != "ok")
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

fn with_id<'a>(v: &'a Value, id: &str) -> Vec<&'a Value> {
    findings(v).iter().filter(|x| x["id"] == id).collect()
}

/// Schema version, a stable dotted id per finding, and fixes that describe
/// what to write on the admin's system, never a path in the source tree.
fn assert_findings_are_well_formed(v: &Value) {
    assert_eq!(v["schema"], 1, "{v:#}");
    for x in findings(v) {
        let id = x["id"].as_str().unwrap_or_else(|| panic!("no id: {x}"));
        let (check, name) = id.split_once('.').unwrap_or_else(|| panic!("{id}"));
        assert_eq!(x["check"], check, "{x}");
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{id}"
        );
        if let Some(fix) = x["fix"].as_str() {
            for bad in ["scripts/", "src/", "cargo ", "README"] {
                assert!(!fix.contains(bad), "fix points into the source tree: {x}");
            }
            for word in fix.split_whitespace() {
                assert!(!word.starts_with("pam.d/"), "source path in fix: {x}");
            }
        }
    }
}

/// The same stack through real libpam: `OTP` stands for the module line and
/// is replaced by pam_deny (a wrong code: PAM_AUTH_ERR) or pam_permit (a
/// right code). Returns whether the stack succeeds in each case.
fn libpam_verdicts(f: &Fixture, stack: &str) -> (bool, bool) {
    let run = |module: &str| {
        f.set_stack(&stack.replace("OTP", module));
        let mut never = |_: client::Style, _: &str| None;
        let login = Login {
            confdir: &f.confdir,
            service: &f.service,
            user: "daemon",
            rhost: None,
            flags: 0,
        };
        client::authenticate(&login, &mut never).unwrap().code == PAM_SUCCESS
    };
    (run("pam_deny.so"), run("pam_permit.so"))
}

#[test]
fn doctor_reads_pam_controls_as_libpam_does() {
    let s = Setup::new("doc-libpam");
    let inc = s.f.tmp.path().join("inc-sufficient");
    fs::write(&inc, "auth sufficient pam_permit.so\n").unwrap();
    let inc = inc.display();
    // (stack, doctor's error ids). libpam decides the rest below.
    let cases: Vec<(String, &[&str])> = vec![
        ("auth required pam_permit.so\nauth required OTP".into(), &[]),
        ("auth required OTP\nauth required pam_permit.so".into(), &[]),
        (
            "auth [success=1 default=ignore] OTP\nauth requisite pam_deny.so\nauth required pam_permit.so".into(),
            &[],
        ),
        // `ok` hands the failure on as the stack's result: not a bypass.
        (
            "auth required pam_permit.so\nauth [success=ok default=ok] OTP\nauth required pam_permit.so".into(),
            &[],
        ),
        (
            "auth required pam_permit.so\nauth [success=ok default=die] OTP".into(),
            &[],
        ),
        // done/die in a substack end the substack only.
        (
            format!("auth substack {inc}\nauth required OTP"),
            &[],
        ),
        // Issue 7, item 3.
        (
            "auth required pam_permit.so\nauth [default=ignore] OTP".into(),
            &["pam.failure_ignored"],
        ),
        (
            "auth required pam_permit.so\nauth [success=ok default=1] OTP\nauth required pam_permit.so".into(),
            &["pam.failure_ignored"],
        ),
        (
            "auth [success=ok default=1] OTP\nauth requisite pam_deny.so\nauth required pam_permit.so".into(),
            &["pam.failure_ignored", "pam.never_succeeds"],
        ),
        (
            "auth [success=1 default=ignore] pam_permit.so\nauth required OTP\nauth required pam_permit.so".into(),
            &["pam.module_skippable"],
        ),
        (
            "auth sufficient pam_permit.so\nauth required OTP".into(),
            &["pam.module_skippable"],
        ),
        (
            "auth required pam_permit.so\nauth optional OTP".into(),
            &["pam.failure_ignored"],
        ),
        (
            "auth required pam_permit.so\nauth sufficient OTP".into(),
            &["pam.failure_ignored"],
        ),
        (
            "auth required OTP\nauth [default=reset] pam_permit.so\nauth required pam_permit.so".into(),
            &["pam.failure_ignored"],
        ),
        // Debian's @include inlines the file: its `done` ends the whole stack.
        (
            format!("@include {inc}\nauth required OTP"),
            &["pam.module_skippable"],
        ),
    ];
    for (stack, want) in &cases {
        let (wrong_passes, right_passes) = libpam_verdicts(&s.f, stack);
        s.clear_pam();
        s.write("svc", &stack.replace("OTP", "pam_otpgate.so"));
        let (rc, v) = s.pam_check();
        let got = problems(&v);
        assert_eq!(&got, want, "{stack}\n{v:#}");
        let bypass = got
            .iter()
            .any(|id| id == "pam.failure_ignored" || id == "pam.module_skippable");
        assert_eq!(
            bypass, wrong_passes,
            "libpam disagrees on a wrong code: {stack}"
        );
        let locked = got.iter().any(|id| id == "pam.never_succeeds");
        assert_eq!(
            locked, !right_passes,
            "libpam disagrees on a right code: {stack}"
        );
        assert_eq!(rc, Some(if want.is_empty() { 0 } else { 1 }), "{stack}");
    }

    // The stacks as an admin writes them, with Debian's common-auth.
    s.clear_pam();
    s.write("common-auth", DEBIAN_COMMON_AUTH);
    s.write(
        "sudo",
        "@include common-auth\nauth [default=ignore] pam_otpgate.so\n",
    );
    s.write(
        "sshd",
        "auth [success=1 default=ignore] pam_unix.so\nauth required pam_otpgate.so\nauth required pam_permit.so\n",
    );
    s.write("login", "-auth required pam_otpgate.so\n");
    s.write(
        "su",
        "@include common-auth\nauth [success=ok default=1] pam_otpgate.so\nauth required pam_permit.so\n",
    );
    let (rc, v) = s.pam_check();
    assert_eq!(rc, Some(1));
    let at = |id: &str, loc: &str| {
        let hits = with_id(&v, id);
        assert!(
            hits.iter()
                .any(|x| x["location"] == format!("{}/{loc}", s.pam.display())),
            "{id} at {loc}: {v:#}"
        );
    };
    at("pam.failure_ignored", "sudo:2");
    at("pam.module_skippable", "sshd:1");
    at("pam.module_dash", "login:1");
    at("pam.failure_ignored", "su:2");
    let skip = &with_id(&v, "pam.module_skippable")[0];
    assert!(
        skip["message"].as_str().unwrap().contains("pam_unix.so"),
        "{skip}"
    );

    // Every stack this project ships passes, on top of Debian's includes.
    s.clear_pam();
    s.write("common-auth", DEBIAN_COMMON_AUTH);
    for name in [
        "common-account",
        "common-session",
        "common-password",
        "common-session-noninteractive",
    ] {
        s.write(name, "");
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("pam.d");
    for e in fs::read_dir(shipped).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), s.pam.join(e.file_name())).unwrap();
    }
    let (rc, v) = s.pam_check();
    assert_eq!(problems(&v), Vec::<String>::new(), "{v:#}");
    assert_eq!(rc, Some(0));
    assert_eq!(
        findings(&v).iter().filter(|x| x["id"] == "pam.ok").count(),
        7,
        "{v:#}"
    );
}

#[test]
fn doctor_exit_codes_locations_and_did_you_mean() {
    let s = Setup::new("doc-exit");
    let sock_dir = tempfile::tempdir().unwrap();
    let sock_path = sock_dir.path().join("log");
    let _sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    let sock = sock_path.to_str().unwrap();

    // A warning only (nullok with nothing that lets a non-enrolled user in).
    s.write("sshd", "auth required pam_otpgate.so nullok\n");
    let args = ["--check", "pam,syslog", "--syslog-socket", sock];
    let (rc, v) = s.json(&args);
    assert_eq!(problems(&v), ["pam.nullok_refuses"], "{v:#}");
    assert_eq!(rc, Some(0), "warnings alone do not fail: {v:#}");
    assert_eq!(
        (v["errors"].clone(), v["warnings"].clone()),
        (0.into(), 1.into())
    );
    assert_eq!(v["healthy"], false);
    let strict: Vec<&str> = args.iter().copied().chain(["--strict"]).collect();
    let (rc, _) = s.json(&strict);
    assert_eq!(rc, Some(1), "--strict makes warnings fail");
    let o = s.cmd(&args);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("{}/sshd:1", s.pam.display())),
        "{text}"
    );

    // Errors name the file and line scanned, and an unknown option gets a suggestion.
    s.write("common-auth", DEBIAN_COMMON_AUTH);
    s.write(
        "sudo",
        "# sudo\n@include common-auth\nauth required pam_otpgate.so nulok\n",
    );
    let (rc, v) = s.json(&args);
    assert_eq!(rc, Some(1));
    let bad = with_id(&v, "pam.bad_option");
    assert_eq!(bad.len(), 1, "{v:#}");
    assert_eq!(bad[0]["location"], format!("{}/sudo:3", s.pam.display()));
    assert!(
        bad[0]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `nullok`"),
        "{}",
        bad[0]
    );
    assert!(
        bad[0]["fix"]
            .as_str()
            .unwrap()
            .contains("auth required pam_otpgate.so nullok"),
        "{}",
        bad[0]
    );

    // No service uses the module: the fix says where the examples live.
    s.clear_pam();
    let (rc, v) = s.pam_check();
    assert_eq!(rc, Some(0));
    let none = with_id(&v, "pam.no_service");
    assert!(
        none[0]["fix"]
            .as_str()
            .unwrap()
            .contains("/usr/share/doc/otpgate/examples/"),
        "{v:#}"
    );
}

/// A reader that went away (`otpgate doctor | head -2`): an error message
/// and exit 2, never a panic (exit 101).
#[test]
fn doctor_into_a_closed_pipe_says_so_and_does_not_panic() {
    let s = Setup::new("doc-epipe");
    for json in [false, true] {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let mut cmd = Command::new(BIN);
        cmd.arg("--store")
            .arg(&s.f.store)
            .args(["doctor", "--check", "clock"])
            .stdout(std::process::Stdio::from(write))
            .stderr(std::process::Stdio::piped());
        if json {
            cmd.arg("--json");
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("cannot write the output") && !err.contains("panicked"),
            "{err}"
        );
    }
}

#[test]
fn doctor_warns_when_nothing_receives_syslog() {
    let s = Setup::new("doc-syslog");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let p = path.to_str().unwrap();
    let check = || s.json(&["--check", "syslog", "--syslog-socket", p]);

    let (rc, v) = check();
    assert_eq!(problems(&v), ["syslog.missing"], "{v:#}");
    assert_eq!(rc, Some(0));
    assert!(v.to_string().contains("audit trail"), "{v:#}");

    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let (rc, v) = check();
    assert_eq!(problems(&v), Vec::<String>::new(), "{v:#}");
    assert_eq!(with_id(&v, "syslog.ok").len(), 1);
    assert_eq!(rc, Some(0));

    drop(sock); // the socket file stays, nobody reads it
    let (_, v) = check();
    assert_eq!(problems(&v), ["syslog.no_listener"], "{v:#}");
}

/// Doctor and the module apply one rule to a lock file's mode: every bit
/// beyond 0600 that makes logins fail is reported, and nothing else is.
/// (Doctor once looked at group/other bits only: a lock file of 0700, as
/// `chmod -R 700` on the store leaves it, failed every login of its user
/// while doctor said the store was healthy.)
#[test]
fn doctor_and_the_module_agree_on_a_lock_files_mode() {
    let s = Setup::new("doc-lockmode");
    let e = s.f.enroll("daemon", Default::default(), 1);
    let lock = s.f.store.join(".daemon.lock");
    assert!(lock.is_file(), "enroll makes the lock file");
    let code = e.code(0);
    let store_check = |s: &Setup| s.json(&["--check", "store"]);
    let chmod = |mode: u32| fs::set_permissions(&lock, fs::Permissions::from_mode(mode)).unwrap();

    for bit in [
        0o1, 0o2, 0o4, 0o10, 0o20, 0o40, 0o100, 0o1000, 0o2000, 0o4000,
    ] {
        chmod(0o600 | bit);
        let t = s.f.login("daemon", &code);
        assert_ne!(
            t.code,
            PAM_SUCCESS,
            "mode {:04o}: the module refuses",
            0o600 | bit
        );
        let (rc, v) = store_check(&s);
        assert_eq!(
            problems(&v),
            ["store.lock_unusable"],
            "mode {:04o}: {v:#}",
            0o600 | bit
        );
        assert_eq!(rc, Some(1));
        let found = &with_id(&v, "store.lock_unusable")[0];
        assert!(
            found["fix"].as_str().unwrap().contains("chmod 0600"),
            "{found}"
        );
    }

    // `chmod -R 700` on the store: the record and the lock file are both
    // reported, and fixing the record alone leaves the lock file reported.
    fs::set_permissions(s.f.record_path("daemon"), fs::Permissions::from_mode(0o700)).unwrap();
    chmod(0o700);
    let (_, v) = store_check(&s);
    let mut got = problems(&v);
    got.sort();
    assert_eq!(
        got,
        ["store.lock_unusable", "store.record_unreadable"],
        "{v:#}"
    );
    fs::set_permissions(s.f.record_path("daemon"), fs::Permissions::from_mode(0o600)).unwrap();
    let (rc, v) = store_check(&s);
    assert_eq!(problems(&v), ["store.lock_unusable"], "{v:#}");
    assert_eq!(rc, Some(1));
    assert_ne!(s.f.login("daemon", &code).code, PAM_SUCCESS);

    // 0600 (and 0400): healthy, and the same code logs in.
    chmod(0o400);
    let (rc, v) = store_check(&s);
    assert_eq!(problems(&v), Vec::<String>::new(), "{v:#}");
    assert_eq!(rc, Some(0));
    chmod(0o600);
    assert_eq!(s.f.login("daemon", &code).code, PAM_SUCCESS);

    // A login state that does not read: no mode change mends it, so the
    // fix is to replace or remove the enrollment.
    fs::write(&lock, [0x5a; 1024]).unwrap();
    let (rc, v) = store_check(&s);
    assert_eq!(problems(&v), ["store.record_unreadable"], "{v:#}");
    assert_eq!(rc, Some(1));
    let fix = with_id(&v, "store.record_unreadable")[0]["fix"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        fix.contains("otpgate enroll daemon --force") && !fix.contains("chmod"),
        "{fix}"
    );
}

#[test]
fn doctor_flags_store_paths_that_break_logins() {
    let s = Setup::new("doc-store");
    for user in ["daemon", "bin", "sys"] {
        s.f.enroll(user, Default::default(), 1);
    }
    let store_check = |s: &Setup| s.json(&["--check", "store"]);
    let (rc, v) = store_check(&s);
    assert_eq!(problems(&v), Vec::<String>::new(), "{v:#}");
    assert_eq!(rc, Some(0));

    // Lock and temp paths that every login of that user trips over.
    let lock = s.f.store.join(".daemon.lock");
    let _ = fs::remove_file(&lock);
    fs::create_dir(&lock).unwrap();
    let tmp = s.f.store.join(".bin.toml.tmp");
    let ok = Command::new("mkfifo").arg(&tmp).status().unwrap();
    assert!(ok.success());
    let lock3 = s.f.store.join(".sys.lock");
    let _ = fs::remove_file(&lock3);
    std::os::unix::fs::symlink("/etc/passwd", &lock3).unwrap();
    // A stored step ahead of the clock (the clock was set back).
    let rec = s.f.record_path("bin");
    let text = fs::read_to_string(&rec).unwrap();
    let future = unix_now() / 30 + 1000;
    let text = text.replace("last_step = 0", &format!("last_step = {future}"));
    assert!(text.contains(&format!("last_step = {future}")));
    fs::write(&rec, text).unwrap();

    let (rc, v) = store_check(&s);
    assert_eq!(rc, Some(1));
    let mut got = problems(&v);
    got.sort();
    assert_eq!(
        got,
        [
            "store.clock_behind",
            "store.lock_unusable",
            "store.lock_unusable",
            "store.temp_unusable"
        ],
        "{v:#}"
    );
    let behind = &with_id(&v, "store.clock_behind")[0];
    assert!(
        behind["message"].as_str().unwrap().contains("bin"),
        "{behind}"
    );
    assert!(
        behind["fix"]
            .as_str()
            .unwrap()
            .contains("otpgate unlock bin"),
        "{behind}"
    );
    let text = v.to_string();
    assert!(
        text.contains("is a directory") && text.contains("symbolic link") && text.contains("FIFO"),
        "{text}"
    );

    // A store below a directory others can write: they can swap the store.
    let parent = s.f.tmp.path().join("mfa");
    let store = parent.join("otpgate");
    fs::create_dir_all(&store).unwrap();
    fs::set_permissions(&store, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o777)).unwrap();
    let run = |store: &Path| {
        let o = Command::new(BIN)
            .arg("--store")
            .arg(store)
            .args([
                "--config",
                "/nonexistent",
                "doctor",
                "--json",
                "--check",
                "store",
            ])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_findings_are_well_formed(&v);
        (o.status.code(), v)
    };
    let (rc, v) = run(&store);
    assert_eq!(rc, Some(1));
    let unsafe_parent = with_id(&v, "store.parent_unsafe");
    assert_eq!(unsafe_parent.len(), 1, "{v:#}");
    assert_eq!(unsafe_parent[0]["location"], parent.display().to_string());
    // A root-owned sticky directory (like /tmp) is fine.
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o1777)).unwrap();
    let (rc, v) = run(&store);
    assert_eq!(problems(&v), Vec::<String>::new(), "{v:#}");
    assert_eq!(rc, Some(0));
}

#[test]
fn doctor_passes_a_good_setup_and_names_each_problem_with_its_fix() {
    let s = Setup::new("cli-doctor");
    s.f.enroll("daemon", Default::default(), 1);
    s.write("common-auth", DEBIAN_COMMON_AUTH);
    s.write(
        "sudo",
        "@include common-auth\nauth required pam_otpgate.so\n",
    );
    let doctor = || s.json(&["--check", "module,store,pam"]);
    let (rc, v) = doctor();
    assert_eq!(rc, Some(0), "{v:#}");
    assert_eq!(v["healthy"], true);

    // auth optional, a sufficient module before the code, a loose record.
    s.write(
        "sudo",
        "@include common-auth\nauth optional pam_otpgate.so\n",
    );
    s.write(
        "login",
        "auth sufficient pam_permit.so\nauth required pam_otpgate.so\n",
    );
    fs::set_permissions(s.f.record_path("daemon"), fs::Permissions::from_mode(0o640)).unwrap();
    let (rc, v) = doctor();
    assert_eq!(rc, Some(1));
    let errors: Vec<&Value> = findings(&v)
        .iter()
        .filter(|x| x["level"] == "error")
        .collect();
    assert_eq!(errors.len(), 3, "{v:#}");
    let sudo = &with_id(&v, "pam.failure_ignored")[0];
    assert_eq!(sudo["location"], format!("{}/sudo:2", s.pam.display()));
    assert!(
        sudo["fix"]
            .as_str()
            .unwrap()
            .contains("auth required pam_otpgate.so")
    );
    let login = &with_id(&v, "pam.module_skippable")[0];
    assert_eq!(login["location"], format!("{}/login:1", s.pam.display()));
    assert!(login["message"].as_str().unwrap().contains("pam_permit.so"));
    let rec = &with_id(&v, "store.record_unreadable")[0];
    assert!(rec["message"].as_str().unwrap().contains("mode 0640"));
    assert!(rec["fix"].as_str().unwrap().contains("chmod 0600"));

    // sshd settings, evaluated by the real `sshd -T`, whether or not
    // /run/sshd exists on this machine (doctor creates nothing).
    let hostkey = s.f.tmp.path().join("hostkey");
    common::system::ssh_keygen(&hostkey);
    let conf = s.f.tmp.path().join("sshd_config");
    let write_conf = |methods: &str, password: &str| {
        fs::write(&conf, format!("HostKey {}\nUsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods {methods}\nPasswordAuthentication {password}\n", hostkey.display())).unwrap();
    };
    let run_dir_before = Path::new("/run/sshd").exists();
    write_conf("publickey,keyboard-interactive", "no");
    let sshd = || s.json(&["--check", "sshd", "--sshd-config", conf.to_str().unwrap()]);
    let (rc, v) = sshd();
    assert_eq!(rc, Some(0), "{v:#}");
    assert_eq!(with_id(&v, "sshd.ok").len(), 1, "{v:#}");
    write_conf("any", "yes");
    let (rc, v) = sshd();
    assert_eq!(rc, Some(0), "warnings only: {v:#}");
    assert_eq!(problems(&v), ["sshd.methods_any", "sshd.password_auth"]);
    let text = v.to_string();
    assert!(
        text.contains("a key alone logs in without a code")
            && text.contains("PasswordAuthentication no"),
        "{text}"
    );
    assert_eq!(
        with_id(&v, "sshd.methods_any")[0]["location"],
        conf.display().to_string()
    );
    assert_eq!(
        Path::new("/run/sshd").exists(),
        run_dir_before,
        "doctor changed /run"
    );
}

#[test]
fn doctor_wants_the_fleet_object_beside_the_module_for_a_database_store() {
    let s = Setup::new("doctor-fleet");
    let site = s.f.tmp.path().join("otpgate.toml");
    let module_check = |store: &str| {
        fs::write(&site, format!("store = \"{store}\"\n")).unwrap();
        let o = Command::new(BIN)
            .arg("--config")
            .arg(&site)
            .args(["doctor", "--json", "--check", "module", "--module-dir"])
            .arg(&s.modules)
            .env_remove("SUDO_USER")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_findings_are_well_formed(&v);
        (o.status.code(), v)
    };
    let database = "postgresql://otpgate@%2Frun%2Fpostgresql/otpgate";
    let fleet = s.modules.join("pam_otpgate_fleet.so");
    let (code, v) = module_check(database);
    assert_eq!(code, Some(1), "{v:#}");
    let missing = &with_id(&v, "module.fleet_missing")[0];
    assert_eq!(
        missing["location"].as_str(),
        Some(fleet.to_str().unwrap()),
        "{v:#}"
    );
    assert!(
        missing["fix"].as_str().unwrap().contains("install -o root"),
        "{v:#}"
    );

    // Each thing a login checks before handing over, doctor checks too.
    let refused = |why: &str| {
        let (code, v) = module_check(database);
        assert_eq!(code, Some(1), "{why}: {v:#}");
        let f = &with_id(&v, "module.fleet_refused")[0];
        assert!(f["message"].as_str().unwrap().contains(why), "{v:#}");
    };
    fs::copy(fleet_object_path(), &fleet).unwrap();
    fs::set_permissions(&fleet, fs::Permissions::from_mode(0o664)).unwrap();
    refused("pam_otpgate_fleet.so: writable by group or others");
    fs::set_permissions(&fleet, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&s.modules, fs::Permissions::from_mode(0o775)).unwrap();
    refused("security: writable by group or others");
    fs::set_permissions(&s.modules, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(&fleet, "not an ELF file\n").unwrap();
    refused("cannot load");
    fs::copy(module_path(), &fleet).unwrap();
    refused("is not otpgate's fleet object");

    fs::copy(fleet_object_path(), &fleet).unwrap();
    let (code, v) = module_check(database);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(with_id(&v, "module.fleet_ok").len(), 1, "{v:#}");

    // A file store never loads it: nothing said about it, present or not.
    fs::remove_file(&fleet).unwrap();
    let (code, v) = module_check(&s.f.store.display().to_string());
    assert_eq!(code, Some(0), "{v:#}");
    assert!(
        findings(&v)
            .iter()
            .all(|f| !f["id"].as_str().unwrap().contains("fleet")),
        "{v:#}"
    );
}
