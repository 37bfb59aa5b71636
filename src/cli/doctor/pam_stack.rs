//! Do the PAM services that use the module really ask for the code?

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::options::check_options;
use super::{EXAMPLES, Finding, Level, MODULE_FILE, error, ok, warn};

/// One `auth` line of a PAM stack after @include expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthLine {
    /// The file the line was read from (the service file or an included one).
    pub file: PathBuf,
    pub line: usize,
    pub control: String,
    pub module: String,
    pub args: Vec<String>,
}

impl AuthLine {
    fn is_ours(&self) -> bool {
        self.module
            .rsplit('/')
            .next()
            .is_some_and(|m| m == MODULE_FILE || m == "libotpgate.so")
    }
    fn module_name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }
    fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
    fn ends_on_success(&self) -> bool {
        self.control == "sufficient"
            || (self.control.starts_with('[') && self.control.contains("success=done"))
    }
}

/// Parses a service file's auth lines, following `@include` and
/// `include`/`substack` within `dir` (depth-limited).
pub fn auth_lines(dir: &Path, file: &Path, text: &str, depth: usize) -> Vec<AuthLine> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(inc) = line.strip_prefix("@include") {
            let inc = dir.join(inc.trim());
            if depth > 0
                && let Ok(t) = fs::read_to_string(&inc)
            {
                out.extend(auth_lines(dir, &inc, &t, depth - 1));
            }
            continue;
        }
        let tokens = split_pam_line(line);
        if tokens.len() < 3
            || !tokens[0].eq_ignore_ascii_case("auth") && !tokens[0].eq_ignore_ascii_case("-auth")
        {
            continue;
        }
        if matches!(tokens[1].as_str(), "include" | "substack") {
            let inc = dir.join(&tokens[2]);
            if depth > 0
                && let Ok(t) = fs::read_to_string(&inc)
            {
                out.extend(auth_lines(dir, &inc, &t, depth - 1));
            }
            continue;
        }
        out.push(AuthLine {
            file: file.to_path_buf(),
            line: n + 1,
            control: tokens[1].clone(),
            module: tokens[2].clone(),
            args: tokens[3..].to_vec(),
        });
    }
    out
}

