//! Follow-up questions: rewritten into a standalone question before retrieval.

use crate::rewrite::{self, Rewrite, RewriteMethod, Turn};
use kb_core::{ChatRequest, Usage};
use std::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use super::{AnswerError, Answerer, AskRequest, ms};

/// Completion token cap of a rewritten question.
const REWRITE_MAX_TOKENS: u32 = 128;

/// The question retrieval and the answer use: the caller's, or the standalone rewrite of a
/// follow-up.
pub(super) struct Standalone {
    pub(super) question: String,
    pub(super) rewrite: Option<Rewrite>,
    pub(super) usage: Usage,
    pub(super) ms: f64,
}

impl Answerer {
    /// The question to retrieve with: unchanged without prior messages; otherwise rewritten
    /// by the chat model, or (no chat model, or an unusable reply) the previous user question
    /// and the follow-up together.
    pub(super) async fn standalone(
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
}
