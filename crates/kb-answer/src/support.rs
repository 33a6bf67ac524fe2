//! Checking a generated answer's citations against the passages they name: each cited
//! sentence must be supported by a passage it cites, or its citation is moved to the passage
//! that does support it, or removed; a sentence no passage supports, and a number or date no
//! passage it rests on states, is flagged.
//!
//! Support is lexical, so that it costs no model call and reads the same in every language:
//! the share of the sentence's content words (English stop words left out, Chinese as
//! character pairs) that the passage contains, and every number of the sentence found in the
//! passage. A paraphrase with other words than the passage's is under-supported by it; a
//! passage that holds the words but says the opposite is not caught (see README, "What the
//! citation check guarantees").

use regex::Regex;
use std::collections::{BTreeSet, HashSet};
use std::sync::LazyLock;
use unicode_segmentation::UnicodeSegmentation;

/// The share of a sentence's content words a passage must hold to support it.
pub const MIN_SUPPORT: f32 = 0.5;

/// Sentences with fewer content words than this are not judged (greetings, "In short:").
const MIN_TERMS: usize = 3;

static MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]").expect("BUG: valid regex"));

/// A marker closing a sentence: `[2].` then a space. Models end sentences so, and a sentence
/// splitter does not break before a lower-case word ("[1]. receipt ...").
static MARKER_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\]\s*[.!?。！？]\s+").expect("BUG: valid regex"));

/// What is not a claim: link targets, bare URLs, and what the link check put in their place.
static NOT_CLAIM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\]\([^)]*\)|https?://\S+|\(link removed\)").expect("BUG: valid regex")
});

static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d+(?:[.,:/\-]\d+)*").expect("BUG: valid regex"));

/// What the check did to an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// The answer with its citations repaired.
    pub text: String,
    /// Citation markers changed to the passage that supports their sentence.
    pub moved: usize,
    /// Citation markers removed: no passage supports their sentence.
    pub removed: usize,
    /// Sentences (without their markers) that no retrieved passage supports.
    pub unsupported_sentences: Vec<String>,
    /// Numbers and dates of the answer that no passage their sentence rests on states.
    pub unsupported_numbers: Vec<String>,
}

/// The words and numbers a support check compares.
#[derive(Debug, Default)]
struct Terms {
    words: HashSet<String>,
    numbers: HashSet<String>,
}

impl Terms {
    fn of(text: &str) -> Self {
        let mut terms = Self::default();
        for number in NUMBER.find_iter(text) {
            terms.numbers.insert(normalise_number(number.as_str()));
        }
        for word in text.unicode_words() {
            if word.chars().all(is_cjk) {
                let chars: Vec<char> = word.chars().collect();
                if chars.len() == 1 {
                    terms.words.insert(word.to_owned());
                }
                for pair in chars.windows(2) {
                    terms.words.insert(pair.iter().collect());
                }
                continue;
            }
            if word.chars().any(|c| c.is_ascii_digit()) {
                continue;
            }
            let word = word.to_lowercase();
            if word.chars().count() < 2 || STOP_WORDS.contains(&word.as_str()) {
                continue;
            }
            terms.words.insert(stem(&word));
        }
        terms
    }

    /// How well `self` (a sentence) is supported by `passage`: the share of its words the
    /// passage holds, halved when a number of the sentence is not in the passage.
    fn support_in(&self, passage: &Terms) -> f32 {
        if self.words.is_empty() {
            return if self.numbers.iter().all(|n| passage.numbers.contains(n)) {
                1.0
            } else {
                0.0
            };
        }
        let held = self
            .words
            .iter()
            .filter(|w| passage.words.contains(*w))
            .count();
        let share = held as f32 / self.words.len() as f32;
        if self.numbers.iter().all(|n| passage.numbers.contains(n)) {
            share
        } else {
            share / 2.0
        }
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF)
}

/// `1,870,000` and `1870000` are one number; a trailing `.` or `,` is punctuation.
fn normalise_number(n: &str) -> String {
    let n = n.trim_end_matches(['.', ',']);
    // A comma between groups of three digits separates thousands.
    if n.split(',').skip(1).all(|g| g.len() == 3) {
        n.replace(',', "")
    } else {
        n.to_owned()
    }
}

/// A plural or third-person `s` is not a different word ("days" and "day").
fn stem(word: &str) -> String {
    let trimmed = word.trim_end_matches("'s");
    match trimmed.strip_suffix('s') {
        Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_owned(),
        _ => trimmed.to_owned(),
    }
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "do", "does", "for",
    "from", "get", "gets", "has", "have", "he", "her", "his", "if", "in", "into", "is", "it",
    "its", "may", "more", "must", "no", "not", "of", "on", "or", "our", "per", "she", "should",
    "so", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to",
    "up", "was", "we", "were", "what", "when", "which", "who", "will", "with", "you", "your",
    "also", "all", "any", "each", "only", "other", "such", "both",
];

/// One sentence of the answer: where it is, the numbers it cites and its words.
struct Sentence {
    range: std::ops::Range<usize>,
    cited: BTreeSet<usize>,
    claim: String,
}