/// Splits a PAM line into words, keeping `[...]` groups (controls and
/// arguments with spaces) whole.
fn split_pam_line(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in line.chars() {
        match c {
            '[' => {
                depth += 1;
                if depth > 1 || !cur.is_empty() {
                    cur.push(c);
                }
            }
            ']' if depth > 0 => {
                depth -= 1;
                if depth > 0 {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    // Controls in brackets keep their brackets so they can be told apart.
    if let Some(first) = line.split_whitespace().nth(1)
        && first.starts_with('[')
        && words.len() > 1
    {
        words[1] = format!("[{}]", words[1]);
    }
    words
}

/// Findings for one service's expanded auth stack.
pub fn analyse_stack(service: &str, lines: &[AuthLine]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !l.is_ours() {
            continue;
        }
        let at = l.location();
        let before = out.len();
        if let Some(p) = check_options(&l.args) {
            let args = p.suggested.unwrap_or_else(|| l.args.clone());
            out.push(
                error(
                    "pam.bad_option",
                    format!("{service}: {}", p.message),
                    format!(
                        "write the line as: auth {} {} {}",
                        l.control,
                        l.module,
                        args.join(" ")
                    ),
                )
                .at(&at),
            );
        }
        if l.control == "optional" {
            out.push(
                error(
                    "pam.failure_ignored",
                    format!(
                        "{service}: `auth optional` does not decide the result, so any code (or none) passes"
                    ),
                    format!(
                        "write the line as: auth required {} {}",
                        l.module,
                        l.args.join(" ")
                    ),
                )
                .at(&at),
            );
        } else if l.control == "sufficient" {
            out.push(warn(
                "pam.code_alone",
                format!("{service}: `auth sufficient` lets a code alone log in and skips the rest of the stack"),
                "use `required` unless the code is meant to replace the password",
            ).at(&at));
        }
        for earlier in &lines[..i] {
            if earlier.ends_on_success() && !earlier.is_ours() {
                out.push(
                    error(
                        "pam.module_skippable",
                        format!(
                            "{service}: {} `{}` comes before the code; its success skips the code at {at}",
                            earlier.module_name(),
                            earlier.control,
                        ),
                        "change that line to `required`, or move the code line above it",
                    )
                    .at(earlier.location()),
                );
            }
        }
        if l.args.iter().any(|a| a == "nullok") {
            let others = lines.iter().any(|o| {
                !o.is_ours()
                    && !matches!(
                        o.module_name(),
                        "pam_deny.so"
                            | "pam_faildelay.so"
                            | "pam_nologin.so"
                            | "pam_env.so"
                            | "pam_faillock.so"
                    )
            });
            if !others {
                out.push(warn(
                    "pam.nullok_refuses",
                    format!("{service}: nullok without another module that can succeed: users who are not enrolled are refused"),
                    "add `auth required pam_permit.so` after it (key logins) or include common-auth before it",
                ).at(&at));
            }
        }
        if out[before..].iter().all(|f| f.level == Level::Ok) {
            out.push(
                ok(
                    "pam.ok",
                    format!("{service}: auth {} {}", l.control, l.module_name()),
                )
                .at(&at),
            );
        }
    }
    out
}

pub fn read_stacks(dir: &Path) -> BTreeMap<String, Vec<AuthLine>> {
    let mut stacks = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return stacks;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || name.ends_with('~')
            || name.contains(".dpkg-")
            || name.starts_with("common-")
        {
            continue;
        }
        if let Ok(text) = fs::read_to_string(e.path()) {
            let lines = auth_lines(dir, &e.path(), &text, 4);
            if lines.iter().any(AuthLine::is_ours) {
                stacks.insert(name, lines);
            }
        }
    }
    stacks
}

pub fn check_pam(stacks: &BTreeMap<String, Vec<AuthLine>>, dir: &Path) -> Vec<Finding> {
    if stacks.is_empty() {
        return vec![
            warn(
                "pam.no_service",
                format!("no PAM service uses {MODULE_FILE}: nothing asks for a code"),
                format!("add `auth required {MODULE_FILE}` after `@include common-auth` in the service file (e.g. sudo), or start from an example stack in {EXAMPLES}"),
            )
            .at(dir.display().to_string()),
        ];
    }
    stacks
        .iter()
        .flat_map(|(s, l)| analyse_stack(s, l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(text: &str) -> Vec<AuthLine> {
        auth_lines(Path::new("/nonexistent"), Path::new("svc"), text, 0)
    }

    fn levels(f: &[Finding]) -> Vec<Level> {
        f.iter().map(|f| f.level).collect()
    }

    #[test]
    fn a_plain_required_line_is_fine() {
        let f = analyse_stack(
            "sudo",
            &stack("auth required pam_unix.so\nauth required pam_otpgate.so\n"),
        );
        assert_eq!(levels(&f), [Level::Ok]);
    }

    #[test]
    fn optional_sufficient_before_and_bad_options_are_flagged() {
        let f = analyse_stack("s", &stack("auth optional pam_otpgate.so"));
        assert_eq!(levels(&f), [Level::Error]);
        assert!(f[0].fix.as_deref().unwrap().contains("auth required"));
        let f = analyse_stack(
            "s",
            &stack("auth sufficient pam_permit.so\nauth required pam_otpgate.so"),
        );
        assert_eq!(levels(&f), [Level::Error]);
        assert!(
            f[0].message
                .contains("pam_permit.so `sufficient` comes before the code"),
            "{f:?}"
        );
        let f = analyse_stack(
            "s",
            &stack("auth [success=done default=ignore] pam_unix.so\nauth required pam_otpgate.so"),
        );
        assert_eq!(levels(&f), [Level::Error]);
        let f = analyse_stack("s", &stack("auth required pam_otpgate.so nulok"));
        assert_eq!(levels(&f), [Level::Error]);
        // Debian's common-auth jump (success=1) is not a bypass.
        let f = analyse_stack(
            "s",
            &stack(
                "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\nauth required pam_otpgate.so",
            ),
        );
        assert_eq!(levels(&f), [Level::Ok]);
    }

    #[test]
    fn nullok_needs_another_module_that_can_succeed() {
        let f = analyse_stack("s", &stack("auth required pam_otpgate.so nullok"));
        assert_eq!(levels(&f), [Level::Warn]);
        let f = analyse_stack(
            "s",
            &stack("auth required pam_otpgate.so nullok\nauth required pam_permit.so"),
        );
        assert_eq!(levels(&f), [Level::Ok]);
    }

    #[test]
    fn bracketed_arguments_stay_whole() {
        let l = stack("auth required /x/pam_otpgate.so [prompt=Your code: ] echo");
        assert_eq!(l[0].args, ["prompt=Your code: ", "echo"]);
        assert_eq!(levels(&analyse_stack("s", &l)), [Level::Ok]);
    }
}
