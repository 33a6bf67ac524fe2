//! The model folder: which files it holds, and reading its configs, pooling and weights.

use crate::bert::{Bert, BertConfig};
use crate::config::Pooling;
use crate::error::LocalEmbedError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tracing::warn;

pub(super) const CONFIG_FILE: &str = "config.json";
pub(super) const TOKENIZER_FILE: &str = "tokenizer.json";
pub(super) const WEIGHTS_FILE: &str = "model.safetensors";
const MODULES_FILE: &str = "modules.json";
const SENTENCE_BERT_CONFIG_FILE: &str = "sentence_bert_config.json";
/// Where sentence-transformers puts the pooling settings when `modules.json` does not say.
const DEFAULT_POOLING_DIR: &str = "1_Pooling";
const POOLING_MODULE_TYPE: &str = "sentence_transformers.models.Pooling";

pub(super) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, LocalEmbedError> {
    let bytes = std::fs::read(path).map_err(|source| LocalEmbedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| LocalEmbedError::Json {
        path: path.to_path_buf(),
        what,
        source,
    })
}

/// `requested`, lowered to the model's position limit, which it cannot go beyond.
pub(super) fn effective_max_tokens(
    dir: &Path,
    requested: usize,
    bert_config: &BertConfig,
) -> Result<usize, LocalEmbedError> {
    let limit = bert_config.max_position_embeddings;
    if requested > limit {
        warn!(
            max_tokens = requested,
            max_position_embeddings = limit,
            "max_tokens is above what the model can take; using the model's limit"
        );
    }
    let max_tokens = requested.min(limit);

    #[derive(Deserialize)]
    struct SentenceBertConfig {
        max_seq_length: Option<usize>,
    }
    let path = dir.join(SENTENCE_BERT_CONFIG_FILE);
    if path.is_file() {
        let st: SentenceBertConfig = read_json(&path, "sentence-transformers config")?;
        if let Some(trained) = st.max_seq_length.filter(|&trained| max_tokens > trained) {
            warn!(
                max_tokens,
                max_seq_length = trained,
                "max_tokens is above the sequence length the model was trained for; \
                 long inputs may embed poorly"
            );
        }
    }
    Ok(max_tokens)
}

/// The pooling a sentence-transformers model folder declares, or mean pooling if it
/// declares none.
pub(super) fn pooling_from_folder(dir: &Path) -> Result<Pooling, LocalEmbedError> {
    #[derive(Deserialize)]
    struct Module {
        #[serde(rename = "type")]
        kind: String,
        path: String,
    }
    let modules_path = dir.join(MODULES_FILE);
    let pooling_dir = if modules_path.is_file() {
        let modules: Vec<Module> = read_json(&modules_path, "sentence-transformers module list")?;
        match modules.into_iter().find(|m| m.kind == POOLING_MODULE_TYPE) {
            Some(module) => module.path,
            None => return Ok(Pooling::Mean),
        }
    } else {
        DEFAULT_POOLING_DIR.to_owned()
    };
    let path = dir.join(pooling_dir).join(CONFIG_FILE);
    if !path.is_file() {
        return Ok(Pooling::Mean);
    }
    let config: PoolingConfig = read_json(&path, "sentence-transformers pooling config")?;
    config
        .pooling()
        .map_err(|mode| LocalEmbedError::UnsupportedPooling {
            path,
            mode: mode.to_owned(),
        })
}

/// `1_Pooling/config.json`. Newer sentence-transformers versions write `pooling_mode`
/// alongside the flags; the flags are always there.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PoolingConfig {
    pooling_mode_cls_token: bool,
    pooling_mode_mean_tokens: bool,
    pooling_mode_max_tokens: bool,
    pooling_mode_mean_sqrt_len_tokens: bool,
    pooling_mode_weightedmean_tokens: bool,
    pooling_mode_lasttoken: bool,
}

impl PoolingConfig {
    /// The one supported mode switched on, or the name of an unsupported one.
    pub(super) fn pooling(&self) -> Result<Pooling, &'static str> {
        let unsupported = [
            (self.pooling_mode_max_tokens, "max_tokens"),
            (
                self.pooling_mode_mean_sqrt_len_tokens,
                "mean_sqrt_len_tokens",
            ),
            (self.pooling_mode_weightedmean_tokens, "weightedmean_tokens"),
            (self.pooling_mode_lasttoken, "lasttoken"),
        ];
        if let Some((_, mode)) = unsupported.iter().find(|(on, _)| *on) {
            return Err(mode);
        }
        match (self.pooling_mode_mean_tokens, self.pooling_mode_cls_token) {
            (true, true) => Err("cls_token + mean_tokens (concatenated)"),
            (false, true) => Ok(Pooling::Cls),
            (true, false) | (false, false) => Ok(Pooling::Mean),
        }
    }
}

/// Read the weights into memory (no mmap: `unsafe` is forbidden here) and build the model.
pub(super) fn load_weights(path: &Path, bert_config: &BertConfig) -> Result<Bert, LocalEmbedError> {
    let bytes = std::fs::read(path).map_err(|source| LocalEmbedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Bert::load(bert_config, &bytes).map_err(|source| LocalEmbedError::Weights {
        path: path.to_path_buf(),
        source,
    })
}

/// `local:` plus the model folder's name.
pub(super) fn model_id(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(PathBuf::from)
        .or_else(|| dir.canonicalize().ok()?.file_name().map(PathBuf::from))
        .map_or_else(|| "model".to_owned(), |n| n.to_string_lossy().into_owned());
    format!("local:{name}")
}