/// The answer's sentences, each with the markers that follow it (a model writes "25 days [1]."
/// as often as "25 days. [1]", which a sentence splitter gives to the next sentence).
fn sentences(answer: &str) -> Vec<Sentence> {
    let mut out: Vec<Sentence> = Vec::new();
    let pieces = answer
        .split_sentence_bound_indices()
        .flat_map(|(start, piece)| {
            let mut cuts: Vec<usize> = MARKER_END.find_iter(piece).map(|m| m.end()).collect();
            cuts.retain(|c| *c < piece.len());
            let mut from = 0;
            let mut parts = Vec::new();
            for cut in cuts.into_iter().chain(std::iter::once(piece.len())) {
                parts.push((start + from, &piece[from..cut]));
                from = cut;
            }
            parts
        });
    for (start, piece) in pieces {
        let mut range = start..start + piece.len();
        // Leading markers belong to the sentence before.
        let lead = leading_markers(piece);
        if lead > 0
            && let Some(previous) = out.last_mut()
        {
            previous.range.end = start + lead;
            range.start = start + lead;
        }
        out.push(Sentence {
            range,
            cited: BTreeSet::new(),
            claim: String::new(),
        });
    }
    out.retain(|s| !s.range.is_empty());
    for sentence in &mut out {
        let text = &answer[sentence.range.clone()];
        for caps in MARKER.captures_iter(text) {
            sentence.cited.extend(
                caps[1]
                    .split(',')
                    .filter_map(|n| n.trim().parse::<usize>().ok()),
            );
        }
        let claim = MARKER.replace_all(text, "");
        sentence.claim = crate::citations::tidy(&NOT_CLAIM.replace_all(&claim, "]"));
    }
    out
}

/// Bytes of whitespace and citation markers at the start of `piece`.
fn leading_markers(piece: &str) -> usize {
    let mut at = 0;
    loop {
        let rest = &piece[at..];
        let spaces = rest.len() - rest.trim_start().len();
        match MARKER.find(&rest[spaces..]) {
            Some(m) if m.start() == 0 => at += spaces + m.end(),
            _ => return at,
        }
    }
}

