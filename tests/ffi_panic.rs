//! A bug in the module (a panic) stops at the FFI boundary: libpam gets
//! PAM_ABORT and the host process lives on. The panicking module is built
//! with the test-only feature `panic-test` into a target dir of its own;
//! the module the suite (and install.sh) builds does not know the option.

mod common;

use common::*;
use otpgate::core::otp::OtpParams;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;

/// Builds the module and its fleet object with `--features panic-test`
/// into `target/panic-test` and returns the path of the module.
fn panicking_module() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("panic-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--locked",
            "--offline",
            "--features",
            "otpgate/panic-test",
            "-p",
            "otpgate",
            "-p",
            "otpgate-fleet",
            "--lib",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build --features otpgate/panic-test: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let so = target.join("debug").join("libotpgate.so");
    assert!(so.exists(), "{}", so.display());
    assert!(so.with_file_name("libotpgate_fleet.so").exists());
    so
}

/// The shared libraries `so` asks the dynamic loader for (readelf -d).
fn needed(so: &std::path::Path) -> Vec<String> {
    let out = Command::new("readelf").arg("-d").arg(so).output().unwrap();
    assert!(out.status.success(), "readelf -d {}", so.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.trim_end_matches(']').to_string()))
        .collect()
}

#[test]
fn a_panic_in_the_module_is_pam_abort_and_the_host_survives() {
    let so = panicking_module();
    // The unwinder that stops the panic is the module's own (build.rs links
    // libgcc_eh.a), so sshd and sudo need not load libgcc_s for each login.
    let fleet = so.with_file_name("libotpgate_fleet.so");
    for module in [&so, &fleet, &module_path(), &fleet_object_path()] {
        let libs = needed(module);
        assert!(libs.iter().any(|l| l == "libc.so.6"), "{libs:?}");
        assert!(
            !libs.iter().any(|l| l.starts_with("libgcc_s")),
            "{}: {libs:?}",
            module.display()
        );
    }
    let f = Fixture::new("panic", "");
    let user = "mail";
    let e = f.enroll(user, OtpParams::default(), 1);
    let stack = |options: &str| {
        f.set_stack(&format!(
            "auth required {} store={} {} {options}",
            so.display(),
            f.store.display(),
            owner_ok()
        ))
    };
    // The same build without the option logs in: it is the option that panics.
    stack("");
    let (ok, _, text) = f.pamtester_run(f.pamtester(user), format!("{}\n", e.code(0)).as_bytes());
    assert!(ok, "{text}");

    stack("panic_for_test");
    // Also in a host that has the system's unwinder (and a C++ runtime)
    // loaded already: the module's own unwinder is the one that runs.
    for preload in [
        "libpam_wrapper.so",
        "libpam_wrapper.so libgcc_s.so.1 libstdc++.so.6",
    ] {
        let mut cmd = f.pamtester(user);
        cmd.env("LD_PRELOAD", preload);
        let mut p = AtPrompt::spawn(cmd);
        p.answer(&e.code(1));
        let done = p.finish();
        let text = format!("{preload}: {}{}", done.stdout, done.stderr);
        assert_eq!(
            done.status.signal(),
            None,
            "pamtester was killed by a signal: {text}"
        );
        assert_eq!(done.status.code(), Some(1), "{text}");
        // pam_strerror(PAM_ABORT), as pamtester prints the result.
        assert!(text.contains("Critical error"), "{text}");
        assert!(text.contains("otpgate: panic_for_test"), "{text}");
        assert!(!text.contains("successfully authenticated"), "{text}");
    }

    // A panic in the fleet object (a database login handed over) stops at
    // its own boundary, and the module passes PAM_ABORT on.
    let site = f.tmp.path().join("otpgate.toml");
    std::fs::write(
        &site,
        "store = \"postgresql://otpgate@%2Fnonexistent-otpgate-socket-dir/otpgate\"\n",
    )
    .unwrap();
    f.set_stack(&format!(
        "auth required {} config={} panic_for_test=fleet",
        so.display(),
        site.display()
    ));
    let p = AtPrompt::spawn(f.pamtester(user));
    let done = p.finish();
    let text = format!("{}{}", done.stdout, done.stderr);
    assert_eq!(done.status.signal(), None, "killed by a signal: {text}");
    assert_eq!(done.status.code(), Some(1), "{text}");
    assert!(text.contains("Critical error"), "{text}");
    assert!(text.contains("otpgate: panic_for_test"), "{text}");
}

#[test]
fn the_shipped_module_does_not_know_panic_for_test() {
    // The suite builds the module without `panic-test` (as install.sh does).
    let f = Fixture::new("no-panic", "panic_for_test");
    let user = "mail";
    let e = f.enroll(user, OtpParams::default(), 1);
    let (ok, logs, text) =
        f.pamtester_run(f.pamtester(user), format!("{}\n", e.code(0)).as_bytes());
    assert!(!ok, "{text}");
    assert!(!text.contains("Verification code"), "{text}");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(
        logs[0].ends_with(
            "result=fail reason=config_error detail=\"unknown or malformed option \\x22panic_for_test\\x22\""
        ),
        "{logs:?}"
    );
}
