//! Answering without a chat model: pick the retrieved sentences that best match the
//! question (cosine similarity of their embeddings) and quote them with their citations.

use kb_core::Hit;
use ndarray::{Array1, Array2};
use unicode_segmentation::UnicodeSegmentation;

/// One quotable sentence of a retrieved source.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// Index of the source in the hit list (0-based).
    pub source: usize,
    /// Order within the source.
    pub position: usize,
    pub text: String,
    /// The heading of the section the sentence is in, if its source shows one: part of what
    /// the sentence means ("When promotions happen" above "They are decided in October").
    pub heading: Option<String>,
}

impl Sentence {
    /// What is compared with the question: the sentence in its section, as chunks are
    /// embedded with their headings.
    pub fn embedding_text(&self) -> String {
        match &self.heading {
            Some(heading) => format!("{heading}: {}", self.text),
            None => self.text.clone(),
        }
    }
}

/// Split the top sources into clean, quotable sentences (headings dropped, list markers and
/// emphasis removed, table rows turned into "cell — cell" lines).
pub fn candidate_sentences(hits: &[Hit]) -> Vec<Sentence> {
    let mut out = Vec::new();
    for (source, hit) in hits.iter().enumerate() {
        let mut position = 0;
        let mut header: Option<Vec<String>> = None;
        let mut heading = hit.payload.heading_path.last().cloned();
        for line in logical_lines(&hit.payload.text) {
            if let Some(title) = heading_text(&line) {
                heading = Some(title);
            }
            let Some(line) = clean_line(&line, &mut header) else {
                continue;
            };
            for sentence in line.unicode_sentences() {
                let sentence = sentence.trim();
                if is_substantial(sentence) {
                    out.push(Sentence {
                        source,
                        position,
                        text: sentence.to_owned(),
                        heading: heading.clone(),
                    });
                    position += 1;
                }
            }
        }
    }
    out
}

/// The source's lines with the line breaks inside a paragraph joined, as Markdown reads them
/// (PDF, OCR and hard-wrapped text break lines where the page or the editor did), so that a
/// sentence wrapped over two lines is quoted whole. Headings, table rows, fenced code and
/// blank lines end a paragraph; a list item starts one.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut open = false;
    let mut fenced = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            open = false;
            out.push(line.to_owned());
            continue;
        }
        let block = fenced || trimmed.is_empty() || trimmed.starts_with(['#', '|']);
        match out.last_mut() {
            Some(last) if open && !block && !starts_list_item(trimmed) => {
                let cjk = |c: char| c as u32 >= 0x3000;
                let glue = last.ends_with(cjk) && trimmed.starts_with(cjk);
                if let Some(word) = hyphenated(last, trimmed) {
                    // "reim-" + "bursed": one word again.
                    last.truncate(word);
                } else if !glue {
                    last.push(' ');
                }
                last.push_str(trimmed);
            }
            _ => out.push(line.to_owned()),
        }
        open = !block;
    }
    out
}

/// Where the hyphen of a word broken over two lines is (`reim-` then `bursed`): a letter, a
/// hyphen ending the line, a lower-case letter starting the next. `None` for a hyphen that is
/// part of the text ("part-time" at a line end stays, as does "Q3 -").
fn hyphenated(line: &str, next: &str) -> Option<usize> {
    let cut = line.strip_suffix('-')?;
    let before = cut.chars().next_back()?;
    let after = next.chars().next()?;
    (before.is_alphabetic() && after.is_lowercase() && !cut.ends_with('-')).then_some(cut.len())
}

