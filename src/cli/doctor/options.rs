//! The options on a `pam_otpgate.so` line: would the module accept them?
//! An unknown name gets the nearest known one as a suggestion.

use crate::config::ModuleOptions;

/// Every option the module knows (DESIGN.md, Login policy); `=` marks the
/// ones that take a value.
pub const KNOWN_OPTIONS: &[&str] = &[
    "config=",
    "store=",
    "nullok",
    "window=",
    "deny=",
    "unlock_time=",
    "hard_deny=",
    "prompt=",
    "echo",
    "use_first_pass",
    "try_first_pass",
    "forward_pass",
    "no_recovery",
    "grace_period=",
    "hotp_window=",
    "owner_ok",
    "debug",
];

/// A problem with the options, and the argument list with the suggestion
/// applied when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionProblem {
    pub message: String,
    pub suggested: Option<Vec<String>>,
}

/// `None` when the module accepts `args` as they are.
pub fn check_options(args: &[String]) -> Option<OptionProblem> {
    for (i, arg) in args.iter().enumerate() {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg.as_str(), None),
        };
        let known = KNOWN_OPTIONS
            .iter()
            .any(|k| k.trim_end_matches('=') == name);
        if known {
            continue;
        }
        let Some(best) = nearest(name) else {
            return Some(OptionProblem {
                message: format!(
                    "unknown option `{arg}`: the module refuses every login through this line"
                ),
                suggested: None,
            });
        };
        let mut fixed = args.to_vec();
        fixed[i] = match (best.strip_suffix('='), value) {
            (Some(n), Some(v)) => format!("{n}={v}"),
            (Some(n), None) => format!("{n}="),
            (None, _) => best.to_string(),
        };
        return Some(OptionProblem {
            message: format!(
                "unknown option `{arg}` (did you mean `{}`?): the module refuses every login through this line",
                fixed[i]
            ),
            suggested: Some(fixed),
        });
    }
    ModuleOptions::parse(args).err().map(|e| OptionProblem {
        message: format!("{e}: the module refuses every login through this line"),
        suggested: None,
    })
}

/// The known option closest to `name`, if it is close enough to be a typo.
fn nearest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    KNOWN_OPTIONS
        .iter()
        .map(|k| (distance(&lower, k.trim_end_matches('=')), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (insert, delete, substitute), over bytes.
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn typos_get_the_nearest_known_option() {
        let p = check_options(&args("nulok")).unwrap();
        assert!(p.message.contains("did you mean `nullok`"), "{}", p.message);
        assert_eq!(p.suggested, Some(args("nullok")));
        let p = check_options(&args("echo windw=3")).unwrap();
        assert_eq!(p.suggested, Some(args("echo window=3")));
        let p = check_options(&args("use_frist_pass")).unwrap();
        assert_eq!(p.suggested, Some(args("use_first_pass")));
        let p = check_options(&args("NULLOK")).unwrap();
        assert_eq!(p.suggested, Some(args("nullok")));
        let p = check_options(&args("frobnicate")).unwrap();
        assert_eq!(p.suggested, None);
        assert!(p.message.contains("unknown option `frobnicate`"));
    }

    #[test]
    fn values_are_checked_by_the_module_parser() {
        assert_eq!(check_options(&args("nullok window=2 echo")), None);
        let p = check_options(&args("window=99")).unwrap();
        assert!(p.message.contains("window"), "{}", p.message);
        assert_eq!(p.suggested, None);
    }

    #[test]
    fn distances() {
        assert_eq!(distance("nulok", "nullok"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
