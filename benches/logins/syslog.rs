//! A syslog daemon of the bench's own at `/dev/log`, in a mount namespace
//! of the child's own (the machine's `/dev` is not touched).
//!
//! Every module logs each attempt. With no daemon listening, glibc's
//! `syslog` fails to connect, and once google-authenticator has called
//! `openlog(LOG_CONS)` (which `closelog` does not undo) every later message
//! of every module in the process goes to `/dev/console` instead: about a
//! millisecond each on a VM's serial console, a cost no real host with
//! journald or rsyslog pays. Here each message costs what it costs with a
//! daemon: one datagram. The lines are kept, so the bench can also check
//! that pam_otpgate logged each attempt as intended.

use std::fs::{self, File};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use crate::fail;

/// Device nodes the modules and libraries may open.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

pub struct Sink {
    lines: Arc<Mutex<Vec<String>>>,
}

fn mounted(what: &str, r: nix::Result<()>) {
    if let Err(e) = r {
        fail(&format!("private /dev/log: {what}: {e}"));
    }
}

/// Puts a fresh `/dev` (the usual device nodes, bound from the real one,
/// and a `log` socket) over this process's view of `/dev`.
pub fn install(dir: &Path) -> Sink {
    mounted("unshare", unshare(CloneFlags::CLONE_NEWNS));
    let none = None::<&str>;
    mounted(
        "make / private",
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none),
    );
    let host = dir.join("host-dev");
    fs::create_dir(&host).unwrap();
    mounted(
        "bind /dev",
        mount(
            Some("/dev"),
            &host,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        ),
    );
    mounted(
        "tmpfs /dev",
        mount(
            Some("tmpfs"),
            "/dev",
            Some("tmpfs"),
            MsFlags::MS_NOSUID,
            Some("mode=0755"),
        ),
    );
    for name in DEVICES {
        let from = host.join(name);
        if from.exists() {
            let to = Path::new("/dev").join(name);
            File::create(&to).unwrap();
            mounted(name, mount(Some(&from), &to, none, MsFlags::MS_BIND, none));
        }
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, Path::new("/dev").join(name)).unwrap();
    }
    let socket = UnixDatagram::bind("/dev/log").unwrap();
    fs::set_permissions("/dev/log", fs::Permissions::from_mode(0o666)).unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&lines);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = socket.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            keep.lock().unwrap().push(line);
        }
    });
    Sink { lines }
}

impl Sink {
    /// How many lines contain every one of `parts`, once `want` such lines
    /// arrived or two seconds passed.
    pub fn count(&self, parts: &[&str], want: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let n = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| parts.iter().all(|p| l.contains(p)))
                .count();
            if n >= want || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lines that contain `part`, for a failure message.
    pub fn matching(&self, part: &str) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.contains(part))
            .take(5)
            .cloned()
            .collect()
    }

    /// Writes every line to `path` (`BENCH_SYSLOG=FILE`, for a look at them).
    pub fn save(&self, path: &Path) {
        let text: String = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(path, text).unwrap();
    }

    pub fn total(&self) -> usize {
        self.lines.lock().unwrap().len()
    }
}
