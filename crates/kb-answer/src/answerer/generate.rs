//! A generated answer: the chat model writes it from the sources; its links and citations
//! are checked before it is returned.

use crate::citations;
use crate::prompt;
use crate::sanitize::sanitize;
use crate::support;
use kb_core::{ChatModel, ChatRequest, Hit, Retrieval};
use tracing::{Instrument, info_span};

use super::{Answer, AnswerError, AnswerOptions, Answerer, Mode, Timings};

impl Answerer {
    pub(super) async fn generate(
        &self,
        chat: &dyn ChatModel,
        question: &str,
        hits: &[Hit],
        retrieval: Retrieval,
    ) -> Result<Answer, AnswerError> {
        let request = ChatRequest {
            messages: prompt::build_messages(question, hits),
            max_tokens: Some(self.options.max_answer_tokens),
            temperature: Some(0.0),
        };
        let response = chat
            .complete(&request)
            .instrument(info_span!("generate", sources = hits.len()))
            .await
            .map_err(AnswerError::Chat)?;
        let checked = checked_answer(&response.content, hits, &self.options);
        Ok(Answer {
            answer: checked.text,
            citations: checked
                .cited
                .iter()
                .map(|n| self.citation(*n, &hits[n - 1]))
                .collect(),
            mode: Mode::Generative,
            retrieval,
            usage: response.usage,
            timings: Timings::default(),
            removed_citations: checked.removed,
            removed_links: checked.removed_links,
            moved_citations: checked.moved,
            unsupported_sentences: checked.unsupported_sentences,
            unsupported_numbers: checked.unsupported_numbers,
            rewrite: None,
        })
    }
}

/// A generated answer's text as it is returned: links and images off the allow-list
/// neutralised, then citations checked (markers naming no source removed, then each cited
/// sentence checked against the passages: see [`support`]), then neutralised again (removing a
/// marker such as `<[9]img ...>` may join its neighbours into something new).
pub(super) fn checked_answer(raw: &str, hits: &[Hit], options: &AnswerOptions) -> CheckedText {
    let hosts = &options.allowed_link_hosts;
    let first = sanitize(raw, hosts);
    let checked = citations::check(&first.text, hits.len());
    let passages: Vec<String> = hits.iter().map(passage_of).collect();
    let passages: Vec<&str> = passages.iter().map(String::as_str).collect();
    let verified = support::verify(&checked.text, &passages, options.drop_unsupported);
    let second = sanitize(&verified.text, hosts);
    let cited = citations::check(&second.text, hits.len()).cited;
    CheckedText {
        text: second.text.trim().to_owned(),
        cited,
        removed: checked.removed + verified.removed,
        removed_links: first.removed + second.removed,
        moved: verified.moved,
        unsupported_sentences: verified.unsupported_sentences,
        unsupported_numbers: verified.unsupported_numbers,
    }
}

/// What a sentence citing `hit` may rest on: its title, section and text.
fn passage_of(hit: &Hit) -> String {
    let p = &hit.payload;
    format!("{}\n{}\n{}", p.title, p.heading_path.join("\n"), p.text)
}

pub(super) struct CheckedText {
    pub(super) text: String,
    pub(super) cited: std::collections::BTreeSet<usize>,
    pub(super) removed: usize,
    pub(super) removed_links: usize,
    pub(super) moved: usize,
    pub(super) unsupported_sentences: Vec<String>,
    pub(super) unsupported_numbers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(text: &str) -> Hit {
        crate::prompt::tests::hit("d.md", "T", &[], text)
    }

    #[test]
    fn a_wrongly_cited_sentence_is_cited_to_its_passage_and_an_unsupported_one_flagged() {
        let hits = [
            hit("New employees get 25 vacation days per calendar year."),
            hit("The hotel cap is EUR 250 per night in Zurich."),
        ];
        let checked = checked_answer(
            "The hotel cap in Zurich is EUR 250 per night [1]. Staff may bring dogs to the office [2].",
            &hits,
            &AnswerOptions::default(),
        );

        assert_eq!(
            checked.text,
            "The hotel cap in Zurich is EUR 250 per night [2]. Staff may bring dogs to the office."
        );
        assert_eq!(checked.cited.iter().copied().collect::<Vec<_>>(), [2]);
        assert_eq!((checked.moved, checked.removed), (1, 1));
        assert_eq!(
            checked.unsupported_sentences,
            ["Staff may bring dogs to the office."]
        );
    }

    #[test]
    fn a_citation_removed_from_an_answer_does_not_join_a_tag_together() {
        // `[9]` names no source; without it, `<[9]img src=...>` would be an image tag.
        let checked = checked_answer(
            "Yes [1]. <[9]img src=//attacker.example/p.png>",
            &[hit("Leave is 25 days."), hit("Travel caps.")],
            &AnswerOptions::default(),
        );

        assert_eq!(checked.text, "Yes [1].");
        assert_eq!(checked.removed, 1);
        assert_eq!(checked.removed_links, 1);
    }
}