/// Check every sentence of `answer` (whose markers name passages `1..=passages.len()`, as
/// [`crate::citations::check`] leaves them) against the passages; with `drop_unsupported`,
/// sentences no passage supports are left out of the text (and still listed).
pub fn verify(answer: &str, passages: &[&str], drop_unsupported: bool) -> Verified {
    let sources: Vec<Terms> = passages.iter().map(|p| Terms::of(p)).collect();
    let sentences = sentences(answer);
    let cites_anything = sentences.iter().any(|s| !s.cited.is_empty());
    let mut verified = Verified::default();
    let mut text = String::with_capacity(answer.len());
    let mut at = 0;
    for sentence in &sentences {
        text.push_str(&answer[at..sentence.range.start]);
        at = sentence.range.end;
        let original = &answer[sentence.range.clone()];
        let claim = Terms::of(&sentence.claim);
        let judged = claim.words.len() >= MIN_TERMS || !claim.numbers.is_empty();
        let cited: Vec<usize> = sentence
            .cited
            .iter()
            .copied()
            .filter(|n| (1..=sources.len()).contains(n))
            .collect();
        if !judged || (cited.is_empty() && !cites_anything) {
            // Too short to judge, or an answer that cites nothing (a refusal).
            text.push_str(original);
            continue;
        }
        let support = |n: usize| claim.support_in(&sources[n - 1]);
        let mut keep: Vec<usize> = cited
            .iter()
            .copied()
            .filter(|n| support(*n) >= MIN_SUPPORT)
            .collect();
        let best = (1..=sources.len())
            .map(|n| (n, support(n)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|(_, s)| *s >= MIN_SUPPORT)
            .map(|(n, _)| n);
        if keep.is_empty() {
            match best {
                Some(n) if !cited.is_empty() => {
                    verified.moved += 1;
                    verified.removed += cited.len() - 1;
                    keep.push(n);
                }
                Some(_) => {}
                None => {
                    verified.removed += cited.len();
                    verified.unsupported_sentences.push(sentence.claim.clone());
                    if drop_unsupported {
                        continue;
                    }
                }
            }
        } else {
            verified.removed += cited.len() - keep.len();
        }
        // Numbers no passage the sentence rests on states.
        let resting: Vec<usize> = if keep.is_empty() {
            (1..=sources.len()).collect()
        } else {
            keep.clone()
        };
        let mut numbers: Vec<&String> = claim
            .numbers
            .iter()
            .filter(|n| !resting.iter().any(|r| sources[r - 1].numbers.contains(*n)))
            .collect();
        numbers.sort();
        verified
            .unsupported_numbers
            .extend(numbers.into_iter().cloned());
        text.push_str(&with_markers(original, &keep));
    }
    text.push_str(&answer[at..]);
    verified.text = crate::citations::tidy(&text);
    verified
}

/// `sentence` with its markers replaced by one marker naming `keep` (where its first marker
/// was), or with none.
fn with_markers(sentence: &str, keep: &[usize]) -> String {
    let mut first = true;
    MARKER
        .replace_all(sentence, |_: &regex::Captures<'_>| {
            if std::mem::take(&mut first) && !keep.is_empty() {
                let list: Vec<String> = keep.iter().map(ToString::to_string).collect();
                format!("[{}]", list.join(", "))
            } else {
                String::new()
            }
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAVE: &str = "New employees get 25 vacation days per calendar year, rising to 28 \
                         days after 3 years of service.";
    const TRAVEL: &str = "The hotel cap is EUR 180 per night in most cities and EUR 250 in \
                          London, Zurich and Tokyo.";
    const PARENTAL: &str = "Birth parents get 16 weeks of fully paid parental leave; other \
                            parents get 8 weeks.";

    fn check(answer: &str) -> Verified {
        verify(answer, &[LEAVE, TRAVEL, PARENTAL], false)
    }

    #[test]
    fn a_right_citation_is_kept() {
        let v = check("New employees get 25 vacation days a year [1].");
        assert_eq!(v.text, "New employees get 25 vacation days a year [1].");
        assert_eq!((v.moved, v.removed), (0, 0));
        assert!(v.unsupported_sentences.is_empty() && v.unsupported_numbers.is_empty());
    }

    #[test]
    fn a_wrong_citation_moves_to_the_passage_that_supports_the_sentence() {
        let v = check(
            "The hotel cap in Zurich is EUR 250 per night [1]. Other parents get 8 weeks [2].",
        );
        assert_eq!(
            v.text,
            "The hotel cap in Zurich is EUR 250 per night [2]. Other parents get 8 weeks [3]."
        );
        assert_eq!((v.moved, v.removed), (2, 0));
    }

    #[test]
    fn markers_after_the_full_stop_belong_to_the_sentence_before() {
        let v = check(
            "Birth parents get 16 weeks of paid leave. [1] The cap is EUR 180 per night. [2]",
        );
        assert_eq!(
            v.text,
            "Birth parents get 16 weeks of paid leave. [3] The cap is EUR 180 per night. [2]"
        );
        assert_eq!(v.moved, 1);
    }

    #[test]
    fn of_two_citations_the_one_that_does_not_support_is_dropped() {
        let v = check("New employees get 25 vacation days [1, 3].");
        assert_eq!(v.text, "New employees get 25 vacation days [1].");
        assert_eq!((v.moved, v.removed), (0, 1));
    }

    #[test]
    fn a_sentence_no_passage_supports_loses_its_citation_and_is_flagged() {
        let v =
            check("You get 25 vacation days [1]. Company cars are replaced every four years [1].");
        assert_eq!(
            v.text,
            "You get 25 vacation days [1]. Company cars are replaced every four years."
        );
        assert_eq!(v.removed, 1);
        assert_eq!(
            v.unsupported_sentences,
            ["Company cars are replaced every four years."]
        );
    }

    #[test]
    fn unsupported_sentences_can_be_left_out() {
        let v = verify(
            "You get 25 vacation days [1]. Company cars are replaced every four years [1]. \
             Birth parents get 16 weeks [3].",
            &[LEAVE, TRAVEL, PARENTAL],
            true,
        );
        assert_eq!(
            v.text,
            "You get 25 vacation days [1]. Birth parents get 16 weeks [3]."
        );
        assert_eq!(v.unsupported_sentences.len(), 1);
    }

    #[test]
    fn a_number_the_cited_passage_does_not_state_is_flagged() {
        let v = check("New employees get 30 vacation days per calendar year [1].");
        assert_eq!(v.unsupported_numbers, ["30"]);
        // The words are the passage's: the citation stays, the number is flagged.
        assert_eq!(
            v.text,
            "New employees get 30 vacation days per calendar year [1]."
        );
    }

    #[test]
    fn thousands_separators_and_chinese_are_read() {
        let v = verify(
            "客户成功部 2027 年预算为 1870000 欧元 [1]。",
            &["部门：客户成功部；2027 年预算（欧元）：1,870,000"],
            false,
        );
        assert!(v.unsupported_numbers.is_empty(), "{v:?}");
        assert_eq!(v.removed, 0, "{v:?}");
    }

    #[test]
    fn a_marker_and_full_stop_end_a_sentence_and_links_are_not_claims() {
        let v = check(
            "Birth parents get 16 weeks [3]. other parents get 8 weeks, see \
             [the policy](https://intranet.example/hr/parental-leave-policy-document) [3].",
        );
        assert_eq!((v.moved, v.removed), (0, 0), "{v:?}");
        assert!(v.unsupported_sentences.is_empty(), "{v:?}");
    }

    #[test]
    fn a_refusal_that_cites_nothing_is_left_alone() {
        let refusal = "The knowledge base does not cover company cars.";
        let v = check(refusal);
        assert_eq!(v.text, refusal);
        assert!(v.unsupported_sentences.is_empty());
    }
}
