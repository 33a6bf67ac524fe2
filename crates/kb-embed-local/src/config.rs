//! Settings of the local embedder.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How token vectors become one vector per input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Average of the token vectors, padding excluded (sentence-transformers' default).
    Mean,
    /// The vector of the first (`[CLS]`) token.
    Cls,
}

/// Settings of [`LocalEmbedder`](crate::LocalEmbedder).
///
/// The defaults fit `sentence-transformers/all-MiniLM-L6-v2`; an e5 model also needs
/// `query_prefix = "query: "` and `passage_prefix = "passage: "`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalEmbedderConfig {
    /// Folder holding `config.json`, `tokenizer.json` and `model.safetensors`.
    pub model_dir: PathBuf,
    /// Longest input the model sees, special tokens and prefix included; longer inputs are
    /// truncated. Lowered to the model's `max_position_embeddings` if set above it.
    pub max_tokens: usize,
    /// Put before every query (e5-style models want `"query: "`).
    pub query_prefix: String,
    /// Put before every passage (e5-style models want `"passage: "`).
    pub passage_prefix: String,
    /// Inputs per forward pass.
    pub batch_size: usize,
    /// `None` (the default): as the model folder's sentence-transformers pooling config says
    /// (`1_Pooling/config.json`), or mean pooling if it has none.
    pub pooling: Option<Pooling>,
    /// Scale every vector to unit length (needed for cosine similarity by dot product).
    pub normalize: bool,
}

impl Default for LocalEmbedderConfig {
    fn default() -> Self {
        Self {
            model_dir: PathBuf::from("models/all-MiniLM-L6-v2"),
            max_tokens: 256,
            query_prefix: String::new(),
            passage_prefix: String::new(),
            batch_size: 32,
            pooling: None,
            normalize: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_all_minilm_l6_v2() {
        let config = LocalEmbedderConfig::default();

        assert_eq!(config.model_dir, PathBuf::from("models/all-MiniLM-L6-v2"));
        assert_eq!(config.max_tokens, 256);
        assert_eq!(config.batch_size, 32);
        assert_eq!(config.pooling, None);
        assert!(config.normalize);
        assert!(config.query_prefix.is_empty() && config.passage_prefix.is_empty());
    }

    #[test]
    fn missing_keys_take_their_defaults_and_unknown_keys_are_rejected() {
        let config: LocalEmbedderConfig =
            serde_json::from_str(r#"{"query_prefix": "query: ", "pooling": "cls"}"#).unwrap();
        assert_eq!(config.query_prefix, "query: ");
        assert_eq!(config.pooling, Some(Pooling::Cls));
        assert_eq!(config.max_tokens, 256);

        let err = serde_json::from_str::<LocalEmbedderConfig>(r#"{"max_token": 10}"#).unwrap_err();
        assert!(err.to_string().contains("max_token"), "{err}");
    }
}
