//! The bench's accounts: passwd and group files for nss_wrapper, and a home
//! per user with google-authenticator's `~/.google_authenticator`, owned by
//! the user as that module requires. Nothing outside the temp dir changes.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use otpgate::core::otp;

const FIRST_UID: u32 = 20000;
const GID: u32 = 20000;

pub fn user_name(i: usize) -> String {
    format!("otpgate-tb{i}")
}

pub fn uid(i: usize) -> u32 {
    FIRST_UID + u32::try_from(i).unwrap()
}

/// User `i`'s TOTP secret (20 bytes, different for every user).
pub fn secret(i: usize) -> Vec<u8> {
    let seed = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995;
    (0..20u64)
        .map(|b| (seed.rotate_left((b * 7) as u32) >> 24) as u8 ^ (b as u8))
        .collect()
}

pub fn home(dir: &Path, i: usize) -> PathBuf {
    dir.join("home").join(user_name(i))
}

pub struct Files {
    pub passwd: PathBuf,
    pub group: PathBuf,
}

/// Writes the passwd and group files (root and nobody first, as on a real
/// system, then the users in order) and every user's home.
pub fn write(dir: &Path, users: usize) -> Files {
    let mut passwd = String::from(
        "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    );
    for i in 0..users {
        let _ = writeln!(
            passwd,
            "{}:x:{}:{GID}:bench user:{}:/usr/sbin/nologin",
            user_name(i),
            uid(i),
            home(dir, i).display()
        );
    }
    let files = Files {
        passwd: dir.join("passwd"),
        group: dir.join("group"),
    };
    fs::write(&files.passwd, passwd).unwrap();
    fs::write(
        &files.group,
        format!("root:x:0:\nnogroup:x:65534:\notpgate-bench:x:{GID}:\n"),
    )
    .unwrap();
    let homes = dir.join("home");
    fs::create_dir(&homes).unwrap();
    fs::set_permissions(&homes, fs::Permissions::from_mode(0o711)).unwrap();
    for i in 0..users {
        write_home(dir, i);
    }
    files
}

/// What `google-authenticator -t -d -f -r 3 -R 30 -w 3` writes: TOTP,
/// no reuse, at most 3 attempts in 30 s, a window of 3 codes.
fn write_home(dir: &Path, i: usize) {
    let home = home(dir, i);
    fs::create_dir(&home).unwrap();
    let file = home.join(".google_authenticator");
    let b32 = otp::encode_secret(&secret(i));
    fs::write(
        &file,
        format!("{b32}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n"),
    )
    .unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    chown(&file, Some(uid(i)), Some(GID)).unwrap();
    chown(&home, Some(uid(i)), Some(GID)).unwrap();
}
