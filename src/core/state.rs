//! What a login changes, kept apart from what an administrator writes.
//!
//! `last_step` is the replay guard with the record's meaning (see
//! `Record::last_step`): the newest accepted time step for TOTP, the next
//! counter (last accepted + 1) for HOTP. The slot format is the same for both.
//!
//! The record (secret, parameters, recovery-code hashes) is replaced only by
//! the command line, atomically. A login changes only this small state: the
//! newest accepted step, failures, locks, used recovery codes, the last
//! login and drift. It lives in two fixed-size slots, each with a sequence
//! number and a SHA-256 checksum; a login overwrites the older slot with one
//! write and one fdatasync. A torn write leaves that slot invalid and the
//! other one, the state before, is read: never a mix, never a lost replay
//! guard. Both slots invalid is corruption: refused, never reset.
//!
//! The state belongs to one version of the record (`record_id`, renewed by
//! every administrative write): new secrets or new recovery codes start
//! from the state written into the record itself.

use std::fmt;

use super::checksum::sha256;
use super::grace::{GraceEntry, MAX_ENTRIES};
use super::record::Record;
use super::recovery::{hex, unhex};

/// One slot: fields, padding, then the checksum of everything before it.
pub const SLOT_BYTES: usize = 512;
/// The whole state: two slots.
pub const STATE_BYTES: usize = 2 * SLOT_BYTES;
const MAGIC: &[u8; 8] = b"OTPGST01";
const SUM_AT: usize = SLOT_BYTES - 32;
/// Recovery codes a state can mark used (the record allows at most 100).
pub const MAX_CODES: usize = 128;
const SOURCE_MAX: usize = 255;
/// Grace entries: key (16 bytes) and time (8 bytes) each, after the source.
const GRACE_AT: usize = 338;
const GRACE_BYTES: usize = 24;

/// The login state of one record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoginState {
    /// Orders the slots: the valid slot with the highest number is current.
    pub seq: u64,
    /// The record version this state belongs to (`Record::state_id`).
    pub record_id: u64,
    pub last_step: u64,
    pub failures: u32,
    pub unconfirmed: u32,
    pub locked_until: u64,
    pub hard_locked: bool,
    pub last_login: u64,
    pub last_login_from: String,
    pub last_drift: Option<i64>,
    /// Bit i: the record's i-th recovery hash has been used.
    pub used: u128,
    /// Open grace periods (see `core::grace`), newest first.
    pub grace: Vec<GraceEntry>,
}

