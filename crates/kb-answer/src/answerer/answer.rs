//! What a question and its answer are made of: the request, the cited sources, timings,
//! the events of a streamed answer, and the errors.

use futures::stream::BoxStream;
use kb_core::{Filter, Hit, IndexError, Location, MessageHeaders, ModelError, Retrieval, Usage};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::rewrite::Rewrite;
use crate::source_urls::SourceUrls;

/// How an answer was produced (reported to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Generative,
    Extractive,
    /// Nothing relevant was retrieved; no model was asked.
    NotFound,
}

/// A question.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AskRequest {
    pub question: String,
    pub top_k: Option<usize>,
    #[serde(default)]
    pub filter: Filter,
    /// Overrides [`AnswerOptions::retrieval`].
    #[serde(default)]
    pub retrieval: Option<Retrieval>,
}

/// A source the answer cites: what a reader needs to find and check the passage (title,
/// section, location, e-mail headers, a link to the source system), never where the file lies
/// on the server's disk, which only admins get (`path`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Citation {
    /// The number used in the answer text, `[n]`.
    pub n: usize,
    pub document: String,
    pub title: String,
    /// Path of the source file on the server: admins only (absent for readers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Link to the document in the system it comes from, when `answer.source_urls` has a
    /// rule for the folder it was ingested from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub heading_path: Vec<String>,
    /// Chunk ordinal within the document: `GET /v1/documents/{document}/chunks/{chunk}`
    /// returns the passage with its neighbours.
    pub chunk: u32,
    /// Byte range of the passage in the document's text.
    pub byte_range: [usize; 2],
    pub snippet: String,
    /// Cosine similarity of the passage to the question (the score `answer.min_score`
    /// compares), whatever the retrieval mode.
    pub score: f32,
    /// The pages, slides or sheet rows of the source file the passage came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// `location` as a reader names it: "p. 3", "Slide 7", "Sheet Budget, rows 2–40".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_label: Option<String>,
    /// The headers of the e-mail message the document is (or is an attachment of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageHeaders>,
}

impl Citation {
    /// The citation of `hit` as source `n`, with the server path and the source link.
    pub(super) fn from_hit(n: usize, hit: &Hit, source_urls: &SourceUrls) -> Self {
        let p = &hit.payload;
        Self {
            n,
            document: p.doc_id.to_string(),
            title: p.title.clone(),
            path: Some(p.path.clone()),
            source_url: source_urls.url_for(&p.path),
            heading_path: p.heading_path.clone(),
            chunk: p.ordinal,
            byte_range: [p.byte_start, p.byte_end],
            snippet: p.text.clone(),
            score: hit.cosine,
            location_label: p.location.as_ref().map(ToString::to_string),
            location: p.location.clone(),
            message: p.meta.message.clone(),
        }
    }

    /// The citation as a reader may see it: without the server path.
    pub fn without_path(mut self) -> Self {
        self.path = None;
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Timings {
    /// Rewriting a follow-up into a standalone question (0 without prior messages).
    #[serde(default)]
    pub rewrite_ms: f64,
    pub embed_ms: f64,
    pub search_ms: f64,
    pub generate_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Answer {
    pub answer: String,
    pub citations: Vec<Citation>,
    pub mode: Mode,
    /// How the sources were retrieved: the request's `retrieval`, or `answer.retrieval` when
    /// it named none (also when nothing relevant was found).
    pub retrieval: Retrieval,
    pub usage: Usage,
    pub timings: Timings,
    /// Citation markers removed: they named no retrieved source, or no passage supports
    /// their sentence.
    pub removed_citations: usize,
    /// Citation markers changed to the passage that supports their sentence (the model cited
    /// another one).
    #[serde(default)]
    pub moved_citations: usize,
    /// Sentences of a generated answer that no retrieved passage supports (they cite nothing
    /// after the check): read them with care.
    #[serde(default)]
    pub unsupported_sentences: Vec<String>,
    /// Numbers and dates of a generated answer that no passage its sentence rests on states.
    #[serde(default)]
    pub unsupported_numbers: Vec<String>,
    /// Links, images and raw HTML removed from the answer because they pointed to a host not
    /// on `answer.allowed_link_hosts`.
    #[serde(default)]
    pub removed_links: usize,
    /// The standalone question a follow-up was rewritten into (absent without prior messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
}

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("embedding the question failed")]
    Embedding(#[source] ModelError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("the chat model failed")]
    Chat(#[source] ModelError),
}

/// One event of a streamed answer: the sources first, then pieces of the answer, then the
/// complete answer with its checked citations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AskEvent {
    /// Every retrieved source, numbered as the answer will cite them, the retrieval mode that
    /// ranked them, and the standalone question they were retrieved with when the question was
    /// a follow-up.
    Sources {
        sources: Vec<Citation>,
        retrieval: Retrieval,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rewrite: Option<Rewrite>,
    },
    Delta {
        text: String,
    },
    Done {
        answer: Answer,
    },
}

pub type AskStream = BoxStream<'static, Result<AskEvent, AnswerError>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_failure_keeps_its_cause_and_names_it_once() {
        // Arrange
        let cause = std::io::Error::other("connection refused");
        let model = ModelError::transient("engine endpoint primary", None).with_source(cause);

        // Act
        let error = AnswerError::Embedding(model);

        // Assert
        let source = std::error::Error::source(&error).expect("the model error is the source");
        assert!(source.is::<ModelError>(), "{source:?}");
        assert_eq!(
            kb_core::error::chain(&error).to_string(),
            "embedding the question failed: model temporarily unavailable: \
             engine endpoint primary: connection refused"
        );
    }
}
