//! `grace_period`: after a successful code from a remote host, further
//! logins of that user from the same host and service skip the code for a
//! while. The entries are login state (written with the success, cleared by
//! any failure, by `otpgate unlock` and by a new enrollment); a host is
//! named only by a digest of service and host, never in clear. The digest
//! has no key: whoever can write the login state (root on a host, or the
//! fleet store's login role) can also write an entry for a host of their
//! choosing, so the entries are no stronger than the state's protection.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::record::Record;

/// Most recent (service, host) pairs remembered per user.
pub const MAX_ENTRIES: usize = 4;
/// The longest grace period an option may ask for (one day).
pub const MAX_GRACE_SECONDS: u64 = 86_400;

/// One remembered login: which (service, host), and when its code was right.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraceEntry {
    /// Hex of the first 16 bytes of SHA-256 over service and host.
    pub key: String,
    /// Unix time of the code login that opened the period.
    pub at: u64,
}

/// The digest naming a (service, host) pair; `None` for a login that never
/// gets a grace period: no host, or this machine.
pub fn key(service: &str, rhost: &str) -> Option<[u8; 16]> {
    if is_local(rhost) {
        return None;
    }
    let digest = Sha256::new()
        .chain_update(b"otpgate-grace\0")
        .chain_update(service.as_bytes())
        .chain_update(b"\0")
        .chain_update(rhost.as_bytes())
        .finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    Some(k)
}

fn is_local(rhost: &str) -> bool {
    let h = rhost.trim();
    h.is_empty()
        || h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn hex_key(k: &[u8; 16]) -> String {
    super::recovery::hex(k)
}

/// Whether `record` grants `key` a login at `now` without a code.
pub fn granted(record: &Record, key: &[u8; 16], now: u64, period: u64) -> bool {
    if period == 0 || record.hard_locked {
        return false;
    }
    let k = hex_key(key);
    record
        .grace
        .iter()
        .any(|e| e.key == k && now >= e.at && now - e.at <= period)
}

/// `next` after a code login from `key` at `now`: that pair's entry renewed,
/// the oldest dropped beyond [`MAX_ENTRIES`].
pub fn remember(next: &mut Record, key: &[u8; 16], now: u64) {
    let k = hex_key(key);
    next.grace.retain(|e| e.key != k);
    next.grace.push(GraceEntry { key: k, at: now });
    next.grace.sort_by_key(|e| std::cmp::Reverse(e.at));
    next.grace.truncate(MAX_ENTRIES);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::tests::sample;

    #[test]
    fn only_remote_hosts_get_a_key_and_keys_differ_by_service_and_host() {
        for local in ["", " ", "localhost", "127.0.0.1", "::1", "127.1.2.3"] {
            assert!(key("sshd", local).is_none(), "{local:?}");
        }
        let a = key("sshd", "192.0.2.1").unwrap();
        assert_ne!(Some(a), key("sudo", "192.0.2.1"));
        assert_ne!(Some(a), key("sshd", "192.0.2.2"));
        assert_eq!(Some(a), key("sshd", "192.0.2.1"));
    }

    #[test]
    fn a_grace_period_ends_on_time_and_only_for_its_pair() {
        let (mut r, _) = sample();
        let k = key("sshd", "192.0.2.1").unwrap();
        remember(&mut r, &k, 1000);
        assert!(granted(&r, &k, 1000, 300));
        assert!(granted(&r, &k, 1300, 300));
        assert!(!granted(&r, &k, 1301, 300));
        assert!(
            !granted(&r, &k, 999, 300),
            "an entry from the future grants nothing"
        );
        assert!(!granted(&r, &k, 1000, 0), "off");
        let other = key("sshd", "192.0.2.2").unwrap();
        assert!(!granted(&r, &other, 1000, 300));
        r.hard_locked = true;
        assert!(!granted(&r, &k, 1000, 300));
    }

    #[test]
    fn at_most_four_pairs_are_remembered_newest_first() {
        let (mut r, _) = sample();
        for i in 0..6u64 {
            let k = key("sshd", &format!("192.0.2.{i}")).unwrap();
            remember(&mut r, &k, 1000 + i);
        }
        assert_eq!(r.grace.len(), MAX_ENTRIES);
        assert_eq!(r.grace[0].at, 1005);
        let oldest = key("sshd", "192.0.2.0").unwrap();
        assert!(!granted(&r, &oldest, 1006, 300));
    }
}
