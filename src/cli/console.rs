//! What the command shows and asks. Output that matters (secrets, recovery
//! codes, results) is built whole, written straight to the stdout file
//! descriptor and checked: a failed write (a full disk, a reader that went
//! away) is an error the caller acts on before saving, never a panic.
//! Answers are read byte by byte into one buffer that is wiped afterwards.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use zeroize::Zeroizing;

use super::CliError;

/// Longest answer kept; the rest of a longer line is read and dropped.
const MAX_ANSWER_BYTES: usize = 1024;

/// An I/O error in words: `no such file or directory`, not
/// `No such file or directory (os error 2)`.
pub fn words(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Writes `text` to stdout and makes sure it left the process.
pub fn emit(text: &str) -> Result<(), CliError> {
    let written = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|mut out| out.write_all(text.as_bytes()));
    written.map_err(|e| CliError::usage("cannot write the output", words(&e)))
}

/// Refuses, before anything is made or saved, to print a secret or
/// recovery codes where nobody reads them: stdout on /dev/null or another
/// of the kernel's memory devices (major 1: /dev/zero, /dev/random and
/// /dev/urandom take writes and drop them, /dev/kmsg would put the codes in
/// the kernel log). A closed stdout is the same: the Rust runtime opens
/// /dev/null in its place, so writes succeed and the codes would be saved
/// unseen.
pub fn stdout_is_read(unchanged: &str) -> Result<(), CliError> {
    use nix::sys::stat::{major, minor};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    // /dev/full (1, 7) is left to the writer: every write there fails, and
    // the failure says "nothing was saved".
    const MEMORY_DEVICES: u64 = 1;
    const FULL: u64 = 7;
    let out = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|f| f.metadata());
    if let Ok(out) = out
        && out.file_type().is_char_device()
        && major(out.rdev()) == MEMORY_DEVICES
        && minor(out.rdev()) != FULL
    {
        return Err(CliError::usage(
            "standard output is /dev/null or another device that keeps nothing (or it was closed)",
            format!(
                "the codes would be shown to nobody; {unchanged}: send the output to a terminal or a file"
            ),
        ));
    }
    Ok(())
}

/// [`emit`] for output shown before a change is committed: its error says
/// what did not happen (`nothing was saved`).
pub fn emit_before(text: &str, unchanged: &str) -> Result<(), CliError> {
    emit(text).map_err(|e| CliError {
        why: format!("{}; {unchanged}", e.why),
        ..e
    })
}

/// A line on stderr for the person at the terminal. A failure to write it
/// changes nothing, so it is ignored.
pub fn note(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
    let _ = err.flush();
}

fn prompt(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{text}");
    let _ = err.flush();
}

/// Prints `prompt` on stderr and reads one line from stdin, without the
/// line ending. `None` at end of input.
pub fn ask(text: &str) -> Option<Zeroizing<String>> {
    prompt(text);
    read_answer()
}

/// Like [`ask`], with the terminal's echo off while the answer is typed
/// (for recovery codes). Off a terminal it is the same as `ask`.
pub fn ask_hidden(text: &str) -> Result<Option<Zeroizing<String>>, CliError> {
    if !std::io::stdin().is_terminal() {
        return Ok(ask(text));
    }
    let quiet = EchoOff::start().map_err(|e| {
        CliError::usage(
            "cannot turn off the terminal's echo",
            format!("{e}; the code would show on the screen"),
        )
    })?;
    prompt(text);
    let answer = read_answer();
    drop(quiet);
    Ok(answer)
}

/// Terminal echo switched off (the newline still shows) until dropped.
struct EchoOff {
    saved: Termios,
}

impl EchoOff {
    fn start() -> nix::Result<EchoOff> {
        let saved = termios::tcgetattr(std::io::stdin())?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &quiet)?;
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// One line from stdin, read from the descriptor one byte at a time: no
/// copy is left in a library buffer, and nothing after the line is taken
/// from the input.
fn read_answer() -> Option<Zeroizing<String>> {
    let mut input = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .ok()?;
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_ANSWER_BYTES));
    let mut byte = Zeroizing::new([0u8; 1]);
    let mut any = false;
    loop {
        match input.read(&mut byte[..]) {
            Ok(0) => break,
            Ok(_) => {
                any = true;
                if byte[0] == b'\n' {
                    break;
                }
                if line.len() < MAX_ANSWER_BYTES {
                    line.push(byte[0]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    if !any {
        return None;
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Some(match std::str::from_utf8(&line) {
        Ok(text) => {
            let mut answer = Zeroizing::new(String::with_capacity(text.len()));
            answer.push_str(text);
            answer
        }
        Err(_) => Zeroizing::new(String::from_utf8_lossy(&line).into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_in_words() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(words(&e), "no such file or directory");
        let e = io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(words(&e), "no space left on device");
        let e = io::Error::other("Custom text");
        assert_eq!(words(&e), "custom text");
    }
}
