//! Documents made from the command's own definition, so that a new
//! subcommand or option reaches the shell completions and otpgate(8)
//! without anyone having to remember: `otpgate completions SHELL` and
//! `otpgate manpage` (both hidden; `scripts/package.sh` runs them).
//!
//! The man page is `man/otpgate.8.in` (written by hand: what each command
//! is for, enrollment, exit codes, files) with the synopsis and the
//! per-command option lists filled in here from the clap definitions.

use clap::{Arg, Command};
use std::fmt::Write as _;

use super::{CliResult, EXIT_OK, emit};

/// The hand-written part of otpgate(8).
const TEMPLATE: &str = include_str!("../../man/otpgate.8.in");
/// Template lines replaced by generated roff.
const SYNOPSIS_MARK: &str = ".\\\" @SYNOPSIS@";
const COMMANDS_MARK: &str = ".\\\" @COMMANDS@";
const OPTIONS_MARK: &str = ".\\\" @OPTIONS@";

/// `otpgate completions SHELL`: the completion script on stdout.
pub fn print_completions(mut cmd: Command, shell: clap_complete::Shell) -> CliResult {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "otpgate", &mut out);
    emit(&String::from_utf8_lossy(&out))?;
    Ok(EXIT_OK)
}

/// `otpgate manpage`: otpgate(8) in roff on stdout.
pub fn print_manpage(cmd: &Command) -> CliResult {
    emit(&manpage(cmd))?;
    Ok(EXIT_OK)
}

/// The whole otpgate(8) page for `cmd` (the top-level `otpgate` command).
pub fn manpage(cmd: &Command) -> String {
    let mut page = String::new();
    for line in TEMPLATE.lines() {
        match line {
            SYNOPSIS_MARK => page.push_str(&wrap(&synopsis(cmd))),
            COMMANDS_MARK => page.push_str(&wrap(&commands(cmd))),
            OPTIONS_MARK => page.push_str(&wrap(&options(cmd.get_arguments()))),
            _ => {
                page.push_str(&line.replace("@VERSION@", env!("CARGO_PKG_VERSION")));
                page.push('\n');
            }
        }
    }
    page
}

/// Subcommands a reader should see (not hidden, not clap's own `help`).
fn visible_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

/// Arguments documented under a command: not hidden, not `--help` or
/// `--version`, and not the global options (documented once, under OPTIONS).
fn documented_args(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| {
        !a.is_hide_set() && !a.is_global_set() && !matches!(a.get_id().as_str(), "help" | "version")
    })
}

/// One line per command (and per nested subcommand), the way DESIGN.md
/// writes them: `otpgate enroll [USER] [--issuer S] ...`.
fn synopsis(cmd: &Command) -> String {
    let mut out = String::new();
    let mut lines = Vec::new();
    leaf_commands(cmd, "otpgate", &mut lines);
    for (path, c) in lines {
        out.push_str(".SY \"");
        out.push_str(&path);
        out.push_str("\"\n");
        for arg in documented_args(c) {
            out.push_str(&usage(arg));
            out.push('\n');
        }
        out.push_str(".YS\n");
    }
    out
}

/// Every command that takes arguments of its own, with its full name.
fn leaf_commands<'a>(cmd: &'a Command, path: &str, out: &mut Vec<(String, &'a Command)>) {
    for sub in visible_subcommands(cmd) {
        let name = format!("{path} {}", sub.get_name());
        if sub.has_subcommands() {
            leaf_commands(sub, &name, out);
        } else {
            out.push((name, sub));
        }
    }
}

/// `[--issuer S]`, `[USER]`, `USER`, `[--json]` in roff.
fn usage(arg: &Arg) -> String {
    let text = match arg.get_long() {
        Some(long) => {
            // Every dash of an option is a minus sign: it must survive copy and paste.
            let mut t = format!("\\fB\\-\\-{}\\fR", roff_escape(long).replace('-', "\\-"));
            if arg.get_action().takes_values() {
                let _ = write!(t, " \\fI{}\\fR", roff_escape(&value_name(arg)));
            }
            t
        }
        None => format!("\\fI{}\\fR", roff_escape(&value_name(arg))),
    };
    if arg.is_required_set() {
        text
    } else {
        format!("[{text}]")
    }
}

