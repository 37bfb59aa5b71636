//! RFC 4226 HOTP and RFC 6238 TOTP (HMAC from the `hmac`, `sha1` and
//! `sha2` crates, the truncation of RFC 4226 §5.3 here), with the matched
//! moving factor (time step or counter) reported so the caller can enforce
//! replay rules (RFC 6238 §5.2, RFC 4226 §7.2).

use hmac::digest::{Digest, Key};
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// HMAC hash used by the code generator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    #[default]
    // The config file accepts the CLI's spellings too.
    #[serde(rename = "SHA1", alias = "sha1")]
    Sha1,
    #[serde(rename = "SHA256", alias = "sha256")]
    Sha256,
    #[serde(rename = "SHA512", alias = "sha512")]
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "SHA1" => Ok(Algorithm::Sha1),
            "SHA256" => Ok(Algorithm::Sha256),
            "SHA512" => Ok(Algorithm::Sha512),
            _ => Err(format!("unknown algorithm {s:?} (sha1, sha256 or sha512)")),
        }
    }
}

/// What moves the code on: the clock (RFC 6238) or a counter (RFC 4226,
/// hardware tokens and imported counter-based users).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Totp,
    Hotp,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Totp => "totp",
            Kind::Hotp => "hotp",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Digits a record may have: 7 only comes from imported pam_oath tokens.
pub const DIGITS_ALLOWED: [u8; 3] = [6, 7, 8];
/// Digits `otpgate enroll` and the site config offer (what apps support).
pub const ENROLL_DIGITS: [u8; 2] = [6, 8];
pub const PERIOD_MIN: u32 = 15;
pub const PERIOD_MAX: u32 = 120;
pub const DEFAULT_PERIOD: u32 = 30;
pub const DEFAULT_DIGITS: u8 = 6;
/// Generated secrets: 160 bits, the HMAC-SHA1 block-size recommendation of RFC 4226.
pub const SECRET_BYTES: usize = 20;
/// Oldest apps and google-authenticator-libpam use 80-bit secrets; accept them on import.
pub const SECRET_MIN_BYTES: usize = 10;
pub const SECRET_MAX_BYTES: usize = 128;

/// Parameters shared by the record, the QR code and the verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtpParams {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u32,
}

impl Default for OtpParams {
    fn default() -> Self {
        OtpParams {
            algorithm: Algorithm::Sha1,
            digits: DEFAULT_DIGITS,
            period: DEFAULT_PERIOD,
        }
    }
}

impl OtpParams {
    pub fn validate(&self) -> Result<(), String> {
        if !DIGITS_ALLOWED.contains(&self.digits) {
            return Err(format!("digits must be 6, 7 or 8, not {}", self.digits));
        }
        if !(PERIOD_MIN..=PERIOD_MAX).contains(&self.period) {
            return Err(format!(
                "period must be {PERIOD_MIN}..={PERIOD_MAX} seconds, not {}",
                self.period
            ));
        }
        Ok(())
    }

    /// The time step (RFC 6238 "T") that contains unix time `now`.
    pub fn step_at(&self, now: u64) -> u64 {
        now / u64::from(self.period)
    }
}

/// Decodes a base32 secret the way people type it: any case, spaces,
/// hyphens and `=` padding ignored. Returns `None` on anything else or on
/// a length outside the accepted range.
pub fn decode_secret(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    // Sized once, so no reallocation leaves a copy of the secret behind.
    let mut cleaned = Zeroizing::new(String::with_capacity(text.len()));
    cleaned.extend(
        text.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '=' | '\t'))
            .map(|c| c.to_ascii_uppercase()),
    );
    let bytes = Zeroizing::new(base32::decode(
        base32::Alphabet::Rfc4648 { padding: false },
        &cleaned,
    )?);
    if (SECRET_MIN_BYTES..=SECRET_MAX_BYTES).contains(&bytes.len()) {
        Some(bytes)
    } else {
        None
    }
}

/// Canonical form stored in records and shown to users: upper case, no padding.
pub fn encode_secret(bytes: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, bytes)
}

