//! [`LocalEmbedder`]: loading a BERT-family model folder and embedding batches of texts.
//!
//! `model_folder` reads the model folder (files, configs, pooling, weights); `passes` plans
//! the forward passes of a call. This module loads the model and runs the passes.

mod model_folder;
mod passes;

use crate::bert::{Bert, BertConfig, BertError};
use crate::config::{LocalEmbedderConfig, Pooling};
use crate::error::LocalEmbedError;
use async_trait::async_trait;
use faer::Par;
use kb_core::{Embedder, Embedding, InputKind, ModelError};
use rayon::prelude::*;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;
use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{
    Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};
use tracing::{debug, info, warn};

use model_folder::{
    CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, effective_max_tokens, load_weights, model_id,
    pooling_from_folder, read_json,
};
use passes::{plan_batches, spread};

/// An embedding model run in-process on the CPU by this crate's own BERT encoder.
///
/// Cheap to clone: clones share the loaded model.
#[derive(Clone)]
pub struct LocalEmbedder {
    inner: Arc<Inner>,
}

struct Inner {
    model: Bert,
    /// Adds special tokens and truncates at `max_tokens`; no padding (inputs are packed, not
    /// padded).
    embed_tokenizer: Tokenizer,
    /// Neither truncates nor pads: counts what a text really costs.
    count_tokenizer: Tokenizer,
    /// [`counts_add_at_whitespace`] of the tokenizer.
    counts_add_at_whitespace: bool,
    dimensions: usize,
    max_tokens: usize,
    max_input_tokens: usize,
    query_prefix: String,
    passage_prefix: String,
    batch_size: usize,
    pooling: Pooling,
    normalize: bool,
    model_id: String,
}

impl fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("LocalEmbedder")
            .field("model_id", &inner.model_id)
            .field("dimensions", &inner.dimensions)
            .field("max_tokens", &inner.max_tokens)
            .field("max_input_tokens", &inner.max_input_tokens)
            .field("query_prefix", &inner.query_prefix)
            .field("passage_prefix", &inner.passage_prefix)
            .field("batch_size", &inner.batch_size)
            .field("pooling", &inner.pooling)
            .field("normalize", &inner.normalize)
            .finish_non_exhaustive()
    }
}

