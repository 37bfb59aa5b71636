//! One user's enrollment as stored on disk (TOML), with strict parsing:
//! a record that does not parse, or parses to something out of range, is
//! refused and never rewritten.

use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

use super::otp::{self, Algorithm, Kind, OtpParams};
use super::recovery::RecoveryHashes;

pub const FORMAT_VERSION: u32 = 1;
/// The first and last lines of every record written: a record with the
/// `HEAD` line must end with the `END` line, so a record cut short at a
/// line end (which would still be valid TOML, its missing fields taking
/// defaults: no recovery codes, no hard lock, another state id) is refused.
/// Lines compare without trailing spaces or `\r` (CRLF after an editor),
/// the first after a byte-order mark; `HEAD` counts on any line (a comment
/// an admin put above it), and blank lines after `END` are fine. Records
/// written before these lines existed have neither and are read as before.
const HEAD: &str = "# otpgate record: the last line says where it ends\n";
const END: &str = "# end of record\n";

/// A record with the first line must end with the last (see [`HEAD`]).
fn cut_short(text: &str) -> bool {
    // Read on every login: compares slices, allocates nothing.
    fn bare(l: &str) -> &str {
        l.trim_end_matches([' ', '\t', '\r', '\n'])
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (head, end) = (bare(HEAD), bare(END));
    text.lines().any(|l| bare(l) == head)
        && text.lines().map(bare).rfind(|l| !l.is_empty()) != Some(end)
}

/// The largest time a record can hold (TOML integers are i64).
pub const MAX_TIME: u64 = i64::MAX as u64;
/// Records are small; anything larger is hostile or corrupt.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
const MAX_SOURCE_CHARS: usize = 255;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub version: u32,
    /// TOTP or HOTP; records from before HOTP have none and are TOTP.
    #[serde(default)]
    pub kind: Kind,
    /// Base32 (RFC 4648, upper case, no padding).
    pub secret: String,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u32,
    /// Unix time of enrollment.
    pub created: u64,
    /// The replay guard, by kind:
    /// - TOTP: the newest accepted time step; only newer steps are accepted
    ///   (RFC 6238 §5.2). 0: none yet.
    /// - HOTP: the NEXT counter the token may show, i.e. the last accepted
    ///   counter + 1; counters below it are used (RFC 4226 §7.2). 0: none
    ///   accepted yet, the token starts at counter 0.
    ///
    /// The login state keeps this in the same field with the same meaning.
    #[serde(default)]
    pub last_step: u64,
    /// Consecutive failed attempts (reset by a success or `otpgate unlock`).
    #[serde(default)]
    pub failures: u32,
    /// How many of `failures` came where the password was not yet checked
    /// (`forward_pass`): they lead to temporary locks, never to the hard lock.
    #[serde(default)]
    pub unconfirmed: u32,
    /// Unix time until which the second factor is locked (0: not locked).
    #[serde(default)]
    pub locked_until: u64,
    /// Set once `hard_deny` failures were reached under any service's policy;
    /// only `otpgate unlock` clears it, so every service and the CLI agree.
    #[serde(default)]
    pub hard_locked: bool,
    /// Unix time of the last successful login (0: never).
    #[serde(default)]
    pub last_login: u64,
    #[serde(default)]
    pub last_login_from: String,
    /// Step offset of the last code that matched outside the window (clock drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drift: Option<i64>,
    #[serde(default)]
    pub recovery: RecoveryHashes,
    /// Recent code logins that open a `grace_period` (see `core::grace`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grace: Vec<super::grace::GraceEntry>,
    /// Renewed by every administrative write: the login state (see
    /// `core::state`) of an earlier version of this record is ignored.
    #[serde(default)]
    pub state_id: u64,
}

impl Drop for Record {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("version", &self.version)
            .field("kind", &self.kind)
            .field("secret", &"[redacted]")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("last_step", &self.last_step)
            .field("failures", &self.failures)
            .field("locked_until", &self.locked_until)
            .field("hard_locked", &self.hard_locked)
            .field("recovery_left", &self.recovery.remaining())
            .finish()
    }
}

/// Why a record was refused. Never contains record contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    TooLarge,
    NotUtf8,
    Syntax(String),
    UnknownVersion(i64),
    Invalid(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::TooLarge => write!(f, "record larger than {MAX_RECORD_BYTES} bytes"),
            RecordError::NotUtf8 => f.write_str("record is not UTF-8"),
            RecordError::Syntax(why) => write!(f, "record does not parse: {why}"),
            RecordError::UnknownVersion(v) => write!(f, "unknown record version {v}"),
            RecordError::Invalid(why) => write!(f, "record is invalid: {why}"),
        }
    }
}

