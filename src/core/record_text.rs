//! The record as `otpgate` writes it, read line by line without the TOML
//! parser: every login reads the record twice (a first look before the
//! prompt, then under the lock), and the TOML parser and serde took about
//! 7 us a read here, most of the module's own CPU time.
//!
//! [`parse`] accepts only a narrow form of TOML: the lines
//! [`Record::to_toml`] writes (`key = value` with one space either side,
//! the `[recovery]` table and `[[grace]]` entries), comment lines and blank
//! lines; strings without escapes, decimal integers without signs or
//! leading zeros (a minus only for `last_drift`), `true`, `false` and
//! one-line arrays of strings. For anything else it returns `None` and the
//! caller reads the text with the TOML parser as before, so a record an
//! admin edited by hand, and every refusal and its message, are unchanged.
//! What it accepts it must read exactly as the TOML parser does: the tests
//! below and the fuzz target `record` compare the two.

use zeroize::Zeroize;

use super::grace::GraceEntry;
use super::otp::{Algorithm, Kind};
use super::record::Record;
use super::recovery::RecoveryHashes;

/// The record in `text`, when `text` is in the narrow form above and has
/// every field serde requires; `None` otherwise (the caller then parses it
/// as TOML). The result is not validated.
pub fn parse(text: &str) -> Option<Record> {
    let mut top = Top::default();
    let mut recovery: Option<Recovery> = None;
    let mut grace: Vec<Grace> = Vec::new();
    let mut section = Section::Top;
    for line in text.split_inclusive('\n') {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if !valid_comment(line) {
                return None;
            }
            continue;
        }
        match line {
            "[recovery]" if recovery.is_none() => {
                recovery = Some(Recovery::default());
                section = Section::Recovery;
                continue;
            }
            "[[grace]]" => {
                grace.push(Grace::default());
                section = Section::Grace;
                continue;
            }
            _ => {}
        }
        // `key = value`: the key has no `=`, so its first `=` is the one.
        let eq = line.find('=')?;
        let key = line[..eq].strip_suffix(' ')?;
        let value = line[eq + 1..].strip_prefix(' ')?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return None;
        }
        let value = Value::read(value)?;
        match section {
            Section::Top => top.set(key, value)?,
            Section::Recovery => recovery.as_mut()?.set(key, value)?,
            Section::Grace => grace.last_mut()?.set(key, value)?,
        }
    }
    let recovery = match recovery {
        Some(r) => r.finish()?,
        None => RecoveryHashes::default(),
    };
    let grace = grace
        .into_iter()
        .map(Grace::finish)
        .collect::<Option<Vec<_>>>()?;
    top.finish(recovery, grace)
}

#[derive(Clone, Copy)]
enum Section {
    Top,
    Recovery,
    Grace,
}

/// One value in the narrow form.
enum Value<'a> {
    Int(i64),
    Bool(bool),
    Str(&'a str),
    Strs(Vec<&'a str>),
}

impl<'a> Value<'a> {
    fn read(v: &'a str) -> Option<Value<'a>> {
        match v {
            "true" => return Some(Value::Bool(true)),
            "false" => return Some(Value::Bool(false)),
            _ => {}
        }
        if v.starts_with('"') {
            return string(v).map(Value::Str);
        }
        if let Some(inner) = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            if inner.is_empty() {
                return Some(Value::Strs(Vec::new()));
            }
            // Elements `"..."` joined by `, ` exactly.
            let mut items = Vec::new();
            for (i, item) in inner.split(',').enumerate() {
                let item = if i == 0 {
                    item
                } else {
                    item.strip_prefix(' ')?
                };
                items.push(string(item)?);
            }
            return Some(Value::Strs(items));
        }
        let (negative, digits) = match v.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, v),
        };
        // TOML: no leading zeros, and "-0" is 0 (left to the parser).
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
            || (negative && digits == "0")
        {
            return None;
        }
        // Beyond i64 the TOML parser refuses: so does the caller, there.
        let n: i64 = digits.parse().ok()?;
        Some(Value::Int(if negative { -n } else { n }))
    }

    fn int<T: TryFrom<i64>>(self) -> Option<T> {
        match self {
            Value::Int(n) => T::try_from(n).ok(),
            _ => None,
        }
    }

    fn boolean(self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    fn str(self) -> Option<&'a str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    fn text(self) -> Option<String> {
        self.str().map(str::to_string)
    }

    fn texts(self) -> Option<Vec<String>> {
        match self {
            Value::Strs(v) => Some(v.into_iter().map(str::to_string).collect()),
            _ => None,
        }
    }
}

