//! BM25 terms: the sparse vector kb stores beside each dense one, and the one it searches with.
//!
//! Both backends compute the terms here, in the process, from the payload text at upsert and
//! from the question text at search, so ingest code never sees them and a chunk gets the same
//! terms whichever backend stores it. The work is Qdrant's own BM25 (`qdrant-edge`'s
//! `bm25_embed`), the code behind the Qdrant server's `qdrant/bm25` inference:
//!
//! - tokens: the multilingual tokenizer (charabia): words for Latin scripts, dictionary
//!   segmentation (jieba) for Chinese, so `年假` and `休假` are words, not characters;
//!   lower-cased; English stop words removed and English words stemmed (Snowball), which
//!   leaves other scripts untouched;
//! - term ids: murmur3-32 of the token, made positive — stable across processes, machines and
//!   versions, and wire-compatible with Qdrant's BM25 sparse vectors;
//! - document values: the BM25 term-frequency part, `tf·(k1+1) / (tf + k1·(1 − b + b·len/avglen))`
//!   with k1 = 1.2, b = 0.75 and [`AVG_CHUNK_TOKENS`]; query values: 1 per distinct term;
//! - the IDF part is applied by the engine at search time (the sparse vector is configured with
//!   the IDF modifier), over the points in the collection, so it follows the corpus as it
//!   changes without re-encoding anything.

use qdrant_edge::TokenizerType;
use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};
use qdrant_edge::external::ordered_float::NotNan;

/// Average chunk length in BM25 tokens (after stop words), the length normalisation's
/// reference. kb's chunks are ~200 embedder tokens (`ingest.chunk_tokens`), which leave about
/// 100 BM25 tokens once sub-words are merged and stop words dropped. Changing it changes the
/// stored values: it is part of the index format.
pub(crate) const AVG_CHUNK_TOKENS: f64 = 100.0;

/// A sparse vector: sorted, distinct term ids and their weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Terms {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

/// Turns text into BM25 terms. Build one per index and share it: construction loads the
/// stop-word list and the stemmer.
#[derive(Debug)]
pub(crate) struct Bm25Encoder {
    model: EdgeBm25,
}

impl Bm25Encoder {
    pub fn new() -> Self {
        let config = EdgeBm25Config {
            avg_len: NotNan::new(AVG_CHUNK_TOKENS).expect("BUG: the average length is a number"),
            tokenizer: TokenizerType::Multilingual,
            ..EdgeBm25Config::default()
        };
        let model = EdgeBm25::new(config)
            .expect("BUG: the BM25 defaults with the multilingual tokenizer are valid");
        Self { model }
    }

    /// The terms of a chunk (BM25 term-frequency weights).
    pub fn document(&self, text: &str) -> Terms {
        let v = self.model.embed_document(text);
        Terms {
            indices: v.indices,
            values: v.values,
        }
    }

    /// The terms of a question (weight 1 per distinct term; the engine multiplies in the IDF).
    pub fn query(&self, text: &str) -> Terms {
        let v = self.model.embed_query(text);
        Terms {
            indices: v.indices,
            values: v.values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(terms: &Terms) -> std::collections::BTreeSet<u32> {
        terms.indices.iter().copied().collect()
    }

    #[test]
    fn english_words_are_stemmed_and_stop_words_dropped() {
        let encoder = Bm25Encoder::new();

        let question = encoder.query("How are the packages upgraded?");
        let chunk = encoder.document("Upgrading a package: run apt upgrade.");

        assert_eq!(question.indices.len(), 2, "{question:?}: package + upgrad");
        assert!(
            ids(&question).is_subset(&ids(&chunk)),
            "{question:?} {chunk:?}"
        );
        assert!(question.values.iter().all(|&v| v == 1.0));
    }

    #[test]
    fn chinese_text_is_segmented_into_words() {
        let encoder = Bm25Encoder::new();

        let chunk = encoder.document("新员工每年有二十五天带薪年假。");
        let question = encoder.query("年假有多少天？");
        let unrelated = encoder.query("报销差旅费用");

        assert!(chunk.indices.len() >= 4, "words, not one run: {chunk:?}");
        assert!(
            !ids(&question).is_disjoint(&ids(&chunk)),
            "{question:?} {chunk:?}"
        );
        assert!(ids(&unrelated).is_disjoint(&ids(&chunk)), "{unrelated:?}");
    }

    #[test]
    fn term_ids_are_stable_hashes() {
        // murmur3-32 of the stemmed token, as Qdrant's own BM25 computes it: stored indexes
        // depend on these values never changing.
        let a = Bm25Encoder::new().query("kernel");
        let b = Bm25Encoder::new().query("Kernels");

        assert_eq!(a, b);
        assert_eq!(a.indices, vec![qdrant_edge_token_id("kernel")]);
    }

    /// Reference implementation of the term id, written out from its definition.
    fn qdrant_edge_token_id(token: &str) -> u32 {
        // murmur3 x86 32-bit, seed 0.
        let data = token.as_bytes();
        let (c1, c2) = (0xcc9e_2d51_u32, 0x1b87_3593_u32);
        let mut h = 0_u32;
        let mut chunks = data.chunks_exact(4);
        for block in &mut chunks {
            let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
            k = k.wrapping_mul(c1).rotate_left(15).wrapping_mul(c2);
            h = (h ^ k)
                .rotate_left(13)
                .wrapping_mul(5)
                .wrapping_add(0xe654_6b64);
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut k = 0_u32;
            for (i, &byte) in tail.iter().enumerate() {
                k |= u32::from(byte) << (8 * i);
            }
            h ^= k.wrapping_mul(c1).rotate_left(15).wrapping_mul(c2);
        }
        h ^= data.len() as u32;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^= h >> 16;
        (h as i32).unsigned_abs()
    }

    #[test]
    fn empty_or_punctuation_only_text_has_no_terms() {
        let encoder = Bm25Encoder::new();

        assert_eq!(encoder.query("  ?! "), Terms::default());
        assert_eq!(encoder.document(""), Terms::default());
    }
}
