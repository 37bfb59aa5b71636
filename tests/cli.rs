//! The `otpgate` command as an admin runs it; codes from `oathtool`; the
//! printed QR code decoded by `zbarimg`.

mod common;

use common::*;
use otpgate::core::otp::{Algorithm, OtpParams};
use otpgate::pam::client::{PAM_AUTH_ERR, PAM_SUCCESS};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_otpgate");
/// A fixed secret so tests can compute codes before enrolling.
const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn otpgate(f: &Fixture, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .arg("--store")
        .arg(&f.store)
        .arg("--config")
        .arg(f.tmp.path().join("no-site-config.toml"))
        .args(args)
        .env_remove("SUDO_USER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", stdout(o)))
}

fn code_now(params: OtpParams) -> String {
    oathtool(SECRET, params, unix_now())
}

#[test]
fn enroll_json_prints_one_object_and_saves_a_private_record() {
    let f = Fixture::new("cli-json", "");
    let o = otpgate(
        &f,
        &[
            "enroll",
            "otpgate-t1",
            "--no-verify",
            "--json",
            "--issuer",
            "Acme",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let secret = v["secret"].as_str().unwrap();
    assert_eq!(
        v["uri"],
        format!("otpauth://totp/Acme:otpgate-t1?secret={secret}&issuer=Acme")
    );
    let codes = v["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let meta = fs::metadata(f.record_path("otpgate-t1")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(f.record_path("otpgate-t1")).unwrap();
    for c in codes {
        let c = c.as_str().unwrap();
        assert!(
            !text.contains(c) && !text.contains(&c.replace('-', "")),
            "recovery code stored in clear"
        );
    }
    // The enrolled secret logs in through PAM with a code from oathtool.
    let code = oathtool(secret, OtpParams::default(), unix_now());
    assert_eq!(f.login("otpgate-t1", &code).code, PAM_SUCCESS);
    assert_eq!(
        f.login("otpgate-t1", codes[0].as_str().unwrap()).code,
        PAM_SUCCESS
    );
}

#[test]
fn enroll_verifies_a_code_and_uses_it_up() {
    let f = Fixture::new("cli-code", "");
    let wrong = otpgate(
        &f,
        &[
            "enroll",
            "otpgate-t1",
            "--secret",
            SECRET,
            "--code",
            "000000",
            "--qr",
            "none",
        ],
        "",
    );
    if code_now(OtpParams::default()) != "000000" {
        assert_eq!(wrong.status.code(), Some(1));
        assert!(
            stderr(&wrong).contains("otpgate: the code does not match ("),
            "{}",
            stderr(&wrong)
        );
        assert!(
            !f.record_path("otpgate-t1").exists(),
            "a wrong --code saves nothing"
        );
    }
    let code = code_now(OtpParams::default());
    let o = otpgate(
        &f,
        &[
            "enroll",
            "otpgate-t1",
            "--secret",
            SECRET,
            "--code",
            &code,
            "--qr",
            "none",
        ],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP"),
        "{out}"
    );
    assert!(out.contains("Recovery codes"), "{out}");
    assert!(!out.contains(&code), "the expected code is never printed");
    // The code that proved the enrollment cannot be replayed at login.
    assert_eq!(f.login("otpgate-t1", &code).code, PAM_AUTH_ERR);
}

#[test]
fn enroll_asks_three_times_then_saves_nothing() {
    let f = Fixture::new("cli-ask", "");
    let o = otpgate(
        &f,
        &["enroll", "otpgate-t1", "--secret", SECRET, "--qr", "none"],
        "1\n2\n3\n",
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o)
            .matches("Enter the code the app shows now: ")
            .count(),
        3
    );
    assert!(!f.record_path("otpgate-t1").exists());
    let input = format!("111\n{}\n", code_now(OtpParams::default()));
    let o = otpgate(
        &f,
        &["enroll", "otpgate-t1", "--secret", SECRET, "--qr", "none"],
        &input,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(f.record_path("otpgate-t1").exists());
}

#[test]
fn every_algorithm_digits_and_period_the_cli_offers_match_oathtool() {
    let f = Fixture::new("cli-params", "");
    for (i, alg) in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512]
        .into_iter()
        .enumerate()
    {
        for digits in [6u8, 8] {
            for period in [15u32, 30, 60, 120] {
                let user = format!("otpgate-t{i}{digits}{period}");
                let params = OtpParams {
                    algorithm: alg,
                    digits,
                    period,
                };
                let code = code_now(params);
                let o = otpgate(
                    &f,
                    &[
                        "enroll",
                        &user,
                        "--secret",
                        SECRET,
                        "--algorithm",
                        &alg.as_str().to_lowercase(),
                        "--digits",
                        &digits.to_string(),
                        "--period",
                        &period.to_string(),
                        "--code",
                        &code,
                        "--json",
                        "--recovery-codes",
                        "1",
                    ],
                    "",
                );
                assert_eq!(
                    o.status.code(),
                    Some(0),
                    "{alg} {digits} {period}: {}",
                    stderr(&o)
                );
                let uri = json(&o)["uri"].as_str().unwrap().to_string();
                assert_eq!(uri.contains("algorithm="), alg != Algorithm::Sha1, "{uri}");
                assert_eq!(uri.contains("digits=8"), digits == 8, "{uri}");
                assert_eq!(uri.contains("period="), period != 30, "{uri}");
            }
        }
    }
}

#[test]
fn re_enroll_needs_force_and_force_replaces_the_secret() {
    let f = Fixture::new("cli-force", "");
    assert_eq!(
        otpgate(&f, &["enroll", "otpgate-t1", "--no-verify", "--json"], "")
            .status
            .code(),
        Some(0)
    );
    let before = fs::read(f.record_path("otpgate-t1")).unwrap();
    let o = otpgate(&f, &["enroll", "otpgate-t1", "--no-verify", "--json"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already enrolled"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(fs::read(f.record_path("otpgate-t1")).unwrap(), before);
    let o = otpgate(
        &f,
        &[
            "enroll",
            "otpgate-t1",
            "--no-verify",
            "--json",
            "--force",
            "--secret",
            "-",
        ],
        &format!("{}\n", SECRET.to_lowercase()),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["secret"], SECRET);
}

#[test]
fn printed_qr_code_decodes_to_the_printed_uri() {
    let f = Fixture::new("cli-qr", "");
    for style in ["ansi", "utf8"] {
        let user = format!("otpgate-t-{style}");
        let o = otpgate(
            &f,
            &[
                "enroll",
                &user,
                "--no-verify",
                "--qr",
                style,
                "--issuer",
                "Acme Corp",
                "--digits",
                "8",
            ],
            "",
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = stdout(&o);
        let uri = out
            .lines()
            .find_map(|l| l.strip_prefix("URI: "))
            .unwrap()
            .to_string();
        let picture: String = out
            .lines()
            .filter(|l| {
                l.contains('█')
                    || l.contains('▀')
                    || l.contains('▄')
                    || (l.starts_with("\x1b[30;107m"))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        if style == "ansi" {
            assert!(
                picture.lines().all(|l| l.starts_with("\x1b[30;107m")),
                "forced colours"
            );
        }
        let modules = otpgate::cli::qr::parse(&picture);
        assert!(modules.len() > 20);
        // PBM: 1 is black. Scale each module to 6x6 pixels for the decoder.
        let scale = 6;
        let (h, w) = (modules.len(), modules[0].len());
        let mut pbm = format!("P1\n{} {}\n", w * scale, h * scale);
        for row in &modules {
            for _ in 0..scale {
                for &m in row {
                    for _ in 0..scale {
                        pbm.push_str(if m { "1 " } else { "0 " });
                    }
                }
                pbm.push('\n');
            }
        }
        let img = f.tmp.path().join(format!("qr-{style}.pbm"));
        fs::write(&img, pbm).unwrap();
        let z = Command::new("zbarimg")
            .args(["--raw", "-q"])
            .arg(&img)
            .output()
            .expect("zbarimg is installed by scripts/test.sh");
        assert!(
            z.status.success(),
            "zbarimg: {}",
            String::from_utf8_lossy(&z.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&z.stdout).trim_end(), uri);
        assert!(
            uri.contains("Acme%20Corp") && uri.ends_with("&digits=8"),
            "{uri}"
        );
    }
}

#[test]
fn recovery_replaces_every_earlier_code() {
    let f = Fixture::new("cli-recovery", "");
    let old = json(&otpgate(
        &f,
        &["enroll", "otpgate-t1", "--no-verify", "--json"],
        "",
    ));
    let o = otpgate(
        &f,
        &["recovery", "otpgate-t1", "--count", "4", "--json"],
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let new = json(&o)["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(new.len(), 4);
    assert_eq!(
        f.login("otpgate-t1", old["recovery_codes"][0].as_str().unwrap())
            .code,
        PAM_AUTH_ERR
    );
    assert_eq!(
        f.login("otpgate-t1", new[3].as_str().unwrap()).code,
        PAM_SUCCESS
    );
    let o = otpgate(&f, &["recovery", "otpgate-t9"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("otpgate: otpgate-t9 is not enrolled ("),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        otpgate(&f, &["unlock", "otpgate-t9"], "").status.code(),
        Some(1)
    );
    assert!(
        !f.store.join(".otpgate-t9.lock").exists(),
        "no lock file for a name that is not enrolled"
    );
}

#[test]
fn status_unlock_and_disable() {
    let f = Fixture::new("cli-admin", "deny=3");
    otpgate(
        &f,
        &[
            "enroll",
            "otpgate-t1",
            "--no-verify",
            "--json",
            "--recovery-codes",
            "5",
        ],
        "",
    );
    otpgate(&f, &["enroll", "otpgate-t2", "--no-verify", "--json"], "");
    for _ in 0..3 {
        f.login("otpgate-t1", "000000x");
    }
    let v = json(&otpgate(&f, &["status", "otpgate-t1", "--json"], ""));
    assert_eq!(v["failures"], 3);
    assert_eq!(v["locked"], true);
    assert_eq!(v["recovery_codes_left"], 5);
    let all = json(&otpgate(&f, &["status", "--json"], ""));
    let users: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users, ["otpgate-t1", "otpgate-t2"]);
    let text = stdout(&otpgate(&f, &["status"], ""));
    // A broken record shows up in the list, and the list exits 1.
    fs::write(f.record_path("otpgate-t3"), "version = 1\nsecret = ").unwrap();
    fs::set_permissions(
        f.record_path("otpgate-t3"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let broken = otpgate(&f, &["status"], "");
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        stdout(&broken).contains("otpgate-t3") && stdout(&broken).contains("ERROR: "),
        "{}",
        stdout(&broken)
    );
    fs::remove_file(f.record_path("otpgate-t3")).unwrap();
    assert!(
        text.contains("otpgate-t1") && text.contains("otpgate-t2"),
        "{text}"
    );

    assert_eq!(
        otpgate(&f, &["unlock", "otpgate-t1"], "").status.code(),
        Some(0)
    );
    let v = json(&otpgate(&f, &["status", "otpgate-t1", "--json"], ""));
    assert_eq!(
        (v["failures"].as_u64(), v["locked"].as_bool()),
        (Some(0), Some(false))
    );

    let o = otpgate(&f, &["disable", "otpgate-t2"], "y\n");
    assert_eq!(
        o.status.code(),
        Some(2),
        "no terminal and no --yes: refused"
    );
    assert!(f.record_path("otpgate-t2").exists());
    assert_eq!(
        otpgate(&f, &["disable", "otpgate-t2", "--yes"], "")
            .status
            .code(),
        Some(0)
    );
    assert!(!f.record_path("otpgate-t2").exists());
    assert_eq!(
        otpgate(&f, &["disable", "otpgate-t2", "--yes"], "")
            .status
            .code(),
        Some(1)
    );
    let o = otpgate(&f, &["status", "otpgate-t2", "--json"], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json(&o)["enrolled"], false);
}

#[test]
fn usage_errors_exit_2() {
    let f = Fixture::new("cli-usage", "");
    for args in [
        vec!["enroll", "otpgate-t1", "--digits", "7"],
        vec!["enroll", "otpgate-t1", "--period", "5", "--no-verify"],
        vec!["enroll", "otpgate-t1", "--secret", "!!", "--no-verify"],
        vec!["enroll", "../etc", "--no-verify"],
        vec!["frobnicate"],
    ] {
        let o = otpgate(&f, &args, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn without_root_it_explains_sudo() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sudo otpgate"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn admin_changes_leave_an_audit_line_in_syslog() {
    use std::os::unix::net::UnixDatagram;
    if !nix::unistd::geteuid().is_root() {
        return; // a private mount namespace needs root; CI runs as root
    }
    let f = Fixture::new("cli-audit", "");
    // The command runs in its own mount namespace where /dev/log is our socket.
    let sock_path = f.tmp.path().join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let run = |args: &str| {
        let script = format!(
            "mount -t tmpfs none /dev && touch /dev/log && mount --bind {} /dev/log && exec {BIN} --store {} --config /nonexistent {args}",
            sock_path.display(),
            f.store.display()
        );
        let o = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run("enroll otpgate-t1 --no-verify --json --recovery-codes 2");
    run("unlock otpgate-t1");
    run("disable otpgate-t1 --yes");
    sock.set_nonblocking(true).unwrap();
    let mut lines = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(lines.len(), 3, "{lines:#?}");
    // <85> = LOG_AUTHPRIV | LOG_NOTICE.
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("<85>") && l.contains("otpgate[")),
        "{lines:#?}"
    );
    assert!(
        lines[0].contains("otpgate: action=enroll user=otpgate-t1 by=root store="),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with(
            "replaced=false verified=false algorithm=SHA1 digits=6 period=30 recovery_codes=2"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("action=unlock user=otpgate-t1"));
    assert!(lines[2].contains("action=disable user=otpgate-t1"));
}