/// The inside of a basic string with nothing to unescape: no backslash,
/// no quote, no control character (tab included, to keep it simple).
fn string(v: &str) -> Option<&str> {
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    if any_char(inner, |c| c == '"' || c == '\\' || c.is_control()) {
        return None;
    }
    Some(inner)
}

/// Whether `line` (one that starts with `#`) is a comment TOML allows: no
/// control character but tab. The site file's reader uses it too.
pub(crate) fn valid_comment(line: &str) -> bool {
    !any_char(line, |c| c.is_control() && c != '\t')
}

/// Whether any character of `s` is `bad`: by bytes when `s` is ASCII (a
/// record's strings are), as decoding characters took most of the time.
fn any_char(s: &str, bad: impl Fn(char) -> bool) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| bad(char::from(b)))
    } else {
        s.chars().any(bad)
    }
}

/// Sets `slot` once: a key given twice is a TOML error (the parser's).
fn once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

#[derive(Default)]
struct Top {
    version: Option<u32>,
    kind: Option<Kind>,
    secret: Option<String>,
    algorithm: Option<Algorithm>,
    digits: Option<u8>,
    period: Option<u32>,
    created: Option<u64>,
    last_step: Option<u64>,
    failures: Option<u32>,
    unconfirmed: Option<u32>,
    locked_until: Option<u64>,
    hard_locked: Option<bool>,
    last_login: Option<u64>,
    last_login_from: Option<String>,
    last_drift: Option<i64>,
    state_id: Option<u64>,
}

impl Top {
    fn set(&mut self, key: &str, v: Value<'_>) -> Option<()> {
        match key {
            "version" => once(&mut self.version, v.int()),
            "kind" => once(
                &mut self.kind,
                match v.str()? {
                    "totp" => Some(Kind::Totp),
                    "hotp" => Some(Kind::Hotp),
                    _ => None,
                },
            ),
            // Refused before the copy: a second secret is never copied.
            "secret" if self.secret.is_some() => None,
            "secret" => once(&mut self.secret, v.text()),
            "algorithm" => once(
                &mut self.algorithm,
                match v.str()? {
                    "SHA1" | "sha1" => Some(Algorithm::Sha1),
                    "SHA256" | "sha256" => Some(Algorithm::Sha256),
                    "SHA512" | "sha512" => Some(Algorithm::Sha512),
                    _ => None,
                },
            ),
            "digits" => once(&mut self.digits, v.int()),
            "period" => once(&mut self.period, v.int()),
            "created" => once(&mut self.created, v.int()),
            "last_step" => once(&mut self.last_step, v.int()),
            "failures" => once(&mut self.failures, v.int()),
            "unconfirmed" => once(&mut self.unconfirmed, v.int()),
            "locked_until" => once(&mut self.locked_until, v.int()),
            "hard_locked" => once(&mut self.hard_locked, v.boolean()),
            "last_login" => once(&mut self.last_login, v.int()),
            "last_login_from" => once(&mut self.last_login_from, v.text()),
            "last_drift" => once(&mut self.last_drift, v.int()),
            "state_id" => once(&mut self.state_id, v.int()),
            _ => None,
        }
    }

    /// The record, with serde's defaults for what is missing; `None` when
    /// a field without a default is missing.
    fn finish(mut self, recovery: RecoveryHashes, grace: Vec<GraceEntry>) -> Option<Record> {
        Some(Record {
            version: self.version?,
            kind: self.kind.unwrap_or_default(),
            algorithm: self.algorithm?,
            digits: self.digits?,
            period: self.period?,
            created: self.created?,
            last_step: self.last_step.unwrap_or_default(),
            failures: self.failures.unwrap_or_default(),
            unconfirmed: self.unconfirmed.unwrap_or_default(),
            locked_until: self.locked_until.unwrap_or_default(),
            hard_locked: self.hard_locked.unwrap_or_default(),
            last_login: self.last_login.unwrap_or_default(),
            last_login_from: self.last_login_from.take().unwrap_or_default(),
            last_drift: self.last_drift,
            recovery,
            grace,
            state_id: self.state_id.unwrap_or_default(),
            // Last, after every `?`: taken, it is in the record (wiped on
            // drop); a missing field above leaves it in `self` (wiped too).
            secret: self.secret.take()?,
        })
    }
}

