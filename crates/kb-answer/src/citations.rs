//! Citation markers: `[n]`, `[n, m]` or `[n][m]` in an answer.

use regex::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;

static MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]").expect("BUG: valid regex"));

/// An answer with its citations checked against the number of sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAnswer {
    /// The answer with invalid markers removed.
    pub text: String,
    /// Valid source numbers cited, ascending.
    pub cited: BTreeSet<usize>,
    /// How many cited numbers named no retrieved source.
    pub removed: usize,
}

/// Keep only markers naming sources `1..=sources`; drop the rest (and count them).
pub fn check(answer: &str, sources: usize) -> CheckedAnswer {
    let mut cited = BTreeSet::new();
    let mut removed = 0;
    let text = MARKER.replace_all(answer, |caps: &regex::Captures<'_>| {
        let valid: Vec<usize> = caps[1]
            .split(',')
            .filter_map(|n| n.trim().parse::<usize>().ok())
            .filter(|n| {
                let ok = (1..=sources).contains(n);
                if !ok {
                    removed += 1;
                }
                ok
            })
            .collect();
        cited.extend(valid.iter().copied());
        if valid.is_empty() {
            String::new()
        } else {
            format!(
                "[{}]",
                valid
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    });
    CheckedAnswer {
        text: tidy(&text),
        cited,
        removed,
    }
}

/// Collapse the spaces a removed marker leaves behind ("days [9]." → "days.").
pub(crate) fn tidy(text: &str) -> String {
    static SPACE_BEFORE_PUNCT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[ \t]+([.,;:!?。，])").expect("BUG: valid regex"));
    static DOUBLE_SPACE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[ \t]{2,}").expect("BUG: valid regex"));
    let text = SPACE_BEFORE_PUNCT.replace_all(text, "$1");
    DOUBLE_SPACE.replace_all(&text, " ").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_markers_are_kept_and_collected() {
        let c = check("You get 25 days [1]. Carry over 5 [2, 1].", 3);
        assert_eq!(c.text, "You get 25 days [1]. Carry over 5 [2, 1].");
        assert_eq!(c.cited.into_iter().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(c.removed, 0);
    }

    #[test]
    fn markers_naming_no_source_are_removed_and_counted() {
        let c = check("You get 25 days [7]. Also [0][2] and [3, 9].", 3);
        assert_eq!(c.text, "You get 25 days. Also [2] and [3].");
        assert_eq!(c.removed, 3);
        assert_eq!(c.cited.into_iter().collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn non_citation_brackets_are_left_alone() {
        let c = check("See [the wiki] and [a1].", 2);
        assert_eq!(c.text, "See [the wiki] and [a1].");
        assert!(c.cited.is_empty());
    }
}
