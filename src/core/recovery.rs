//! Single-use recovery codes: generation, canonical form and Argon2id hashes.
//!
//! Imported enrollments may instead carry numeric codes (google-authenticator's
//! 8-digit scratch codes), hashed the same way and marked `numeric_digits`
//! so the prompt can tell them from a code by their length.
//!
//! All codes of one user share one random salt, so checking an attempt costs
//! exactly one Argon2id hash whatever the number of codes; each code carries
//! 80 bits from the OS RNG, so the shared salt gives an attacker nothing.

use argon2::{Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Crockford's base32 alphabet: no i, l, o, u, so codes read aloud cleanly.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// 16 symbols of 5 bits = 80 bits per code.
pub const CODE_CHARS: usize = 16;
pub const DEFAULT_COUNT: usize = 10;
pub const MAX_COUNT: usize = 100;
/// Lengths of imported numeric codes (google-authenticator: 8).
pub const NUMERIC_DIGITS: std::ops::RangeInclusive<u8> = 6..=10;
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;

/// Argon2id cost parameters (memory KiB, passes, lanes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl KdfParams {
    /// OWASP's Argon2id recommendation (19 MiB, 2 passes, 1 lane).
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };
    /// Bounds a record may claim; beyond them it is hostile, not slow.
    const MAX_M_COST: u32 = 256 * 1024;
    const MAX_T_COST: u32 = 16;
    const MAX_P_COST: u32 = 8;

    fn argon2(&self) -> Result<Hasher, String> {
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, Some(HASH_BYTES))
            .map_err(|e| format!("argon2 parameters rejected: {e}"))?;
        Ok(Hasher {
            blocks: params.block_count(),
            argon: Argon2::new(argon2::Algorithm::Argon2id, Version::V0x13, params),
        })
    }
}

/// Argon2id with its memory size, so the memory can be reserved fallibly:
/// inside sshd an allocation failure must refuse the login, not abort.
struct Hasher {
    argon: Argon2<'static>,
    blocks: usize,
}

/// Freshly generated codes in canonical form; shown once, then dropped (and wiped).
pub struct RecoveryCodes {
    codes: Vec<Zeroizing<String>>,
}

impl RecoveryCodes {
    pub fn generate(count: usize) -> Result<RecoveryCodes, String> {
        let mut codes = Vec::with_capacity(count);
        for _ in 0..count {
            let mut raw = Zeroizing::new([0u8; CODE_CHARS]);
            getrandom::fill(raw.as_mut()).map_err(|e| format!("OS random generator: {e}"))?;
            // Each byte keeps its low 5 bits: uniform over the 32 symbols.
            let code: String = raw
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                .collect();
            codes.push(Zeroizing::new(code));
        }
        Ok(RecoveryCodes { codes })
    }

    /// Codes as people should write them down: `k7qf-3mzt-9xwa-pd2h`.
    pub fn display(&self) -> Vec<Zeroizing<String>> {
        self.codes.iter().map(|c| display_form(c)).collect()
    }

