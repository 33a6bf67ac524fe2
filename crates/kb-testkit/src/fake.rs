//! The fake OpenAI-compatible engine: an axum server on loopback with switchable faults.

use crate::fault::{Fault, Route};
use crate::text::{fake_answer_citing, fake_embedding, obedient_answer, word_count};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Options for [`FakeEngine`]; start it with [`FakeEngineBuilder::start`].
#[derive(Debug, Clone)]
pub struct FakeEngineBuilder {
    dimensions: usize,
    required_api_key: Option<String>,
    embed_model: String,
    chat_model: String,
    reverse_embedding_order: bool,
    seed: u64,
    port: u16,
}

impl Default for FakeEngineBuilder {
    fn default() -> Self {
        Self {
            dimensions: 384,
            required_api_key: None,
            embed_model: "fake-embed".to_owned(),
            chat_model: "fake-chat".to_owned(),
            reverse_embedding_order: false,
            seed: 0,
            port: 0,
        }
    }
}

impl FakeEngineBuilder {
    /// Length of the embeddings (default 384); can be changed later with
    /// [`FakeEngine::set_dimensions`].
    pub fn dimensions(mut self, dimensions: usize) -> Self {
        self.dimensions = dimensions;
        self
    }

    /// Answer `401` unless the request carries `Authorization: Bearer {key}`.
    pub fn required_api_key(mut self, key: impl Into<String>) -> Self {
        self.required_api_key = Some(key.into());
        self
    }

    /// Model name listed by `/v1/models` for embeddings (default `fake-embed`).
    pub fn embed_model(mut self, model: impl Into<String>) -> Self {
        self.embed_model = model.into();
        self
    }

    /// Model name listed by `/v1/models` for chat (default `fake-chat`).
    pub fn chat_model(mut self, model: impl Into<String>) -> Self {
        self.chat_model = model.into();
        self
    }

    /// List embeddings in reverse order (each keeps its right `index`), as some gateways do.
    pub fn reverse_embedding_order(mut self, reverse: bool) -> Self {
        self.reverse_embedding_order = reverse;
        self
    }

    /// Seed of the random draws behind [`FakeEngine::set_failure_rate`] (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Listen on this loopback port (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Bind `127.0.0.1:PORT` and serve until the returned engine is dropped.
    ///
    /// # Panics
    /// When the loopback port cannot be bound (taken, or a broken test machine).
    pub async fn start(self) -> FakeEngine {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("fake engine: could not bind 127.0.0.1:{}: {e}", self.port));
        let addr = listener
            .local_addr()
            .expect("BUG: a bound listener has a local address");
        let shutdown = CancellationToken::new();
        let state = Arc::new(Shared {
            embed_model: self.embed_model,
            chat_model: self.chat_model,
            required_api_key: self.required_api_key,
            reverse_embedding_order: self.reverse_embedding_order,
            shutdown: shutdown.clone(),
            calls: [AtomicUsize::new(0), AtomicUsize::new(0)],
            embedded_inputs: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            streamed_chunks: AtomicUsize::new(0),
            abandoned_streams: AtomicUsize::new(0),
            mutable: Mutex::new(Mutable {
                dimensions: self.dimensions,
                chat_reply: None,
                cited_source: 1,
                obey_injections: false,
                next_chat_replies: VecDeque::new(),
                requests: [Vec::new(), Vec::new()],
                chunk_delay: Duration::ZERO,
                queues: [VecDeque::new(), VecDeque::new()],
                rates: [None, None],
                rng: StdRng::seed_from_u64(self.seed),
                last_requests: [None, None],
                latency: Duration::ZERO,
                embedding_log: Vec::new(),
            }),
        });
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .with_state(state.clone());
        let signal = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::warn!(%error, "fake engine stopped with an error");
            }
        });
        tracing::debug!(%addr, "fake engine started");
        FakeEngine {
            state,
            addr,
            shutdown,
        }
    }
}

