//! Errors from loading and running the local embedding model.

use std::path::PathBuf;

/// What to do when the model files are missing.
const FETCH_HINT: &str = "run scripts/fetch-model.sh to download the default model, or set the model folder in the configuration";

/// Loading or running the local embedding model failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalEmbedError {
    /// The configured model folder does not exist.
    #[error("model folder {}: not found; {FETCH_HINT}", dir.display())]
    ModelDirMissing { dir: PathBuf },

    /// A required file is missing from the model folder.
    #[error("model folder {}: no {file}; {FETCH_HINT}", dir.display())]
    FileMissing { dir: PathBuf, file: &'static str },

    /// A model file exists but could not be read.
    #[error("model file {}: cannot be read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A JSON file of the model folder is not what a BERT-family model ships.
    #[error("model file {}: not a valid {what}", path.display())]
    Json {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// `tokenizer.json` could not be loaded or configured.
    #[error("model file {}: unusable tokenizer", path.display())]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },

    /// The weights or `config.json` do not describe a BERT model this crate can run.
    #[error("model file {}: not a BERT model this embedder can run", path.display())]
    Weights {
        path: PathBuf,
        #[source]
        source: crate::BertError,
    },

    /// The files of the model folder do not belong together.
    #[error("model folder {}: {message}; the files may come from different models", dir.display())]
    Mismatch { dir: PathBuf, message: String },

    /// The model folder asks for a pooling mode this crate does not implement.
    #[error("model file {}: pooling mode {mode} is not supported (only mean and cls are)", path.display())]
    UnsupportedPooling { path: PathBuf, mode: String },

    /// A configuration value is out of range.
    #[error("invalid local embedder setting {key}: {message}")]
    InvalidConfig { key: &'static str, message: String },

    /// The inputs could not be tokenized.
    #[error("tokenizing {inputs} embedding inputs failed")]
    Tokenize {
        inputs: usize,
        #[source]
        source: tokenizers::Error,
    },

    /// The model could not take a batch of inputs (the tokenizer does not match the weights).
    #[error("embedding a batch of {inputs} inputs failed")]
    Inference {
        inputs: usize,
        #[source]
        source: crate::BertError,
    },
}

impl LocalEmbedError {
    /// Whether the failure depends on the inputs rather than on the model.
    pub fn is_input_error(&self) -> bool {
        matches!(self, Self::Tokenize { .. })
    }
}
