//! [`ZeroCostEmbedder`]: real token counts, nearly free vectors.

use async_trait::async_trait;
use kb_core::{Embedder, Embedding, InputKind, ModelError};
use std::path::Path;
use tokenizers::Tokenizer;

/// Vector length of all-MiniLM-L6-v2, the default model.
pub const DIMENSIONS: usize = 384;

/// An embedder for measuring kb's own ingest pipeline: token counts come from the real
/// model's tokenizer (so the splitter cuts the same chunks as with the model), vectors are a
/// cheap deterministic function of the text ([`lexical_vector`], a few microseconds each) with
/// enough structure that the vector index builds its graph as fast as on the model's vectors.
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
        Ok(inputs.iter().map(|t| lexical_vector(t)).collect())
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

    fn counts_add_at_whitespace(&self) -> bool {
        kb_embed_local::counts_add_at_whitespace(&self.tokenizer)
    }
}

/// Feature hashing of the text's words: every word (ASCII-lower-cased run of letters and
/// digits) adds ±1 at [`POSITIONS_PER_WORD`] positions drawn from its hash, and the sum is
/// scaled to unit length. Texts that share words point the same way, as with a real model, so
/// the vectors have structure for the index's graph to follow; uniformly random vectors have
/// none, which makes an HNSW graph much slower to build and worse to search than on real
/// embeddings (`kb-bench-hnsw`). A few microseconds per chunk. A text without words gets
/// [`cheap_vector`].
///
/// Not the fake engine's `kb_testkit::fake_embedding`, which is made for tests to match
/// questions to passages (one position per word, stop words left out): over 50,000 sentences
/// its vectors took 1.5× as long as the model's to index, these about as long.
pub fn lexical_vector(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0_f32; DIMENSIONS];
    let mut words = 0;
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        words += 1;
        let mut state = word
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
            })
            .max(1);
        for _ in 0..POSITIONS_PER_WORD {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let position = (state >> 32) as usize % DIMENSIONS;
            vector[position] += if state & 1 == 0 { 1.0 } else { -1.0 };
        }
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if words == 0 || norm == 0.0 {
        return cheap_vector(text);
    }
    vector.iter_mut().for_each(|v| *v /= norm);
    vector
}

/// Positions each word of [`lexical_vector`] touches.
pub const POSITIONS_PER_WORD: usize = 8;

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

    #[test]
    fn lexical_vectors_are_unit_length_and_closer_for_texts_sharing_words() {
        let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let irq = lexical_vector("Interrupt handling in the kernel: request an IRQ line");
        let irq_again = lexical_vector("request an irq line for interrupt handling");
        let memory = lexical_vector("memory barriers order loads and stores");

        let norm = cosine(&irq, &irq).sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        assert_eq!(
            irq,
            lexical_vector("Interrupt handling in the kernel: request an IRQ line")
        );
        assert!(
            cosine(&irq, &irq_again) > 0.5 + cosine(&irq, &memory),
            "shared words: {}, none shared: {}",
            cosine(&irq, &irq_again),
            cosine(&irq, &memory)
        );
        assert_eq!(lexical_vector("--- ..."), cheap_vector("--- ..."));
    }
}