/// A secret read before the text turned out not to be in the narrow form
/// is wiped, as [`Record`]'s is.
impl Drop for Top {
    fn drop(&mut self) {
        if let Some(s) = self.secret.as_mut() {
            s.zeroize();
        }
    }
}

#[derive(Default)]
struct Recovery {
    kdf: Option<String>,
    m_cost: Option<u32>,
    t_cost: Option<u32>,
    p_cost: Option<u32>,
    salt: Option<String>,
    hashes: Option<Vec<String>>,
    numeric_digits: Option<u8>,
}

impl Recovery {
    fn set(&mut self, key: &str, v: Value<'_>) -> Option<()> {
        match key {
            "kdf" => once(&mut self.kdf, v.text()),
            "m_cost" => once(&mut self.m_cost, v.int()),
            "t_cost" => once(&mut self.t_cost, v.int()),
            "p_cost" => once(&mut self.p_cost, v.int()),
            "salt" => once(&mut self.salt, v.text()),
            "hashes" => once(&mut self.hashes, v.texts()),
            "numeric_digits" => once(&mut self.numeric_digits, v.int()),
            _ => None,
        }
    }

    fn finish(self) -> Option<RecoveryHashes> {
        Some(RecoveryHashes {
            kdf: self.kdf?,
            m_cost: self.m_cost?,
            t_cost: self.t_cost?,
            p_cost: self.p_cost?,
            salt: self.salt?,
            hashes: self.hashes?,
            numeric_digits: self.numeric_digits,
        })
    }
}

#[derive(Default)]
struct Grace {
    key: Option<String>,
    at: Option<u64>,
}

impl Grace {
    fn set(&mut self, key: &str, v: Value<'_>) -> Option<()> {
        match key {
            "key" => once(&mut self.key, v.text()),
            "at" => once(&mut self.at, v.int()),
            _ => None,
        }
    }

