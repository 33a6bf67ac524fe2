//! kb's default embedder: a sentence-transformers model of the BERT family (by default
//! `all-MiniLM-L6-v2`, 384 dimensions) run in-process on the CPU, so that kb
//! works with no embedding service at all.
//!
//! [`LocalEmbedder::load`] reads a model folder as sentence-transformers ships it
//! (`config.json`, `tokenizer.json`, `model.safetensors`, optionally `modules.json` and
//! `1_Pooling/config.json`); `scripts/fetch-model.sh` downloads the default one. Each call
//! tokenizes its inputs (with the configured query or passage prefix), truncates them at
//! `max_tokens`, packs them into forward passes of the crate's own BERT encoder, pools the
//! token vectors (mean or `[CLS]`) and L2-normalises the result.
//!
//! The encoder (`bert`) runs the matrix products on faer and the element-wise work (layer
//! norm, GELU, softmax) in its own fused, vectorised kernels. Inputs are packed without
//! padding: each costs its own tokens, whatever else shares its pass.
//!
//! The model's own `tokenizer.json` pads every input to 128 tokens and truncates at 128;
//! both settings are replaced here: nothing is padded and inputs are truncated at
//! `max_tokens` (256 by default, never more than the model's position limit).
//!
//! Threads: forward passes and the tokenizer run on rayon's global pool, one thread per core
//! unless `RAYON_NUM_THREADS` says otherwise; a call's passes run side by side, one per
//! thread, and a call with fewer passes than threads (one query) shares the threads within
//! its matrix products. [`kb_core::Embedder::embed`] moves the work to tokio's blocking pool
//! so that async callers are not stalled.

mod bert;
mod config;
mod embedder;
mod error;

pub use bert::BertError;
pub use config::{LocalEmbedderConfig, Pooling};
pub use embedder::{LocalEmbedder, counts_add_at_whitespace, token_spans};
pub use error::LocalEmbedError;