/// Why a state file was refused. Never contains state contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    TooLarge(usize),
    BothSlotsInvalid,
    /// The fleet store's single slot fails its checksum (or is empty).
    SlotInvalid,
    /// A valid slot where its sequence number says it cannot be: never
    /// written by otpgate, and the next write would overwrite it.
    Misplaced,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::TooLarge(n) => {
                write!(f, "login state is {n} bytes, more than {STATE_BYTES}")
            }
            StateError::SlotInvalid => {
                f.write_str("login state is corrupt (its slot fails its checksum)")
            }
            StateError::BothSlotsInvalid => {
                f.write_str("login state is corrupt (both slots fail their checksum)")
            }
            StateError::Misplaced => f.write_str(
                "login state is corrupt (a slot's sequence number does not match its place)",
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// How one slot reads.
#[derive(Debug, PartialEq, Eq)]
enum Slot {
    Valid(LoginState),
    /// All zero: never written (a new file, or the second slot so far).
    Empty,
    Invalid,
}

impl LoginState {
    /// The slot bytes: fixed offsets, little-endian, checksum last.
    pub fn encode(&self) -> [u8; SLOT_BYTES] {
        let mut b = [0u8; SLOT_BYTES];
        b[0..8].copy_from_slice(MAGIC);
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.record_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.last_step.to_le_bytes());
        b[32..36].copy_from_slice(&self.failures.to_le_bytes());
        b[36..40].copy_from_slice(&self.unconfirmed.to_le_bytes());
        b[40..48].copy_from_slice(&self.locked_until.to_le_bytes());
        b[48] = u8::from(self.hard_locked);
        b[49] = u8::from(self.last_drift.is_some());
        b[50..58].copy_from_slice(&self.last_drift.unwrap_or(0).to_le_bytes());
        b[58..66].copy_from_slice(&self.last_login.to_le_bytes());
        b[66..82].copy_from_slice(&self.used.to_le_bytes());
        let source = truncate_utf8(&self.last_login_from, SOURCE_MAX);
        b[82] = source.len() as u8;
        b[83..83 + source.len()].copy_from_slice(source.as_bytes());
        for (i, e) in self.grace.iter().take(MAX_ENTRIES).enumerate() {
            let at = GRACE_AT + i * GRACE_BYTES;
            if let Some(k) = unhex(&e.key).filter(|k| k.len() == 16) {
                b[at..at + 16].copy_from_slice(&k);
                b[at + 16..at + 24].copy_from_slice(&e.at.to_le_bytes());
            }
        }
        let sum = sha256(&b[..SUM_AT]);
        b[SUM_AT..].copy_from_slice(&sum);
        b
    }

    fn decode(b: &[u8]) -> Slot {
        if b.len() != SLOT_BYTES {
            return Slot::Invalid;
        }
        if b.iter().all(|&x| x == 0) {
            return Slot::Empty;
        }
        let sum = sha256(&b[..SUM_AT]);
        if b[..8] != MAGIC[..] || sum[..] != b[SUM_AT..] {
            return Slot::Invalid;
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let u32_at = |i: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&b[i..i + 4]);
            u32::from_le_bytes(a)
        };
        let mut used = [0u8; 16];
        used.copy_from_slice(&b[66..82]);
        let len = usize::from(b[82]);
        let Ok(source) = std::str::from_utf8(&b[83..83 + len]) else {
            return Slot::Invalid;
        };
        let grace = (0..MAX_ENTRIES)
            .map(|i| GRACE_AT + i * GRACE_BYTES)
            .filter(|&at| u64_at(at + 16) != 0)
            .map(|at| GraceEntry {
                key: hex(&b[at..at + 16]),
                at: u64_at(at + 16),
            })
            .collect();
        Slot::Valid(LoginState {
            seq: u64_at(8),
            record_id: u64_at(16),
            last_step: u64_at(24),
            failures: u32_at(32),
            unconfirmed: u32_at(36),
            locked_until: u64_at(40),
            hard_locked: b[48] != 0,
            last_drift: (b[49] != 0).then(|| u64_at(50) as i64),
            last_login: u64_at(58),
            used: u128::from_le_bytes(used),
            last_login_from: source.to_string(),
            grace,
        })
    }

    /// The state as the record itself carries it (before any login wrote
    /// one, or after the record was replaced).
    pub fn of_record(record: &Record) -> LoginState {
        LoginState {
            seq: 0,
            record_id: record.state_id,
            last_step: record.last_step,
            failures: record.failures,
            unconfirmed: record.unconfirmed,
            locked_until: record.locked_until,
            hard_locked: record.hard_locked,
            last_login: record.last_login,
            last_login_from: record.last_login_from.clone(),
            last_drift: record.last_drift,
            used: 0,
            grace: record.grace.clone(),
        }
    }

    /// `record` as logins have left it: this state's fields, used recovery
    /// codes removed. A state of another record version is ignored.
    pub fn apply(&self, record: &Record) -> Record {
        let mut r = record.clone();
        if self.record_id != record.state_id {
            return r;
        }
        r.last_step = self.last_step;
        r.failures = self.failures;
        r.unconfirmed = self.unconfirmed.min(self.failures);
        r.locked_until = self.locked_until;
        r.hard_locked = self.hard_locked;
        r.last_login = self.last_login;
        r.last_login_from = self.last_login_from.clone();
        r.last_drift = self.last_drift;
        r.grace = self.grace.clone();
        let mut i = 0;
        r.recovery.hashes.retain(|_| {
            let keep = i >= MAX_CODES || self.used & (1u128 << i) == 0;
            i += 1;
            keep
        });
        r
    }

    /// The state that turns `stored` (the record on disk) into `next`, when
    /// `next` differs from `stored` only in what a login changes; `None`
    /// when an administrative field changed (then the record is replaced).
    pub fn between(stored: &Record, next: &Record) -> Option<LoginState> {
        let same_admin = stored.version == next.version
            && stored.kind == next.kind
            && stored.secret == next.secret
            && stored.algorithm == next.algorithm
            && stored.digits == next.digits
            && stored.period == next.period
            && stored.created == next.created
            && stored.state_id == next.state_id
            && stored.recovery.kdf == next.recovery.kdf
            && stored.recovery.m_cost == next.recovery.m_cost
            && stored.recovery.t_cost == next.recovery.t_cost
            && stored.recovery.p_cost == next.recovery.p_cost
            && stored.recovery.salt == next.recovery.salt
            && stored.recovery.numeric_digits == next.recovery.numeric_digits;
        if !same_admin || stored.recovery.hashes.len() > MAX_CODES {
            return None;
        }
        // next's hashes must be stored's, in order, some left out (used).
        let mut used = 0u128;
        let mut left = next.recovery.hashes.iter().peekable();
        for (i, h) in stored.recovery.hashes.iter().enumerate() {
            if left.peek() == Some(&h) {
                left.next();
            } else {
                used |= 1u128 << i;
            }
        }
        if left.next().is_some() {
            return None;
        }
        let mut state = LoginState::of_record(next);
        state.used = used;
        Some(state)
    }
}

