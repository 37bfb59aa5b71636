//! What the user typed at the prompt, classified before any secret is touched.

use zeroize::Zeroizing;

use super::recovery;

/// Longer answers fail at once, before any hashing (DESIGN: overlong input).
pub const MAX_INPUT_BYTES: usize = 128;

/// The kind of answer, decided from its shape alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Exactly `digits` decimal digits once spaces and hyphens are removed:
    /// a TOTP or HOTP code.
    Code(Zeroizing<String>),
    /// A recovery code in canonical form (lower case, no separators).
    Recovery(Zeroizing<String>),
    /// Neither: empty, overlong, wrong length or foreign characters.
    Malformed,
}

/// Classifies `raw` for a record using `digits`-digit codes and, when it
/// holds imported numeric recovery codes (google-authenticator's 8-digit
/// scratch codes), `numeric_recovery`-digit ones. The lengths differ (the
/// record guarantees it), so the length alone tells which one was meant.
/// Surrounding white space and inner spaces/hyphens are ignored; nothing
/// else is.
pub fn classify(raw: &[u8], digits: u8, numeric_recovery: Option<u8>) -> Attempt {
    if raw.len() > MAX_INPUT_BYTES {
        return Attempt::Malformed;
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Attempt::Malformed;
    };
    // Sized once, so no reallocation leaves a copy of the code behind.
    let mut compact = Zeroizing::new(String::with_capacity(raw.len()));
    compact.extend(text.trim().chars().filter(|c| !matches!(c, ' ' | '-')));
    if compact.is_empty() {
        return Attempt::Malformed;
    }
    if compact.bytes().all(|b| b.is_ascii_digit()) {
        if compact.len() == usize::from(digits) {
            return Attempt::Code(compact);
        }
        if numeric_recovery.is_some_and(|n| compact.len() == usize::from(n)) {
            return Attempt::Recovery(compact);
        }
    }
    match recovery::canonical(&compact) {
        Some(code) => Attempt::Recovery(code),
        None => Attempt::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totp(s: &str) -> Attempt {
        Attempt::Code(Zeroizing::new(s.to_string()))
    }

    #[test]
    fn spaces_and_hyphens_are_ignored_in_codes() {
        assert_eq!(classify(b"123456", 6, None), totp("123456"));
        assert_eq!(classify(b"  123 456\n", 6, None), totp("123456"));
        assert_eq!(classify(b"123-456", 6, None), totp("123456"));
        assert_eq!(classify(b"1234 5678", 8, None), totp("12345678"));
    }

    #[test]
    fn wrong_length_or_characters_are_malformed() {
        assert_eq!(classify(b"12345", 6, None), Attempt::Malformed);
        assert_eq!(classify(b"1234567", 6, None), Attempt::Malformed);
        assert_eq!(classify(b"123456", 8, None), Attempt::Malformed);
        assert_eq!(classify(b"12_456", 6, None), Attempt::Malformed);
        assert_eq!(classify(b"+12345", 6, None), Attempt::Malformed);
        assert_eq!(classify(b"", 6, None), Attempt::Malformed);
        assert_eq!(classify(b"   ", 6, None), Attempt::Malformed);
        assert_eq!(classify(b"12\x00456", 6, None), Attempt::Malformed);
        assert_eq!(classify(b"\xff\xfe", 6, None), Attempt::Malformed);
    }

    #[test]
    fn overlong_input_is_refused_without_parsing() {
        let long = vec![b'1'; MAX_INPUT_BYTES + 1];
        assert_eq!(classify(&long, 6, None), Attempt::Malformed);
        let spaced = format!("{}123456", " ".repeat(MAX_INPUT_BYTES));
        assert_eq!(classify(spaced.as_bytes(), 6, None), Attempt::Malformed);
    }

    #[test]
    fn imported_scratch_codes_are_recovery_attempts_by_their_length() {
        let scratch = |s: &str| Attempt::Recovery(Zeroizing::new(s.to_string()));
        // A 6-digit enrollment with 8-digit scratch codes (google-authenticator).
        assert_eq!(classify(b"12345678", 6, Some(8)), scratch("12345678"));
        assert_eq!(classify(b" 1234-5678 ", 6, Some(8)), scratch("12345678"));
        assert_eq!(classify(b"123456", 6, Some(8)), totp("123456"));
        // Without imported codes an 8-digit answer stays malformed.
        assert_eq!(classify(b"12345678", 6, None), Attempt::Malformed);
        assert_eq!(classify(b"1234567", 6, Some(8)), Attempt::Malformed);
        // Generated recovery codes still classify as before.
        assert_eq!(
            classify(b"k7qf-3mzt-9xwa-pd2h", 6, Some(8)),
            scratch("k7qf3mzt9xwapd2h")
        );
    }

    #[test]
    fn recovery_codes_ignore_case_spaces_and_hyphens() {
        let want = Attempt::Recovery(Zeroizing::new("k7qf3mzt9xwapd2h".to_string()));
        assert_eq!(classify(b"k7qf-3mzt-9xwa-pd2h", 6, None), want);
        assert_eq!(classify(b" K7QF 3MZT 9XWA PD2H ", 6, None), want);
        assert_eq!(classify(b"k7qf3mzt9xwapd2h", 6, None), want);
    }

    #[test]
    fn input_of_exactly_the_limit_is_still_read() {
        let at_limit = format!("{}123456", " ".repeat(MAX_INPUT_BYTES - 6));
        assert_eq!(at_limit.len(), MAX_INPUT_BYTES);
        assert_eq!(classify(at_limit.as_bytes(), 6, None), totp("123456"));
    }
}
