//! Fixtures that touch the system, for the real sshd and sudo tests (root
//! only): PAM service files under our own `otpgate-test-*` names, sudoers
//! drop-ins, test users. Everything is removed on drop, also when a test fails.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Things to undo, in reverse order, when the test ends.
#[derive(Default)]
pub struct Cleanup {
    files: Vec<PathBuf>,
    children: Vec<Child>,
}

impl Cleanup {
    /// Writes `path` (outside the test's temp dir) and removes it at the end.
    pub fn write(&mut self, path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("otpgate-test-"),
            "system files the tests write carry our prefix: {}",
            path.display()
        );
        self.files.push(path.to_path_buf());
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Installs a sudoers drop-in after `visudo -c` accepted it, so a
    /// mistake here can never break sudo for the machine.
    pub fn sudoers(&mut self, dir: &Path, name: &str, text: &str) {
        let draft = dir.join("sudoers.draft");
        fs::write(&draft, text).unwrap();
        let ok = Command::new("visudo")
            .arg("-cqf")
            .arg(&draft)
            .status()
            .unwrap();
        assert!(ok.success(), "sudoers draft rejected by visudo: {text}");
        self.write(&Path::new("/etc/sudoers.d").join(name), text, 0o440);
    }

    pub fn child(&mut self, c: Child) {
        self.children.push(c);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for f in self.files.iter().rev() {
            let _ = fs::remove_file(f);
        }
    }
}

/// A free port on 127.0.0.1 that no other test in this process was given:
/// the kernel may hand the same ephemeral port to two tests asking at once
/// once the probing socket is closed, before either server binds it.
pub fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if given.insert(port) {
            return port;
        }
    }
}

/// Drives an interactive program on a pty with `expect`: every prompt that
/// ends in `: ` gets the next answer. Returns (exit code, everything shown).
pub fn expect_run(dir: &Path, answers: &[&str], argv: &[&str]) -> (i32, String) {
    expect_shell(dir, answers, argv, "")
}

/// Like [`expect_run`], and types `shell_cmd` at the first shell prompt.
pub fn expect_shell(dir: &Path, answers: &[&str], argv: &[&str], shell_cmd: &str) -> (i32, String) {
    let script = dir.join("drive.exp");
    fs::write(
        &script,
        r#"set timeout 60
set answers $env(OTPGATE_ANSWERS)
set shell_cmd $env(OTPGATE_SHELL_CMD)
spawn -noecho {*}$argv
expect {
    -re {[$#] $} {
        if {$shell_cmd ne ""} { send -- "$shell_cmd; exit\r"; set shell_cmd "" }
        exp_continue
    }
    -re {(code|Password|password)[^\n]*: $} {
        if {[llength $answers] == 0} { send -- "\r" } else {
            send -- "[lindex $answers 0]\r"
            set answers [lrange $answers 1 end]
        }
        exp_continue
    }
    eof
}
lassign [wait] pid spawnid os_error value
exit $value
"#,
    )
    .unwrap();
    let out = Command::new("expect")
        .arg(&script)
        .args(argv)
        .env("OTPGATE_ANSWERS", answers.join(" "))
        .env("OTPGATE_SHELL_CMD", shell_cmd)
        .stdin(Stdio::null())
        .output()
        .expect("expect is installed by scripts/test.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A private sshd on 127.0.0.1 whose PAM service is its own (sshd names the
/// service after its program name, so it runs through a symlink).
pub struct Sshd {
    pub port: u16,
    pub service: String,
}

impl Sshd {
    pub fn start(
        cleanup: &mut Cleanup,
        dir: &Path,
        service: &str,
        pam_stack: &str,
        methods: &str,
    ) -> Sshd {
        fs::create_dir_all("/run/sshd").unwrap();
        let hostkey = dir.join("hostkey");
        ssh_keygen(&hostkey);
        cleanup.write(&Path::new("/etc/pam.d").join(service), pam_stack, 0o644);
        let program = dir.join(service);
        let _ = fs::remove_file(&program);
        std::os::unix::fs::symlink("/usr/sbin/sshd", &program).unwrap();
        let port = free_port();
        let config = dir.join(format!("{service}.conf"));
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hostkey}\nPidFile {dir}/{service}.pid\n\
                 UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
                 PubkeyAuthentication yes\nAuthenticationMethods {methods}\n\
                 AuthorizedKeysFile {dir}/keys/%u\nStrictModes no\nAllowUsers otpgate-t*\n\
                 MaxAuthTries 10\nLogLevel VERBOSE\n",
                hostkey = hostkey.display(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        let mut child = Command::new(&program)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Ready when it says so; keep draining its log so it never blocks.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server listening on")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        cleanup.child(child);
        rx.recv().expect("sshd did not start (see its log)");
        Sshd {
            port,
            service: service.to_string(),
        }
    }

    /// Installs `pubkey` as the only authorised key of `user`.
    pub fn authorize(dir: &Path, user: &str, pubkey: &str) {
        fs::create_dir_all(dir.join("keys")).unwrap();
        fs::write(dir.join("keys").join(user), pubkey).unwrap();
    }
}

/// A client key pair in `dir`; returns (private key path, public key text).
pub fn client_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("id_ed25519");
    ssh_keygen(&key);
    let public = fs::read_to_string(dir.join("id_ed25519.pub")).unwrap();
    (key, public)
}

/// An ed25519 key pair at `path` (and `path.pub`), made once.
pub fn ssh_keygen(path: &Path) {
    if path.exists() {
        return;
    }
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success(), "ssh-keygen {}", path.display());
}
