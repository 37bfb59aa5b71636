//! The system calls the command needs that have no safe wrapper in our
//! dependencies: reading the kernel clock discipline for `otpgate doctor`,
//! the audit line, and local time as pam_oath wrote it (for `import oath`).

/// Kernel clock discipline as `adjtimex(2)` reports it (read-only query).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockState {
    /// The return value: TIME_OK (0) .. TIME_ERROR (5).
    pub state: i32,
    /// `timex.status` bits (STA_UNSYNC = 0x40).
    pub status: i32,
    /// Estimated error in microseconds.
    pub esterror: i64,
}

pub fn clock_state() -> Option<ClockState> {
    // SAFETY: an all-zero timex is a valid argument; modes = 0 makes the
    // call read-only, and the kernel only writes into our local struct.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, exclusively borrowed timex for the call.
    let rc = unsafe { libc::adjtimex(&mut t) };
    if rc < 0 {
        return None;
    }
    Some(ClockState {
        state: rc,
        status: t.status,
        esterror: t.esterror,
    })
}

/// One line to the system log as `otpgate[pid]`, facility LOG_AUTHPRIV, for
/// the command's audit trail (the module logs through `pam_syslog`). With no
/// syslog daemon the line is dropped; nothing waits or fails.
pub fn audit_syslog(line: &str) {
    let Ok(msg) = std::ffi::CString::new(line) else {
        return;
    };
    // SAFETY: the ident is a static NUL-terminated string (openlog keeps the
    // pointer); the format is a constant "%s" whose one argument is a valid
    // NUL-terminated string living across the call.
    unsafe {
        libc::openlog(c"otpgate".as_ptr(), libc::LOG_PID, libc::LOG_AUTHPRIV);
        libc::syslog(
            libc::LOG_AUTHPRIV | libc::LOG_NOTICE,
            c"%s".as_ptr(),
            msg.as_ptr(),
        );
        libc::closelog();
    }
}

/// Unix time of a local wall-clock time, read as mktime(3) reads it in
/// this process's time zone: how pam_oath turns the times it writes into
/// its users file back into time (`None` when mktime cannot).
pub fn local_to_unix(
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
) -> Option<u64> {
    // SAFETY: an all-zero tm is a valid value (null tm_zone is allowed).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = year.checked_sub(1900)?;
    tm.tm_mon = i32::from(month) - 1;
    tm.tm_mday = i32::from(day);
    tm.tm_hour = i32::from(hour);
    tm.tm_min = i32::from(minute);
    tm.tm_sec = i32::from(second);
    tm.tm_isdst = -1;
    // SAFETY: `tm` is a valid, exclusively borrowed struct; mktime only
    // reads and normalises it and consults the process's time zone.
    let t = unsafe { libc::mktime(&mut tm) };
    if t == -1 {
        return None;
    }
    u64::try_from(t).ok()
}
