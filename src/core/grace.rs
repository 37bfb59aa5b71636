//! `grace_period`: after a successful code from a remote host, further
//! logins of that user from the same host and service skip the code for a
//! while. The entries are login state (written with the success, cleared by
//! any failure, by `otpgate unlock` and by a new enrollment); a host is
//! never named in clear.
//!
//! Each entry is a tag: HMAC-SHA256 keyed with the user's secret over a
//! digest of (service, host) and the entry's time. Whoever can write the
//! login state but does not hold the secret cannot make an entry that
//! grants anything, or move an entry's time forward: that is the fleet
//! store's database seen by someone without a host's fleet key (a DBA, a
//! leaked role password, a restored backup), for whom the state's own
//! checksum is no protection. Root on a host holds both and is not stopped.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::record::Record;

/// Most recent (service, host) pairs remembered per user.
pub const MAX_ENTRIES: usize = 4;
/// The longest grace period an option may ask for (one day).
pub const MAX_GRACE_SECONDS: u64 = 86_400;

/// One remembered login: which (service, host), and when its code was right.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraceEntry {
    /// Hex of the first 16 bytes of the entry's tag ([`tag`]).
    pub key: String,
    /// Unix time of the code login that opened the period.
    pub at: u64,
}

/// The digest naming a (service, host) pair on `server` (this machine's
/// name: in a fleet, a period opened on one server is not one on
/// another); `None` for a login that never gets a grace period: no host,
/// or this machine. Never stored: entries hold [`tag`]s made from it.
pub fn key(server: &str, service: &str, rhost: &str) -> Option<[u8; 16]> {
    if is_local(rhost) {
        return None;
    }
    let digest = Sha256::new()
        .chain_update(b"otpgate-grace\0")
        .chain_update(server.as_bytes())
        .chain_update(b"\0")
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

/// The HMAC that tags a user's entries: HMAC-SHA256 keyed with SHA-256 of
/// the secret (as stored, base32). Made once per call, cloned per entry.
fn tagger(secret: &str) -> Hmac<Sha256> {
    // A key of one block, the digest zero-padded (as HMAC pads any short
    // key), so the constructor cannot fail.
    let mut key = Zeroizing::new([0u8; 64]);
    key[..32].copy_from_slice(&Sha256::digest(secret.as_bytes()));
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&(*key).into());
    mac.update(b"otpgate-grace-entry\0");
    mac
}

/// An entry's tag in hex: the user's HMAC over the pair's digest and the
/// time, cut to 16 bytes.
fn tag(tagger: &Hmac<Sha256>, pair: &[u8; 16], at: u64) -> String {
    let mut mac = tagger.clone();
    mac.update(pair);
    mac.update(&at.to_be_bytes());
    let out = mac.finalize().into_bytes();
    super::recovery::hex(&out[..16])
}

/// Whether `e` was made for `pair` by this user's `tagger`.
fn is_for(tagger: &Hmac<Sha256>, e: &GraceEntry, pair: &[u8; 16]) -> bool {
    let want = tag(tagger, pair, e.at);
    bool::from(want.as_bytes().ct_eq(e.key.as_bytes()))
}

/// Whether `record` has an open grace period for `pair` at `now`.
pub fn granted(record: &Record, pair: &[u8; 16], now: u64, period: u64) -> bool {
    if period == 0 || record.hard_locked {
        return false;
    }
    let tagger = tagger(&record.secret);
    record
        .grace
        .iter()
        .any(|e| now >= e.at && now - e.at <= period && is_for(&tagger, e, pair))
}

