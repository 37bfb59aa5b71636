//! A service's `auth` chain, built from its PAM files the way libpam builds
//! it (Linux-PAM `pam_handlers.c`, `_pam_parse_control`): comments and line
//! continuations, `-auth`, simple and bracket controls, `include`,
//! `substack` and Debian's `@include`. A line libpam cannot use becomes a
//! handler that fails whenever it is reached, as in libpam.

use std::fs;
use std::path::{Path, PathBuf};

use super::{MODULE_FILE, io_why};

/// Return values libpam distinguishes in controls, by PAM code.
pub const RETURN_NAMES: [&str; 32] = [
    "success",
    "open_err",
    "symbol_err",
    "service_err",
    "system_err",
    "buf_err",
    "perm_denied",
    "auth_err",
    "cred_insufficient",
    "authinfo_unavail",
    "user_unknown",
    "maxtries",
    "new_authtok_reqd",
    "acct_expired",
    "session_err",
    "cred_unavail",
    "cred_expired",
    "cred_err",
    "no_module_data",
    "conv_err",
    "authtok_err",
    "authtok_recover_err",
    "authtok_lock_busy",
    "authtok_disable_aging",
    "try_again",
    "ignore",
    "abort",
    "authtok_expired",
    "module_unknown",
    "bad_item",
    "conv_again",
    "incomplete",
];
pub const SUCCESS: usize = 0;
pub const PERM_DENIED: usize = 6;
pub const AUTH_ERR: usize = 7;
pub const NEW_AUTHTOK_REQD: usize = 12;
pub const CONV_ERR: usize = 19;
pub const IGNORE: usize = 25;
pub const ABORT: usize = 26;
pub const MODULE_UNKNOWN: usize = 28;
pub const INCOMPLETE: usize = 31;

/// libpam's limit on nested includes (PAM_SUBSTACK_MAX_LEVEL).
const MAX_INCLUDE_DEPTH: usize = 16;

/// What libpam does with a return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Ignore,
    Ok,
    Done,
    Bad,
    Die,
    Reset,
    /// Skip this many following lines of the same (sub)stack.
    Jump(u16),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Ignore => f.write_str("ignore"),
            Action::Ok => f.write_str("ok"),
            Action::Done => f.write_str("done"),
            Action::Bad => f.write_str("bad"),
            Action::Die => f.write_str("die"),
            Action::Reset => f.write_str("reset"),
            Action::Jump(n) => write!(f, "{n}"),
        }
    }
}

pub type Actions = [Action; RETURN_NAMES.len()];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A module line.
    Module,
    /// The `substack` line itself; its lines follow one level deeper.
    Substack,
    /// A line libpam could not use: it returns PAM_PERM_DENIED when reached.
    Broken,
}

/// One entry of the auth chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handler {
    /// The file it was read from (the service file or an included one).
    pub file: PathBuf,
    pub line: usize,
    /// Substack depth (0 for the service's own stack and its includes).
    pub level: usize,
    pub kind: Kind,
    /// Written as `-auth`: libpam does not log a failure to load the module.
    pub dash: bool,
    /// The control as written (`required`, `[success=1 default=ignore]`).
    pub control: String,
    pub actions: Actions,
    pub module: String,
    pub args: Vec<String>,
}

impl Handler {
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    pub fn module_name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }

    pub fn is_ours(&self) -> bool {
        self.kind == Kind::Module && matches!(self.module_name(), MODULE_FILE | "libotpgate.so")
    }

    /// `control module`, as an admin reads the line.
    pub fn describe(&self) -> String {
        format!("`{} {}`", self.control, self.module_name())
    }
}

/// Why libpam could not use a line (every login reaching it then fails).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub what: String,
    pub missing_include: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    pub handlers: Vec<Handler>,
    pub problems: Vec<Problem>,
}

impl Chain {
    pub fn uses_module(&self) -> bool {
        self.handlers.iter().any(Handler::is_ours)
    }
}

