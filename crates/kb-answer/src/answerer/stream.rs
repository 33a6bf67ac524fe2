//! A streamed answer: the sources, then pieces of the answer as soon as they are settled,
//! then the complete answer with its checked citations.

use crate::prompt;
use crate::rewrite::Turn;
use crate::sanitize::StreamSanitizer;
use futures::StreamExt;
use kb_core::{ChatDelta, ChatRequest};
use std::time::Instant;
use tracing::{Instrument, info, info_span};

use super::conversation::Standalone;
use super::generate::checked_answer;
use super::{Answer, AnswerError, Answerer, AskEvent, AskRequest, AskStream, Citation, Mode, ms};

impl Answerer {
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
                .map(|(i, h)| self.citation(i + 1, h))
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
            let options = self.options.clone();
            let stream = async_stream::stream! {
                // The answer cites some of the sources, by their numbers.
                let numbered = sources.clone();
                yield Ok(AskEvent::Sources { sources, retrieval, rewrite: rewrite.clone() });
                let mut text = String::new();
                let mut usage = rewrite_usage;
                // Pieces go out as soon as they cannot be part of a link or image; a URL
                // split across pieces is held until it is resolved.
                let mut links = StreamSanitizer::new(options.allowed_link_hosts.clone());
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
                let checked = checked_answer(&text, &relevant, &options);
                timings.generate_ms = ms(generation_started);
                timings.total_ms = ms(started);
                info!(
                    citations = checked.cited.len(),
                    removed_citations = checked.removed,
                    moved_citations = checked.moved,
                    unsupported_sentences = checked.unsupported_sentences.len(),
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
                            .map(|n| numbered[n - 1].clone())
                            .collect(),
                        mode: Mode::Generative,
                        retrieval,
                        usage,
                        timings,
                        removed_citations: checked.removed,
                        moved_citations: checked.moved,
                        unsupported_sentences: checked.unsupported_sentences,
                        unsupported_numbers: checked.unsupported_numbers,
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
}
