//! libpam's walk over an auth chain (Linux-PAM `_pam_dispatch_aux`),
//! explored over every result each line may return: is there a run that
//! ends in PAM_SUCCESS? The answer comes with the run, so a finding can say
//! which line let it through.

use std::collections::HashSet;

use super::pam_conf::{Action, Handler, IGNORE, Kind, PERM_DENIED, SUCCESS};

/// libpam's "impression" of the stack so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Impression {
    Undecided,
    Positive,
    Negative,
}

/// Where a walk stands. Only whether the status is PAM_SUCCESS matters
/// for the outcome, so that is all that is kept of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    pos: usize,
    prev_level: usize,
    impression: Impression,
    success: bool,
    /// (impression, success) on entering each substack level (for `reset`).
    saved: Vec<(Impression, bool)>,
    target_ran: bool,
}

/// One line of a run: what it returned, what libpam did, and which lines
/// (inclusive) that skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub handler: usize,
    pub code: usize,
    pub action: Action,
    pub skipped: Option<(usize, usize)>,
}

impl Step {
    pub fn skips(&self, i: usize) -> bool {
        self.skipped.is_some_and(|(a, b)| a <= i && i <= b)
    }
}

/// A run of `chain` that ends in PAM_SUCCESS, if there is one. Line `i` may
/// return any code in `outcomes(i)` (none: a run that reaches it stops
/// there). With `target`, only runs in which that line ran count.
pub fn find_success(
    chain: &[Handler],
    outcomes: &dyn Fn(usize) -> Vec<usize>,
    target: Option<usize>,
) -> Option<Vec<Step>> {
    let levels = chain.iter().map(|h| h.level).max().unwrap_or(0) + 1;
    let start = State {
        pos: 0,
        prev_level: 0,
        impression: Impression::Undecided,
        success: false,
        saved: vec![(Impression::Undecided, false); levels],
        target_ran: target.is_none(),
    };
    let mut walk = Walk {
        chain,
        outcomes,
        target,
        seen: HashSet::new(),
        path: Vec::new(),
    };
    walk.explore(start).then_some(walk.path)
}

struct Walk<'a> {
    chain: &'a [Handler],
    outcomes: &'a dyn Fn(usize) -> Vec<usize>,
    target: Option<usize>,
    seen: HashSet<State>,
    path: Vec<Step>,
}