/// A fake OpenAI-compatible engine on loopback; stops when dropped.
///
/// Counters count every request a route received, including refused and faulted ones.
#[derive(Debug)]
pub struct FakeEngine {
    state: Arc<Shared>,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl FakeEngine {
    /// Start with the default options (384 dimensions, no API key required).
    pub async fn start() -> FakeEngine {
        FakeEngineBuilder::default().start().await
    }

    /// Options other than the defaults.
    pub fn builder() -> FakeEngineBuilder {
        FakeEngineBuilder::default()
    }

    /// `http://127.0.0.1:PORT/v1`, the value for an endpoint's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The socket address the engine listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queue a one-shot fault: the next request on `route` gets it (faults are used in order).
    pub fn push_fault(&self, route: Route, fault: Fault) {
        self.state.lock().queues[route.index()].push_back(fault);
    }

    /// From now on, each request on `route` with no queued fault gets `fault` with probability
    /// `rate` (clamped to 0..=1; 0 turns the mode off).
    pub fn set_failure_rate(&self, route: Route, rate: f64, fault: Fault) {
        let rate = rate.clamp(0.0, 1.0);
        self.state.lock().rates[route.index()] = (rate > 0.0).then_some((rate, fault));
    }

    /// Drop every queued fault and failure rate, on both routes.
    pub fn clear_faults(&self) {
        let mut m = self.state.lock();
        m.queues.iter_mut().for_each(VecDeque::clear);
        m.rates = [None, None];
    }

    /// Answer every chat request with this text instead of the extractive answer (`None` to go
    /// back), e.g. to test an answer citing a source that does not exist.
    pub fn set_chat_reply(&self, reply: Option<String>) {
        self.state.lock().chat_reply = reply;
    }

    /// Play a model that quotes and cites source `[n]` only (default `[1]`; see
    /// [`fake_answer_citing`](crate::fake_answer_citing)), e.g. to test that an answer lists
    /// exactly the sources it cites when several were retrieved.
    pub fn set_cited_source(&self, n: u32) {
        self.state.lock().cited_source = n;
    }

    /// Play a model that obeys instructions planted in its sources (see
    /// [`obedient_answer`](crate::obedient_answer)): when a message holds one, the answer is
    /// what it asks for; otherwise the usual answer.
    pub fn set_obey_injections(&self, obey: bool) {
        self.state.lock().obey_injections = obey;
    }

    /// Answer the next chat request with this text (one-shot replies are used in order, before
    /// [`set_chat_reply`](Self::set_chat_reply)'s and the extractive answer), e.g. to play a
    /// model that rewrites a follow-up question.
    pub fn push_chat_reply(&self, reply: impl Into<String>) {
        self.state.lock().next_chat_replies.push_back(reply.into());
    }

    /// Change the length of the embeddings returned from now on.
    pub fn set_dimensions(&self, dimensions: usize) {
        self.state.lock().dimensions = dimensions;
    }

    /// Pause between streamed chunks (default none), to watch an answer arrive piece by piece.
    pub fn set_stream_chunk_delay(&self, delay: Duration) {
        self.state.lock().chunk_delay = delay;
    }

    /// Requests received on `route` since start or the last [`reset_counters`](Self::reset_counters).
    pub fn calls(&self, route: Route) -> usize {
        self.state.calls[route.index()].load(Ordering::SeqCst)
    }

    /// Inputs embedded and answered with success since start or the last reset.
    pub fn embedded_inputs(&self) -> usize {
        self.state.embedded_inputs.load(Ordering::SeqCst)
    }

    /// Body chunks of streamed responses handed to the connection (SSE frames of a chat stream).
    pub fn streamed_chunks(&self) -> usize {
        self.state.streamed_chunks.load(Ordering::SeqCst)
    }

    /// Streamed responses whose client went away before the last chunk.
    pub fn abandoned_streams(&self) -> usize {
        self.state.abandoned_streams.load(Ordering::SeqCst)
    }

    /// Set the call and input counters back to zero, and forget the embedding requests seen.
    pub fn reset_counters(&self) {
        self.state
            .calls
            .iter()
            .for_each(|c| c.store(0, Ordering::SeqCst));
        self.state.embedded_inputs.store(0, Ordering::SeqCst);
        self.state.max_in_flight.store(0, Ordering::SeqCst);
        self.state.lock().embedding_log.clear();
    }

    /// Answer every embedding request only after this long (default none), so that requests
    /// overlap and [`max_embeddings_in_flight`](Self::max_embeddings_in_flight) shows how many
    /// a client sends at once. Applies together with any fault.
    pub fn set_embedding_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// Every embedding request with a valid body, in the order they arrived, with whether it was
    /// answered with embeddings (`false`: a fault answered it).
    pub fn embedding_requests(&self) -> Vec<EmbeddingRequest> {
        self.state.lock().embedding_log.clone()
    }

    /// The most embedding requests that were being served at the same moment.
    pub fn max_embeddings_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Body of the last request on `route` that was valid JSON.
    pub fn last_request(&self, route: Route) -> Option<Value> {
        self.state.lock().last_requests[route.index()].clone()
    }

    /// Bodies of every request on `route` that was valid JSON, oldest first.
    pub fn requests(&self, route: Route) -> Vec<Value> {
        self.state.lock().requests[route.index()].clone()
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Debug)]
struct Shared {
    embed_model: String,
    chat_model: String,
    required_api_key: Option<String>,
    reverse_embedding_order: bool,
    shutdown: CancellationToken,
    calls: [AtomicUsize; 2],
    embedded_inputs: AtomicUsize,
    /// Embedding requests being served now, and the most there ever were.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    streamed_chunks: AtomicUsize,
    abandoned_streams: AtomicUsize,
    mutable: Mutex<Mutable>,
}

/// One embedding request as the fake engine saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingRequest {
    /// The `input` texts, in order.
    pub inputs: Vec<String>,
    /// Answered with embeddings (a fault that only delays counts as answered).
    pub succeeded: bool,
}