/// A secret ready to compute codes: the HMAC keyed once (its inner and
/// outer pads hashed), so each code costs two compressions, not four (a
/// refused code tries the window and the drift steps, about 20 codes).
/// The hash states are wiped on drop (the `zeroize` features of `sha1` and
/// `sha2`).
pub struct Generator {
    keyed: Keyed,
    params: OtpParams,
}

enum Keyed {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl Generator {
    pub fn new(secret: &[u8], params: OtpParams) -> Generator {
        // HMAC takes keys of any length (RFC 2104 §2).
        let keyed = match params.algorithm {
            Algorithm::Sha1 => Keyed::Sha1(keyed(secret)),
            Algorithm::Sha256 => Keyed::Sha256(keyed(secret)),
            Algorithm::Sha512 => Keyed::Sha512(keyed(secret)),
        };
        Generator { keyed, params }
    }

    /// The code for moving factor `step`: the time step (TOTP) or the
    /// counter (HOTP), as the digits an app or token would show.
    pub fn code_at_step(&self, step: u64) -> Zeroizing<String> {
        let (digits, len) = self.digits_at(step);
        Zeroizing::new(digits[..len].iter().map(|&d| char::from(d)).collect())
    }

    /// The code for `step` as ASCII digits in the first `len` bytes, without
    /// an allocation (a refused code computes about 20). At least one digit
    /// whatever the parameters, so no code is ever empty.
    fn digits_at(&self, step: u64) -> (Zeroizing<[u8; 10]>, usize) {
        let counter = step.to_be_bytes();
        let mut value = match &self.keyed {
            Keyed::Sha1(m) => value(m, &counter),
            Keyed::Sha256(m) => value(m, &counter),
            Keyed::Sha512(m) => value(m, &counter),
        };
        // 31 bits have at most 10 digits.
        let len = usize::from(self.params.digits).clamp(1, 10);
        let mut digits = Zeroizing::new([b'0'; 10]);
        for d in digits[..len].iter_mut().rev() {
            // The remainder is below 10: the cast keeps it whole.
            *d = b'0' + (value % 10) as u8;
            value /= 10;
        }
        (digits, len)
    }

    /// The first counter in `next..next + window` whose code is `code`
    /// (HOTP look-ahead, RFC 4226 §7.4). Used to check a first code at
    /// enrollment; logins decide in `decide`.
    pub fn find_counter(&self, code: &str, next: u64, window: u32) -> Option<u64> {
        (0..u64::from(window))
            .map_while(|ahead| next.checked_add(ahead))
            .find(|&counter| self.matches_step(code, counter))
    }

    /// Constant-time check of `code` (already normalised digits) against step `step`.
    pub fn matches_step(&self, code: &str, step: u64) -> bool {
        let (expected, len) = self.digits_at(step);
        expected[..len].ct_eq(code.as_bytes()).into()
    }

    pub fn params(&self) -> OtpParams {
        self.params
    }