/// The auth chain of the service whose file is `service` (text `text`);
/// relative includes are looked up in `dir`.
pub fn read_chain(dir: &Path, service: &Path, text: &str) -> Chain {
    let mut chain = Chain::default();
    add_file(dir, service, text, 0, 0, &mut chain);
    chain
}

fn add_file(dir: &Path, file: &Path, text: &str, level: usize, depth: usize, chain: &mut Chain) {
    for (line, words) in logical_lines(text) {
        let at = |what: String, missing_include| Problem {
            location: format!("{}:{line}", file.display()),
            what,
            missing_include,
        };
        let broken = |control: &str, actions: Actions| Handler {
            file: file.to_path_buf(),
            line,
            level,
            kind: Kind::Broken,
            dash: false,
            control: control.to_string(),
            actions,
            module: String::new(),
            args: Vec::new(),
        };
        if words[0].text == "@include" && !words[0].bracketed {
            let target = words.get(1).map_or("", |w| w.text.as_str());
            if let Err(why) = include(dir, target, level, depth, chain) {
                chain.problems.push(at(why, true));
                chain.handlers.push(broken("@include", [Action::Bad; 32]));
            }
            continue;
        }
        let (dash, kind) = match words[0].text.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, words[0].text.as_str()),
        };
        let known_type = ["auth", "account", "session", "password"]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(kind));
        if known_type && !kind.eq_ignore_ascii_case("auth") {
            continue;
        }
        let Some(control) = words.get(1) else {
            chain
                .problems
                .push(at("no control (required, ...) on this line".into(), false));
            chain.handlers.push(broken("", [Action::Bad; 32]));
            continue;
        };
        let written = if control.bracketed {
            format!("[{}]", control.text)
        } else {
            control.text.clone()
        };
        let actions = match parse_control(control) {
            Ok(Control::Include { substack }) => {
                let target = words.get(2).map_or("", |w| w.text.as_str());
                if substack {
                    chain.handlers.push(Handler {
                        kind: Kind::Substack,
                        module: target.to_string(),
                        ..broken(&written, [Action::Ignore; 32])
                    });
                }
                let inner = level + usize::from(substack);
                if let Err(why) = include(dir, target, inner, depth, chain) {
                    chain.problems.push(at(why, true));
                    chain.handlers.push(broken(&written, [Action::Bad; 32]));
                }
                continue;
            }
            Ok(Control::Actions(a)) => a,
            Err(why) => {
                chain.problems.push(at(
                    format!("libpam cannot read the control `{written}` ({why}) and treats every result as a failure"),
                    false,
                ));
                [Action::Bad; 32]
            }
        };
        if !known_type {
            chain.problems.push(at(
                format!("`{}` is not a PAM type (auth, account, session, password): libpam fails this line", words[0].text),
                false,
            ));
            chain.handlers.push(broken(&written, actions));
            continue;
        }
        let Some(module) = words.get(2) else {
            chain
                .problems
                .push(at("no module on this line".into(), false));
            chain.handlers.push(broken(&written, actions));
            continue;
        };
        chain.handlers.push(Handler {
            file: file.to_path_buf(),
            line,
            level,
            kind: Kind::Module,
            dash,
            control: written,
            actions,
            module: module.text.clone(),
            args: words[3..].iter().map(|w| w.text.clone()).collect(),
        });
    }
}