/// Whether a line starts a list item or a quotation (`- `, `* `, `+ `, `> `, `1. `, `2) `).
fn starts_list_item(line: &str) -> bool {
    if let Some(rest) = line.strip_prefix(['-', '*', '+', '>']) {
        return rest.is_empty() || rest.starts_with(' ');
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && {
        let rest = &line[digits..];
        rest.starts_with(". ") || rest.starts_with(") ")
    }
}

/// The text of an ATX heading line (`## When promotions happen`).
fn heading_text(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix('#')?.trim_start_matches('#');
    (rest.starts_with(' ') || rest.is_empty())
        .then(|| strip_emphasis(rest.trim().trim_end_matches('#').trim()))
        .filter(|t| !t.is_empty())
}

/// One line as quotable text. Table rows are read against their header row
/// ("City: Zurich; Cap per night: EUR 250"); `header` carries it between lines.
fn clean_line(line: &str, header: &mut Option<Vec<String>>) -> Option<String> {
    let line = line.trim();
    if !line.starts_with('|') {
        *header = None;
    }
    if line.is_empty() || line.starts_with('#') || line.starts_with("```") {
        return None;
    }
    if line.starts_with('|') {
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| strip_emphasis(c.trim()))
            .collect();
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
        {
            return None;
        }
        let Some(names) = header.as_ref() else {
            *header = Some(cells);
            return None;
        };
        let row = cells
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_empty())
            .map(|(i, c)| match names.get(i).filter(|n| !n.is_empty()) {
                Some(name) => format!("{name}: {c}"),
                None => c.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Some(row);
    }
    let line = line.trim_start_matches(['-', '*', '+', '>']).trim_start();
    let line = match line.split_once(". ") {
        Some((n, rest)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => line,
    };
    Some(strip_emphasis(line))
}

fn strip_emphasis(s: &str) -> String {
    s.replace("**", "").replace('`', "").replace("__", "")
}

/// Long enough to say something: 4+ words, or 8+ CJK characters.
fn is_substantial(s: &str) -> bool {
    let cjk = s.chars().filter(|c| *c as u32 >= 0x3000).count();
    s.unicode_words().count() >= 4 || cjk >= 8
}

/// Indices of the best sentences: each sentence is scored by its similarity to the question,
/// blended with the score of the source it comes from; at most `k` are kept, only those
/// close to the best one, in reading order (source rank, then position).
pub fn select(
    question: &[f32],
    sentence_vectors: &[Vec<f32>],
    sentences: &[Sentence],
    source_scores: &[f32],
    k: usize,
) -> Vec<usize> {
    if sentences.is_empty() || question.is_empty() {
        return Vec::new();
    }
    let dims = question.len();
    let flat: Vec<f32> = sentence_vectors.iter().flatten().copied().collect();
    let matrix = Array2::from_shape_vec((sentence_vectors.len(), dims), flat)
        .expect("BUG: every sentence vector has the question's dimensions");
    let similarity = matrix.dot(&Array1::from_vec(question.to_vec()));
    let mut scored: Vec<(usize, f32)> = similarity
        .iter()
        .enumerate()
        .map(|(i, sim)| (i, 0.75 * sim + 0.25 * source_scores[sentences[i].source]))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let best = scored[0].1;
    let mut chosen: Vec<usize> = scored
        .iter()
        .take(k)
        .filter(|(_, s)| *s >= best - 0.08)
        .map(|(i, _)| *i)
        .collect();
    chosen.sort_by_key(|i| (sentences[*i].source, sentences[*i].position));
    chosen
}

/// Join the chosen sentences, each followed by its source number.
pub fn compose(sentences: &[Sentence], chosen: &[usize]) -> String {
    chosen
        .iter()
        .map(|i| {
            let s = &sentences[*i];
            format!("{} [{}]", s.text, s.source + 1)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_core::{ChunkPayload, DocumentId};

    fn hit(text: &str) -> Hit {
        Hit {
            id: uuid::Uuid::nil(),
            score: 0.5,
            cosine: 0.5,
            payload: ChunkPayload {
                doc_id: DocumentId::new("d"),
                doc_hash: "h".into(),
                ordinal: 0,
                title: "T".into(),
                path: "p".into(),
                heading_path: vec![],
                text: text.into(),
                byte_start: 0,
                byte_end: text.len(),
                location: None,
                groups: vec![],
                meta: kb_core::DocumentMeta::default(),
            },
        }
    }

    #[test]
    fn sentences_drop_headings_and_markup() {
        let hits = vec![hit(
            "## Vacation\n\n- **New employees** get 25 days per year. They rise to 28 later on.\n| City | Cap per night |\n|---|---|\n| Zurich | EUR 250 |\nshort",
        )];

        let s: Vec<String> = candidate_sentences(&hits)
            .into_iter()
            .map(|s| s.text)
            .collect();

        assert_eq!(
            s,
            vec![
                "New employees get 25 days per year.",
                "They rise to 28 later on.",
                "City: Zurich; Cap per night: EUR 250",
            ]
        );
    }

    #[test]
    fn sentences_are_compared_in_their_section() {
        let mut source = hit(
            "Intro text without a heading here.\n### When promotions happen\n\nThey are decided in the October cycle.",
        );
        source.payload.heading_path = vec!["Reviews".into(), "Promotions".into()];

        let s: Vec<String> = candidate_sentences(&[source])
            .iter()
            .map(Sentence::embedding_text)
            .collect();

        assert_eq!(
            s,
            vec![
                "Promotions: Intro text without a heading here.",
                "When promotions happen: They are decided in the October cycle.",
            ]
        );
        assert_eq!(heading_text("#hashtag"), None);
        assert_eq!(heading_text("## **Bold** ##"), Some("Bold".into()));
    }

    #[test]
    fn a_sentence_wrapped_over_lines_is_quoted_whole() {
        let hits = vec![hit(
            "Assembly point: the courtyard of Invalidenstrasse 117,\nopposite the main entrance.\n\n\
             - Fire wardens bring the visitor list\n  and check every floor.\n- Drills twice a year, every spring and autumn.\n\
             | City | Cap |\n|---|---|\n| Zurich | EUR 250 |\nThe caps include taxes and\nbreakfast.\n\n\
             Expenses are reim-\nbursed within 30 days.\n\
             根据国家规定，2027 年春节放假时间为\n2 月 6 日至 2 月 12 日，共 7 天。",
        )];

        let s: Vec<String> = candidate_sentences(&hits)
            .into_iter()
            .map(|s| s.text)
            .collect();

        assert_eq!(
            s,
            vec![
                "Assembly point: the courtyard of Invalidenstrasse 117, opposite the main entrance.",
                "Fire wardens bring the visitor list and check every floor.",
                "Drills twice a year, every spring and autumn.",
                "City: Zurich; Cap: EUR 250",
                "The caps include taxes and breakfast.",
                "Expenses are reimbursed within 30 days.",
                "根据国家规定，2027 年春节放假时间为 2 月 6 日至 2 月 12 日，共 7 天。",
            ]
        );
    }

    #[test]
    fn only_a_word_broken_at_the_line_end_is_joined() {
        assert_eq!(hyphenated("reim-", "bursed"), Some(4));
        assert_eq!(hyphenated("full-", "Time staff"), None);
        assert_eq!(hyphenated("Q3 -", "results"), None);
        assert_eq!(hyphenated("a --", "b"), None);
        assert_eq!(hyphenated("no hyphen", "here"), None);
    }

    #[test]
    fn chinese_sentences_are_split_on_full_stops() {
        let hits = vec![hit(
            "公司为上海员工发放每月五百元的通勤补贴。补贴随当月工资一起发放，无需提供发票。",
        )];
        assert_eq!(candidate_sentences(&hits).len(), 2);
    }

    #[test]
    fn selection_prefers_the_most_similar_sentences_in_reading_order() {
        let sentences: Vec<Sentence> = (0..3)
            .map(|i| Sentence {
                source: 0,
                position: i,
                text: format!("s{i}"),
                heading: None,
            })
            .collect();
        let vectors = vec![vec![0.0, 1.0], vec![1.0, 0.0], vec![0.96, 0.28]];

        let chosen = select(&[1.0, 0.0], &vectors, &sentences, &[0.5], 2);

        assert_eq!(chosen, vec![1, 2]);
        assert_eq!(compose(&sentences, &chosen), "s1 [1] s2 [1]");
    }
}
