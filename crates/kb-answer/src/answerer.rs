//! Retrieval plus answer generation.

use crate::rewrite::{self, Rewrite, RewriteMethod, Turn};
use crate::sanitize::{AllowedHosts, StreamSanitizer, sanitize};
use crate::{citations, extractive, prompt};
use futures::StreamExt;
use futures::stream::BoxStream;
use kb_core::{
    ChatDelta, ChatModel, ChatRequest, Embedder, Filter, Hit, IndexError, InputKind, ModelError,
    Retrieval, SearchQuery, Usage, VectorIndex,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use tracing::{Instrument, info, info_span, warn};
use utoipa::ToSchema;

/// How answers are produced (configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// Generative when a chat model is configured, extractive otherwise.
    #[default]
    Auto,
    Extractive,
    Generative,
}

/// How an answer was produced (reported to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Generative,
    Extractive,
    /// Nothing relevant was retrieved; no model was asked.
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnswerOptions {
    /// Chunks retrieved when the request names no `top_k`.
    pub top_k: usize,
    /// Largest `top_k` a request may ask for.
    pub max_top_k: usize,
    /// How chunks are retrieved when the request names no `retrieval`.
    pub retrieval: Retrieval,
    /// Cosine similarity (question embedding to chunk embedding, whatever the retrieval mode)
    /// a source needs to be answered from; with none above it kb says the answer is not in
    /// the knowledge base.
    pub min_score: f32,
    pub mode: AnswerMode,
    /// Sentences quoted by an extractive answer.
    pub extractive_sentences: usize,
    /// Completion token cap for generated answers.
    pub max_answer_tokens: u32,
    /// Longest question accepted, in characters.
    pub max_question_chars: usize,
    /// Most prior messages a follow-up question may come with.
    pub max_history_messages: usize,
    /// Hosts that links and images in answers may point to, over http or https: exact names
    /// (`intranet.example.com`) or `*.example.com` for every subdomain of `example.com`.
    /// Every other link, image, link definition, autolink and bare URL in an answer is
    /// replaced by its text (or `(link removed)`), and raw HTML is always removed: the model
    /// reads untrusted documents, and a rendered image would send whatever it was told to put
    /// in its URL to that host. Default: none, so answers carry no live link or image.
    pub allowed_link_hosts: AllowedHosts,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        Self {
            top_k: 5,
            max_top_k: 20,
            // Best on the evaluation sets (docs/BENCHMARKS.md): at least as good as dense on
            // English, far better on Chinese with the default English-only model.
            retrieval: Retrieval::Hybrid,
            // Best balanced accuracy (in-scope answered vs out-of-scope refused) on the same
            // sets with the default model.
            min_score: 0.35,
            mode: AnswerMode::Auto,
            extractive_sentences: 3,
            max_answer_tokens: 512,
            max_question_chars: 2000,
            max_history_messages: 20,
            allowed_link_hosts: AllowedHosts::default(),
        }
    }
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

/// A source the answer cites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Citation {
    /// The number used in the answer text, `[n]`.
    pub n: usize,
    pub document: String,
    pub title: String,
    pub path: String,
    pub heading_path: Vec<String>,
    /// Chunk ordinal within the document.
    pub chunk: u32,
    /// Byte range of the passage in the document's text.
    pub byte_range: [usize; 2],
    pub snippet: String,
    /// Cosine similarity of the passage to the question (the score `answer.min_score`
    /// compares), whatever the retrieval mode.
    pub score: f32,
}

