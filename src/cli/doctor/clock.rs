//! Is the clock kept in step? TOTP codes depend on it.

use super::{Finding, ok, warn};
use crate::pam::sys::ClockState;

/// TIME_ERROR (5) or STA_UNSYNC (0x40) mean the kernel clock is not kept in
/// step by NTP (chrony, systemd-timesyncd, ntpd).
pub fn clock_finding(state: Option<ClockState>) -> Finding {
    const TIME_ERROR: i32 = 5;
    const STA_UNSYNC: i32 = 0x40;
    match state {
        None => warn(
            "clock.unknown",
            "cannot read the clock discipline (adjtimex failed)",
            "check that chrony or systemd-timesyncd runs",
        ),
        Some(s) if s.state == TIME_ERROR || s.status & STA_UNSYNC != 0 => warn(
            "clock.unsynced",
            "the system clock is not synchronised (adjtimex reports unsynchronised): codes drift out of the window",
            "install and start a time daemon: apt-get install chrony (or systemctl enable --now systemd-timesyncd)",
        ),
        Some(s) => ok(
            "clock.ok",
            format!("clock synchronised (estimated error {} us)", s.esterror),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::doctor::Level;

    #[test]
    fn clock_states() {
        let synced = ClockState {
            state: 0,
            status: 0x2001,
            esterror: 400,
        };
        assert_eq!(clock_finding(Some(synced)).level, Level::Ok);
        assert_eq!(
            clock_finding(Some(ClockState {
                state: 5,
                status: 0x40,
                esterror: 16_000_000
            }))
            .level,
            Level::Warn
        );
        assert_eq!(
            clock_finding(Some(ClockState {
                state: 0,
                status: 0x40,
                esterror: 0
            }))
            .level,
            Level::Warn
        );
        assert_eq!(clock_finding(None).level, Level::Warn);
    }
}