fn value_name(arg: &Arg) -> String {
    match arg.get_value_names() {
        Some(names) if !names.is_empty() => names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        _ => arg.get_id().as_str().to_uppercase(),
    }
}

/// `.SS otpgate enroll`, what it does, then each argument with its help.
fn commands(cmd: &Command) -> String {
    let mut out = String::new();
    command_sections(cmd, "otpgate", &mut out);
    out
}

fn command_sections(cmd: &Command, path: &str, out: &mut String) {
    for sub in visible_subcommands(cmd) {
        let name = format!("{path} {}", sub.get_name());
        let _ = writeln!(out, ".SS \"{}\"", roff_escape(&name));
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            out.push_str(&roff_text(&sentence(&about.to_string())));
            out.push('\n');
        }
        out.push_str(&options(documented_args(sub)));
        command_sections(sub, &name, out);
    }
}

/// A `.TP` entry per argument: its usage, help, values and default.
fn options<'a>(args: impl Iterator<Item = &'a Arg>) -> String {
    let mut out = String::new();
    for arg in args {
        if arg.is_hide_set() || matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        out.push_str(".TP\n");
        out.push_str(usage(arg).trim_start_matches('[').trim_end_matches(']'));
        out.push('\n');
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        out.push_str(&roff_text(&sentence(&help)));
        out.push('\n');
        let defaults = arg.get_default_values();
        if !defaults.is_empty() && !arg.is_hide_default_value_set() {
            let shown: Vec<_> = defaults
                .iter()
                .map(|d| roff_escape(&d.to_string_lossy()))
                .collect();
            let _ = writeln!(out, "Default: \\fB{}\\fR.", shown.join(","));
        }
        let values: Vec<_> = arg
            .get_possible_values()
            .into_iter()
            .filter(|v| !v.is_hide_set())
            .collect();
        if !arg.get_action().takes_values()
            || values.is_empty()
            || arg.is_hide_possible_values_set()
        {
            continue;
        }
        if values.iter().any(|v| v.get_help().is_some()) {
            out.push_str(".RS\n");
            for v in &values {
                let _ = writeln!(out, ".TP\n\\fB{}\\fR", roff_escape(v.get_name()));
                if let Some(h) = v.get_help() {
                    out.push_str(&roff_text(&sentence(&h.to_string())));
                    out.push('\n');
                }
            }
            out.push_str(".RE\n");
        } else {
            let names: Vec<_> = values
                .iter()
                .map(|v| format!("\\fB{}\\fR", roff_escape(v.get_name())))
                .collect();
            let _ = writeln!(out, "Values: {}.", names.join(", "));
        }
    }
    out
}

/// Clap drops the full stop after a one-line help; a page wants it back.
fn sentence(text: &str) -> String {
    let text = text.trim();
    match text.chars().last() {
        Some('.' | '!' | '?' | ':') | None => text.to_string(),
        _ => format!("{text}."),
    }
}

/// Help text as roff: `code` in bold, paragraphs kept, nothing a roff
/// reader would take for a request or an escape.
fn roff_text(text: &str) -> String {
    let mut out = String::new();
    let mut bold = false;
    let mut prev = None;
    for ch in text.trim().chars() {
        if ch == '`' {
            out.push_str(if bold { "\\fR" } else { "\\fB" });
            bold = !bold;
        } else {
            push_escaped(&mut out, prev, ch);
        }
        prev = Some(ch);
    }
    if bold {
        out.push_str("\\fR");
    }
    let mut lines = Vec::new();
    for line in out.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            // A paragraph break inside an indented entry keeps its indent.
            lines.push(".IP".to_string());
        } else if line.starts_with('.') || line.starts_with('\'') {
            lines.push(format!("\\&{line}"));
        } else {
            lines.push(line.to_string());
        }
    }
    lines.join("\n")
}

/// Longest generated text line (a source-readability rule of mandoc's lint).
const LINE_MAX: usize = 78;

