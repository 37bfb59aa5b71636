//! Does anything receive the module's syslog lines? They are the audit
//! trail of every attempt and lockout; with no reader they are dropped.

use std::io;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;

use super::{Finding, ok, warn};

const FIX: &str =
    "run a syslog daemon: systemd-journald provides /dev/log, or apt-get install rsyslog";

/// Connects to `socket` (the way syslog(3) does) without sending anything.
pub fn check_syslog(socket: &Path) -> Finding {
    let at = socket.display().to_string();
    match socket.symlink_metadata() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return warn(
                "syslog.missing",
                format!("{at} does not exist: nothing receives syslog, so the audit trail (every code attempt, lockout and admin change) is lost"),
                FIX,
            )
            .at(at);
        }
        _ => {}
    }
    let connected = UnixDatagram::unbound().and_then(|s| s.connect(socket));
    let result = match connected {
        // A stream socket (some syslog daemons) refuses a datagram connect.
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => {
            UnixStream::connect(socket).map(drop)
        }
        other => other,
    };
    match result {
        Ok(()) => ok("syslog.ok", format!("{at} accepts log lines")).at(at),
        Err(e) => warn(
            "syslog.no_listener",
            format!("{at} exists but nothing reads it ({e}): the audit trail (every code attempt, lockout and admin change) is lost"),
            FIX,
        )
        .at(at),
    }
}