/// Counts an embedding request as in flight for as long as it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Mutable {
    dimensions: usize,
    chat_reply: Option<String>,
    cited_source: u32,
    obey_injections: bool,
    next_chat_replies: VecDeque<String>,
    requests: [Vec<Value>; 2],
    chunk_delay: Duration,
    queues: [VecDeque<Fault>; 2],
    rates: [Option<(f64, Fault)>; 2],
    rng: StdRng,
    last_requests: [Option<Value>; 2],
    latency: Duration,
    embedding_log: Vec<EmbeddingRequest>,
}

type AppState = Arc<Shared>;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Mutable> {
        // A panicking test thread must not take the other tests' engine down with it.
        self.mutable.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count the call, parse and record the body, check the key, draw the fault.
    fn admit(
        &self,
        route: Route,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<(Value, Option<Fault>), Box<Response>> {
        self.calls[route.index()].fetch_add(1, Ordering::SeqCst);
        let request: Value = serde_json::from_slice(body).map_err(|e| {
            Box::new(error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("request body is not JSON: {e}"),
            ))
        })?;
        let mut m = self.lock();
        m.last_requests[route.index()] = Some(request.clone());
        m.requests[route.index()].push(request.clone());
        if let Some(key) = &self.required_api_key {
            let expected = format!("Bearer {key}");
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if given != Some(expected.as_str()) {
                return Err(Box::new(unauthorized()));
            }
        }
        let fault = match m.queues[route.index()].pop_front() {
            Some(fault) => Some(fault),
            None => match m.rates[route.index()].clone() {
                Some((rate, fault)) if m.rng.random_bool(rate) => Some(fault),
                _ => None,
            },
        };
        Ok((request, fault))
    }

    async fn hang(&self) -> Response {
        self.shutdown.cancelled().await;
        error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "fake engine shutting down",
        )
    }
}