/// `record` as logins have left it (the stored record with `state`, if any).
pub fn applied(record: &Record, state: Option<&LoginState>) -> Record {
    match state {
        Some(s) => s.apply(record),
        None => record.clone(),
    }
}

/// The state a store writes when `next` differs from the `stored` record
/// only in what a login changes: numbered after `prev`, the state in force.
/// `None`: an administrative change (the record is replaced).
pub fn next_state(stored: &Record, prev: Option<&LoginState>, next: &Record) -> Option<LoginState> {
    let mut s = LoginState::between(stored, next)?;
    s.seq = prev.map_or(0, |p| p.seq) + 1;
    Some(s)
}

/// The current state in a state file's bytes: `Ok(None)` when no login has
/// written one yet (empty, or only a torn first write).
pub fn current(bytes: &[u8]) -> Result<Option<LoginState>, StateError> {
    slots(bytes)
}

/// The state in the fleet store's one slot per row (a row is replaced
/// whole in a transaction: no torn write, no place to check). It must be
/// one valid slot: anything else is corruption, never "no state".
pub fn one_slot(bytes: &[u8]) -> Result<LoginState, StateError> {
    if bytes.len() > SLOT_BYTES {
        return Err(StateError::TooLarge(bytes.len()));
    }
    match LoginState::decode(bytes) {
        Slot::Valid(s) => Ok(s),
        Slot::Empty | Slot::Invalid => Err(StateError::SlotInvalid),
    }
}

fn slots(bytes: &[u8]) -> Result<Option<LoginState>, StateError> {
    if bytes.len() > STATE_BYTES {
        return Err(StateError::TooLarge(bytes.len()));
    }
    if bytes.is_empty() {
        return Ok(None);
    }
    // A file cut short (a crash while it first grew) reads as zeros.
    let mut full = [0u8; STATE_BYTES];
    full[..bytes.len()].copy_from_slice(bytes);
    if let Some(s) = newer_alone(&full) {
        return Ok(Some(s));
    }
    let slots = [
        LoginState::decode(&full[..SLOT_BYTES]),
        LoginState::decode(&full[SLOT_BYTES..]),
    ];
    let mut best: Option<LoginState> = None;
    let mut empty = false;
    for (i, slot) in slots.into_iter().enumerate() {
        // The next write goes to slot_offset(seq + 1): a state elsewhere
        // would be overwritten by it, and a torn write would then lose it.
        if let Slot::Valid(s) = &slot
            && slot_offset(s.seq) != (i * SLOT_BYTES) as u64
        {
            return Err(StateError::Misplaced);
        }
        match slot {
            Slot::Valid(s) if best.as_ref().is_none_or(|b| s.seq > b.seq) => best = Some(s),
            Slot::Valid(_) | Slot::Invalid => {}
            Slot::Empty => empty = true,
        }
    }
    match best {
        Some(s) => Ok(Some(s)),
        None if empty => Ok(None),
        None => Err(StateError::BothSlotsInvalid),
    }
}