impl Walk<'_> {
    /// The last index of the (sub)stack that `pos` belongs to, from `pos` on.
    fn end_of_level(&self, pos: usize, level: usize) -> usize {
        let mut i = pos;
        while i + 1 < self.chain.len() && self.chain[i + 1].level >= level {
            i += 1;
        }
        i
    }

    fn explore(&mut self, mut st: State) -> bool {
        if !self.seen.insert(st.clone()) {
            return false;
        }
        let Some(h) = self.chain.get(st.pos) else {
            // libpam's closing sanity check: success needs a positive impression.
            return st.success && st.impression == Impression::Positive && st.target_ran;
        };
        let (pos, level) = (st.pos, h.level);
        if st.prev_level < level {
            st.saved[level] = (st.impression, st.success);
        }
        st.prev_level = level;
        if h.kind == Kind::Substack {
            st.pos += 1;
            return self.explore(st);
        }
        let codes = if h.kind == Kind::Broken {
            vec![PERM_DENIED]
        } else {
            (self.outcomes)(pos)
        };
        let mut tried = HashSet::new();
        for code in codes {
            let action = h.actions[code];
            // Codes with the same action and the same success-ness lead to the same state.
            if !tried.insert((action, code == SUCCESS, code == IGNORE)) {
                continue;
            }
            let mut n = st.clone();
            if Some(pos) == self.target {
                n.target_ran = true;
            }
            let mut next = pos + 1;
            match action {
                Action::Reset => (n.impression, n.success) = n.saved[level],
                Action::Ok | Action::Done => {
                    if n.impression == Impression::Undecided
                        || (n.impression == Impression::Positive && n.success)
                    {
                        n.impression = Impression::Positive;
                        n.success = code == SUCCESS;
                    }
                    if n.impression == Impression::Positive && action == Action::Done {
                        next = self.end_of_level(pos, level) + 1;
                    }
                }
                Action::Bad | Action::Die => {
                    if n.impression != Impression::Negative {
                        n.impression = Impression::Negative;
                        n.success = code == SUCCESS;
                    }
                    if action == Action::Die {
                        next = self.end_of_level(pos, level) + 1;
                    }
                }
                Action::Ignore => {}
                Action::Jump(count) => {
                    let (mut i, mut left) = (pos, usize::from(count));
                    while left > 0 && i + 1 < self.chain.len() && self.chain[i + 1].level >= level {
                        i += 1;
                        while i + 1 < self.chain.len() && self.chain[i + 1].level > level {
                            i += 1;
                        }
                        left -= 1;
                    }
                    if left > 0 {
                        // "bad jump in stack": libpam fails the stack.
                        n.impression = Impression::Negative;
                        n.success = false;
                    }
                    next = i + 1;
                }
            }
            n.pos = next;
            self.path.push(Step {
                handler: pos,
                code,
                action,
                skipped: (next > pos + 1).then(|| (pos + 1, next - 1)),
            });
            if self.explore(n) {
                return true;
            }
            self.path.pop();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::pam_conf::{AUTH_ERR, read_chain};
    use super::*;
    use std::path::Path;

    /// `pam_permit` succeeds, `pam_deny` fails; `x` may return anything.
    fn succeeds(text: &str) -> bool {
        let chain = read_chain(Path::new("/nonexistent"), Path::new("svc"), text).handlers;
        let outcomes = |i: usize| match chain[i].module_name() {
            "pam_permit.so" => vec![SUCCESS],
            "pam_deny.so" => vec![AUTH_ERR],
            _ => (0..31).collect(),
        };
        find_success(&chain, &outcomes, None).is_some()
    }

    /// Each verdict below was checked against libpam 1.5.2 (pam_start_confdir).
    #[test]
    fn verdicts_agree_with_libpam() {
        let cases = [
            ("auth required pam_permit.so", true),
            (
                "auth required pam_deny.so\nauth required pam_permit.so",
                false,
            ),
            ("auth optional pam_deny.so", false),
            (
                "auth required pam_permit.so\nauth [default=ok] pam_deny.so\nauth required pam_permit.so",
                false,
            ),
            (
                "auth required pam_permit.so\nauth [success=ok default=1] pam_deny.so\nauth required pam_permit.so",
                true,
            ),
            (
                "auth [success=ok default=1] pam_deny.so\nauth requisite pam_deny.so\nauth required pam_permit.so",
                true,
            ),
            (
                "auth required pam_permit.so\nauth [default=done] pam_deny.so",
                false,
            ),
            (
                "auth [success=1 default=ignore] pam_permit.so\nauth required pam_deny.so",
                false,
            ),
            (
                "auth [success=2 default=ignore] pam_permit.so\nauth required pam_deny.so",
                false,
            ),
            (
                "auth [success=1 default=ignore] pam_permit.so\nauth requisite pam_deny.so\nauth required pam_permit.so",
                true,
            ),
            (
                "auth required pam_deny.so\nauth [default=reset] pam_permit.so\nauth required pam_permit.so",
                true,
            ),
            (
                "auth sufficient pam_permit.so\nauth required pam_deny.so",
                true,
            ),
            (
                "auth required pam_deny.so\nauth sufficient pam_permit.so",
                false,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(succeeds(text), want, "{text}");
        }
    }

    #[test]
    fn done_ends_only_its_substack_and_jumps_count_it_as_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::write(
            &sub,
            "auth sufficient pam_permit.so\nauth required pam_deny.so\n",
        )
        .unwrap();
        let run = |text: &str| {
            let chain = read_chain(dir.path(), &dir.path().join("svc"), text).handlers;
            let outcomes = |i: usize| match chain[i].module_name() {
                "pam_deny.so" => vec![AUTH_ERR],
                _ => vec![SUCCESS],
            };
            find_success(&chain, &outcomes, None).is_some()
        };
        assert!(!run("auth substack sub\nauth required pam_deny.so"));
        assert!(run("auth include sub\nauth required pam_deny.so"));
        assert!(run("auth substack sub"));
        assert!(run(
            "auth [success=1 default=ignore] pam_permit.so\nauth substack sub\nauth required pam_permit.so"
        ));
        assert!(!run(
            "auth [success=1 default=ignore] pam_permit.so\nauth include sub\nauth required pam_deny.so"
        ));
    }

    #[test]
    fn the_run_names_the_line_that_skips() {
        let chain = read_chain(
            Path::new("/x"),
            Path::new("svc"),
            "auth [success=1 default=ignore] pam_unix.so\nauth required pam_otpgate.so\nauth required pam_permit.so",
        )
        .handlers;
        let outcomes = |i: usize| match i {
            1 => vec![],
            2 => vec![SUCCESS],
            _ => (0..31).collect(),
        };
        let run = find_success(&chain, &outcomes, None).unwrap();
        assert_eq!(run[0].handler, 0);
        assert_eq!(run[0].code, SUCCESS);
        assert!(run[0].skips(1));
        assert_eq!(run.len(), 2);
        // The same stack where the code line must run: no success.
        let outcomes = |i: usize| match i {
            1 => vec![AUTH_ERR],
            2 => vec![SUCCESS],
            _ => (0..31).collect(),
        };
        assert_eq!(find_success(&chain, &outcomes, Some(1)), None);
    }
}
