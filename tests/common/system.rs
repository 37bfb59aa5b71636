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
        Sshd::start_logging(cleanup, dir, service, pam_stack, methods, None)
    }

    /// Like [`Sshd::start`]; with `tap`, sshd runs where `/dev/log` is the
    /// tap's socket (what PAM modules log reaches the test).
    pub fn start_logging(
        cleanup: &mut Cleanup,
        dir: &Path,
        service: &str,
        pam_stack: &str,
        methods: &str,
        tap: Option<&SyslogTap>,
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
        let program = program.display().to_string();
        let config = config.display().to_string();
        let mut argv = vec![program.as_str(), "-D", "-e", "-f", config.as_str()];
        let wrapped;
        if let Some(tap) = tap {
            wrapped = tap.argv(&argv);
            argv = wrapped.iter().map(String::as_str).collect();
        }
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
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

/// Sets up a private `/dev` in a new mount namespace: a tmpfs with every
/// entry of the real `/dev` bound back (devices, `pts`, `shm`, the fd
/// symlinks; `ptmx` as the usual link to `pts/ptmx`) and `/dev/log` bound to
/// the socket `$2`; then runs the command.
/// `$1` is an empty directory to hold the real `/dev` meanwhile.
const PRIVATE_DEV_LOG: &str = r#"set -e
old=$1; sock=$2; shift 2
mount --rbind /dev "$old"
mount -t tmpfs -o mode=0755 otpgate-test-dev /dev
for p in "$old"/* "$old"/.[!.]*; do
    [ -e "$p" ] || [ -L "$p" ] || continue
    n=${p##*/}
    # A bound ptmx finds no devpts next to it: use the one in pts/.
    if [ "$n" = ptmx ]; then ln -s pts/ptmx /dev/ptmx
    elif [ -L "$p" ]; then cp -P "$p" "/dev/$n"
    elif [ -d "$p" ]; then mkdir "/dev/$n"; mount --rbind "$p" "/dev/$n"
    else touch "/dev/$n"; mount --bind "$p" "/dev/$n"
    fi
done
touch /dev/log
mount --bind "$sock" /dev/log
exec "$@""#;

/// What programs write to syslog, caught without a syslog daemon: they run
/// in a private mount namespace (root only) whose `/dev/log` is a datagram
/// socket this test has bound. A program's syslog() sends before it goes on,
/// so once a login has ended, its lines are here.
pub struct SyslogTap {
    sock: std::os::unix::net::UnixDatagram,
    sock_path: PathBuf,
    old_dev: PathBuf,
}

impl SyslogTap {
    pub fn new(dir: &Path) -> SyslogTap {
        let sock_path = dir.join("syslog.sock");
        let _ = fs::remove_file(&sock_path);
        let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
        sock.set_nonblocking(true).unwrap();
        let old_dev = dir.join("real-dev");
        fs::create_dir_all(&old_dev).unwrap();
        SyslogTap {
            sock,
            sock_path,
            old_dev,
        }
    }

    /// `argv` run in the private namespace (the program is exec'd: its pid
    /// is the one spawned).
    pub fn argv(&self, argv: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            PRIVATE_DEV_LOG,
            "sh",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(self.old_dev.display().to_string());
        v.push(self.sock_path.display().to_string());
        v.extend(argv.iter().map(|s| s.to_string()));
        v
    }

    /// Every line received since the last call.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.sock.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        lines
    }

    /// The module's lines (`otpgate: user=...`) since the last call, each
    /// from `otpgate:` on.
    pub fn otpgate_lines(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|l| l.find("otpgate: user=").map(|i| l[i..].to_string()))
            .collect()
    }
}

/// Removes `/tmp/pam.X` that libpam-wrapper left for the (dead) process
/// `pid` (the tests, and the soak through `#[path]`).
pub fn remove_pam_wrapper_dir(pid: u32) {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() == 5
            && name.starts_with("pam.")
            && fs::read_to_string(e.path().join("pid")).is_ok_and(|p| p.trim() == pid.to_string())
        {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}