    pub fn canonical(&self) -> &[Zeroizing<String>] {
        &self.codes
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

fn display_form(code: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(CODE_CHARS + 3));
    for (i, c) in code.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// Canonical form of a typed recovery code (separators already removed):
/// lower case, with Crockford's look-alikes (o→0, i/l→1) folded.
pub fn canonical(compact: &str) -> Option<Zeroizing<String>> {
    if compact.len() != CODE_CHARS {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(CODE_CHARS));
    for c in compact.chars() {
        let c = match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// The stored side: one salt, cost parameters, one hash per unused code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryHashes {
    pub kdf: String,
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    pub salt: String,
    pub hashes: Vec<String>,
    /// Set when the codes are imported all-digit codes of this length
    /// (never for generated codes, so older records read unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_digits: Option<u8>,
}

impl RecoveryHashes {
    /// Hashes that no code matches, with the production cost: checking an
    /// answer against them costs what checking a real user's codes costs,
    /// so a refusal does not tell who is enrolled.
    pub fn decoy() -> RecoveryHashes {
        let kdf = KdfParams::DEFAULT;
        RecoveryHashes {
            kdf: "argon2id".to_string(),
            m_cost: kdf.m_cost,
            t_cost: kdf.t_cost,
            p_cost: kdf.p_cost,
            salt: hex(&[0u8; SALT_BYTES]),
            hashes: vec![hex(&[0u8; HASH_BYTES])],
            numeric_digits: None,
        }
    }

    pub fn create(codes: &RecoveryCodes, kdf: KdfParams) -> Result<RecoveryHashes, String> {
        Self::hash_all(codes.canonical(), kdf)
    }

    /// Hashes imported all-digit codes of one length (scratch codes), which
    /// are then accepted at the prompt by that length.
    pub fn create_numeric(
        codes: &[Zeroizing<String>],
        kdf: KdfParams,
    ) -> Result<RecoveryHashes, String> {
        let len = codes.first().map_or(8, |c| c.len());
        let digits = u8::try_from(len)
            .ok()
            .filter(|d| NUMERIC_DIGITS.contains(d))
            .ok_or("numeric recovery codes must have 6 to 10 digits")?;
        if codes
            .iter()
            .any(|c| c.len() != len || !c.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("numeric recovery codes must be digits of one length".into());
        }
        if codes.len() > MAX_COUNT {
            return Err(format!("at most {MAX_COUNT} recovery codes"));
        }
        let mut hashes = Self::hash_all(codes, kdf)?;
        hashes.numeric_digits = Some(digits);
        Ok(hashes)
    }

    fn hash_all(codes: &[Zeroizing<String>], kdf: KdfParams) -> Result<RecoveryHashes, String> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|e| format!("OS random generator: {e}"))?;
        let argon = kdf.argon2()?;
        let mut hashes = Vec::with_capacity(codes.len());
        for code in codes {
            hashes.push(hex(&hash_one(&argon, code, &salt)?));
        }
        Ok(RecoveryHashes {
            kdf: "argon2id".to_string(),
            m_cost: kdf.m_cost,
            t_cost: kdf.t_cost,
            p_cost: kdf.p_cost,
            salt: hex(&salt),
            hashes,
            numeric_digits: None,
        })
    }

    pub fn remaining(&self) -> usize {
        self.hashes.len()
    }

    /// Checks the shape a parsed record must have; called on every load.
    pub fn validate(&self) -> Result<(), String> {
        if self
            .numeric_digits
            .is_some_and(|d| !NUMERIC_DIGITS.contains(&d))
        {
            return Err("numeric recovery codes must have 6 to 10 digits".to_string());
        }
        if self.hashes.is_empty() && self.salt.is_empty() {
            return Ok(());
        }
        if self.kdf != "argon2id" {
            return Err(format!("unknown recovery kdf {:?}", self.kdf));
        }
        if self.m_cost > KdfParams::MAX_M_COST
            || self.t_cost == 0
            || self.t_cost > KdfParams::MAX_T_COST
            || self.p_cost == 0
            || self.p_cost > KdfParams::MAX_P_COST
        {
            return Err("recovery kdf parameters out of range".to_string());
        }
        // The parameters alone: building Argon2 itself (CPU feature probes)
        // waits until a recovery code is actually tried.
        Params::new(self.m_cost, self.t_cost, self.p_cost, Some(HASH_BYTES))
            .map_err(|e| format!("argon2 parameters rejected: {e}"))?;
        if unhex(&self.salt).is_none_or(|s| s.len() < 8) {
            return Err("recovery salt is not valid hex of at least 8 bytes".to_string());
        }
        if self.hashes.len() > MAX_COUNT {
            return Err("too many recovery hashes".to_string());
        }
        if self
            .hashes
            .iter()
            .any(|h| unhex(h).is_none_or(|b| b.len() != HASH_BYTES))
        {
            return Err("recovery hash is not 32 bytes of hex".to_string());
        }
        Ok(())
    }

    fn kdf_params(&self) -> KdfParams {
        KdfParams {
            m_cost: self.m_cost,
            t_cost: self.t_cost,
            p_cost: self.p_cost,
        }
    }

    /// Index of the stored hash matching `code` (canonical form), if any.
    /// One Argon2id evaluation, then a constant-time comparison with every slot.
    pub fn find(&self, code: &str) -> Result<Option<usize>, String> {
        if self.hashes.is_empty() {
            return Ok(None);
        }
        let salt = unhex(&self.salt).ok_or("recovery salt is not hex")?;
        let candidate = hash_one(&self.kdf_params().argon2()?, code, &salt)?;
        let mut found = None;
        for (i, stored) in self.hashes.iter().enumerate() {
            let stored = unhex(stored).ok_or("recovery hash is not hex")?;
            if bool::from(stored.ct_eq(&candidate[..])) && found.is_none() {
                found = Some(i);
            }
        }
        Ok(found)
    }
}

fn hash_one(hasher: &Hasher, code: &str, salt: &[u8]) -> Result<[u8; HASH_BYTES], String> {
    let mut memory: Vec<Block> = Vec::new();
    memory
        .try_reserve_exact(hasher.blocks)
        .map_err(|_| format!("cannot reserve {} KiB for Argon2", hasher.blocks))?;
    memory.resize(hasher.blocks, Block::new());
    let mut out = [0u8; HASH_BYTES];
    let result =
        hasher
            .argon
            .hash_password_into_with_memory(code.as_bytes(), salt, &mut out, &mut memory);
    memory.zeroize();
    if let Err(e) = result {
        out.zeroize();
        return Err(format!("argon2: {e}"));
    }
    Ok(out)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    // Hex digits only, no sign ("+8" is not a byte). Every record read
    // decodes its salt and hashes, so this works on bytes.
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    if !s.len().is_multiple_of(2) {
        return None;
    }
    // Sized once: no reallocation, no copies left behind.
    let mut out = Vec::with_capacity(s.len() / 2);
    for pair in s.as_bytes().chunks_exact(2) {
        out.push(digit(pair[0])? << 4 | digit(pair[1])?);
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn hex_is_digits_only() {
        assert_eq!(unhex("0aFf"), Some(vec![0x0a, 0xff]));
        // A sign is not a digit (the state fuzzer found "+8" read as 0x08).
        assert_eq!(unhex("+8"), None);
        assert_eq!(unhex("-8"), None);
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("\u{e9}"), None); // two bytes, neither a digit
        assert_eq!(unhex(""), Some(vec![]));
        for b in 0..=255u8 {
            assert_eq!(unhex(&hex(&[b])), Some(vec![b]));
            assert_eq!(unhex(&hex(&[b]).to_uppercase()), Some(vec![b]));
        }
    }

    /// Cheap parameters so unit tests stay fast; production uses DEFAULT.
    pub(crate) const TEST_KDF: KdfParams = KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn generated_codes_have_80_bits_and_display_in_groups() {
        let codes = RecoveryCodes::generate(DEFAULT_COUNT).unwrap();
        assert_eq!(codes.len(), 10);
        for (c, d) in codes.canonical().iter().zip(codes.display()) {
            assert_eq!(c.len(), CODE_CHARS);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)));
            assert_eq!(d.len(), 19);
            assert_eq!(d.matches('-').count(), 3);
            assert_eq!(
                canonical(&d.replace('-', "").to_uppercase()).as_deref(),
                Some(&**c)
            );
        }
        let all: std::collections::HashSet<_> =
            codes.canonical().iter().map(|c| c.to_string()).collect();
        assert_eq!(all.len(), 10, "codes are distinct");
    }

    #[test]
    fn each_code_finds_its_own_slot_and_nothing_else_matches() {
        let codes = RecoveryCodes::generate(3).unwrap();
        let hashes = RecoveryHashes::create(&codes, TEST_KDF).unwrap();
        hashes.validate().unwrap();
        for (i, c) in codes.canonical().iter().enumerate() {
            assert_eq!(hashes.find(c).unwrap(), Some(i));
        }
        assert_eq!(hashes.find("0000000000000000").unwrap(), None);
        assert!(
            !hashes
                .hashes
                .iter()
                .any(|h| codes.canonical().iter().any(|c| h.contains(&**c)))
        );
    }

    #[test]
    fn look_alike_letters_fold() {
        assert_eq!(
            canonical("OIL0000000000000").as_deref().map(String::as_str),
            Some("0110000000000000")
        );
        assert!(canonical("u000000000000000").is_none());
        assert!(canonical("000").is_none());
    }

    fn scratch(codes: &[&str]) -> Vec<Zeroizing<String>> {
        codes
            .iter()
            .map(|c| Zeroizing::new(c.to_string()))
            .collect()
    }

    #[test]
    fn imported_scratch_codes_are_hashed_and_found_like_generated_ones() {
        let codes = scratch(&["92160603", "46745210", "64731277"]);
        let hashes = RecoveryHashes::create_numeric(&codes, TEST_KDF).unwrap();
        hashes.validate().unwrap();
        assert_eq!(hashes.numeric_digits, Some(8));
        assert_eq!(hashes.find("46745210").unwrap(), Some(1));
        assert_eq!(hashes.find("46745211").unwrap(), None);
        assert!(!hashes.hashes.iter().any(|h| h.contains("92160603")));
        // One length, digits only, at most MAX_COUNT.
        assert!(
            RecoveryHashes::create_numeric(&scratch(&["1234567", "12345678"]), TEST_KDF).is_err()
        );
        assert!(RecoveryHashes::create_numeric(&scratch(&["1234567a"]), TEST_KDF).is_err());
        assert!(RecoveryHashes::create_numeric(&scratch(&["12345"]), TEST_KDF).is_err());
        let many: Vec<String> = (0..=MAX_COUNT).map(|i| format!("{i:08}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let most = RecoveryHashes::create_numeric(&scratch(&many[..MAX_COUNT]), TEST_KDF);
        assert_eq!(most.unwrap().hashes.len(), MAX_COUNT);
        assert!(RecoveryHashes::create_numeric(&scratch(&many), TEST_KDF).is_err());
        // Generated codes are not numeric.
        let generated =
            RecoveryHashes::create(&RecoveryCodes::generate(1).unwrap(), TEST_KDF).unwrap();
        assert_eq!(generated.numeric_digits, None);
        let mut odd = hashes.clone();
        odd.numeric_digits = Some(11);
        assert!(odd.validate().is_err());
    }

    #[test]
    fn hostile_parameters_are_refused() {
        let codes = RecoveryCodes::generate(1).unwrap();
        let mut h = RecoveryHashes::create(&codes, TEST_KDF).unwrap();
        h.m_cost = u32::MAX;
        assert!(h.validate().is_err());
        let mut h2 = RecoveryHashes::create(&codes, TEST_KDF).unwrap();
        h2.hashes[0] = "zz".into();
        assert!(h2.validate().is_err());
    }

    #[test]
    fn the_default_cost_is_owasps() {
        // 19 MiB, 2 passes, 1 lane.
        assert_eq!(
            (
                KdfParams::DEFAULT.m_cost,
                KdfParams::DEFAULT.t_cost,
                KdfParams::DEFAULT.p_cost
            ),
            (19_456, 2, 1)
        );
    }

    #[test]
    fn display_groups_four_by_four() {
        assert_eq!(&*display_form("0123456789abcdef"), "0123-4567-89ab-cdef");
    }

    #[test]
    fn no_codes_is_empty() {
        assert!(RecoveryCodes::generate(0).unwrap().is_empty());
        assert!(!RecoveryCodes::generate(1).unwrap().is_empty());
    }

    #[test]
    fn the_decoy_costs_one_production_hash_and_matches_nothing() {
        let d = RecoveryHashes::decoy();
        d.validate().unwrap();
        assert_eq!(d.kdf_params(), KdfParams::DEFAULT);
        assert_eq!(d.remaining(), 1);
        assert_eq!(d.find("0000000000000000").unwrap(), None);
    }

    /// Valid hashes with TEST_KDF, changed by `f`.
    fn hashes_with(f: impl FnOnce(&mut RecoveryHashes)) -> RecoveryHashes {
        let codes = RecoveryCodes::generate(1).unwrap();
        let mut h = RecoveryHashes::create(&codes, TEST_KDF).unwrap();
        f(&mut h);
        h
    }

    #[test]
    fn every_bound_is_checked_at_its_edge() {
        let ok = |f: fn(&mut RecoveryHashes)| hashes_with(f).validate();
        assert!(ok(|h| h.m_cost = KdfParams::MAX_M_COST).is_ok());
        assert!(ok(|h| h.m_cost = KdfParams::MAX_M_COST + 1).is_err());
        assert!(ok(|h| h.t_cost = KdfParams::MAX_T_COST).is_ok());
        assert!(ok(|h| h.t_cost = KdfParams::MAX_T_COST + 1).is_err());
        assert!(ok(|h| h.t_cost = 0).is_err());
        assert!(ok(|h| h.p_cost = KdfParams::MAX_P_COST).is_ok());
        // Enough memory for the lanes, so the bound refuses it, not Argon2.
        let too_many_lanes = |h: &mut RecoveryHashes| {
            h.p_cost = KdfParams::MAX_P_COST + 1;
            h.m_cost = 1024;
        };
        assert!(ok(too_many_lanes).is_err());
        assert!(ok(|h| h.p_cost = 0).is_err());
        assert!(ok(|h| h.salt = hex(&[7u8; 8])).is_ok());
        assert!(ok(|h| h.salt = hex(&[7u8; 7])).is_err());
        assert!(ok(|h| h.hashes = vec![hex(&[0u8; HASH_BYTES]); MAX_COUNT]).is_ok());
        assert!(ok(|h| h.hashes = vec![hex(&[0u8; HASH_BYTES]); MAX_COUNT + 1]).is_err());
    }

    #[test]
    fn used_up_codes_still_have_their_parameters_checked() {
        // Every code used: the salt and parameters remain, and are checked.
        let h = hashes_with(|h| {
            h.hashes.clear();
            h.m_cost = u32::MAX;
        });
        assert!(h.validate().is_err());
        // Hashes without a salt are not "no recovery codes".
        assert!(hashes_with(|h| h.salt.clear()).validate().is_err());
        // No codes ever: nothing to check.
        let none = RecoveryHashes::default();
        assert!(none.validate().is_ok());
    }
}
