//! Fields of syslog lines (the module's attempt lines and the command's
//! audit lines): every value escaped so one line stays one line and no
//! control or format character (U+202E, U+2028, NUL, ...) reaches the log.

use std::fmt::Write as _;

/// A value for a space-separated `key=value` field: `[A-Za-z0-9@._+:-]`
/// as is, every other byte as `\xNN`, empty as `-`.
pub fn escape(value: &str) -> String {
    if value.is_empty() {
        return "-".to_string();
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_alphanumeric() || "@._+:-".contains(c) {
            out.push(c);
        } else {
            push_bytes(&mut out, c);
        }
    }
    out
}

/// A free-text value for `detail="..."`: printable ASCII as is (spaces
/// too), quotes, backslashes and everything else as `\xNN`.
pub fn escape_detail(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if (c == ' ' || c.is_ascii_graphic()) && c != '"' && c != '\\' {
            out.push(c);
        } else {
            push_bytes(&mut out, c);
        }
    }
    out
}

fn push_bytes(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        let _ = write!(out, "\\x{b:02x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape("alice@example.com"), "alice@example.com");
        assert_eq!(escape("a b=c"), "a\\x20b\\x3dc");
        assert_eq!(escape(""), "-");
        assert_eq!(escape("é"), "\\xc3\\xa9");
    }

    #[test]
    fn details_keep_words_and_lose_every_control_and_format_character() {
        assert_eq!(escape_detail("no such file"), "no such file");
        assert_eq!(escape_detail("a\"b\\c"), "a\\x22b\\x5cc");
        for evil in [
            "\u{2028}", "\u{202e}", "\u{200b}", "\0", "\n", "\u{feff}", "\u{85}",
        ] {
            let out = escape_detail(&format!("x{evil}y"));
            assert!(
                out.chars().all(|c| c.is_ascii_graphic()),
                "{evil:?} -> {out}"
            );
        }
    }
}