fn include(
    dir: &Path,
    target: &str,
    level: usize,
    depth: usize,
    chain: &mut Chain,
) -> Result<(), String> {
    if target.is_empty() {
        return Err("include names no file".into());
    }
    if depth + 1 >= MAX_INCLUDE_DEPTH {
        return Err(format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"));
    }
    let path = if target.starts_with('/') {
        PathBuf::from(target)
    } else {
        dir.join(target)
    };
    let text = fs::read_to_string(&path).map_err(|e| {
        format!(
            "includes {}, but {}: libpam fails every login through this service",
            path.display(),
            io_why(&e)
        )
    })?;
    add_file(dir, &path, &text, level, depth + 1, chain);
    Ok(())
}

enum Control {
    Actions(Actions),
    Include { substack: bool },
}

fn parse_control(word: &Word) -> Result<Control, String> {
    let mut a: [Option<Action>; 32] = [None; 32];
    if word.bracketed {
        parse_brackets(&word.text, &mut a)?;
        return Ok(Control::Actions(a.map(|x| x.unwrap_or(Action::Bad))));
    }
    let (success, default) = match word.text.to_ascii_lowercase().as_str() {
        "required" => (Action::Ok, Action::Bad),
        "requisite" => (Action::Ok, Action::Die),
        "optional" => (Action::Ok, Action::Ignore),
        "sufficient" => (Action::Done, Action::Ignore),
        "include" => return Ok(Control::Include { substack: false }),
        "substack" => return Ok(Control::Include { substack: true }),
        other => return Err(format!("`{other}` is not a control")),
    };
    a[SUCCESS] = Some(success);
    a[NEW_AUTHTOK_REQD] = Some(success);
    if matches!(default, Action::Bad | Action::Die) {
        a[IGNORE] = Some(Action::Ignore);
    }
    Ok(Control::Actions(a.map(|x| x.unwrap_or(default))))
}

/// `value=action ...`; `default=` fills the values not yet given.
fn parse_brackets(text: &str, a: &mut [Option<Action>; 32]) -> Result<(), String> {
    // libpam allows spaces around `=`.
    let mut joined = String::new();
    for part in text.split('=') {
        if !joined.is_empty() {
            joined.push('=');
        }
        joined.push_str(if joined.is_empty() {
            part.trim_end()
        } else {
            part.trim()
        });
    }
    for token in joined.split_whitespace() {
        let Some((value, action)) = token.split_once('=') else {
            return Err(format!("expecting `value=action`, got `{token}`"));
        };
        let action = match action {
            "ignore" => Action::Ignore,
            "ok" => Action::Ok,
            "done" => Action::Done,
            "bad" => Action::Bad,
            "die" => Action::Die,
            "reset" => Action::Reset,
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => match n.parse() {
                Ok(0) | Err(_) => return Err(format!("bad jump `{n}`")),
                Ok(n) => Action::Jump(n),
            },
            other => return Err(format!("unknown action `{other}`")),
        };
        if value == "default" {
            for x in a.iter_mut().filter(|x| x.is_none()) {
                *x = Some(action);
            }
        } else if let Some(code) = RETURN_NAMES.iter().position(|n| *n == value) {
            a[code] = Some(action);
        } else {
            return Err(format!("unknown return value `{value}`"));
        }
    }
    Ok(())
}

/// One word of a line; `[...]` groups are one word without their brackets
/// (`\]` inside stands for `]`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Word {
    text: String,
    bracketed: bool,
}

/// Logical lines (comments removed, `\` continuations joined) with the
/// number of their first physical line.
fn logical_lines(text: &str) -> Vec<(usize, Vec<Word>)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (n, raw) in text.lines().enumerate() {
        if cur.is_empty() {
            start = n + 1;
        }
        let line = raw.split('#').next().unwrap_or("").trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(line);
        let words = split_words(&cur);
        if !words.is_empty() {
            out.push((start, words));
        }
        cur.clear();
    }
    let words = split_words(&cur);
    if !words.is_empty() {
        out.push((start, words));
    }
    out
}