/// What to do with a request once its fault is known: answer at once, or go on.
async fn apply_early_fault(state: &AppState, fault: &Option<Fault>) -> Option<Response> {
    match fault.as_ref()? {
        Fault::RateLimited { retry_after } => {
            let mut response = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "fake engine: injected rate limit",
            );
            if let Some(after) = retry_after {
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&secs.to_string()).expect("BUG: digits are a header"),
                );
            }
            Some(response)
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = if status.is_server_error() {
                "server_error"
            } else {
                "invalid_request_error"
            };
            Some(error_response(
                status,
                kind,
                &format!("fake engine: injected {code}"),
            ))
        }
        Fault::ErrorBody { status, message } => Some(error_response(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "server_error",
            message,
        )),
        Fault::ContextLengthExceeded => Some(error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "This model's maximum context length is 512 tokens. However, you requested 913 tokens. \
             Please reduce the length of the input.",
        )),
        Fault::Unauthorized => Some(unauthorized()),
        Fault::Delay(delay) => {
            tokio::time::sleep(*delay).await;
            None
        }
        Fault::Hang => Some(state.hang().await),
        Fault::MalformedJson
        | Fault::CutStream { .. }
        | Fault::StallStream { .. }
        | Fault::WrongDimensions(_) => None,
    }
}

async fn embeddings(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let _in_flight = InFlight::enter(&state);
    let (request, fault) = match state.admit(Route::Embeddings, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let latency = state.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let early = apply_early_fault(&state, &fault).await;
    let inputs: Vec<String> = match &request["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "'input' must be a string or an array of strings",
            );
        }
    };
    let answered = early.is_none() && fault.as_ref().is_none_or(|f| matches!(f, Fault::Delay(_)));
    state.lock().embedding_log.push(EmbeddingRequest {
        inputs: inputs.clone(),
        succeeded: answered,
    });
    if let Some(response) = early {
        return response;
    }
    let dims = match fault {
        Some(Fault::WrongDimensions(dims)) => dims,
        _ => state.lock().dimensions,
    };
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({"object": "embedding", "index": index, "embedding": fake_embedding(text, dims)})
        })
        .collect();
    if state.reverse_embedding_order {
        data.reverse();
    }
    let tokens: usize = inputs.iter().map(|t| word_count(t)).sum();
    let model = request["model"].as_str().unwrap_or(&state.embed_model);
    let body = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    if fault.is_none() {
        state
            .embedded_inputs
            .fetch_add(inputs.len(), Ordering::SeqCst);
    }
    json_body(&state, body, fault)
}

async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (request, fault) = match state.admit(Route::Chat, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    if let Some(response) = apply_early_fault(&state, &fault).await {
        return response;
    }
    let Some(messages) = request["messages"].as_array() else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "'messages' must be an array",
        );
    };
    let messages: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or(""),
                m["content"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let (reply, chunk_delay, obey, cited) = {
        let mut m = state.lock();
        let reply = m
            .next_chat_replies
            .pop_front()
            .or_else(|| m.chat_reply.clone());
        (reply, m.chunk_delay, m.obey_injections, m.cited_source)
    };
    let answer = reply
        .or_else(|| {
            obey.then(|| obedient_answer(messages.iter().copied()))
                .flatten()
        })
        .unwrap_or_else(|| fake_answer_citing(messages.iter().copied(), cited));
    let prompt_tokens: usize = messages.iter().map(|(_, c)| word_count(c)).sum();
    let completion_tokens = word_count(&answer);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let model = request["model"]
        .as_str()
        .unwrap_or(&state.chat_model)
        .to_owned();

    if request["stream"].as_bool() != Some(true) {
        let body = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }],
            "usage": usage,
        });
        return json_body(&state, body, fault);
    }

    let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);
    let chunk = |delta: Value, finish: Value| {
        sse(&json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }))
    };
    let opening = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    let words: Vec<Bytes> = answer
        .split_inclusive(' ')
        .map(|w| chunk(json!({"content": w}), Value::Null))
        .collect();
    let mut closing = vec![chunk(json!({}), json!("stop"))];
    if include_usage {
        closing.push(sse(&json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": usage,
        })));
    }
    closing.push(Bytes::from_static(b"data: [DONE]\n\n"));

    let plan = match fault {
        Some(Fault::CutStream { after_chunks }) => {
            StreamPlan::Cut(prefix(opening, &words, after_chunks))
        }
        Some(Fault::StallStream { after_chunks }) => {
            StreamPlan::Stall(prefix(opening, &words, after_chunks))
        }
        Some(Fault::MalformedJson) => StreamPlan::Whole(vec![
            Bytes::from_static(b"data: {\"choices\": [\n\n"),
            Bytes::from_static(b"data: [DONE]\n\n"),
        ]),
        _ => {
            let mut all = vec![opening];
            all.extend(words);
            all.extend(closing);
            StreamPlan::Whole(all)
        }
    };
    let mut response = streamed(&state, plan, chunk_delay, "text/event-stream");
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn models(State(state): State<AppState>) -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [
            {"id": state.embed_model, "object": "model", "created": 0, "owned_by": "kb-testkit"},
            {"id": state.chat_model, "object": "model", "created": 0, "owned_by": "kb-testkit"},
        ],
    }))
    .into_response()
}