    fn finish(self) -> Option<GraceEntry> {
        Some(GraceEntry {
            key: self.key?,
            at: self.at?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Calls `check` on `bytes` with each byte removed, and with each of
    /// `chars` put in place of each byte and before it.
    pub(crate) fn each_byte_change(bytes: &[u8], chars: &[u8], check: &mut impl FnMut(&[u8])) {
        for i in 0..bytes.len() {
            let mut cut = bytes.to_vec();
            cut.remove(i);
            check(&cut);
            for c in chars {
                let mut t = bytes.to_vec();
                t[i] = *c;
                check(&t);
                let mut t = bytes.to_vec();
                t.insert(i, *c);
                check(&t);
            }
        }
    }
    use crate::core::record::tests::sample;

    /// What the TOML parser and serde make of `text`, the reference.
    fn by_toml(text: &str) -> Option<Record> {
        toml::from_str::<Record>(text).ok()
    }

    /// Records as logins and the CLI leave them, every optional part set.
    fn varied() -> Vec<Record> {
        let (plain, _) = sample();
        let mut full = plain.clone();
        full.kind = Kind::Hotp;
        full.algorithm = Algorithm::Sha256;
        full.digits = 8;
        full.last_step = 57_000_001;
        full.failures = 4;
        full.unconfirmed = 2;
        full.locked_until = 1_700_000_600;
        full.hard_locked = true;
        full.last_login = 1_700_000_100;
        full.last_login_from = "192.0.2.7 é".into();
        full.last_drift = Some(-3);
        full.recovery.numeric_digits = Some(10);
        full.grace = vec![
            GraceEntry {
                key: "0123456789abcdef0123456789abcdef".into(),
                at: 1_700_000_050,
            },
            GraceEntry {
                key: "fedcba9876543210fedcba9876543210".into(),
                at: 1_700_000_060,
            },
        ];
        full.state_id = u64::MAX >> 1;
        let mut drift = plain.clone();
        drift.last_drift = Some(7);
        drift.algorithm = Algorithm::Sha512;
        let mut none_left = plain.clone();
        none_left.recovery.hashes.clear();
        vec![plain, full, drift, none_left]
    }

    #[test]
    fn every_record_we_write_reads_as_the_toml_parser_reads_it() {
        for r in varied() {
            let text = r.to_toml().unwrap().to_string();
            let fast = parse(&text).expect("our own form is read line by line");
            assert_eq!(Some(&fast), by_toml(&text).as_ref());
            assert_eq!(fast, r);
        }
    }

    #[test]
    fn what_it_does_not_read_goes_to_the_toml_parser_unchanged() {
        let (r, _) = sample();
        let text = r.to_toml().unwrap().to_string();
        let edited = [
            // An admin's edits: spacing, a trailing comment, CRLF, quotes.
            text.replace("digits = 6", "digits=6"),
            text.replace("digits = 6", "digits = 6   # six"),
            text.replace('\n', "\r\n"),
            text.replace("kdf = \"argon2id\"", "kdf = 'argon2id'"),
            text.replace("version = 1", "version = +1"),
            text.replace("failures = 0", "failures = 0_0"),
            text.replace("[recovery]", "[ recovery ]"),
            format!("\u{feff}{text}"),
        ];
        for e in edited {
            assert_eq!(parse(&e), None, "{e}");
            assert_eq!(
                Record::parse(e.as_bytes()).ok(),
                by_toml(&e),
                "the TOML path still decides"
            );
        }
        // A login source with a quote or a backslash is written escaped.
        let mut quoted = r.clone();
        quoted.last_login_from = "a \"b\" \\c".into();
        let text = quoted.to_toml().unwrap();
        assert_eq!(parse(&text), None);
        assert_eq!(Record::parse(text.as_bytes()).unwrap(), quoted);
    }

    #[test]
    fn refusals_stay_the_toml_parsers() {
        let (r, _) = sample();
        let text = r.to_toml().unwrap().to_string();
        for bad in [
            text.replace("digits = 6\n", "digits = 6\ndigits = 6\n"),
            text.replace("digits = 6", "digits = 256"),
            text.replace("period = 30", "period = -30"),
            text.replace("created = ", "created = 99999999999999999999 # "),
            text.replace("hard_locked = false", "hard_locked = 0"),
            text.replace("kind = \"totp\"", "kind = \"TOTP\""),
            text.replace("secret = ", "secrets = "),
            text.replace("[recovery]\n", "[recovery]\n[recovery]\n"),
            text.replace("version = 1\n", ""),
            text.replace("kdf = \"argon2id\"\n", ""),
            text.replace("m_cost", "n_cost"),
            format!("{text}[[grace]]\nkey = \"00\"\n"),
            format!("{text}[[grace]]\nkey = \"00\"\nat = 1\nat = 2\n"),
            format!("{text}[[grace]]\nwhen = 1\n"),
            format!("{text}# a bell \u{7}\n"),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    /// Every one-byte change of a full record: what the line reader takes,
    /// the TOML parser takes to the same record.
    #[test]
    fn no_small_change_is_read_otherwise_than_by_the_toml_parser() {
        let full = &varied()[1];
        let text = full.to_toml().unwrap().to_string();
        let bytes = text.as_bytes();
        let mut read = 0;
        let mut check = |t: &[u8]| {
            let Ok(t) = std::str::from_utf8(t) else {
                return;
            };
            if let Some(fast) = parse(t) {
                read += 1;
                assert_eq!(Some(fast), by_toml(t), "{t}");
            }
        };
        each_byte_change(bytes, b" \"\\#=[]-,.019az_\n\t\r'+{", &mut check);
        // Lines dropped, doubled and swapped.
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for i in 0..lines.len() {
            for j in 0..lines.len() {
                let mut t = lines.clone();
                t.swap(i, j);
                check(t.concat().as_bytes());
                let mut t = lines.clone();
                t.insert(j, lines[i]);
                check(t.concat().as_bytes());
            }
            let mut t = lines.clone();
            t.remove(i);
            check(t.concat().as_bytes());
        }
        assert!(read > 1000, "the line reader took only {read} variants");
    }
}