/// The usual case with one checksum instead of two: the slot that claims
/// the higher sequence number is valid and in its place, and the other
/// is empty or claims a number that belongs in its place. Whether that
/// other is valid cannot change the answer then (its number is lower, and
/// being in its place it is no `Misplaced`), so it is not checked.
/// `None`: decide with both checked.
fn newer_alone(full: &[u8; STATE_BYTES]) -> Option<LoginState> {
    let slot = |i: usize| &full[i * SLOT_BYTES..(i + 1) * SLOT_BYTES];
    let claimed = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&slot(i)[8..16]);
        u64::from_le_bytes(a)
    };
    let in_place = |i: usize, seq: u64| slot_offset(seq) == (i * SLOT_BYTES) as u64;
    let (newer, other) = if claimed(1) > claimed(0) {
        (1, 0)
    } else {
        (0, 1)
    };
    match LoginState::decode(slot(newer)) {
        Slot::Valid(s)
            if in_place(newer, s.seq)
                && (slot(other).iter().all(|&b| b == 0) || in_place(other, claimed(other))) =>
        {
            Some(s)
        }
        _ => None,
    }
}

/// Where the slot for sequence number `seq` starts.
pub fn slot_offset(seq: u64) -> u64 {
    (seq % 2) * SLOT_BYTES as u64
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::tests::sample;

    fn state(seq: u64, last_step: u64) -> LoginState {
        LoginState {
            seq,
            record_id: 7,
            last_step,
            failures: 3,
            unconfirmed: 1,
            locked_until: 1_700_000_600,
            hard_locked: seq.is_multiple_of(2),
            last_login: 1_700_000_000,
            last_login_from: "192.0.2.7 é".into(),
            last_drift: Some(-4),
            used: 0b1010,
            grace: vec![GraceEntry {
                key: "00112233445566778899aabbccddeeff".into(),
                at: 1_700_000_100,
            }],
        }
    }

    fn file(a: &LoginState, b: &LoginState) -> Vec<u8> {
        let mut f = vec![0u8; STATE_BYTES];
        f[slot_offset(a.seq) as usize..][..SLOT_BYTES].copy_from_slice(&a.encode());
        f[slot_offset(b.seq) as usize..][..SLOT_BYTES].copy_from_slice(&b.encode());
        f
    }

    #[test]
    fn a_slot_round_trips_every_field() {
        let s = state(5, 56_666_666);
        let f = file(&state(4, 1), &s);
        assert_eq!(current(&f).unwrap(), Some(s));
        let mut none = state(1, 1);
        none.last_drift = None;
        none.last_login_from = String::new();
        let f = file(&none, &state(0, 0));
        assert_eq!(current(&f).unwrap(), Some(none));
        // Every grace entry in its own place, in order.
        let mut full = state(7, 2);
        full.grace = (1..=MAX_ENTRIES as u64)
            .map(|i| GraceEntry {
                key: format!("{i:032x}"),
                at: 1_700_000_000 + i,
            })
            .collect();
        let f = file(&state(6, 1), &full);
        assert_eq!(current(&f).unwrap(), Some(full));
    }

    #[test]
    fn refusals_say_what_is_wrong_with_the_state_and_nothing_in_it() {
        for (e, words) in [
            (
                StateError::TooLarge(1025),
                "login state is 1025 bytes, more than 1024",
            ),
            (StateError::SlotInvalid, "its slot fails its checksum"),
            (
                StateError::BothSlotsInvalid,
                "both slots fail their checksum",
            ),
            (StateError::Misplaced, "does not match its place"),
        ] {
            assert!(e.to_string().contains(words), "{e:?}: {e}");
        }
    }

    #[test]
    fn the_newest_valid_slot_wins() {
        let f = file(&state(8, 100), &state(9, 101));
        assert_eq!(current(&f).unwrap().unwrap().last_step, 101);
        let f = file(&state(10, 102), &state(9, 101));
        assert_eq!(current(&f).unwrap().unwrap().last_step, 102);
    }

    #[test]
    fn a_write_cut_at_any_byte_leaves_the_old_or_the_new_state_never_a_mix() {
        let older = state(8, 100);
        let old = state(9, 101);
        let new = state(10, 102);
        let before = file(&older, &old);
        let new_bytes = new.encode();
        let at = slot_offset(new.seq) as usize;
        for cut in 0..=SLOT_BYTES {
            let mut f = before.clone();
            f[at..at + cut].copy_from_slice(&new_bytes[..cut]);
            let got = current(&f).unwrap().unwrap();
            if cut == SLOT_BYTES {
                assert_eq!(got, new);
            } else {
                assert_eq!(got, old, "cut at {cut}");
                // The step accepted before the cut stays used.
                assert!(got.last_step >= 101);
            }
        }
    }

    #[test]
    fn a_torn_first_write_is_no_state_and_both_invalid_is_corrupt() {
        let first = state(1, 50).encode();
        for cut in [0, 1, 100, SLOT_BYTES - 1] {
            // The first write goes to the second slot; the file may be short.
            let mut f = vec![0u8; SLOT_BYTES];
            f.extend_from_slice(&first[..cut]);
            assert_eq!(current(&f).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(current(&[]).unwrap(), None);
        let mut garbage = file(&state(1, 1), &state(2, 2));
        garbage[3] ^= 1;
        garbage[SLOT_BYTES + 3] ^= 1;
        assert_eq!(current(&garbage), Err(StateError::BothSlotsInvalid));
        assert_eq!(
            current(&[0u8; STATE_BYTES + 1]),
            Err(StateError::TooLarge(STATE_BYTES + 1))
        );
        // A valid slot out of its place is refused: the next write would
        // overwrite it (found by fuzzing: a torn write then lost the state).
        let mut misplaced = vec![0u8; STATE_BYTES];
        misplaced[..SLOT_BYTES].copy_from_slice(&state(3, 3).encode());
        assert_eq!(current(&misplaced), Err(StateError::Misplaced));
        // ...also next to a valid newer state in its place (the older slot
        // is then checked too, as its number does not fit its place).
        let mut both = file(&state(3, 3), &state(4, 4));
        let (first, second) = both.split_at_mut(SLOT_BYTES);
        first.swap_with_slice(second);
        assert_eq!(current(&both), Err(StateError::Misplaced));
        let mut older_out = vec![0u8; STATE_BYTES];
        older_out[..SLOT_BYTES].copy_from_slice(&state(4, 4).encode());
        older_out[SLOT_BYTES..].copy_from_slice(&state(2, 2).encode());
        assert_eq!(current(&older_out), Err(StateError::Misplaced));
        // The usual files take the one-checksum path (the others decide
        // with both slots checked).
        assert_eq!(
            newer_alone(&file(&state(4, 4), &state(5, 5)).try_into().unwrap()),
            Some(state(5, 5))
        );
        let mut one = [0u8; STATE_BYTES];
        one[SLOT_BYTES..].copy_from_slice(&state(1, 1).encode());
        assert_eq!(newer_alone(&one), Some(state(1, 1)));
        // Beside zeros whose number (0) does not fit their place, and at
        // sequence number 0 beside zeros that claim as much.
        for seq in [2, 0] {
            let mut first = [0u8; STATE_BYTES];
            first[..SLOT_BYTES].copy_from_slice(&state(seq, 2).encode());
            assert_eq!(newer_alone(&first), Some(state(seq, 2)));
        }
        assert_eq!(newer_alone(&older_out.clone().try_into().unwrap()), None);
        // A newer slot that claims more than it can show is passed over.
        let mut torn = file(&state(4, 4), &state(5, 5));
        torn[SLOT_BYTES + 100] ^= 1;
        assert_eq!(current(&torn).unwrap().unwrap(), state(4, 4));
        // The fleet store's single slot has no place.
        assert_eq!(one_slot(&misplaced[..SLOT_BYTES]).unwrap(), state(3, 3));
        // ...but it must be one valid slot: garbage or zeros are corrupt,
        // never "no state" (that would drop the replay guard).
        assert_eq!(one_slot(&[0u8; SLOT_BYTES]), Err(StateError::SlotInvalid));
        assert_eq!(
            one_slot(&[0x5au8; SLOT_BYTES]),
            Err(StateError::SlotInvalid)
        );
        assert_eq!(one_slot(&[1u8; 7]), Err(StateError::SlotInvalid));
        // A wrong magic is invalid even with a matching checksum.
        let mut b = state(3, 3).encode();
        b[0] = b'X';
        let sum = sha256(&b[..SUM_AT]);
        b[SUM_AT..].copy_from_slice(&sum);
        assert_eq!(LoginState::decode(&b), Slot::Invalid);
    }

    #[test]
    fn a_login_change_becomes_a_state_and_an_admin_change_does_not() {
        let (stored, _) = sample();
        let mut next = stored.clone();
        next.last_step = 99;
        next.failures = 2;
        next.recovery.hashes.remove(1);
        let s = LoginState::between(&stored, &next).unwrap();
        assert_eq!((s.last_step, s.failures, s.used), (99, 2, 0b10));
        assert_eq!(s.apply(&stored), next);
        // A state of another record version changes nothing.
        let mut other = s.clone();
        other.record_id += 1;
        assert_eq!(other.apply(&stored), stored);
        // New secret, new codes, a code that was not there: administrative.
        let mut admin = next.clone();
        admin.secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into();
        assert!(LoginState::between(&stored, &admin).is_none());
        let mut admin = next.clone();
        admin.recovery.salt = "00".repeat(16);
        assert!(LoginState::between(&stored, &admin).is_none());
        let mut admin = stored.clone();
        admin.recovery.hashes.push("ab".repeat(32));
        assert!(LoginState::between(&stored, &admin).is_none());
        let mut admin = next.clone();
        admin.recovery.numeric_digits = Some(8);
        assert!(LoginState::between(&stored, &admin).is_none());
        let mut admin = next.clone();
        admin.kind = crate::core::Kind::Hotp;
        assert!(LoginState::between(&stored, &admin).is_none());
        let mut admin = stored.clone();
        admin.recovery.hashes.swap(0, 1);
        assert!(LoginState::between(&stored, &admin).is_none());
    }

    #[test]
    fn a_login_state_is_numbered_after_the_one_in_force() {
        let (stored, _) = sample();
        let mut next = stored.clone();
        next.failures = 1;
        assert_eq!(next_state(&stored, None, &next).unwrap().seq, 1);
        let prev = state(5, 1);
        assert_eq!(next_state(&stored, Some(&prev), &next).unwrap().seq, 6);
        next.secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into();
        assert_eq!(next_state(&stored, Some(&prev), &next), None);
    }

    #[test]
    fn used_codes_fit_the_state_up_to_its_bitmap() {
        let (mut stored, _) = sample();
        for n in [MAX_CODES, MAX_CODES + 1] {
            stored.recovery.hashes = (0..n).map(|i| format!("{i:064x}")).collect();
            let mut next = stored.clone();
            next.recovery.hashes.remove(MAX_CODES - 1);
            let s = LoginState::between(&stored, &next);
            if n == MAX_CODES {
                assert_eq!(s.unwrap().used, 1u128 << (MAX_CODES - 1));
            } else {
                // Beyond what the bitmap holds: the record is rewritten.
                assert_eq!(s, None);
            }
        }
    }

    #[test]
    fn a_long_source_is_cut_at_a_character_boundary() {
        let mut s = state(1, 1);
        s.last_login_from = "é".repeat(200);
        let got = current(&file(&s, &state(0, 0))).unwrap().unwrap();
        assert_eq!(got.last_login_from.len(), 254);
        assert!(s.last_login_from.starts_with(&got.last_login_from));
    }
}
