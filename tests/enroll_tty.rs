//! `otpgate enroll` on a real 80x24 terminal (tmux): what is on the screen
//! when the first code is asked must scan, and a recovery code typed as a
//! proof must not be echoed.

mod common;

use common::*;
use otpgate::core::otp::OtpParams;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_otpgate");
const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const ACCOUNT: &str = "daemon";
const FIRST_CODE_PROMPT: &str = "Enter the code the app shows now: ";

/// A private tmux server with one 80x24 pane (no status line) running
/// `command`; killed on drop.
struct Terminal {
    socket: PathBuf,
}

impl Terminal {
    fn start(dir: &Path, command: &str) -> Terminal {
        let conf = dir.join("tmux.conf");
        // No status line (the pane is the whole 80x24), and the screen stays
        // readable after the command exits.
        fs::write(&conf, "set -g status off\nset -g remain-on-exit on\n").unwrap();
        let t = Terminal {
            socket: dir.join("tmux.sock"),
        };
        let o = Command::new("tmux")
            .env_remove("TMUX") // a private server even when the tests run inside tmux
            .arg("-f")
            .arg(&conf)
            .arg("-S")
            .arg(&t.socket)
            .args(["new-session", "-d", "-x", "80", "-y", "24", "-s", "enroll"])
            .arg(command)
            .output()
            .expect("tmux is installed by scripts/test.sh");
        assert!(o.status.success(), "tmux: {}", text(&o.stderr));
        assert_eq!(
            t.tmux(&["display", "-p", "#{pane_width}x#{pane_height}"]),
            "80x24\n"
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let o: Output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "tmux {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    /// The screen as plain text.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "enroll"])
    }

    /// Polls the screen (bounded) until `want` is on it (tmux drops trailing
    /// spaces); returns that screen.
    fn wait_for(&self, want: &str) -> String {
        let want = want.trim_end();
        for _ in 0..3000 {
            let s = self.screen();
            if s.contains(want) {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{want:?} never appeared on:\n{}", self.screen());
    }

    fn type_text(&self, keys: &str) {
        self.tmux(&["send-keys", "-t", "enroll", "-l", keys]);
    }

    fn enter(&self) {
        self.tmux(&["send-keys", "-t", "enroll", "Enter"]);
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A terminal colour as an SGR sequence set it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Colour {
    Default,
    Indexed(u8),
    Rgb(u8, u8, u8),
}

/// Whether a colour is light, on a terminal whose theme is dark or light
/// (the default colours follow the theme; the others do not).
fn light(c: Colour, is_fg: bool, dark_theme: bool) -> bool {
    match c {
        Colour::Default => is_fg == dark_theme,
        Colour::Indexed(i) => matches!(i, 7 | 15) || (i >= 231 && i != 232),
        Colour::Rgb(r, g, b) => u32::from(r) + u32::from(g) + u32::from(b) > 3 * 128,
    }
}

/// One cell of the screen: its character and colours.
#[derive(Clone, Copy)]
struct Cell {
    ch: char,
    fg: Colour,
    bg: Colour,
}

/// Parses `capture-pane -p -e -N` output into rows of cells, following the
/// SGR colour state across the whole capture as tmux emits it.
fn cells(captured: &str) -> Vec<Vec<Cell>> {
    let (mut fg, mut bg) = (Colour::Default, Colour::Default);
    let mut rows = vec![Vec::new()];
    let mut chars = captured.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => rows.push(Vec::new()),
            '\x1b' => {
                assert_eq!(chars.next(), Some('['), "only CSI sequences expected");
                let mut params = String::new();
                let end = loop {
                    let d = chars.next().unwrap();
                    if d.is_ascii_alphabetic() {
                        break d;
                    }
                    params.push(d);
                };
                if end != 'm' {
                    continue;
                }
                let nums: Vec<u32> = params
                    .split([';', ':'])
                    .map(|p| p.parse().unwrap_or(0))
                    .collect();
                let mut i = 0;
                while i < nums.len() {
                    match nums[i] {
                        0 => (fg, bg) = (Colour::Default, Colour::Default),
                        n @ 30..=37 => fg = Colour::Indexed((n - 30) as u8),
                        n @ 90..=97 => fg = Colour::Indexed((n - 90 + 8) as u8),
                        39 => fg = Colour::Default,
                        n @ 40..=47 => bg = Colour::Indexed((n - 40) as u8),
                        n @ 100..=107 => bg = Colour::Indexed((n - 100 + 8) as u8),
                        49 => bg = Colour::Default,
                        n @ (38 | 48) => {
                            let colour = if nums.get(i + 1) == Some(&5) {
                                i += 2;
                                Colour::Indexed(nums[i] as u8)
                            } else {
                                i += 4;
                                Colour::Rgb(nums[i - 2] as u8, nums[i - 1] as u8, nums[i] as u8)
                            };
                            if n == 38 {
                                fg = colour;
                            } else {
                                bg = colour;
                            }
                        }
                        7 => panic!("reverse video is not expected"),
                        _ => {}
                    }
                    i += 1;
                }
            }
            ch => rows.last_mut().unwrap().push(Cell { ch, fg, bg }),
        }
    }
    rows
}

/// The screen as a picture, two pixels per cell (upper and lower half), as
/// a phone would see it on a terminal with a dark or a light theme.
/// Text cells count as their background.
fn picture(screen: &[Vec<Cell>], dark_theme: bool) -> Vec<Vec<bool>> {
    let blank = Cell {
        ch: ' ',
        fg: Colour::Default,
        bg: Colour::Default,
    };
    let mut px = Vec::new();
    for row in screen.iter().take(24) {
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        for x in 0..80 {
            let c = row.get(x).copied().unwrap_or(blank);
            let f = light(c.fg, true, dark_theme);
            let b = light(c.bg, false, dark_theme);
            let (t, u) = match c.ch {
                '█' => (f, f),
                '▀' => (f, b),
                '▄' => (b, f),
                _ => (b, b),
            };
            top.push(t);
            bottom.push(u);
        }
        px.push(top);
        px.push(bottom);
    }
    px
}

/// Decodes a picture (true = light) with zbarimg, scaled 4x.
fn decode(px: &[Vec<bool>], path: &Path) -> Option<String> {
    zbar_decode(px, 4, path)
}

#[test]
fn the_qr_code_and_the_prompt_share_one_80x24_screen() {
    let f = Fixture::new("tty-qr", "");
    let command = format!(
        "env -u SUDO_USER -u SUDO_UID {BIN} --store {} --config {} enroll {ACCOUNT} \
         --secret {SECRET} --issuer 'Example Corp'",
        f.store.display(),
        f.tmp.path().join("none.toml").display()
    );
    let term = Terminal::start(f.tmp.path(), &command);
    term.wait_for(FIRST_CODE_PROMPT);
    let captured = term.tmux(&["capture-pane", "-p", "-e", "-N", "-t", "enroll"]);
    let screen = cells(&captured);
    let uri =
        format!("otpauth://totp/Example%20Corp:{ACCOUNT}?secret={SECRET}&issuer=Example%20Corp");
    let plain: Vec<String> = screen
        .iter()
        .map(|r| r.iter().map(|c| c.ch).collect())
        .collect();
    assert!(
        plain.iter().any(|l| l.starts_with(FIRST_CODE_PROMPT)),
        "{plain:#?}"
    );
    for dark_theme in [true, false] {
        let px = picture(&screen, dark_theme);
        let img = f.tmp.path().join(format!("screen-{dark_theme}.pgm"));
        assert_eq!(
            decode(&px, &img).as_deref(),
            Some(uri.as_str()),
            "dark theme: {dark_theme}; the screen:\n{}",
            plain.join("\n")
        );
    }
    // The code typed now enrolls, as on any terminal.
    term.type_text(&oathtool(SECRET, OtpParams::default(), unix_now()));
    term.enter();
    term.wait_for("Saved.");
    assert!(f.record_path(ACCOUNT).exists());
}

#[test]
fn a_recovery_code_typed_as_proof_is_not_echoed() {
    if !runs_as_root("a_recovery_code_typed_as_proof_is_not_echoed") {
        return; // --self needs real uid 0; CI runs as root
    }
    let f = Fixture::new("tty-proof", "");
    let e = f.enroll(ACCOUNT, OtpParams::default(), 2);
    let before = fs::read_to_string(f.record_path(ACCOUNT)).unwrap();
    let uid = nix::unistd::User::from_name(ACCOUNT).unwrap().unwrap().uid;
    let command = format!(
        "env SUDO_USER={ACCOUNT} SUDO_UID={uid} {BIN} --store {} --config {} enroll --self \
         --qr none",
        f.store.display(),
        f.tmp.path().join("none.toml").display()
    );
    let term = Terminal::start(f.tmp.path(), &command);
    term.wait_for("or a recovery code: ");
    term.type_text(&e.recovery[0]);
    term.enter();
    let screen = term.wait_for(FIRST_CODE_PROMPT);
    let compact = e.recovery[0].replace('-', "");
    assert!(
        !screen.contains(&e.recovery[0]) && !screen.contains(&compact[..8]),
        "the proof was echoed:\n{screen}"
    );
    // Echo is back for the first code.
    term.type_text("4711");
    term.wait_for(&format!("{FIRST_CODE_PROMPT}4711"));
    drop(term);
    // Abandoned at the first code: the proof was not spent.
    assert_eq!(fs::read_to_string(f.record_path(ACCOUNT)).unwrap(), before);
}