impl LocalEmbedder {
    /// Load the model folder named by `config.model_dir`.
    ///
    /// The folder needs `config.json` (a BERT config), `tokenizer.json` and
    /// `model.safetensors` (weights with or without a `bert.` prefix); `modules.json`,
    /// `1_Pooling/config.json` and `sentence_bert_config.json` are read when present.
    pub fn load(config: &LocalEmbedderConfig) -> Result<Self, LocalEmbedError> {
        let started = Instant::now();
        let dir = config.model_dir.as_path();
        let _span =
            tracing::info_span!("load_local_embedder", model_dir = %dir.display()).entered();

        if !dir.is_dir() {
            return Err(LocalEmbedError::ModelDirMissing {
                dir: dir.to_path_buf(),
            });
        }
        for file in [CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE] {
            if !dir.join(file).is_file() {
                return Err(LocalEmbedError::FileMissing {
                    dir: dir.to_path_buf(),
                    file,
                });
            }
        }
        if config.batch_size == 0 {
            return Err(LocalEmbedError::InvalidConfig {
                key: "batch_size",
                message: "must be at least 1".into(),
            });
        }

        let bert_config: BertConfig = read_json(&dir.join(CONFIG_FILE), "BERT config")?;
        let pooling = match config.pooling {
            Some(pooling) => pooling,
            None => pooling_from_folder(dir)?,
        };

        let tokenizer_path = dir.join(TOKENIZER_FILE);
        let tokenizer_error = |source| LocalEmbedError::Tokenizer {
            path: tokenizer_path.clone(),
            source,
        };
        let tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(tokenizer_error)?;
        let mut count_tokenizer = tokenizer;
        count_tokenizer.with_padding(None);
        count_tokenizer
            .with_truncation(None)
            .map_err(tokenizer_error)?;

        let max_tokens = effective_max_tokens(dir, config.max_tokens, &bert_config)?;
        let special_tokens = count_tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        let prefix_tokens = [&config.query_prefix, &config.passage_prefix]
            .into_iter()
            .map(|prefix| {
                if !prefix.is_empty() && !ends_at_word_boundary(prefix) {
                    warn!(
                        prefix = %prefix,
                        "embedding prefix does not end in a space or punctuation; it may merge with \
                         the input's first word and shift token counts by one"
                    );
                }
                count_with(&count_tokenizer, prefix)
            })
            .max()
            .unwrap_or(0);
        let reserved = special_tokens + prefix_tokens;
        if max_tokens <= reserved {
            return Err(LocalEmbedError::InvalidConfig {
                key: "max_tokens",
                message: format!(
                    "{max_tokens} leaves no room for input after {special_tokens} special tokens \
                     and {prefix_tokens} prefix tokens"
                ),
            });
        }

        let mut embed_tokenizer = count_tokenizer.clone();
        embed_tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(tokenizer_error)?;

        let model = load_weights(&dir.join(WEIGHTS_FILE), &bert_config)?;
        let tokenizer_vocabulary = count_tokenizer.get_vocab_size(true);
        if tokenizer_vocabulary > model.vocab_size() {
            return Err(LocalEmbedError::Mismatch {
                dir: dir.to_path_buf(),
                message: format!(
                    "tokenizer.json has {tokenizer_vocabulary} tokens but config.json's \
                     vocab_size is {}",
                    model.vocab_size()
                ),
            });
        }

        let inner = Inner {
            dimensions: model.hidden_size(),
            model,
            embed_tokenizer,
            counts_add_at_whitespace: counts_add_at_whitespace(&count_tokenizer),
            count_tokenizer,
            max_tokens,
            max_input_tokens: max_tokens - reserved,
            query_prefix: config.query_prefix.clone(),
            passage_prefix: config.passage_prefix.clone(),
            batch_size: config.batch_size,
            pooling,
            normalize: config.normalize,
            model_id: model_id(dir),
        };
        info!(
            model_id = %inner.model_id,
            dimensions = inner.dimensions,
            max_tokens,
            max_input_tokens = inner.max_input_tokens,
            pooling = ?pooling,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "local embedding model loaded"
        );
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The model's tokenizer as used for counting: no padding, no truncation.
    ///
    /// Pass `add_special_tokens = false` to count what [`Embedder::count_tokens`] counts.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.inner.count_tokenizer
    }

    /// Embed `inputs` on the calling thread: one vector per input, in input order.
    ///
    /// Blocks for as long as the forward passes take (they run on the rayon thread pool,
    /// sized by `RAYON_NUM_THREADS`); from async code use [`Embedder::embed`].
    /// Inputs longer than `max_tokens` (prefix and special tokens included) are truncated.
    pub fn embed_sync(
        &self,
        inputs: &[String],
        kind: InputKind,
    ) -> Result<Vec<Vec<f32>>, LocalEmbedError> {
        self.inner.embed(inputs, kind)
    }
}

