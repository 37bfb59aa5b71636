//! Terminal QR codes: two modules per character cell, a 4-module quiet zone,
//! and (in `ansi` mode) black-on-white forced so phones scan it on dark and
//! light terminal themes alike.

use qrcode::{Color, EcLevel, QrCode};

pub const QUIET_ZONE: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum QrStyle {
    /// Block characters with forced black-on-white colours (default).
    Ansi,
    /// Block characters in the terminal's own colours (for light themes).
    Utf8,
    /// No QR code; the secret and URI only.
    None,
}

/// The smallest QR code for `data`, with the most error correction that
/// size allows: an enrollment URI then fits an 80x24 terminal with the
/// prompt below it (two modules per line, 23 lines for version 5).
fn smallest(data: &str) -> Result<QrCode, String> {
    let smallest = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L)
        .map_err(|e| format!("cannot encode QR code: {e}"))?;
    for level in [EcLevel::H, EcLevel::Q, EcLevel::M] {
        if let Ok(code) = QrCode::with_version(data.as_bytes(), smallest.version(), level) {
            return Ok(code);
        }
    }
    Ok(smallest)
}

/// Dark/light modules including the quiet zone, row by row.
pub fn modules(data: &str) -> Result<Vec<Vec<bool>>, String> {
    let code = smallest(data)?;
    let width = code.width();
    let colors = code.to_colors();
    let full = width + 2 * QUIET_ZONE;
    let mut rows = vec![vec![false; full]; full];
    for y in 0..width {
        for x in 0..width {
            rows[y + QUIET_ZONE][x + QUIET_ZONE] = colors[y * width + x] == Color::Dark;
        }
    }
    Ok(rows)
}

/// Renders `data` for a terminal.
pub fn render(data: &str, style: QrStyle) -> Result<String, String> {
    if style == QrStyle::None {
        return Ok(String::new());
    }
    let rows = modules(data)?;
    let mut out = String::new();
    for pair in rows.chunks(2) {
        if style == QrStyle::Ansi {
            out.push_str("\x1b[30;107m");
        }
        for x in 0..pair[0].len() {
            let top = pair[0][x];
            let bottom = pair.get(1).is_some_and(|r| r[x]);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        if style == QrStyle::Ansi {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
    Ok(out)
}

/// Reads a rendering back into modules (for tests that decode the picture).
pub fn parse(rendered: &str) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in rendered.lines() {
        let plain = strip_ansi(line);
        if plain.is_empty() {
            continue;
        }
        let top: Vec<bool> = plain.chars().map(|c| matches!(c, '█' | '▀')).collect();
        let bottom: Vec<bool> = plain.chars().map(|c| matches!(c, '█' | '▄')).collect();
        rows.push(top);
        rows.push(bottom);
    }
    rows
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_round_trips_with_quiet_zone() {
        let data = "otpauth://totp/Acme:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme";
        let rows = modules(data).unwrap();
        for style in [QrStyle::Ansi, QrStyle::Utf8] {
            let text = render(data, style).unwrap();
            let back = parse(&text);
            assert_eq!(&back[..rows.len()], &rows[..]);
        }
        // The quiet zone is light on every side.
        assert!(rows[..QUIET_ZONE].iter().all(|r| r.iter().all(|&m| !m)));
        assert!(rows.iter().all(|r| r[..QUIET_ZONE].iter().all(|&m| !m)));
        let ansi = render(data, QrStyle::Ansi).unwrap();
        assert!(
            ansi.lines()
                .all(|l| l.starts_with("\x1b[30;107m") && l.ends_with("\x1b[0m"))
        );
    }

    #[test]
    fn a_usual_enrollment_uri_fits_23_lines() {
        // Issuer and account of 12 and 10 characters: version 5 (37 modules).
        let uri = "otpauth://totp/Example%20Corp:otpgate-t1?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Example%20Corp";
        let lines = render(uri, QrStyle::Ansi).unwrap().lines().count();
        assert!(lines <= 23, "{lines} lines");
    }
}
