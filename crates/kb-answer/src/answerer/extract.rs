//! An extractive answer: the sources' best-matching sentences, quoted, without a chat model.

use crate::extractive;
use crate::sanitize::sanitize;
use kb_core::{Hit, InputKind, Retrieval, Usage};
use tracing::{Instrument, info_span};

use super::{Answer, AnswerError, Answerer, Mode, Timings};

impl Answerer {
    pub(super) async fn extract(
        &self,
        question: &[f32],
        hits: &[Hit],
        retrieval: Retrieval,
    ) -> Result<Answer, AnswerError> {
        let sources = &hits[..hits.len().min(3)];
        let sentences = extractive::candidate_sentences(sources);
        let texts: Vec<String> = sentences
            .iter()
            .map(extractive::Sentence::embedding_text)
            .collect();
        let vectors = if texts.is_empty() {
            Vec::new()
        } else {
            self.embedder
                .embed(&texts, InputKind::Passage)
                .instrument(info_span!("extract", sentences = texts.len()))
                .await
                .map_err(AnswerError::Embedding)?
        };
        let scores: Vec<f32> = sources.iter().map(|h| h.cosine).collect();
        let chosen = extractive::select(
            question,
            &vectors,
            &sentences,
            &scores,
            self.options.extractive_sentences,
        );
        let cited: Vec<usize> = {
            let mut seen = Vec::new();
            for i in &chosen {
                let n = sentences[*i].source + 1;
                if !seen.contains(&n) {
                    seen.push(n);
                }
            }
            seen.sort_unstable();
            seen
        };
        // Quoted sentences are the documents' own words, but a document may hold an image too.
        let text = sanitize(
            &extractive::compose(&sentences, &chosen),
            &self.options.allowed_link_hosts,
        );
        Ok(Answer {
            answer: text.text,
            citations: cited
                .iter()
                .map(|n| self.citation(*n, &hits[n - 1]))
                .collect(),
            mode: Mode::Extractive,
            retrieval,
            usage: Usage::default(),
            timings: Timings::default(),
            removed_citations: 0,
            moved_citations: 0,
            unsupported_sentences: Vec::new(),
            unsupported_numbers: Vec::new(),
            removed_links: text.removed,
            rewrite: None,
        })
    }
}