/// Text lines split at spaces to at most [`LINE_MAX`] bytes (roff fills
/// them again); requests are left alone, and a piece that would start like
/// a request is guarded with `\&`.
fn wrap(roff: &str) -> String {
    let mut out = String::new();
    for line in roff.lines() {
        if line.starts_with('.') || line.len() <= LINE_MAX {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut current = String::new();
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            if !current.is_empty() && current.len() + 1 + word.len() > LINE_MAX {
                out.push_str(&current);
                out.push('\n');
                current.clear();
            }
            if current.is_empty() {
                if word.starts_with('.') || word.starts_with('\'') {
                    current.push_str("\\&");
                }
            } else {
                current.push(' ');
            }
            current.push_str(word);
        }
        out.push_str(&current);
        out.push('\n');
    }
    out
}

/// Names and values: escaped, never formatted.
fn roff_escape(text: &str) -> String {
    let mut out = String::new();
    let mut prev = None;
    for ch in text.chars() {
        push_escaped(&mut out, prev, ch);
        prev = Some(ch);
    }
    out
}

/// One character as roff: a backslash as `\e`, a dash that starts an
/// option as a minus sign (`prev` is the character before it in the
/// text), anything outside ASCII by its code point.
fn push_escaped(out: &mut String, prev: Option<char>, ch: char) {
    match ch {
        '\\' => out.push_str("\\e"),
        '-' if !prev.is_some_and(|p| p.is_ascii_alphanumeric()) => out.push_str("\\-"),
        c if c.is_ascii() => out.push(c),
        c => {
            let _ = write!(out, "\\[u{:04X}]", u32::from(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    /// Every visible subcommand and every documented option is in the page,
    /// and no template mark is left over.
    #[test]
    fn manpage_lists_every_command_and_option() {
        let cmd = Cli::command();
        let page = manpage(&cmd);
        assert!(!page.contains("@SYNOPSIS@") && !page.contains("@COMMANDS@"));
        assert!(!page.contains("@OPTIONS@") && !page.contains("@VERSION@"));
        let mut all = Vec::new();
        leaf_commands(&cmd, "otpgate", &mut all);
        assert!(all.len() >= 6, "{all:?}");
        for (path, sub) in all {
            assert!(page.contains(&format!(".SS \"{path}\"")), "{path}");
            for arg in documented_args(sub) {
                if let Some(long) = arg.get_long() {
                    let shown = format!("\\fB\\-\\-{}\\fR", long.replace('-', "\\-"));
                    assert!(page.contains(&shown), "{path} --{long}");
                }
            }
        }
        for hidden in ["completions", "manpage", "syslog\\-socket"] {
            assert!(!page.contains(&format!(".SS \"otpgate {hidden}\"")));
            assert!(!page.contains(&format!("\\-\\-{hidden}\\fR")), "{hidden}");
        }
    }

    #[test]
    fn roff_text_escapes_requests_and_backslashes() {
        assert_eq!(
            roff_text(".x `a\\b` --self"),
            "\\&.x \\fBa\\eb\\fR \\-\\-self"
        );
        assert_eq!(roff_text("per-user\n\nnext"), "per-user\n.IP\nnext");
        assert_eq!(roff_escape("\u{2014}"), "\\[u2014]");
        let long = format!("{} .next", "word ".repeat(15));
        assert_eq!(
            wrap(&long),
            format!("{}\n\\&.next\n", "word ".repeat(15).trim())
        );
    }

    #[test]
    fn completions_know_every_subcommand() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "otpgate", &mut out);
            let text = String::from_utf8(out).unwrap();
            for sub in visible_subcommands(&Cli::command()) {
                assert!(text.contains(sub.get_name()), "{shell}: {}", sub.get_name());
            }
            assert!(text.contains("recovery-codes"), "{shell}");
        }
    }

    /// Every option the module accepts has an entry in pam_otpgate(8).
    #[test]
    fn pam_otpgate_page_documents_every_module_option() {
        use crate::cli::doctor::KNOWN_OPTIONS;
        use crate::config::ModuleOptions;
        let page = include_str!("../../man/pam_otpgate.8");
        let mut accepted = 0;
        for known in KNOWN_OPTIONS {
            let takes = ["1", "/x"].iter().any(|v| {
                known.ends_with('=') && ModuleOptions::parse(&[format!("{known}{v}")]).is_ok()
            });
            if !(takes || ModuleOptions::parse(&[known]).is_ok()) {
                continue; // known to doctor, not (yet) to the module
            }
            accepted += 1;
            let entry = if known.ends_with('=') {
                format!("\n.BI {known} ")
            } else {
                format!("\n.B {known}\n")
            };
            assert!(page.contains(&entry), "pam_otpgate.8 lacks {entry:?}");
        }
        assert!(accepted >= 15, "{accepted}");
    }

    /// The keys the site file's parser names when it refuses an unknown one.
    fn site_keys(prefix: &str) -> Vec<String> {
        let text = format!("{prefix}no_such_key_here = 1\n");
        let err = crate::config::SiteConfig::parse(&text).unwrap_err().0;
        let expected = err.split("expected").nth(1).unwrap_or_default();
        let keys: Vec<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        assert!(!keys.is_empty(), "{err}");
        keys
    }

    /// Every key the site file may hold has an entry in otpgate.toml(5) and
    /// a line in the example file: a value as `.BI key " = " ...` and
    /// `#key = ...`, a table as `.SS "[key]"` and `[key]` (or `#[key]`),
    /// whose own keys are checked the same way.
    #[test]
    fn site_file_page_and_example_name_every_key() {
        let page = include_str!("../../man/otpgate.toml.5");
        let example = include_str!("../../packaging/otpgate.toml");
        let mut tables = 0;
        for key in site_keys("") {
            let table_page = format!("\n.SS \"[{key}]\"\n");
            if page.contains(&table_page) {
                tables += 1;
                assert!(
                    example.contains(&format!("\n[{key}]\n"))
                        || example.contains(&format!("\n#[{key}]\n")),
                    "example: [{key}]"
                );
                for inner in site_keys(&format!("[{key}]\n")) {
                    assert!(
                        page.contains(&format!("\n.BI {inner} \" = \" ")),
                        "page: [{key}] {inner}"
                    );
                    assert!(
                        example.contains(&format!("\n#{inner} = ")),
                        "example: [{key}] {inner}"
                    );
                }
            } else {
                assert!(
                    page.contains(&format!("\n.BI {key} \" = \" ")),
                    "page: {key}"
                );
                assert!(example.contains(&format!("\n#{key} = ")), "example: {key}");
            }
        }
        assert!(tables >= 1, "[policy] is a table");
    }

    /// The example file parses, and with every line uncommented that this
    /// parser knows (a table or key it does not know yet stays commented)
    /// it states exactly the defaults.
    #[test]
    fn example_site_file_states_the_defaults() {
        use crate::config::SiteConfig;
        let example = include_str!("../../packaging/otpgate.toml");
        assert_eq!(SiteConfig::parse(example).unwrap(), SiteConfig::default());
        let tables = site_keys("");
        let mut table: Option<String> = None;
        let mut known = tables.clone();
        let mut uncommented = String::new();
        for line in example.lines() {
            let bare = line.strip_prefix('#').unwrap_or(line);
            if let Some(name) = bare.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
                let is_known = tables.iter().any(|t| t == name);
                table = Some(name.to_string());
                known = if is_known {
                    site_keys(&format!("[{name}]\n"))
                } else {
                    Vec::new()
                };
                uncommented.push_str(if is_known { bare } else { line });
            } else if let Some((key, _)) = bare.split_once(" = ")
                && line.starts_with('#')
                && known.iter().any(|k| k == key.trim())
            {
                uncommented.push_str(bare.split(" #").next().unwrap_or(bare));
            } else {
                uncommented.push_str(line);
            }
            uncommented.push('\n');
        }
        assert!(table.is_some(), "the example has tables");
        let site = SiteConfig::parse(&uncommented).unwrap();
        assert!(site != SiteConfig::default(), "nothing was uncommented");
        assert_eq!(site.store_dir(), SiteConfig::default().store_dir());
        assert_eq!(site.otp_params(), SiteConfig::default().otp_params());
        assert_eq!(site.policy(), SiteConfig::default().policy());
        assert_eq!(
            site.recovery_codes,
            Some(crate::core::recovery::DEFAULT_COUNT)
        );
    }
}
