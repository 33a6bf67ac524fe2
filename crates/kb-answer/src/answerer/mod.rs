//! Retrieval plus answer generation.
//!
//! The rooms: `options` holds the configuration, `answer` what a question and its answer
//! are made of (request, citations, timings, events, errors); `conversation` rewrites a
//! follow-up into a standalone question; `generate` and `extract` write an answer from the
//! relevant sources, with the chat model or from their own sentences; `stream` answers as a
//! stream of events. This module holds [`Answerer`], retrieval, and the unstreamed path that
//! drives them.

mod answer;
mod conversation;
mod extract;
mod generate;
mod options;
mod stream;

pub use answer::{Answer, AnswerError, AskEvent, AskRequest, AskStream, Citation, Mode, Timings};
pub use options::{AnswerMode, AnswerOptions};

use crate::prompt;
use crate::rewrite::Turn;
use kb_core::{
    ChatModel, Embedder, Filter, Hit, InputKind, ModelError, Retrieval, SearchQuery, Usage,
    VectorIndex,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use tracing::{Instrument, info, info_span};

/// Answers questions over one index.
#[derive(Debug, Clone)]
pub struct Answerer {
    embedder: Arc<dyn Embedder>,
    index: Arc<dyn VectorIndex>,
    chat: Option<Arc<dyn ChatModel>>,
    options: AnswerOptions,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl Answerer {
    pub fn new(
        embedder: Arc<dyn Embedder>,
        index: Arc<dyn VectorIndex>,
        chat: Option<Arc<dyn ChatModel>>,
        options: AnswerOptions,
    ) -> Self {
        Self {
            embedder,
            index,
            chat,
            options,
        }
    }

    pub fn options(&self) -> &AnswerOptions {
        &self.options
    }

    /// The link to the document whose file is `path` on the server (`answer.source_urls`).
    pub fn source_url(&self, path: &str) -> Option<String> {
        self.options.source_urls.url_for(path)
    }

    /// `hit` cited as source `n`.
    fn citation(&self, n: usize, hit: &Hit) -> Citation {
        Citation::from_hit(n, hit, &self.options.source_urls)
    }

    fn validate(&self, question: &str, top_k: Option<usize>) -> Result<usize, AnswerError> {
        let question = question.trim();
        if question.is_empty() {
            return Err(AnswerError::InvalidRequest(
                "question: must not be empty".into(),
            ));
        }
        let chars = question.chars().count();
        if chars > self.options.max_question_chars {
            return Err(AnswerError::InvalidRequest(format!(
                "question: {chars} characters, over the limit of {}",
                self.options.max_question_chars
            )));
        }
        let k = top_k.unwrap_or(self.options.top_k);
        if k == 0 || k > self.options.max_top_k {
            return Err(AnswerError::InvalidRequest(format!(
                "top_k: must be between 1 and {}, got {k}",
                self.options.max_top_k
            )));
        }
        Ok(k)
    }

    /// The retrieval mode a request runs with: its own, or [`AnswerOptions::retrieval`].
    pub fn retrieval_for(&self, requested: Option<Retrieval>) -> Retrieval {
        requested.unwrap_or(self.options.retrieval)
    }

    /// Retrieve the best chunks for a query, deduplicated, best first, ranked by `retrieval`
    /// (default: [`AnswerOptions::retrieval`]).
    pub async fn search(
        &self,
        query: &str,
        filter: &Filter,
        top_k: Option<usize>,
        retrieval: Option<Retrieval>,
    ) -> Result<(Vec<Hit>, Vec<f32>, Timings), AnswerError> {
        let k = self.validate(query, top_k)?;
        let mut timings = Timings::default();
        let t = Instant::now();
        let vector = self
            .embedder
            .embed(&[query.trim().to_owned()], InputKind::Query)
            .instrument(info_span!("embed_question"))
            .await
            .map_err(AnswerError::Embedding)?
            .into_iter()
            .next()
            .ok_or_else(|| AnswerError::Embedding(ModelError::permanent("no vector returned")))?;
        timings.embed_ms = ms(t);
        let t = Instant::now();
        let retrieval = self.retrieval_for(retrieval);
        let hits = self
            .index
            .search(&SearchQuery {
                vector: &vector,
                text: query.trim(),
                retrieval,
                filter,
                k,
            })
            .instrument(info_span!("retrieve", k, %retrieval))
            .await?;
        timings.search_ms = ms(t);
        Ok((dedup(hits), vector, timings))
    }

    /// Answer a question from the knowledge base.
    pub async fn ask(&self, req: &AskRequest) -> Result<Answer, AnswerError> {
        self.ask_in_conversation(req, &[]).await
    }

    /// Answer the last question of a conversation: with prior messages, the question is first
    /// rewritten into a standalone one, which retrieval and the answer use.
    pub async fn ask_in_conversation(
        &self,
        req: &AskRequest,
        history: &[Turn],
    ) -> Result<Answer, AnswerError> {
        let span = info_span!("ask", top_k = req.top_k, history = history.len());
        async {
            let started = Instant::now();
            let standalone = self.standalone(req, history).await?;
            let (hits, question_vector, mut timings) = self
                .search(&standalone.question, &req.filter, req.top_k, req.retrieval)
                .await?;
            timings.rewrite_ms = standalone.ms;
            let relevant = self.relevant(hits);
            let mut answer = self
                .answer_from(
                    &standalone.question,
                    &question_vector,
                    &relevant,
                    self.retrieval_for(req.retrieval),
                    timings,
                    started,
                )
                .await?;
            answer.usage += standalone.usage;
            answer.rewrite = standalone.rewrite;
            Ok(answer)
        }
        .instrument(span)
        .await
    }

    /// The chat model that writes answers, if answers are generated.
    fn answer_model(&self) -> Option<&Arc<dyn ChatModel>> {
        match (&self.chat, self.options.mode) {
            (Some(chat), AnswerMode::Auto | AnswerMode::Generative) => Some(chat),
            _ => None,
        }
    }

    /// The hits good enough to answer from: those whose cosine similarity to the question
    /// reaches `min_score`, in the retrieval mode's order. The cosine rather than the mode's
    /// own score, because BM25 and RRF scores have no fixed scale (BM25 grows with the
    /// question's length and the corpus's statistics, RRF only encodes ranks), so no single
    /// threshold on them can mean "relevant".
    fn relevant(&self, hits: Vec<Hit>) -> Vec<Hit> {
        hits.into_iter()
            .filter(|h| h.cosine >= self.options.min_score)
            .collect()
    }

    /// Answer (not streamed) from sources retrieved in `retrieval` mode: refuse, generate or
    /// extract.
    async fn answer_from(
        &self,
        question: &str,
        question_vector: &[f32],
        relevant: &[Hit],
        retrieval: Retrieval,
        mut timings: Timings,
        started: Instant,
    ) -> Result<Answer, AnswerError> {
        let mut answer = if relevant.is_empty() {
            info!("no source above the relevance threshold");
            Answer {
                answer: prompt::NOT_FOUND_ANSWER.to_owned(),
                citations: Vec::new(),
                mode: Mode::NotFound,
                retrieval,
                usage: Usage::default(),
                timings: Timings::default(),
                removed_citations: 0,
                moved_citations: 0,
                unsupported_sentences: Vec::new(),
                unsupported_numbers: Vec::new(),
                removed_links: 0,
                rewrite: None,
            }
        } else {
            let t = Instant::now();
            let answer = match self.answer_model() {
                Some(chat) => {
                    self.generate(chat.as_ref(), question, relevant, retrieval)
                        .await?
                }
                None => self.extract(question_vector, relevant, retrieval).await?,
            };
            timings.generate_ms = ms(t);
            answer
        };
        timings.total_ms = ms(started);
        answer.timings = timings;
        info!(
            mode = ?answer.mode,
            %retrieval,
            citations = answer.citations.len(),
            removed_citations = answer.removed_citations,
            moved_citations = answer.moved_citations,
            unsupported_sentences = answer.unsupported_sentences.len(),
            removed_links = answer.removed_links,
            prompt_tokens = answer.usage.prompt_tokens,
            completion_tokens = answer.usage.completion_tokens,
            total_ms = answer.timings.total_ms,
            "answered"
        );
        Ok(answer)
    }
}

/// Drop repeated chunks (the same document and ordinal from two versions of a document
/// while it is being replaced), keeping the best-scoring one.
fn dedup(hits: Vec<Hit>) -> Vec<Hit> {
    let mut seen = HashSet::new();
    hits.into_iter()
        .filter(|h| seen.insert((h.payload.doc_id.clone(), h.payload.ordinal)))
        .collect()
}