fn prefix(opening: Bytes, words: &[Bytes], n: usize) -> Vec<Bytes> {
    let mut out = vec![opening];
    out.extend(words.iter().take(n).cloned());
    out
}

fn sse(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// How a streamed body ends: normally, by cutting the connection, or by going silent.
enum StreamPlan {
    Whole(Vec<Bytes>),
    Cut(Vec<Bytes>),
    Stall(Vec<Bytes>),
}

fn streamed(state: &AppState, plan: StreamPlan, delay: Duration, content_type: &str) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let state = state.clone();
    tokio::spawn(async move {
        let (chunks, ending) = match plan {
            StreamPlan::Whole(c) => (c, None),
            StreamPlan::Cut(c) => (c, Some(false)),
            StreamPlan::Stall(c) => (c, Some(true)),
        };
        for (i, bytes) in chunks.into_iter().enumerate() {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if tx.send(Ok(bytes)).await.is_err() {
                // The client went away (hyper dropped the body).
                state.abandoned_streams.fetch_add(1, Ordering::SeqCst);
                return;
            }
            state.streamed_chunks.fetch_add(1, Ordering::SeqCst);
        }
        match ending {
            None => {}
            Some(stall) => {
                if stall {
                    tokio::select! {
                        () = state.shutdown.cancelled() => {}
                        () = tx.closed() => return,
                    }
                }
                // Let hyper flush what was sent: it drops unflushed bytes when the body fails.
                tokio::time::sleep(Duration::from_millis(50)).await;
                // An error in the body makes hyper drop the connection mid-response.
                let cut = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "fake cut");
                let _ = tx.send(Err(cut)).await;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(body))
        .expect("BUG: static response parts are valid")
}

/// A `200` JSON answer, spoiled as the fault says.
fn json_body(state: &AppState, body: Value, fault: Option<Fault>) -> Response {
    let bytes = Bytes::from(body.to_string());
    let half = bytes.slice(..bytes.len() / 2);
    match fault {
        Some(Fault::MalformedJson) => (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"object\": \"list\", \"data\": [{\"embedding\": [0.1, ",
        )
            .into_response(),
        Some(Fault::CutStream { .. }) => streamed(
            state,
            StreamPlan::Cut(vec![half]),
            Duration::ZERO,
            "application/json",
        ),
        Some(Fault::StallStream { .. }) => streamed(
            state,
            StreamPlan::Stall(vec![half]),
            Duration::ZERO,
            "application/json",
        ),
        _ => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
    }
}

fn unauthorized() -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "Incorrect API key provided.",
    )
}

fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    async fn post(engine: &FakeEngine, path: &str, body: Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", engine.base_url()))
            .json(&body)
            .send()
            .await
            .expect("request to the fake engine")
    }

    #[tokio::test]
    async fn embeddings_answer_one_vector_per_input_and_count_them() {
        // Arrange
        let engine = FakeEngine::builder().dimensions(16).start().await;

        // Act
        let response = post(
            &engine,
            "/embeddings",
            json!({"model": "m", "input": ["a b", "c"]}),
        )
        .await;
        let body: Value = response.json().await.unwrap();

        // Assert
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
        assert_eq!(body["data"][1]["embedding"].as_array().unwrap().len(), 16);
        assert_eq!(body["usage"]["prompt_tokens"], 3);
        assert_eq!(engine.calls(Route::Embeddings), 1);
        assert_eq!(engine.embedded_inputs(), 2);
    }

    #[tokio::test]
    async fn embedding_requests_are_logged_with_their_outcome_and_overlap_is_measured() {
        // Arrange
        let engine = FakeEngine::start().await;
        engine.set_embedding_latency(Duration::from_millis(100));
        engine.push_fault(Route::Embeddings, Fault::RateLimited { retry_after: None });
        let body = |text: &str| json!({"model": "m", "input": [text]});

        // Act
        let (limited, ok) = tokio::join!(
            post(&engine, "/embeddings", body("first")),
            post(&engine, "/embeddings", body("second")),
        );

        // Assert
        assert_eq!(limited.status(), 429);
        assert_eq!(ok.status(), 200);
        let mut log = engine.embedding_requests();
        log.sort_by(|a, b| a.inputs.cmp(&b.inputs));
        assert_eq!(
            log,
            [
                EmbeddingRequest {
                    inputs: vec!["first".into()],
                    succeeded: false
                },
                EmbeddingRequest {
                    inputs: vec!["second".into()],
                    succeeded: true
                },
            ]
        );
        assert_eq!(engine.max_embeddings_in_flight(), 2);
        engine.reset_counters();
        assert!(engine.embedding_requests().is_empty());
    }

    #[tokio::test]
    async fn queued_faults_apply_once_in_order() {
        // Arrange
        let engine = FakeEngine::start().await;
        engine.push_fault(
            Route::Chat,
            Fault::RateLimited {
                retry_after: Some(Duration::from_millis(1500)),
            },
        );
        engine.push_fault(Route::Chat, Fault::Status(502));
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});

        // Act
        let first = post(&engine, "/chat/completions", body.clone()).await;
        let second = post(&engine, "/chat/completions", body.clone()).await;
        let third = post(&engine, "/chat/completions", body).await;

        // Assert
        assert_eq!(first.status(), 429);
        assert_eq!(first.headers()["retry-after"], "2");
        assert_eq!(second.status(), 502);
        assert_eq!(third.status(), 200);
        assert_eq!(engine.calls(Route::Chat), 3);
    }

    #[tokio::test]
    async fn stream_ends_with_usage_and_done() {
        // Arrange
        let engine = FakeEngine::start().await;
        let body = json!({
            "model": "m", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "[1] Leave is 25 days. More text."}],
        });

        // Act
        let text = post(&engine, "/chat/completions", body)
            .await
            .text()
            .await
            .unwrap();

        // Assert
        assert!(text.contains("\"usage\""), "{text}");
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        assert!(text.contains("\"content\":\"25 \""), "{text}");
    }

    #[tokio::test]
    async fn cut_stream_closes_the_connection_without_done() {
        // Arrange
        let engine = FakeEngine::start().await;
        engine.push_fault(Route::Chat, Fault::CutStream { after_chunks: 1 });
        let body = json!({"model": "m", "stream": true,
            "messages": [{"role": "user", "content": "[1] Leave is 25 days."}]});

        // Act
        let result = post(&engine, "/chat/completions", body).await.text().await;

        // Assert
        assert!(result.is_err(), "expected a broken body, got {result:?}");
    }

    #[tokio::test]
    async fn one_shot_replies_come_first_and_every_request_is_recorded() {
        // Arrange
        let engine = FakeEngine::start().await;
        engine.push_chat_reply("first");
        let body = |q: &str| json!({"model": "m", "messages": [{"role": "user", "content": q}]});

        // Act
        let first: Value = post(&engine, "/chat/completions", body("a"))
            .await
            .json()
            .await
            .unwrap();
        let second: Value = post(&engine, "/chat/completions", body("b"))
            .await
            .json()
            .await
            .unwrap();

        // Assert
        assert_eq!(first["choices"][0]["message"]["content"], "first");
        assert_eq!(second["choices"][0]["message"]["content"], "I don't know.");
        let contents: Vec<Value> = engine
            .requests(Route::Chat)
            .iter()
            .map(|r| r["messages"][0]["content"].clone())
            .collect();
        assert_eq!(contents, [json!("a"), json!("b")]);
    }

    #[tokio::test]
    async fn the_cited_source_can_be_chosen() {
        // Arrange
        let engine = FakeEngine::start().await;
        engine.set_cited_source(2);
        let body = json!({"model": "m", "messages": [{"role": "user",
            "content": "[1] Leave is 25 days.\n[2] Lockers are upstairs. More.\nQuestion: x"}]});

        // Act
        let answer: Value = post(&engine, "/chat/completions", body)
            .await
            .json()
            .await
            .unwrap();

        // Assert
        assert_eq!(
            answer["choices"][0]["message"]["content"],
            "Lockers are upstairs. [2]"
        );
    }

    #[tokio::test]
    async fn a_client_that_leaves_a_slow_stream_is_counted_as_abandoned() {
        // Arrange
        let engine = FakeEngine::start().await;
        engine.set_stream_chunk_delay(Duration::from_millis(50));
        engine.set_chat_reply(Some("word ".repeat(200)));
        let body = json!({"model": "m", "stream": true,
            "messages": [{"role": "user", "content": "x"}]});
        let mut response = post(&engine, "/chat/completions", body).await;
        response.chunk().await.unwrap();

        // Act
        drop(response);
        tokio::time::sleep(Duration::from_millis(600)).await;

        // Assert
        assert_eq!(engine.abandoned_streams(), 1);
        assert!(
            engine.streamed_chunks() < 50,
            "{}",
            engine.streamed_chunks()
        );
    }

    #[tokio::test]
    async fn wrong_api_key_is_refused_with_401() {
        // Arrange
        let engine = FakeEngine::builder()
            .required_api_key("sk-right")
            .start()
            .await;

        // Act
        let response = reqwest::Client::new()
            .post(format!("{}/embeddings", engine.base_url()))
            .bearer_auth("sk-wrong")
            .json(&json!({"model": "m", "input": ["x"]}))
            .send()
            .await
            .unwrap();

        // Assert
        assert_eq!(response.status(), 401);
        assert_eq!(engine.embedded_inputs(), 0);
    }

    #[tokio::test]
    async fn hanging_request_is_released_when_the_engine_is_dropped() {
        // Arrange
        let engine = FakeEngine::start().await;
        engine.push_fault(Route::Embeddings, Fault::Hang);
        let url = format!("{}/embeddings", engine.base_url());
        let started = Instant::now();
        let request = tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({"model": "m", "input": ["x"]}))
                .send()
                .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;

        // Act
        drop(engine);
        let outcome = tokio::time::timeout(Duration::from_secs(2), request).await;

        // Assert
        assert!(outcome.is_ok(), "request still hanging after the drop");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn failure_rate_one_fails_every_call_until_cleared() {
        // Arrange
        let engine = FakeEngine::start().await;
        engine.set_failure_rate(Route::Embeddings, 1.0, Fault::Status(503));
        let body = json!({"model": "m", "input": ["x"]});

        // Act
        let failed = post(&engine, "/embeddings", body.clone()).await.status();
        engine.clear_faults();
        let ok = post(&engine, "/embeddings", body).await.status();

        // Assert
        assert_eq!(failed, 503);
        assert_eq!(ok, 200);
    }
}
