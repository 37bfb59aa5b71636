//! Real `sudo` with its own PAM service (sudoers `pam_service`): password,
//! then code. Driven by `expect` on a pty.

mod common;

use common::system::*;
use common::*;
use otpgate::core::otp::OtpParams;
use std::path::Path;

#[test]
fn sudo_asks_password_then_code() {
    if !is_root() {
        eprintln!("skipped: needs root (CI runs as root)");
        return;
    }
    let user = TestUser::create("otpgate-t-sudo", "Sudo-pass-42");
    let f = Fixture::new("sudo", "");
    let mut cleanup = Cleanup::default();
    let service = format!("otpgate-test-sudo-{}", std::process::id());
    cleanup.write(
        &Path::new("/etc/pam.d").join(&service),
        &format!(
            "auth required pam_unix.so\nauth required {} store={}\naccount required pam_unix.so\nsession required pam_permit.so\n",
            module_path().display(),
            f.store.display()
        ),
        0o644,
    );
    cleanup.sudoers(
        f.tmp.path(),
        &service,
        &format!(
            "Defaults:{u} pam_service={service}, !lecture, timestamp_timeout=0, passwd_tries=1\n{u} ALL=(root) ALL\n",
            u = user.name
        ),
    );
    let e = f.enroll(
        &user.name,
        OtpParams {
            period: 60,
            ..OtpParams::default()
        },
        1,
    );
    let sudo = |answers: &[&str]| {
        expect_run(
            f.tmp.path(),
            answers,
            &[
                "runuser",
                "-u",
                &user.name,
                "--",
                "sudo",
                "-k",
                "sh",
                "-c",
                "echo root-is-$(id -u)",
            ],
        )
    };

    let (rc, text) = sudo(&["Sudo-pass-42", &e.code(0)]);
    assert_eq!(rc, 0, "{text}");
    assert!(text.contains("password for otpgate-t-sudo"), "{text}");
    assert!(text.contains("Verification code: "), "{text}");
    assert!(text.contains("root-is-0"), "{text}");

    let wrong = if e.code(1) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (rc, text) = sudo(&["Sudo-pass-42", wrong]);
    assert_ne!(rc, 0, "{text}");
    assert!(!text.contains("root-is-0"), "{text}");

    let (rc, text) = sudo(&["Sudo-pass-42", &e.code(0)]);
    assert!(
        rc != 0 && !text.contains("root-is-0"),
        "replayed code: {text}"
    );
}