impl Citation {
    fn from_hit(n: usize, hit: &Hit) -> Self {
        let p = &hit.payload;
        Self {
            n,
            document: p.doc_id.to_string(),
            title: p.title.clone(),
            path: p.path.clone(),
            heading_path: p.heading_path.clone(),
            chunk: p.ordinal,
            byte_range: [p.byte_start, p.byte_end],
            snippet: p.text.clone(),
            score: hit.cosine,
        }
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
    /// Citation markers removed because they named no retrieved source.
    pub removed_citations: usize,
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

/// Completion token cap of a rewritten question.
const REWRITE_MAX_TOKENS: u32 = 128;

/// The question retrieval and the answer use: the caller's, or the standalone rewrite of a
/// follow-up.
struct Standalone {
    question: String,
    rewrite: Option<Rewrite>,
    usage: Usage,
    ms: f64,
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

    /// The question to retrieve with: unchanged without prior messages; otherwise rewritten
    /// by the chat model, or (no chat model, or an unusable reply) the previous user question
    /// and the follow-up together.
    async fn standalone(
        &self,
        req: &AskRequest,
        history: &[Turn],
    ) -> Result<Standalone, AnswerError> {
        let unchanged = Standalone {
            question: req.question.clone(),
            rewrite: None,
            usage: Usage::default(),
            ms: 0.0,
        };
        if history.is_empty() {
            return Ok(unchanged);
        }
        if history.len() > self.options.max_history_messages {
            return Err(AnswerError::InvalidRequest(format!(
                "messages: {} prior messages, over the limit of {}",
                history.len(),
                self.options.max_history_messages
            )));
        }
        // A bad follow-up is refused before any model call.
        self.validate(&req.question, req.top_k)?;
        let started = Instant::now();
        let max_chars = self.options.max_question_chars;
        let fallback = |note: &str| {
            rewrite::concatenate(history, &req.question, max_chars).map(|question| Rewrite {
                question,
                method: RewriteMethod::Concatenated,
                note: Some(note.to_owned()),
            })
        };
        let mut usage = Usage::default();
        let rewrite = match self.answer_model() {
            Some(chat) => {
                let request = ChatRequest {
                    messages: rewrite::build_messages(history, &req.question),
                    max_tokens: Some(REWRITE_MAX_TOKENS),
                    temperature: Some(0.0),
                };
                let response = chat
                    .complete(&request)
                    .instrument(info_span!("rewrite", history = history.len()))
                    .await
                    .map_err(AnswerError::Chat)?;
                usage = response.usage;
                match rewrite::parse_reply(&response.content, max_chars) {
                    Some(question) => Some(Rewrite {
                        question,
                        method: RewriteMethod::Model,
                        note: None,
                    }),
                    None => {
                        warn!("the chat model's rewrite was empty or too long; using the fallback");
                        fallback(
                            "the chat model's rewrite was unusable: retrieved with the previous \
                             question and the follow-up together",
                        )
                    }
                }
            }
            None => fallback(
                "no chat model is configured: retrieved with the previous question and the \
                 follow-up together",
            ),
        };
        let Some(rewrite) = rewrite else {
            return Ok(unchanged);
        };
        info!(method = ?rewrite.method, "follow-up rewritten");
        Ok(Standalone {
            question: rewrite.question.clone(),
            rewrite: Some(rewrite),
            usage,
            ms: ms(started),
        })
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
            removed_links = answer.removed_links,
            prompt_tokens = answer.usage.prompt_tokens,
            completion_tokens = answer.usage.completion_tokens,
            total_ms = answer.timings.total_ms,
            "answered"
        );
        Ok(answer)
    }

    /// Answer a question as a stream of [`AskEvent`]s. Retrieval happens before the stream is
    /// returned, so its errors come back as `Err`; an engine failure after that is an `Err`
    /// item in the stream (after the first token: the answer is incomplete).
    pub async fn ask_stream(&self, req: &AskRequest) -> Result<AskStream, AnswerError> {
        self.ask_stream_in_conversation(req, &[]).await
    }

    /// [`ask_stream`](Self::ask_stream) for the last question of a conversation (see
    /// [`ask_in_conversation`](Self::ask_in_conversation)); the rewrite happens before the
    /// stream is returned.
    pub async fn ask_stream_in_conversation(
        &self,
        req: &AskRequest,
        history: &[Turn],
    ) -> Result<AskStream, AnswerError> {
        let span = info_span!("ask_stream", top_k = req.top_k, history = history.len());
        async {
            let started = Instant::now();
            let Standalone {
                question,
                rewrite,
                usage: rewrite_usage,
                ms: rewrite_ms,
            } = self.standalone(req, history).await?;
            let (hits, question_vector, mut timings) = self
                .search(&question, &req.filter, req.top_k, req.retrieval)
                .await?;
            timings.rewrite_ms = rewrite_ms;
            let retrieval = self.retrieval_for(req.retrieval);
            let relevant = self.relevant(hits);
            let sources: Vec<Citation> = relevant
                .iter()
                .enumerate()
                .map(|(i, h)| Citation::from_hit(i + 1, h))
                .collect();
            let chat = match self.answer_model() {
                Some(chat) if !relevant.is_empty() => chat.clone(),
                _ => {
                    // Not found or extractive: the answer is complete at once.
                    let mut answer = self
                        .answer_from(
                            &question,
                            &question_vector,
                            &relevant,
                            retrieval,
                            timings,
                            started,
                        )
                        .await?;
                    answer.usage += rewrite_usage;
                    answer.rewrite = rewrite.clone();
                    let events = vec![
                        Ok(AskEvent::Sources {
                            sources,
                            retrieval,
                            rewrite,
                        }),
                        Ok(AskEvent::Delta {
                            text: answer.answer.clone(),
                        }),
                        Ok(AskEvent::Done { answer }),
                    ];
                    return Ok(futures::stream::iter(events).boxed());
                }
            };
            let request = ChatRequest {
                messages: prompt::build_messages(&question, &relevant),
                max_tokens: Some(self.options.max_answer_tokens),
                temperature: Some(0.0),
            };
            let generation_started = Instant::now();
            let mut deltas = chat.stream(&request).await.map_err(AnswerError::Chat)?;
            let hosts = self.options.allowed_link_hosts.clone();
            let stream = async_stream::stream! {
                yield Ok(AskEvent::Sources { sources, retrieval, rewrite: rewrite.clone() });
                let mut text = String::new();
                let mut usage = rewrite_usage;
                // Pieces go out as soon as they cannot be part of a link or image; a URL
                // split across pieces is held until it is resolved.
                let mut links = StreamSanitizer::new(hosts.clone());
                while let Some(item) = deltas.next().await {
                    match item {
                        Ok(ChatDelta::Text(piece)) => {
                            text.push_str(&piece);
                            let piece = links.push(&piece);
                            if !piece.is_empty() {
                                yield Ok(AskEvent::Delta { text: piece });
                            }
                        }
                        Ok(ChatDelta::Usage(u)) => usage += u,
                        Err(e) => {
                            yield Err(AnswerError::Chat(e));
                            return;
                        }
                    }
                }
                let rest = links.finish();
                if !rest.is_empty() {
                    yield Ok(AskEvent::Delta { text: rest });
                }
                let checked = checked_answer(&text, relevant.len(), &hosts);
                timings.generate_ms = ms(generation_started);
                timings.total_ms = ms(started);
                info!(
                    citations = checked.cited.len(),
                    removed_citations = checked.removed,
                    removed_links = checked.removed_links,
                    prompt_tokens = usage.prompt_tokens,
                    completion_tokens = usage.completion_tokens,
                    "answered (streamed)"
                );
                yield Ok(AskEvent::Done {
                    answer: Answer {
                        answer: checked.text,
                        citations: checked
                            .cited
                            .iter()
                            .map(|n| Citation::from_hit(*n, &relevant[n - 1]))
                            .collect(),
                        mode: Mode::Generative,
                        retrieval,
                        usage,
                        timings,
                        removed_citations: checked.removed,
                        removed_links: checked.removed_links,
                        rewrite,
                    },
                });
            };
            Ok(stream.boxed())
        }
        .instrument(span)
        .await
    }

    async fn generate(
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
                .map(|n| Citation::from_hit(*n, &hits[n - 1]))
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

    async fn extract(
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
                .map(|n| Citation::from_hit(*n, &hits[n - 1]))
                .collect(),
            mode: Mode::Extractive,
            retrieval,
            usage: Usage::default(),
            timings: Timings::default(),
            removed_citations: 0,
            removed_links: text.removed,
            rewrite: None,
        })
    }
}

/// A generated answer's text as it is returned: links and images off the allow-list
/// neutralised, then citations checked, then neutralised again (removing a marker such as
/// `<[9]img ...>` may join its neighbours into something new).
fn checked_answer(raw: &str, sources: usize, hosts: &AllowedHosts) -> CheckedText {
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

struct CheckedText {
    text: String,
    cited: std::collections::BTreeSet<usize>,
    removed: usize,
    removed_links: usize,
}

/// Drop repeated chunks (the same document and ordinal from two versions of a document
/// while it is being replaced), keeping the best-scoring one.
fn dedup(hits: Vec<Hit>) -> Vec<Hit> {
    let mut seen = HashSet::new();
    hits.into_iter()
        .filter(|h| seen.insert((h.payload.doc_id.clone(), h.payload.ordinal)))
        .collect()
}

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
