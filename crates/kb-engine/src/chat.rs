//! [`RemoteChat`]: `kb_core::ChatModel` over `POST {base_url}/chat/completions`, plain or as an
//! SSE stream.
//!
//! A stream is retried and failed over like any call until its first token; after that, a
//! failure ends it with [`INTERRUPTED`] (two answers are never spliced together).

use crate::client::EngineClient;
use crate::client::attempt::{Attempt, Success};
use crate::client::classify::{Failure, Outcome};
use crate::client::wire::{ChatCompletionRequest, CompletionResponse, StreamChunk};
use crate::kind::ModelKind;
use crate::tokens::estimate_tokens;
use async_trait::async_trait;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::stream::{BoxStream, StreamExt};
use kb_core::error::chain;
use kb_core::{ChatDelta, ChatModel, ChatRequest, ChatResponse, ChatStream, ModelError, Usage};
use std::collections::VecDeque;
use std::time::Duration;
use tracing::{Instrument, Span};

/// Message of the error that ends a stream broken after its first token.
pub const INTERRUPTED: &str = "stream interrupted: the answer is incomplete";

/// Chat completions from the engine.
#[derive(Debug, Clone)]
pub struct RemoteChat {
    client: EngineClient,
    alias: Option<String>,
    model: String,
}

impl EngineClient {
    /// A [`ChatModel`] backed by the endpoints that serve the logical model `model_alias` (by
    /// default `chat`), each sent its own model id for it.
    pub fn chat(&self, model_alias: Option<String>) -> RemoteChat {
        let model = self
            .model_name(ModelKind::Chat, model_alias.as_deref())
            .unwrap_or_else(|| "unconfigured".to_owned());
        RemoteChat {
            client: self.clone(),
            alias: model_alias,
            model,
        }
    }
}

impl RemoteChat {
    /// Tokens the request may use, for the endpoints' token budgets: the messages (estimated)
    /// and `max_tokens`; corrected with the reported usage afterwards.
    fn cost(req: &ChatRequest) -> u64 {
        let prompt: usize = req
            .messages
            .iter()
            .map(|m| estimate_tokens(&m.content) + 4)
            .sum();
        prompt as u64 + u64::from(req.max_tokens.unwrap_or(0))
    }
}

#[async_trait]
impl ChatModel for RemoteChat {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let client = &self.client;
        let span = tracing::info_span!("engine.chat", model = %self.model, stream = false);
        client
            .run(
                ModelKind::Chat,
                self.alias.as_deref(),
                Self::cost(req),
                |attempt| async move {
                    let body = ChatCompletionRequest::new(req, &attempt.model, false);
                    let cap = Duration::from_millis(client.timeouts().request_ms);
                    let response: CompletionResponse =
                        attempt.post_json("chat/completions", &body, cap).await?;
                    let Some(choice) = response.choices.into_iter().next() else {
                        return Err(Failure::malformed(
                            &attempt.endpoint,
                            "no choices in the answer",
                        ));
                    };
                    let usage = response.usage.map(Usage::from);
                    Ok(Success {
                        value: ChatResponse {
                            content: choice.message.content.unwrap_or_default(),
                            model: response.model.unwrap_or(attempt.model),
                            usage: usage.unwrap_or_default(),
                        },
                        usage,
                        reported: true,
                    })
                },
            )
            .instrument(span)
            .await
    }

    async fn stream(&self, req: &ChatRequest) -> Result<ChatStream, ModelError> {
        let span = tracing::info_span!("engine.chat", model = %self.model, stream = true);
        let run_span = span.clone();
        self.client
            .run(
                ModelKind::Chat,
                self.alias.as_deref(),
                Self::cost(req),
                |attempt| open_stream(self.client.clone(), attempt, req, span.clone()),
            )
            .instrument(run_span)
            .await
    }
}

/// What the SSE events said so far.
#[derive(Default)]
struct Parsed {
    texts: VecDeque<String>,
    usage: Option<Usage>,
    finished: bool,
    done: bool,
}

impl Parsed {
    /// Read one `data:` payload; `Err` for an unusable chunk or an error the engine reported.
    fn feed(&mut self, data: &str) -> Result<(), String> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: StreamChunk = serde_json::from_str(data)
            .map_err(|e| format!("stream chunk is not valid JSON: {e}"))?;
        if let Some(error) = chunk.error {
            let message = error["message"]
                .as_str()
                .map_or_else(|| error.to_string(), str::to_owned);
            return Err(format!("engine reported an error in the stream: {message}"));
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                self.texts.push_back(text);
            }
            self.finished |= choice.finish_reason.is_some();
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        Ok(())
    }

    /// The engine said the answer is complete (some gateways omit `[DONE]` after finishing).
    fn complete(&self) -> bool {
        self.done || self.finished
    }
}

type Events = BoxStream<'static, Result<Event, EventStreamError<reqwest::Error>>>;

