//! [`FakeEmbedder`]: an embedder in the test's own process, whose tokens, spans and vectors
//! are plain functions of the text.

use async_trait::async_trait;
use kb_core::{Embedder, Embedding, InputKind, ModelError, content_hash};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Hook = Box<dyn Fn(usize) + Send + Sync>;
type CountFn = Arc<dyn Fn(&str) -> usize + Send + Sync>;
type SpansFn = Arc<dyn Fn(&str) -> Option<Vec<(usize, usize)>> + Send + Sync>;
type VectorFn = Arc<dyn Fn(&str) -> Embedding + Send + Sync>;

/// By default, tokens are whitespace-separated words, at most 256 per input, and vectors
/// have 8 dimensions derived from the SHA-256 of the text ([`FakeEmbedder::vector`]). The
/// `with_*` methods change one of these; [`FakeEmbedder::calls`] and [`FakeEmbedder::on_call`]
/// watch the embedding calls.
pub struct FakeEmbedder {
    name: String,
    dimensions: usize,
    max_input: usize,
    delay: Duration,
    count: CountFn,
    spans: Option<SpansFn>,
    counts_add_at_whitespace: bool,
    vector: VectorFn,
    calls: AtomicUsize,
    /// Called with the 1-based number of each embedding call, before it answers.
    on_call: Mutex<Option<Hook>>,
}

impl Default for FakeEmbedder {
    fn default() -> Self {
        Self::named("fake-model")
    }
}

impl std::fmt::Debug for FakeEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEmbedder")
            .field("name", &self.name)
            .field("dimensions", &self.dimensions)
            .field("max_input", &self.max_input)
            .finish_non_exhaustive()
    }
}

impl FakeEmbedder {
    /// The default embedder, with model id `fake:{name}`.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            dimensions: 8,
            max_input: 256,
            delay: Duration::ZERO,
            count: Arc::new(|text: &str| text.split_whitespace().count()),
            spans: None,
            counts_add_at_whitespace: false,
            vector: Arc::new(Self::vector),
            calls: AtomicUsize::new(0),
            on_call: Mutex::new(None),
        }
    }

    /// Accept up to `max_input` tokens per input.
    pub fn with_max_input_tokens(self, max_input: usize) -> Self {
        Self { max_input, ..self }
    }

    /// Wait `delay` in every embedding call before answering.
    pub fn with_delay(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }

    /// Vectors of `dimensions` from the fake engine's hashed bag of words
    /// ([`crate::fake_embedding`]): texts that share words are close, as with a real model.
    pub fn with_bag_of_words(self, dimensions: usize) -> Self {
        self.with_vectors(dimensions, move |text| {
            crate::fake_embedding(text, dimensions)
        })
    }

    /// Vectors of `dimensions` made by `vector`.
    pub fn with_vectors(
        self,
        dimensions: usize,
        vector: impl Fn(&str) -> Embedding + Send + Sync + 'static,
    ) -> Self {
        Self {
            dimensions,
            vector: Arc::new(vector),
            ..self
        }
    }

    /// Count tokens with `count`.
    pub fn with_token_count(self, count: impl Fn(&str) -> usize + Send + Sync + 'static) -> Self {
        Self {
            count: Arc::new(count),
            ..self
        }
    }

    /// Give the byte ranges of a text's tokens with `spans` (see [`Embedder::token_spans`]),
    /// and whether the counts add up at whitespace (see
    /// [`Embedder::counts_add_at_whitespace`]).
    pub fn with_token_spans(
        self,
        spans: impl Fn(&str) -> Option<Vec<(usize, usize)>> + Send + Sync + 'static,
        counts_add_at_whitespace: bool,
    ) -> Self {
        Self {
            spans: Some(Arc::new(spans)),
            counts_add_at_whitespace,
            ..self
        }
    }

    /// Call `hook` with the 1-based number of each embedding call, before it answers.
    pub fn on_call(&self, hook: impl Fn(usize) + Send + Sync + 'static) {
        *self.on_call.lock().unwrap() = Some(Box::new(hook));
    }

    /// Embedding calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst) as u64
    }

    /// The default vector of `text`: 8 numbers derived from its SHA-256.
    pub fn vector(text: &str) -> Embedding {
        content_hash(text.as_bytes())
            .as_bytes()
            .chunks(8)
            .take(8)
            .map(|c| c.iter().map(|b| *b as f32).sum::<f32>() / 1000.0)
            .collect()
    }
}

#[async_trait]
impl Embedder for FakeEmbedder {
    async fn embed(&self, inputs: &[String], _: InputKind) -> Result<Vec<Embedding>, ModelError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(hook) = &*self.on_call.lock().unwrap() {
            hook(n);
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(inputs.iter().map(|t| (self.vector)(t)).collect())
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_input_tokens(&self) -> usize {
        self.max_input
    }

    fn model_id(&self) -> String {
        format!("fake:{}", self.name)
    }

    fn count_tokens(&self, text: &str) -> usize {
        (self.count)(text)
    }

    fn token_spans(&self, text: &str) -> Option<Vec<(usize, usize)>> {
        self.spans.as_ref().and_then(|spans| spans(text))
    }

    fn counts_add_at_whitespace(&self) -> bool {
        self.counts_add_at_whitespace
    }
}