fn split_words(line: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        if c == '[' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&']') => {
                        text.push(']');
                        chars.next();
                    }
                    ']' => break,
                    c => text.push(c),
                }
            }
            words.push(Word {
                text,
                bracketed: true,
            });
            continue;
        }
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            text.push(c);
            chars.next();
        }
        words.push(Word {
            text,
            bracketed: false,
        });
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(text: &str) -> Chain {
        read_chain(Path::new("/nonexistent"), Path::new("/etc/pam.d/svc"), text)
    }

    #[test]
    fn simple_controls_are_libpams_brackets() {
        let c = chain(
            "auth required pam_a.so\nauth requisite pam_b.so\nauth sufficient pam_c.so\nauth optional pam_d.so",
        );
        let h = &c.handlers;
        assert_eq!(h[0].actions[SUCCESS], Action::Ok);
        assert_eq!(h[0].actions[IGNORE], Action::Ignore);
        assert_eq!(h[0].actions[AUTH_ERR], Action::Bad);
        assert_eq!(h[1].actions[AUTH_ERR], Action::Die);
        assert_eq!(h[2].actions[SUCCESS], Action::Done);
        assert_eq!(h[2].actions[AUTH_ERR], Action::Ignore);
        assert_eq!(h[3].actions[CONV_ERR], Action::Ignore);
        assert_eq!(h[3].actions[NEW_AUTHTOK_REQD], Action::Ok);
    }

    #[test]
    fn bracket_controls() {
        let c = chain(
            "auth [success=2 new_authtok_reqd = done default=ignore] pam_unix.so nullok\n\
                       auth [success=ok] pam_x.so\n\
                       auth [default=die success=ok] pam_y.so",
        );
        let h = &c.handlers;
        assert_eq!(
            h[0].control,
            "[success=2 new_authtok_reqd = done default=ignore]"
        );
        assert_eq!(h[0].actions[SUCCESS], Action::Jump(2));
        assert_eq!(h[0].actions[NEW_AUTHTOK_REQD], Action::Done);
        assert_eq!(h[0].actions[AUTH_ERR], Action::Ignore);
        assert_eq!(h[0].args, ["nullok"]);
        // Values not named and no default: bad.
        assert_eq!(h[1].actions[AUTH_ERR], Action::Bad);
        assert_eq!(h[2].actions[SUCCESS], Action::Ok);
        assert_eq!(h[2].actions[CONV_ERR], Action::Die);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }

    #[test]
    fn an_unreadable_control_fails_every_result() {
        let c = chain(
            "auth [success=ok defualt=ignore] pam_x.so\nauth requird pam_y.so\nauth [success=0] pam_z.so",
        );
        assert_eq!(c.problems.len(), 3, "{:?}", c.problems);
        for h in &c.handlers {
            assert_eq!(h.actions, [Action::Bad; 32]);
        }
    }

    #[test]
    fn lines_comments_continuations_and_dashes() {
        let c = chain(
            "# comment\n\naccount required pam_unix.so\n-auth required \\\n   /x/pam_otpgate.so [prompt=Code \\] #1: ] echo # trailing\nAUTH Required pam_permit.so",
        );
        let h = &c.handlers;
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].line, h[0].dash), (4, true));
        assert!(h[0].is_ours());
        assert_eq!(h[0].args, ["prompt=Code ]"]);
        assert_eq!(h[0].location(), "/etc/pam.d/svc:4");
        assert_eq!((h[1].line, h[1].control.as_str()), (6, "Required"));
    }

    #[test]
    fn includes_inline_and_substacks_nest() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("common-auth"),
            "auth required pam_a.so\nsession required pam_s.so\n",
        )
        .unwrap();
        let c = read_chain(
            dir.path(),
            &dir.path().join("svc"),
            "@include common-auth\nauth include common-auth\nauth substack common-auth\nauth include missing\nauth required pam_otpgate.so",
        );
        let got: Vec<(usize, Kind, &str)> = c
            .handlers
            .iter()
            .map(|h| (h.level, h.kind, h.module_name()))
            .collect();
        assert_eq!(
            got,
            [
                (0, Kind::Module, "pam_a.so"),
                (0, Kind::Module, "pam_a.so"),
                (0, Kind::Substack, "common-auth"),
                (1, Kind::Module, "pam_a.so"),
                (0, Kind::Broken, ""),
                (0, Kind::Module, "pam_otpgate.so"),
            ]
        );
        assert_eq!(
            c.handlers[0].location(),
            format!("{}:1", dir.path().join("common-auth").display())
        );
        assert_eq!(c.problems.len(), 1);
        assert!(c.problems[0].missing_include);
    }
}