impl std::error::Error for RecordError {}

impl Record {
    /// A fresh enrollment with no login history.
    pub fn new(secret: &[u8], params: OtpParams, recovery: RecoveryHashes, now: u64) -> Record {
        Record {
            version: FORMAT_VERSION,
            kind: Kind::Totp,
            secret: otp::encode_secret(secret),
            algorithm: params.algorithm,
            digits: params.digits,
            period: params.period,
            created: now,
            last_step: 0,
            failures: 0,
            unconfirmed: 0,
            locked_until: 0,
            hard_locked: false,
            last_login: 0,
            last_login_from: String::new(),
            last_drift: None,
            recovery,
            grace: Vec::new(),
            state_id: 0,
        }
    }

    /// Failures that count toward the hard lock.
    pub fn confirmed_failures(&self) -> u32 {
        self.failures.saturating_sub(self.unconfirmed)
    }

    pub fn params(&self) -> OtpParams {
        OtpParams {
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
        }
    }

    pub fn secret_bytes(&self) -> Result<Zeroizing<Vec<u8>>, RecordError> {
        otp::decode_secret(&self.secret)
            .ok_or_else(|| RecordError::Invalid("secret is not base32 of 10..=128 bytes".into()))
    }

    pub fn parse(bytes: &[u8]) -> Result<Record, RecordError> {
        Record::parse_with(bytes, true)
    }

    /// [`Record::parse`] without its one-pass path, for the fuzzer to check
    /// that the two agree on every input.
    #[doc(hidden)]
    pub fn parse_through_table(bytes: &[u8]) -> Result<Record, RecordError> {
        Record::parse_with(bytes, false)
    }

    fn parse_with(bytes: &[u8], one_pass: bool) -> Result<Record, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| RecordError::NotUtf8)?;
        if cut_short(text) {
            return Err(RecordError::Syntax(
                "it does not end with the line \"# end of record\" (cut short, or edited after it)"
                    .into(),
            ));
        }
        // Every login reads the record twice: line by line when it is in
        // the form we write (see `record_text`), else straight into the
        // struct when it is one of ours (one pass, and for a record in our
        // format no second copy of the secret in a table). Anything else
        // takes the path below, for its error.
        if one_pass && let Some(record) = super::record_text::parse(text) {
            record.validate()?;
            return Ok(record);
        }
        if one_pass && let Ok(record) = toml::from_str::<Record>(text) {
            // validate() refuses another version first, as below.
            record.validate()?;
            return Ok(record);
        }
        // Read the version first so a newer format is reported as such,
        // not as a pile of unknown fields.
        let table: toml::Table = toml::from_str(text).map_err(|e| syntax(&e))?;
        match table.get("version") {
            Some(toml::Value::Integer(v)) if *v == i64::from(FORMAT_VERSION) => {}
            Some(toml::Value::Integer(v)) => return Err(RecordError::UnknownVersion(*v)),
            _ => {
                return Err(RecordError::Invalid(
                    "missing or non-integer version".into(),
                ));
            }
        }
        let record: Record = table.try_into().map_err(|e: toml::de::Error| syntax(&e))?;
        record.validate()?;
        Ok(record)
    }

    pub fn to_toml(&self) -> Result<Zeroizing<String>, RecordError> {
        self.validate()?;
        let body = Zeroizing::new(
            toml::to_string(self)
                .map_err(|e| RecordError::Invalid(format!("cannot serialise: {e}")))?,
        );
        let mut text = Zeroizing::new(String::with_capacity(HEAD.len() + body.len() + END.len()));
        text.push_str(HEAD);
        text.push_str(&body);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(END);
        // What cannot be read back is never written.
        if text.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge);
        }
        Ok(text)
    }

    pub fn validate(&self) -> Result<(), RecordError> {
        if self.version != FORMAT_VERSION {
            return Err(RecordError::UnknownVersion(i64::from(self.version)));
        }
        self.params().validate().map_err(RecordError::Invalid)?;
        self.secret_bytes()?;
        self.recovery.validate().map_err(RecordError::Invalid)?;
        if self.recovery.numeric_digits == Some(self.digits) {
            return Err(RecordError::Invalid(
                "numeric recovery codes have as many digits as the codes".into(),
            ));
        }
        if self.grace.len() > super::grace::MAX_ENTRIES
            || self.grace.iter().any(|e| {
                e.key.len() != 32
                    || !e.key.bytes().all(|b| b.is_ascii_hexdigit())
                    || e.at > MAX_TIME
            })
        {
            return Err(RecordError::Invalid("grace entries are malformed".into()));
        }
        if self.unconfirmed > self.failures {
            return Err(RecordError::Invalid(
                "unconfirmed failures exceed failures".into(),
            ));
        }
        if self.last_login_from.chars().count() > MAX_SOURCE_CHARS
            || self.last_login_from.chars().any(char::is_control)
        {
            return Err(RecordError::Invalid(
                "last_login_from is too long or has control characters".into(),
            ));
        }
        // TOML integers are i64: keep every time inside that range.
        let limit = MAX_TIME;
        if [
            self.created,
            self.last_step,
            self.locked_until,
            self.last_login,
            self.state_id,
        ]
        .iter()
        .any(|&t| t > limit)
        {
            return Err(RecordError::Invalid("time value out of range".into()));
        }
        Ok(())
    }
}