/// `next` after a code login from `pair` at `now`: that pair's entry
/// renewed, the oldest dropped beyond [`MAX_ENTRIES`].
pub fn remember(next: &mut Record, pair: &[u8; 16], now: u64) {
    let tagger = tagger(&next.secret);
    next.grace.retain(|e| !is_for(&tagger, e, pair));
    next.grace.push(GraceEntry {
        key: tag(&tagger, pair, now),
        at: now,
    });
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
            assert!(key("srv", "sshd", local).is_none(), "{local:?}");
        }
        let a = key("srv", "sshd", "192.0.2.1").unwrap();
        assert_ne!(Some(a), key("srv", "sudo", "192.0.2.1"));
        assert_ne!(Some(a), key("srv", "sshd", "192.0.2.2"));
        assert_ne!(Some(a), key("srv2", "sshd", "192.0.2.1"));
        // The separators keep the parts apart.
        assert_ne!(key("a", "bc", "192.0.2.1"), key("ab", "c", "192.0.2.1"));
        assert_eq!(Some(a), key("srv", "sshd", "192.0.2.1"));
    }

    #[test]
    fn a_grace_period_ends_on_time_and_only_for_its_pair() {
        let (mut r, _) = sample();
        let k = key("srv", "sshd", "192.0.2.1").unwrap();
        remember(&mut r, &k, 1000);
        assert!(granted(&r, &k, 1000, 300));
        assert!(granted(&r, &k, 1300, 300));
        assert!(!granted(&r, &k, 1301, 300));
        assert!(
            !granted(&r, &k, 999, 300),
            "an entry from the future grants nothing"
        );
        assert!(!granted(&r, &k, 1000, 0), "off");
        let other = key("srv", "sshd", "192.0.2.2").unwrap();
        assert!(!granted(&r, &other, 1000, 300));
        r.hard_locked = true;
        assert!(!granted(&r, &k, 1000, 300));
    }

    #[test]
    fn an_entry_not_made_with_the_users_secret_grants_nothing() {
        let (mut r, _) = sample();
        let k = key("srv", "sshd", "192.0.2.1").unwrap();
        // The pair's digest itself, as entries were before they had a key:
        // anyone can compute it.
        r.grace = vec![GraceEntry {
            key: crate::core::recovery::hex(&k),
            at: 1000,
        }];
        assert!(!granted(&r, &k, 1000, 300));
        // A real entry with its time moved forward (to stretch the period).
        remember(&mut r, &k, 1000);
        assert!(granted(&r, &k, 1000, 300));
        let mut moved = r.clone();
        moved.grace[0].at = 1200;
        assert!(!granted(&moved, &k, 1400, 300));
        assert!(granted(&r, &k, 1300, 300), "the real one, in time");
        // The same entry under another user's secret.
        let (mut other, _) = sample();
        other.secret = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U".into();
        other.grace = r.grace.clone();
        assert!(!granted(&other, &k, 1000, 300));
    }

    #[test]
    fn a_pair_has_one_entry_renewed_by_each_code_login() {
        let (mut r, _) = sample();
        let k = key("srv", "sshd", "192.0.2.1").unwrap();
        let other = key("srv", "sshd", "192.0.2.2").unwrap();
        remember(&mut r, &k, 1000);
        remember(&mut r, &other, 1001);
        remember(&mut r, &k, 1002);
        assert_eq!(r.grace.len(), 2, "{:?}", r.grace);
        assert_eq!(r.grace[0].at, 1002);
        assert!(granted(&r, &k, 1302, 300));
        assert!(granted(&r, &other, 1301, 300));
        assert!(!granted(&r, &other, 1302, 300));
    }

    #[test]
    fn at_most_four_pairs_are_remembered_newest_first() {
        let (mut r, _) = sample();
        for i in 0..6u64 {
            let k = key("srv", "sshd", &format!("192.0.2.{i}")).unwrap();
            remember(&mut r, &k, 1000 + i);
        }
        assert_eq!(r.grace.len(), MAX_ENTRIES);
        assert_eq!(r.grace[0].at, 1005);
        let oldest = key("srv", "sshd", "192.0.2.0").unwrap();
        assert!(!granted(&r, &oldest, 1006, 300));
    }
}
