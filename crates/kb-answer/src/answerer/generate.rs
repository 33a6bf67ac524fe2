//! A generated answer: the chat model writes it from the sources; its links and citations
//! are checked before it is returned.

use crate::citations;
use crate::prompt;
use crate::sanitize::{AllowedHosts, sanitize};
use kb_core::{ChatModel, ChatRequest, Hit, Retrieval};
use tracing::{Instrument, info_span};

use super::{Answer, AnswerError, Answerer, Mode, Timings};

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
        let checked = checked_answer(
            &response.content,
            hits.len(),
            &self.options.allowed_link_hosts,
        );
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
            rewrite: None,
        })
    }
}

/// A generated answer's text as it is returned: links and images off the allow-list
/// neutralised, then citations checked, then neutralised again (removing a marker such as
/// `<[9]img ...>` may join its neighbours into something new).
pub(super) fn checked_answer(raw: &str, sources: usize, hosts: &AllowedHosts) -> CheckedText {
    let first = sanitize(raw, hosts);
    let checked = citations::check(&first.text, sources);
    let second = sanitize(&checked.text, hosts);
    CheckedText {
        text: second.text.trim().to_owned(),
        cited: checked.cited,
        removed: checked.removed,
        removed_links: first.removed + second.removed,
    }
}

pub(super) struct CheckedText {
    pub(super) text: String,
    pub(super) cited: std::collections::BTreeSet<usize>,
    pub(super) removed: usize,
    pub(super) removed_links: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_citation_removed_from_an_answer_does_not_join_a_tag_together() {
        // `[9]` names no source; without it, `<[9]img src=...>` would be an image tag.
        let checked = checked_answer(
            "Yes [1]. <[9]img src=//attacker.example/p.png>",
            2,
            &AllowedHosts::default(),
        );

        assert_eq!(checked.text, "Yes [1].");
        assert_eq!(checked.removed, 1);
        assert_eq!(checked.removed_links, 1);
    }
}