    /// The step within `window` of `now` whose code is `code`, nearest first.
    /// Used to check a first code at enrollment.
    pub fn find_step(&self, code: &str, now: u64, window: u32) -> Option<u64> {
        let current = self.params.step_at(now);
        (0..=i64::from(window))
            .flat_map(|m| if m == 0 { vec![0] } else { vec![-m, m] })
            .filter_map(|o| current.checked_add_signed(o))
            .find(|&step| self.matches_step(code, step))
    }
}

/// HMAC keyed with `secret`, which may have any length (RFC 2104 §2: a key
/// longer than the hash's block is hashed first, a shorter one padded with
/// zeros). `new_from_slice` does the same but returns a `Result`.
fn keyed<D: EagerHash + Digest>(secret: &[u8]) -> Hmac<D> {
    let mut key = Key::<Hmac<D>>::default();
    if secret.len() <= key.len() {
        key[..secret.len()].copy_from_slice(secret);
    } else {
        let mut hashed = D::digest(secret);
        key[..hashed.len()].copy_from_slice(&hashed);
        hashed.zeroize();
    }
    let keyed = Hmac::<D>::new(&key);
    key.zeroize();
    keyed
}

/// RFC 4226 §5.3: the HMAC of `counter` (the pads already hashed in `m`),
/// dynamically truncated to 31 bits at the offset its last byte's low
/// nibble names.
fn value<M: Mac + Clone>(m: &M, counter: &[u8; 8]) -> u32 {
    let mut m = m.clone();
    m.update(counter);
    let hmac = m.finalize().into_bytes();
    let offset = usize::from(hmac[hmac.len() - 1] & 0x0f);
    let b = &hmac[offset..offset + 4];
    u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 Appendix B: the seeds are the ASCII strings below, 8 digits, 30 s.
    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    const VECTORS: &[(u64, &str, &str, &str)] = &[
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];

    fn generator(seed: &[u8], algorithm: Algorithm) -> Generator {
        Generator::new(
            seed,
            OtpParams {
                algorithm,
                digits: 8,
                period: 30,
            },
        )
    }

    /// Every algorithm and length of code, keys of every length around the
    /// hashes' block sizes (a longer key is hashed first, RFC 2104 §2) and
    /// counters with high bits set: the same codes as totp-rs.
    #[test]
    fn codes_match_another_implementation() {
        let algorithms = [
            (Algorithm::Sha1, totp_rs::Algorithm::SHA1),
            (Algorithm::Sha256, totp_rs::Algorithm::SHA256),
            (Algorithm::Sha512, totp_rs::Algorithm::SHA512),
        ];
        let key: Vec<u8> = (0..=255u8).map(|i| i.wrapping_mul(151) ^ 0x5c).collect();
        for (ours, theirs) in algorithms {
            // 9 digits: beyond what a record may hold, still RFC 4226's.
            for digits in DIGITS_ALLOWED.into_iter().chain([9]) {
                for len in (1..=140).chain([200, 256]) {
                    let secret = &key[..len];
                    let g = Generator::new(
                        secret,
                        OtpParams {
                            algorithm: ours,
                            digits,
                            period: 30,
                        },
                    );
                    let other = totp_rs::Builder::new()
                        .with_algorithm(theirs)
                        .with_digits(digits)
                        .with_step_duration(1)
                        .with_secret(secret)
                        .build_noncompliant();
                    for step in [0, 1, 59_000_000, len as u64 * 7919, u64::MAX >> 1, u64::MAX] {
                        assert_eq!(
                            *g.code_at_step(step),
                            other.generate(step).to_string(),
                            "{ours} {digits} digits, key of {len} bytes, step {step}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn no_code_is_empty_whatever_the_parameters() {
        for digits in [0, 10, 11, 255] {
            let g = Generator::new(
                b"12345678901234567890",
                OtpParams {
                    algorithm: Algorithm::Sha1,
                    digits,
                    period: 30,
                },
            );
            let code = g.code_at_step(1);
            assert_eq!(code.len(), usize::from(digits).clamp(1, 10));
            assert!(!g.matches_step("", 1));
        }
    }

    #[test]
    fn rfc6238_appendix_b_all_algorithms() {
        let sha1 = generator(SEED20, Algorithm::Sha1);
        let sha256 = generator(SEED32, Algorithm::Sha256);
        let sha512 = generator(SEED64, Algorithm::Sha512);
        for &(time, c1, c256, c512) in VECTORS {
            let step = time / 30;
            assert_eq!(*sha1.code_at_step(step), c1, "SHA1 at {time}");
            assert_eq!(*sha256.code_at_step(step), c256, "SHA256 at {time}");
            assert_eq!(*sha512.code_at_step(step), c512, "SHA512 at {time}");
            assert!(sha1.matches_step(c1, step));
            assert!(!sha1.matches_step(c256, step));
        }
    }

    #[test]
    fn six_digit_codes_are_the_low_digits() {
        let g = Generator::new(
            SEED20,
            OtpParams {
                algorithm: Algorithm::Sha1,
                digits: 6,
                period: 30,
            },
        );
        assert_eq!(*g.code_at_step(59 / 30), "287082");
    }

    #[test]
    fn secret_decoding_is_forgiving_about_format_only() {
        let canonical = encode_secret(SEED20);
        let messy = format!(
            " {}== ",
            canonical
                .to_lowercase()
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-")
        );
        assert_eq!(
            decode_secret(&messy).as_deref().map(|v| v.as_slice()),
            Some(SEED20)
        );
        assert!(decode_secret("not base32 !").is_none());
        assert!(decode_secret("AAAA").is_none(), "too short");
    }

    // RFC 4226 Appendix D: HOTP values for counters 0..=9 of the ASCII seed.
    const HOTP_VECTORS: [&str; 10] = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];

    #[test]
    fn rfc4226_appendix_d() {
        let g = Generator::new(SEED20, OtpParams::default());
        for (counter, want) in HOTP_VECTORS.iter().enumerate() {
            assert_eq!(*g.code_at_step(counter as u64), *want, "counter {counter}");
            assert!(g.matches_step(want, counter as u64));
        }
        // Look-ahead from the next counter: the nearest match wins.
        assert_eq!(g.find_counter("969429", 0, 10), Some(3));
        assert_eq!(g.find_counter("969429", 3, 1), Some(3));
        assert_eq!(g.find_counter("969429", 4, 10), None, "counter 3 is behind");
        assert_eq!(
            g.find_counter("520489", 0, 9),
            None,
            "counter 9 is 10 ahead"
        );
        assert_eq!(g.find_counter("520489", 0, 10), Some(9));
        assert_eq!(g.find_counter("755224", u64::MAX, 10), None);
    }

    #[test]
    fn kinds_read_and_print_in_lower_case() {
        assert_eq!(Kind::default(), Kind::Totp);
        assert_eq!(Kind::Hotp.as_str(), "hotp");
        // What the import's audit line shows (`kind=hotp`).
        assert_eq!(format!("{} {}", Kind::Totp, Kind::Hotp), "totp hotp");
    }

    #[test]
    fn seven_digit_codes_for_imported_tokens() {
        let g = Generator::new(
            SEED20,
            OtpParams {
                algorithm: Algorithm::Sha1,
                digits: 7,
                period: 30,
            },
        );
        // The low seven digits of RFC 6238's 8-digit value at T = 59.
        assert_eq!(*g.code_at_step(1), "4287082");
    }

    #[test]
    fn params_are_bounded() {
        let mut p = OtpParams::default();
        assert!(p.validate().is_ok());
        p.digits = 7;
        assert!(p.validate().is_ok(), "pam_oath tokens have 7 digits");
        p.digits = 5;
        assert!(p.validate().is_err());
        p.digits = 9;
        assert!(p.validate().is_err());
        p.digits = 8;
        p.period = 14;
        assert!(p.validate().is_err());
        p.period = 121;
        assert!(p.validate().is_err());
        p.period = 120;
        assert!(p.validate().is_ok());
    }

    #[test]
    fn algorithm_names_parse_in_any_case() {
        assert_eq!("sha1".parse::<Algorithm>(), Ok(Algorithm::Sha1));
        assert_eq!("SHA1".parse::<Algorithm>(), Ok(Algorithm::Sha1));
        assert_eq!("Sha256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        assert_eq!("sha512".parse::<Algorithm>(), Ok(Algorithm::Sha512));
        for bad in ["md5", "sha-1", ""] {
            assert!(bad.parse::<Algorithm>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_generator_keeps_its_parameters() {
        let params = OtpParams {
            algorithm: Algorithm::Sha512,
            digits: 8,
            period: 60,
        };
        assert_eq!(Generator::new(SEED64, params).params(), params);
    }

    #[test]
    fn find_step_returns_the_matching_step_within_the_window() {
        let g = Generator::new(SEED20, OtpParams::default());
        let now: u64 = 1_700_000_015;
        let current = now / 30;
        for offset in [-1i64, 0, 1] {
            let step = current.checked_add_signed(offset).unwrap();
            let code = g.code_at_step(step);
            assert_eq!(g.find_step(&code, now, 1), Some(step), "{offset}");
        }
        let later = g.code_at_step(current + 2);
        assert_eq!(g.find_step(&later, now, 1), None);
        assert_eq!(g.find_step(&later, now, 2), Some(current + 2));
    }
}