/// toml's messages quote the offending line, which may hold the secret:
/// keep only the first line of its description, without the excerpt.
fn syntax(e: &toml::de::Error) -> RecordError {
    let msg = e
        .message()
        .lines()
        .next()
        .unwrap_or("syntax error")
        .to_string();
    let at = e
        .span()
        .map(|s| format!(" at byte {}", s.start))
        .unwrap_or_default();
    RecordError::Syntax(format!("{msg}{at}"))
}

/// A safe single-line rendering of a login source (rhost) for the record.
pub fn clean_source(source: &str) -> String {
    source
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SOURCE_CHARS)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::recovery::{RecoveryCodes, tests::TEST_KDF};

    pub(crate) const SECRET: &[u8] = b"12345678901234567890";

    pub(crate) fn sample() -> (Record, RecoveryCodes) {
        let codes = RecoveryCodes::generate(3).unwrap();
        let hashes = RecoveryHashes::create(&codes, TEST_KDF).unwrap();
        (
            Record::new(SECRET, OtpParams::default(), hashes, 1_700_000_000),
            codes,
        )
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let (mut r, _) = sample();
        r.last_step = 56_666_666;
        r.failures = 3;
        r.unconfirmed = 1;
        r.locked_until = 1_700_000_600;
        r.hard_locked = true;
        r.last_login = 1_700_000_100;
        r.last_login_from = "192.0.2.7".into();
        r.last_drift = Some(-4);
        let text = r.to_toml().unwrap();
        let back = Record::parse(text.as_bytes()).unwrap();
        assert_eq!(back, r);
        assert!(text.contains("version = 1"));
    }

    #[test]
    fn unknown_version_and_fields_are_refused() {
        let (r, _) = sample();
        let text = r.to_toml().unwrap();
        let v2 = text.replace("version = 1", "version = 2");
        assert_eq!(
            Record::parse(v2.as_bytes()),
            Err(RecordError::UnknownVersion(2))
        );
        let extra = format!("{}\nsurprise = true\n", &*text);
        assert!(matches!(
            Record::parse(extra.as_bytes()),
            Err(RecordError::Syntax(_))
        ));
    }

    #[test]
    fn corrupt_records_are_refused_without_echoing_content() {
        let (r, _) = sample();
        let text = r.to_toml().unwrap();
        let truncated = &text.as_bytes()[..text.len() / 2];
        let err = Record::parse(truncated).unwrap_err();
        assert!(!err.to_string().contains(&r.secret), "{err}");
        assert!(Record::parse(b"\xff\xfe").is_err());
        assert!(Record::parse(b"").is_err());
        assert_eq!(
            Record::parse(&vec![b' '; MAX_RECORD_BYTES + 1]),
            Err(RecordError::TooLarge)
        );
        let bad_digits = text.replace("digits = 6", "digits = 9");
        assert!(matches!(
            Record::parse(bad_digits.as_bytes()),
            Err(RecordError::Invalid(_))
        ));
        let bad_secret = text.replace(&r.secret, "!!!!");
        let err = Record::parse(bad_secret.as_bytes()).unwrap_err();
        assert!(matches!(err, RecordError::Invalid(_)));
        // A syntax error on the secret's own line must not quote it.
        let broken = text.replace(
            &format!("secret = \"{}\"", r.secret),
            &format!("secret = \"{} oops", r.secret),
        );
        let err = Record::parse(broken.as_bytes()).unwrap_err();
        assert!(!err.to_string().contains(&r.secret[..8]), "{err}");
    }

    #[test]
    fn the_kind_is_explicit_and_totp_when_absent() {
        let (mut r, _) = sample();
        let text = r.to_toml().unwrap();
        assert!(text.contains("kind = \"totp\""), "{}", &*text);
        // Records written before HOTP existed have no kind: TOTP.
        let old = text.replace("kind = \"totp\"\n", "");
        assert_eq!(Record::parse(old.as_bytes()).unwrap().kind, Kind::Totp);
        r.kind = Kind::Hotp;
        r.last_step = 42;
        let back = Record::parse(r.to_toml().unwrap().as_bytes()).unwrap();
        assert_eq!((back.kind, back.last_step), (Kind::Hotp, 42));
        let unknown = text.replace("kind = \"totp\"", "kind = \"motp\"");
        assert!(matches!(
            Record::parse(unknown.as_bytes()),
            Err(RecordError::Syntax(_))
        ));
    }

    #[test]
    fn imported_seven_digit_records_are_valid() {
        let (r, _) = sample();
        let text = r.to_toml().unwrap();
        let seven = text.replace("digits = 6", "digits = 7");
        assert_eq!(Record::parse(seven.as_bytes()).unwrap().digits, 7);
    }

    #[test]
    fn numeric_recovery_codes_must_differ_in_length_from_the_codes() {
        let (mut r, _) = sample();
        let codes = vec![Zeroizing::new("12345678".to_string())];
        r.recovery = RecoveryHashes::create_numeric(&codes, TEST_KDF).unwrap();
        let back = Record::parse(r.to_toml().unwrap().as_bytes()).unwrap();
        assert_eq!(back.recovery.numeric_digits, Some(8));
        // An 8-digit enrollment could not tell a scratch code from a code.
        r.digits = 8;
        assert!(matches!(r.validate(), Err(RecordError::Invalid(_))));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let (r, _) = sample();
        assert!(!format!("{r:?}").contains(&r.secret));
    }

    #[test]
    fn a_record_of_exactly_the_size_limit_parses() {
        let (r, _) = sample();
        let full = r.to_toml().unwrap().to_string();
        let mut text = full.strip_suffix(END).unwrap().to_string();
        text.push('#');
        text.push_str(&" ".repeat(MAX_RECORD_BYTES - text.len() - 1 - END.len()));
        text.push('\n');
        text.push_str(END);
        assert_eq!(text.len(), MAX_RECORD_BYTES);
        assert_eq!(Record::parse(text.as_bytes()), Ok(r));
    }

    #[test]
    fn a_version_outside_u32_is_an_unknown_version() {
        let (r, _) = sample();
        let text = r.to_toml().unwrap();
        for v in ["-1", "4294967297"] {
            let other = text.replace("version = 1", &format!("version = {v}"));
            assert_eq!(
                Record::parse(other.as_bytes()),
                Err(RecordError::UnknownVersion(v.parse().unwrap()))
            );
        }
    }

    #[test]
    fn login_sources_are_bounded_and_single_line() {
        let (mut r, _) = sample();
        r.last_login_from = "a".repeat(MAX_SOURCE_CHARS);
        assert!(r.validate().is_ok());
        r.last_login_from.push('a');
        assert!(matches!(r.validate(), Err(RecordError::Invalid(_))));
        r.last_login_from = "192.0.2.1\nforged".into();
        assert!(matches!(r.validate(), Err(RecordError::Invalid(_))));
    }

    #[test]
    fn debug_output_shows_the_state() {
        let (mut r, _) = sample();
        r.failures = 7;
        let text = format!("{r:?}");
        assert!(text.starts_with("Record {"), "{text}");
        assert!(text.contains("secret: \"[redacted]\""), "{text}");
        assert!(text.contains("failures: 7"), "{text}");
        assert!(text.contains("recovery_left: 3"), "{text}");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (err, want) in [
            (RecordError::TooLarge, "record larger than 65536 bytes"),
            (RecordError::NotUtf8, "record is not UTF-8"),
            (
                RecordError::Syntax("x at byte 3".into()),
                "record does not parse: x at byte 3",
            ),
            (RecordError::UnknownVersion(9), "unknown record version 9"),
            (RecordError::Invalid("why".into()), "record is invalid: why"),
        ] {
            assert_eq!(err.to_string(), want);
        }
    }

    /// A record cut short anywhere, at a line end too, is refused; the
    /// whole record parses. (Cut at a line end, the rest would be valid
    /// TOML whose missing fields take their defaults.)
    #[test]
    fn a_record_cut_short_anywhere_is_refused() {
        use crate::core::recovery::{KdfParams, RecoveryCodes};
        let kdf = KdfParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        };
        let rc = RecoveryCodes::generate(2).unwrap();
        let mut r = Record::new(
            &[4u8; 20],
            OtpParams::default(),
            RecoveryHashes::create(&rc, kdf).unwrap(),
            1_764_000_000,
        );
        r.hard_locked = true;
        r.state_id = 7;
        let text = r.to_toml().unwrap();
        assert!(text.starts_with(HEAD) && text.ends_with(END), "{}", *text);
        assert_eq!(Record::parse(text.as_bytes()).unwrap(), r);
        let mut line_ends = 0;
        // (Only the last newline gone, it is whole: below.)
        for cut in 0..text.len() - 1 {
            let short = &text.as_bytes()[..cut];
            line_ends += usize::from(short.ends_with(b"\n"));
            match Record::parse(short) {
                Err(RecordError::Syntax(_) | RecordError::Invalid(_)) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        assert!(line_ends > 15, "{line_ends}");
        // A record from before the first and last lines: read as it was.
        let legacy = text
            .strip_prefix(HEAD)
            .and_then(|t| t.strip_suffix(END))
            .unwrap();
        assert_eq!(Record::parse(legacy.as_bytes()).unwrap(), r);
        let e = Record::parse(&text.as_bytes()[..text.len() - END.len()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "record does not parse: it does not end with the line \"# end of record\" (cut short, or edited after it)"
        );
        // What editors and copies do to it keeps the check on: CRLF, a
        // byte-order mark, trailing spaces, a comment above the first line.
        for damaged in [
            text.replace('\n', "\r\n"),
            format!("\u{feff}{}", *text),
            text.replace("ends\n", "ends  \n"),
            format!("# alice's, see ticket 12\n{}", *text),
        ] {
            assert_eq!(Record::parse(damaged.as_bytes()).unwrap(), r, "{damaged:?}");
            // Cut at the line end before the recovery table.
            let short = &damaged[..damaged.find("[recovery]").unwrap()];
            assert!(Record::parse(short.as_bytes()).is_err(), "{short:?}");
        }
        // The last line without its newline, or blank lines after it: whole.
        for whole in [text.trim_end().to_string(), format!("{}\n\n", *text)] {
            assert_eq!(Record::parse(whole.as_bytes()).unwrap(), r);
        }
        // Anything after it: edited, refused.
        assert!(Record::parse(format!("{}last_step = 9\n", *text).as_bytes()).is_err());
    }

    #[test]
    fn a_record_written_at_exactly_the_size_limit_reads_back_and_a_byte_more_is_refused() {
        let (mut r, _) = sample();
        let room = MAX_RECORD_BYTES - r.to_toml().unwrap().len();
        // The salt grows by pairs of hex digits; an odd byte goes elsewhere.
        r.recovery.salt.push_str(&"00".repeat(room / 2));
        r.last_login_from.push_str(&"h".repeat(room % 2));
        let text = r.to_toml().unwrap();
        assert_eq!(text.len(), MAX_RECORD_BYTES);
        assert_eq!(Record::parse(text.as_bytes()), Ok(r.clone()));
        // The end line follows the last value, with no blank line between.
        assert!(
            !text.ends_with(&format!("\n\n{END}")),
            "{:?}",
            &text[text.len() - 40..]
        );
        r.last_login_from.push('h');
        assert_eq!(r.to_toml().map(|_| ()), Err(RecordError::TooLarge));
    }

    #[test]
    fn grace_entries_are_bounded_in_number_and_form() {
        use crate::core::grace::{GraceEntry, MAX_ENTRIES};
        let entry = |key: &str, at| GraceEntry {
            key: key.to_string(),
            at,
        };
        let good = "0123456789abcdef0123456789ABCDEF";
        let (mut r, _) = sample();
        r.grace = vec![entry(good, MAX_TIME); MAX_ENTRIES];
        assert_eq!(r.validate(), Ok(()));
        for (what, bad) in [
            ("too many", vec![entry(good, 1); MAX_ENTRIES + 1]),
            ("31 digits", vec![entry(&good[1..], 1)]),
            ("33 digits", vec![entry(&format!("{good}0"), 1)]),
            ("not hex", vec![entry(&good.replace('f', "g"), 1)]),
            ("beyond i64", vec![entry(good, MAX_TIME + 1)]),
            ("one of two", vec![entry(good, 1), entry(&good[1..], 1)]),
        ] {
            r.grace = bad;
            assert_eq!(
                r.validate(),
                Err(RecordError::Invalid("grace entries are malformed".into())),
                "{what}"
            );
        }
    }

    #[test]
    fn a_record_too_large_to_read_back_is_never_written() {
        let (mut r, _) = sample();
        r.recovery.salt = "00".repeat(MAX_RECORD_BYTES / 2);
        assert_eq!(r.to_toml().map(|_| ()), Err(RecordError::TooLarge));
    }
}