impl Inner {
    fn embed(&self, inputs: &[String], kind: InputKind) -> Result<Vec<Vec<f32>>, LocalEmbedError> {
        let _span = tracing::debug_span!(
            "local_embed",
            model_id = %self.model_id,
            inputs = inputs.len(),
            kind = ?kind,
        )
        .entered();
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();

        let prefix = match kind {
            InputKind::Query => self.query_prefix.as_str(),
            InputKind::Passage => self.passage_prefix.as_str(),
        };
        let texts: Vec<Cow<'_, str>> = inputs
            .iter()
            .map(|text| match prefix {
                "" => Cow::Borrowed(text.as_str()),
                _ => Cow::Owned(format!("{prefix}{text}")),
            })
            .collect();
        let encodings = self
            .embed_tokenizer
            .encode_batch_fast(texts, true)
            .map_err(|source| LocalEmbedError::Tokenize {
                inputs: inputs.len(),
                source,
            })?;
        let truncated = encodings
            .iter()
            .filter(|e| !e.get_overflowing().is_empty())
            .count();
        if truncated > 0 {
            debug!(
                truncated,
                max_tokens = self.max_tokens,
                "inputs truncated to the model's limit"
            );
        }

        // Inputs are packed rather than padded, so order only groups them into passes; sorted
        // by length, passes hold similar numbers of tokens.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let sorted_lengths: Vec<usize> = order.iter().map(|&i| encodings[i].len()).collect();
        // Passes run side by side on rayon's threads, each on one thread; only when there are
        // fewer passes than threads (a single query) do the matrix products of a pass share
        // the threads.
        let threads = rayon::current_num_threads();
        let passes = spread(
            plan_batches(&sorted_lengths, self.batch_size),
            &sorted_lengths,
            threads,
        );
        let par = if passes.len() < threads {
            Par::rayon(threads)
        } else {
            Par::Seq
        };
        let outputs: Vec<Vec<Vec<f32>>> = passes
            .par_iter()
            .map(|range| {
                let batch: Vec<&Encoding> = order[range.clone()]
                    .iter()
                    .map(|&i| &encodings[i])
                    .collect();
                self.forward(&batch, par)
                    .map_err(|source| LocalEmbedError::Inference {
                        inputs: batch.len(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        let mut vectors = vec![Vec::new(); encodings.len()];
        for (range, batch_vectors) in passes.into_iter().zip(outputs) {
            for (&i, vector) in order[range].iter().zip(batch_vectors) {
                vectors[i] = vector;
            }
        }

        let tokens: usize = encodings.iter().map(Encoding::len).sum();
        debug!(
            tokens,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "inputs embedded"
        );
        Ok(vectors)
    }

    /// One forward pass: the pooled (and, if configured, normalised) vector of each input.
    fn forward(&self, encodings: &[&Encoding], par: Par) -> Result<Vec<Vec<f32>>, BertError> {
        let inputs: Vec<(&[u32], &[u32])> = encodings
            .iter()
            .map(|e| (e.get_ids(), e.get_type_ids()))
            .collect();
        let hidden = self.model.encode(&inputs, par)?;
        let vectors = (0..encodings.len())
            .map(|i| {
                let mut rows = hidden.rows(i);
                let mut pooled = match self.pooling {
                    Pooling::Cls => rows
                        .next()
                        .map_or_else(|| vec![0.0; hidden.width], <[f32]>::to_vec),
                    Pooling::Mean => {
                        let count = rows.len();
                        let mut sum = vec![0.0f32; hidden.width];
                        for row in rows {
                            for (s, v) in sum.iter_mut().zip(row) {
                                *s += v;
                            }
                        }
                        let scale = 1.0 / count.max(1) as f32;
                        sum.iter_mut().for_each(|s| *s *= scale);
                        sum
                    }
                };
                if self.normalize {
                    // As torch.nn.functional.normalize: the epsilon keeps a zero vector at zero.
                    let norm = pooled.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    pooled.iter_mut().for_each(|v| *v /= norm);
                }
                pooled
            })
            .collect();
        Ok(vectors)
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    /// Runs [`LocalEmbedder::embed_sync`] on tokio's blocking pool.
    async fn embed(
        &self,
        inputs: &[String],
        kind: InputKind,
    ) -> Result<Vec<Embedding>, ModelError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let inner = Arc::clone(&self.inner);
        let inputs = inputs.to_vec();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| inner.embed(&inputs, kind)))
            .await
            .map_err(|err| ModelError::permanent("local embedding task failed").with_source(err))?
            .map_err(to_model_error)
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    /// `max_tokens` minus the special tokens the tokenizer adds (`[CLS]`, `[SEP]`) minus the
    /// tokens of the longer of the two prefixes.
    ///
    /// A text of at most this many tokens (as counted by [`Embedder::count_tokens`]) is
    /// embedded whole, prefix included. That holds as long as the prefix tokenizes on its own
    /// exactly as it does in front of a text, which is the case for a BERT tokenizer when the
    /// prefix ends in a space or punctuation (`"query: "`, `"passage: "`); [`LocalEmbedder::load`]
    /// warns about any other prefix.
    fn max_input_tokens(&self) -> usize {
        self.inner.max_input_tokens
    }

    /// `local:` and the model folder's name, e.g. `local:all-MiniLM-L6-v2`.
    fn model_id(&self) -> String {
        self.inner.model_id.clone()
    }

    /// Tokens of `text` without special tokens, prefix, padding or truncation.
    fn count_tokens(&self, text: &str) -> usize {
        count_with(&self.inner.count_tokenizer, text)
    }

    /// Byte ranges of the tokens [`Embedder::count_tokens`] counts.
    fn token_spans(&self, text: &str) -> Option<Vec<(usize, usize)>> {
        token_spans(&self.inner.count_tokenizer, text)
    }

    fn counts_add_at_whitespace(&self) -> bool {
        self.inner.counts_add_at_whitespace
    }
}

/// Byte ranges in `text` of the tokens `tokenizer` makes of it (no special tokens), or `None`
/// if it fails.
pub fn token_spans(tokenizer: &Tokenizer, text: &str) -> Option<Vec<(usize, usize)>> {
    match tokenizer.encode(text, false) {
        Ok(encoding) => Some(encoding.get_offsets().to_vec()),
        Err(error) => {
            warn!(%error, bytes = text.len(), "tokenizing failed; sizing chunks piece by piece");
            None
        }
    }
}

/// Whether `tokenizer` cuts words at whitespace before anything else, so that its token counts
/// add up at ASCII whitespace ([`Embedder::counts_add_at_whitespace`]): BERT's normalizer (or
/// none), BERT's pre-tokenizer and WordPiece, as in BERT checkpoints. The normalizer works
/// character by character and the pre-tokenizer drops whitespace between words, so a slice
/// between two whitespace characters is cut into the same words, and WordPiece splits each
/// word on its own. Any other tokenizer is assumed not to.
pub fn counts_add_at_whitespace(tokenizer: &Tokenizer) -> bool {
    matches!(
        tokenizer.get_normalizer(),
        None | Some(NormalizerWrapper::BertNormalizer(_))
    ) && matches!(
        tokenizer.get_pre_tokenizer(),
        Some(PreTokenizerWrapper::BertPreTokenizer(_))
    ) && matches!(tokenizer.get_model(), ModelWrapper::WordPiece(_))
}

/// Tokens of `text` without special tokens. Should the tokenizer fail, its byte length:
/// never fewer than the tokens (each token covers at least one byte), so sizing stays safe.
fn count_with(tokenizer: &Tokenizer, text: &str) -> usize {
    match tokenizer.encode_fast(text, false) {
        Ok(encoding) => encoding.len(),
        Err(error) => {
            warn!(%error, bytes = text.len(), "counting tokens failed; using the byte length");
            text.len()
        }
    }
}

/// The error as the cause of a [`ModelError`], classified by whether the input was at fault.
fn to_model_error(error: LocalEmbedError) -> ModelError {
    let classified = if error.is_input_error() {
        ModelError::invalid_request(LAYER)
    } else {
        ModelError::permanent(LAYER)
    };
    classified.with_source(error)
}

/// What a [`ModelError`] from this crate says of its own layer; the cause says the rest.
const LAYER: &str = "local embedding model";

fn ends_at_word_boundary(prefix: &str) -> bool {
    prefix
        .chars()
        .next_back()
        .is_some_and(|c| c.is_whitespace() || c.is_ascii_punctuation())
}

#[cfg(test)]
mod tests;
