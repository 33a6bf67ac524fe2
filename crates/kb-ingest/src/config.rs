//! The `[ingest]` section of kb's settings: how files are read, split and embedded, and which
//! folders an ingest over HTTP may read. Its defaults are the only copy of these numbers:
//! [`SplitOptions`], [`Pacing`] and [`IngestOptions`](crate::IngestOptions) start from them.

use crate::batch::Pacing;
use crate::split::SplitOptions;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Most tokens (the embedder's count) in a chunk.
    pub chunk_tokens: usize,
    /// Tokens a chunk repeats from the end of the one before it.
    pub overlap_tokens: usize,
    /// Most chunks in one embedding call (also capped by `embedder.engine.batch_size` for the
    /// engine embedder). `batch_size` is accepted as its old name.
    #[serde(alias = "batch_size")]
    pub batch_max_inputs: usize,
    /// Most tokens (the embedder's count) in one embedding call; at least the embedder's input
    /// limit.
    pub batch_max_tokens: usize,
    /// Most embedding calls in flight at once.
    pub concurrency: usize,
    /// Times a batch that failed with a retryable error (429, 5xx) is sent again, after the
    /// engine client's own retries, before the run stops.
    pub batch_retries: u32,
    /// Files larger than this are skipped.
    pub max_file_bytes: u64,
    /// Access groups of documents whose front matter names none.
    pub default_groups: Vec<String>,
    /// Folders that `POST /v1/admin/ingest` may read, resolved (`..` and symbolic links) at
    /// start-up; a root that does not exist fails start-up. With roots, every caller (the
    /// server's own token too) is confined to them: a path that resolves outside gets 403, the
    /// same answer whether or not it exists, and links leaving an ingested folder are not
    /// followed over HTTP (`follow_symlinks` is ignored there). Empty (the default): only the
    /// server's own admin token (the `kb` CLI on the server's machine) may ingest over HTTP;
    /// admin API keys may not.
    pub roots: Vec<PathBuf>,
    /// Follow symbolic links that lead outside the folder being ingested. Off by default:
    /// such a link is skipped with a reason, so a file outside the ingest root is never
    /// published by a link inside it.
    pub follow_symlinks: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            chunk_tokens: 200,
            overlap_tokens: 0,
            batch_max_inputs: 32,
            batch_max_tokens: 8192,
            concurrency: 4,
            batch_retries: 5,
            max_file_bytes: 20 * 1024 * 1024,
            default_groups: vec!["all".into()],
            roots: Vec::new(),
            follow_symlinks: false,
        }
    }
}

/// An `[ingest]` setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ingest.{key}: {problem}")]
pub struct InvalidIngestConfig {
    /// The key under `[ingest]`.
    pub key: &'static str,
    pub problem: &'static str,
}

impl IngestConfig {
    /// Check every value that can be wrong, naming its key.
    pub fn validate(&self) -> Result<(), InvalidIngestConfig> {
        let fail = |key, problem| Err(InvalidIngestConfig { key, problem });
        if self.chunk_tokens < 16 {
            return fail("chunk_tokens", "must be at least 16");
        }
        if self.overlap_tokens * 2 >= self.chunk_tokens {
            return fail(
                "overlap_tokens",
                "must be under half of ingest.chunk_tokens",
            );
        }
        if self.batch_max_inputs == 0 {
            return fail("batch_max_inputs", "must be at least 1");
        }
        if self.batch_max_tokens == 0 {
            return fail("batch_max_tokens", "must be at least 1");
        }
        if self.concurrency == 0 {
            return fail("concurrency", "must be at least 1");
        }
        if self.default_groups.is_empty() {
            return fail(
                "default_groups",
                "name at least one group (\"all\" for everyone)",
            );
        }
        Ok(())
    }

    /// How documents are split.
    pub fn split(&self) -> SplitOptions {
        SplitOptions {
            chunk_tokens: self.chunk_tokens,
            overlap_tokens: self.overlap_tokens,
        }
    }

    /// How embedding calls are sized and paced.
    pub fn pacing(&self) -> Pacing {
        Pacing {
            batch_max_inputs: self.batch_max_inputs,
            batch_max_tokens: self.batch_max_tokens,
            concurrency: self.concurrency,
            batch_retries: self.batch_retries,
        }
    }
}

/// One ingest run as asked for: by `kb ingest`, by `POST /v1/admin/ingest`, and by the CLI
/// sending the command to a running server (the same JSON body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Files or folders to ingest (over HTTP: on the server's machine, by absolute path; with
    /// `ingest.roots` set, inside them).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub paths: Vec<PathBuf>,
    /// Remove documents under the given folders whose files are gone.
    #[serde(default)]
    pub prune: bool,
    /// Say what would change without calling the engine or writing anything.
    #[serde(default)]
    pub dry_run: bool,
    /// Access groups of documents that name none (default: the groups an earlier run gave,
    /// else `ingest.default_groups`). An empty list is refused: it never means everyone.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Tags of documents that name none.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Owner of documents that name none.
    #[serde(default)]
    pub owner: Option<String>,
    /// Follow symbolic links that leave the folders being ingested (`kb ingest
    /// --follow-symlinks`). Refused over HTTP when `ingest.roots` is set: such a link may lead
    /// out of them. Sent only when set, so that a server that predates it takes every other
    /// ingest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow_symlinks: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_are_the_defaults_of_the_run_settings() {
        let config = IngestConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(SplitOptions::default(), config.split());
        assert_eq!(Pacing::default(), config.pacing());
        let options = crate::IngestOptions::default();
        assert_eq!(options.max_file_bytes, config.max_file_bytes);
        assert_eq!(options.default_groups, config.default_groups);
    }

    #[test]
    fn a_run_request_without_symlinks_followed_is_the_body_older_servers_take() {
        let run = RunRequest {
            paths: vec!["/srv/handbook".into()],
            groups: Some(vec!["hr".into()]),
            ..RunRequest::default()
        };
        assert_eq!(
            serde_json::to_value(&run).unwrap(),
            serde_json::json!({"paths": ["/srv/handbook"], "prune": false, "dry_run": false,
                "groups": ["hr"], "tags": [], "owner": null})
        );
        let follow = RunRequest {
            follow_symlinks: true,
            ..run
        };
        assert_eq!(
            serde_json::to_value(&follow).unwrap()["follow_symlinks"],
            true
        );
        let parsed: RunRequest = serde_json::from_str(r#"{"paths": ["/a"]}"#).unwrap();
        assert_eq!(parsed.paths, vec![PathBuf::from("/a")]);
        assert!(serde_json::from_str::<RunRequest>(r#"{"paths": [], "prun": true}"#).is_err());
    }

    #[test]
    fn a_setting_that_cannot_work_is_named() {
        let overlap = IngestConfig {
            overlap_tokens: 100,
            ..IngestConfig::default()
        };
        assert_eq!(
            overlap.validate().unwrap_err().to_string(),
            "ingest.overlap_tokens: must be under half of ingest.chunk_tokens"
        );
        let groups = IngestConfig {
            default_groups: Vec::new(),
            ..IngestConfig::default()
        };
        assert_eq!(groups.validate().unwrap_err().key, "default_groups");
    }
}