/// Send the request and read events until the first token (or a complete empty answer); any
/// failure up to there is an ordinary failed attempt, retried on another route.
async fn open_stream(
    client: EngineClient,
    attempt: Attempt,
    req: &ChatRequest,
    span: Span,
) -> Result<Success<ChatStream>, Failure> {
    let budget = attempt.budget(Duration::from_millis(client.timeouts().first_token_ms));
    let endpoint = attempt.endpoint.clone();
    let establish = async {
        let response = attempt
            .post("chat/completions")
            .json(&ChatCompletionRequest::new(req, &attempt.model, true))
            .send()
            .await
            .map_err(|e| Failure::from_reqwest(&endpoint, e))?;
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let text = response.text().await.unwrap_or_default();
            return Err(Failure::from_status(&endpoint, status, &headers, &text));
        }
        let mut events: Events = response.bytes_stream().eventsource().boxed();
        let mut parsed = Parsed::default();
        while parsed.texts.is_empty() && !parsed.done {
            match events.next().await {
                Some(Ok(event)) => parsed
                    .feed(&event.data)
                    .map_err(|e| Failure::malformed(&endpoint, e))?,
                Some(Err(e)) => {
                    return Err(Failure::transient(
                        Outcome::Transport,
                        format!("engine endpoint {endpoint}: stream broke before the first token"),
                    )
                    .caused_by(e));
                }
                None if parsed.complete() => break,
                None => {
                    return Err(Failure::transient(
                        Outcome::Transport,
                        format!("engine endpoint {endpoint}: stream ended before the first token"),
                    ));
                }
            }
        }
        Ok((events, parsed))
    };
    let (events, parsed) = tokio::time::timeout(budget, establish)
        .await
        .unwrap_or_else(|_| Err(Failure::timeout(&endpoint, "first token", budget)))?;
    let ended = parsed.done;
    let state = StreamState {
        events,
        parsed,
        ended,
        idle: Duration::from_millis(client.timeouts().idle_ms),
        client,
        attempt,
        span,
        reported: false,
    };
    Ok(Success {
        value: deltas(state),
        usage: None,
        reported: false,
    })
}

/// A started stream: the engine's events, what is parsed but not yet handed out, and the
/// attempt's event still to be emitted.
struct StreamState {
    events: Events,
    parsed: Parsed,
    ended: bool,
    idle: Duration,
    client: EngineClient,
    attempt: Attempt,
    span: Span,
    reported: bool,
}

impl StreamState {
    /// Next item: buffered text, then more events, then the usage; `None` at the end.
    async fn next(&mut self) -> Option<Result<ChatDelta, ModelError>> {
        loop {
            if let Some(text) = self.parsed.texts.pop_front() {
                return Some(Ok(ChatDelta::Text(text)));
            }
            if self.reported {
                return None;
            }
            if self.ended {
                let usage = self.parsed.usage;
                self.finish(Outcome::Ok, None);
                return usage.map(|u| Ok(ChatDelta::Usage(u)));
            }
            match tokio::time::timeout(self.idle, self.events.next()).await {
                Ok(Some(Ok(event))) => {
                    if let Err(detail) = self.parsed.feed(&event.data) {
                        return Some(Err(self.interrupt(Outcome::Malformed, detail)));
                    }
                    self.ended = self.parsed.done;
                }
                Ok(Some(Err(e))) => {
                    return Some(Err(
                        self.interrupt(Outcome::Transport, chain(&e).to_string())
                    ));
                }
                Ok(None) if self.parsed.complete() => self.ended = true,
                Ok(None) => {
                    let detail = "connection closed before [DONE]".to_owned();
                    return Some(Err(self.interrupt(Outcome::Transport, detail)));
                }
                Err(_) => {
                    let detail = format!("no chunk for {} ms", self.idle.as_millis());
                    return Some(Err(self.interrupt(Outcome::Timeout, detail)));
                }
            }
        }
    }

    fn interrupt(&mut self, outcome: Outcome, detail: String) -> ModelError {
        let error = ModelError::transient(INTERRUPTED, None);
        self.finish(Outcome::Interrupted, Some((outcome, detail)));
        error
    }

    /// End the attempt (its event, record, breaker and load), once.
    fn finish(&mut self, outcome: Outcome, failure: Option<(Outcome, String)>) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        let _entered = self.span.enter();
        let ticket = &self.attempt.ticket;
        match failure {
            None => ticket.finish(outcome, self.parsed.usage, None),
            Some((cause, detail)) => {
                let error = ModelError::transient(
                    self.client.redact_text(format!(
                        "{INTERRUPTED}: engine endpoint {}: {detail} ({cause})",
                        self.attempt.endpoint
                    )),
                    None,
                );
                ticket.finish(outcome, self.parsed.usage, Some(&error));
            }
        }
    }
}

impl Drop for StreamState {
    fn drop(&mut self) {
        // The caller stopped listening (client gone): not the engine's failure.
        self.finish(Outcome::Cancelled, None);
    }
}

fn deltas(state: StreamState) -> ChatStream {
    futures::stream::unfold(state, |mut state| async move {
        let span = state.span.clone();
        let item = state.next().instrument(span).await?;
        Some((item, state))
    })
    .boxed()
}
