//! [`ZeroCostEmbedder`]: real token counts, nearly free vectors.

use async_trait::async_trait;
use kb_core::{Embedder, Embedding, InputKind, ModelError};
use std::path::Path;
use tokenizers::Tokenizer;

/// Vector length of all-MiniLM-L6-v2, the default model.
pub const DIMENSIONS: usize = 384;

/// An embedder for measuring kb's own ingest pipeline: token counts come from the real
/// model's tokenizer (so the splitter cuts the same chunks as with the model), vectors are a
/// cheap deterministic function of the text (a few hundred nanoseconds each), distinct per text
/// so that the vector index builds a realistic graph.
#[derive(Debug, Clone)]
pub struct ZeroCostEmbedder {
    tokenizer: Tokenizer,
    max_input_tokens: usize,
}

/// Load `tokenizer.json` from a model folder, set to count: no padding, no truncation (as
/// kb-embed-local counts).
pub fn load_counting_tokenizer(model_dir: &Path) -> anyhow::Result<Tokenizer> {
    let path = model_dir.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_file(&path)
        .map_err(|e| anyhow::anyhow!("cannot load {}: {e}", path.display()))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| anyhow::anyhow!("cannot configure {}: {e}", path.display()))?;
    Ok(tokenizer)
}

impl ZeroCostEmbedder {
    /// Count tokens with `model_dir/tokenizer.json`; accept up to `max_input_tokens` per input
    /// (254 for MiniLM at kb's default `max_tokens = 256`, the two special tokens excluded).
    pub fn new(model_dir: &Path, max_input_tokens: usize) -> anyhow::Result<Self> {
        Ok(Self {
            tokenizer: load_counting_tokenizer(model_dir)?,
            max_input_tokens,
        })
    }
}

/// A unit vector drawn from a xorshift generator seeded by the text's FNV-1a hash.
pub fn cheap_vector(text: &str) -> Vec<f32> {
    let mut state = text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
        .max(1);
    let mut vector: Vec<f32> = (0..DIMENSIONS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    vector.iter_mut().for_each(|v| *v /= norm);
    vector
}

#[async_trait]
impl Embedder for ZeroCostEmbedder {
    async fn embed(
        &self,
        inputs: &[String],
        _kind: InputKind,
    ) -> Result<Vec<Embedding>, ModelError> {
        Ok(inputs.iter().map(|t| cheap_vector(t)).collect())
    }

    fn dimensions(&self) -> usize {
        DIMENSIONS
    }

    fn max_input_tokens(&self) -> usize {
        self.max_input_tokens
    }

    fn model_id(&self) -> String {
        "bench:zero-cost".to_owned()
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode_fast(text, false)
            .map_or(text.len(), |e| e.len())
    }

    fn token_spans(&self, text: &str) -> Option<Vec<(usize, usize)>> {
        kb_embed_local::token_spans(&self.tokenizer, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheap_vectors_are_unit_length_deterministic_and_distinct() {
        let a = cheap_vector("interrupt handling");
        let b = cheap_vector("memory barriers");

        assert_eq!(a.len(), DIMENSIONS);
        assert_eq!(a, cheap_vector("interrupt handling"));
        assert_ne!(a, b);
        let norm: f32 = a.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}
