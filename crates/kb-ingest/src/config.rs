//! The `[ingest]` section of kb's settings: how files are read, split and embedded, and which
//! folders an ingest over HTTP may read. Its defaults are the only copy of these numbers:
//! [`SplitOptions`], [`Pacing`] and [`IngestOptions`](crate::IngestOptions) start from them.

use crate::batch::Pacing;
use crate::split::SplitOptions;
use kb_extract::{LoadLimits, OcrSettings};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

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
    /// OCR of pictures and of scanned PDF pages (`[ingest.ocr]`).
    pub ocr: OcrConfig,
}

/// `[ingest.ocr]`: how pictures (PNG, JPEG, WebP, TIFF) and PDF pages without a text layer
/// are read, by the Tesseract engine (Debian: `tesseract-ocr`, a `tesseract-ocr-<language>`
/// package per language, `tesseract-ocr-osd`, and `poppler-utils` for PDF pages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcrConfig {
    /// Off: pictures are skipped, and PDF pages without a text layer left out, with a reason.
    pub enabled: bool,
    /// Tesseract language codes, read together (`eng`, `chi_sim`, `deu`, …).
    pub languages: Vec<String>,
    /// Pages whose mean word confidence (0–100) is below this are left out with a note.
    pub min_confidence: u8,
    /// The most seconds one page may take to render and read; a page over it is left out.
    pub page_timeout_secs: u64,
    /// The most pages read by OCR in one file.
    pub max_pages: usize,
    /// Where OCR results are kept by content hash, so that an unchanged file is never read by
    /// OCR again; unset, every ingest reads every scan again.
    pub cache_dir: Option<PathBuf>,
}

impl Default for OcrConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            languages: OcrSettings::DEFAULT_LANGUAGES.map(str::to_owned).to_vec(),
            min_confidence: OcrSettings::DEFAULT_MIN_CONFIDENCE,
            page_timeout_secs: OcrSettings::DEFAULT_PAGE_TIMEOUT.as_secs(),
            max_pages: OcrSettings::DEFAULT_MAX_PAGES,
            cache_dir: None,
        }
    }
}

impl OcrConfig {
    /// Check every value that can be wrong, naming its key.
    pub fn validate(&self) -> Result<(), InvalidIngestConfig> {
        let fail = |key, problem| Err(InvalidIngestConfig { key, problem });
        if self.languages.is_empty() {
            return fail(
                "ocr.languages",
                "name at least one Tesseract language, such as \"eng\"",
            );
        }
        for language in &self.languages {
            if language.is_empty()
                || !language
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                return fail(
                    "ocr.languages",
                    "each must be a Tesseract language code of lowercase letters and _, such as \"eng\" or \"chi_sim\"",
                );
            }
            if language == "osd" {
                return fail(
                    "ocr.languages",
                    "osd is orientation detection, not a language; kb uses it without being asked",
                );
            }
        }
        if self.min_confidence > 100 {
            return fail("ocr.min_confidence", "must be from 0 to 100");
        }
        if self.page_timeout_secs == 0 {
            return fail("ocr.page_timeout_secs", "must be at least 1");
        }
        if self.max_pages == 0 {
            return fail(
                "ocr.max_pages",
                "must be at least 1 (to read no scans, set ingest.ocr.enabled = false)",
            );
        }
        if self
            .cache_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return fail(
                "ocr.cache_dir",
                "is empty; name a folder, or leave it out for no cache",
            );
        }
        Ok(())
    }

    /// The settings the file readers take.
    pub fn settings(&self) -> OcrSettings {
        OcrSettings {
            enabled: self.enabled,
            languages: self.languages.clone(),
            min_confidence: self.min_confidence,
            page_timeout: Duration::from_secs(self.page_timeout_secs),
            max_pages: self.max_pages,
            cache_dir: self.cache_dir.clone(),
            ..OcrSettings::default()
        }
    }
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
            ocr: OcrConfig::default(),
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
        self.ocr.validate()
    }

    /// The limits and OCR settings each file is loaded with
    /// (`kb_extract::load_file_with_limits`).
    pub fn load_limits(&self) -> LoadLimits {
        LoadLimits {
            ocr: self.ocr.settings(),
            ..LoadLimits::for_max_file_bytes(self.max_file_bytes)
        }
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
        assert_eq!(options.load_limits.max_file_bytes, config.max_file_bytes);
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

    #[test]
    fn ocr_settings_default_to_english_and_chinese_and_reach_the_readers() {
        let config: IngestConfig = serde_json::from_value(serde_json::json!({
            "max_file_bytes": 1000,
            "ocr": {"languages": ["deu"], "page_timeout_secs": 5, "cache_dir": "/data/ocr-cache"}
        }))
        .unwrap();

        assert_eq!(
            IngestConfig::default().ocr.settings(),
            OcrSettings::default()
        );
        assert_eq!(IngestConfig::default().load_limits(), LoadLimits::default());
        let limits = config.load_limits();
        assert_eq!(limits.max_file_bytes, 1000);
        assert_eq!(limits.ocr.languages, ["deu"]);
        assert_eq!(limits.ocr.page_timeout, Duration::from_secs(5));
        assert_eq!(
            limits.ocr.min_confidence,
            OcrSettings::DEFAULT_MIN_CONFIDENCE
        );
        assert_eq!(limits.ocr.cache_dir, Some(PathBuf::from("/data/ocr-cache")));
        assert!(limits.ocr.enabled);
        assert!(
            serde_json::from_value::<IngestConfig>(serde_json::json!({"ocr": {"langs": []}}))
                .is_err()
        );
    }

    #[test]
    fn ocr_settings_that_cannot_work_are_named() {
        let with = |ocr: OcrConfig| {
            IngestConfig {
                ocr,
                ..IngestConfig::default()
            }
            .validate()
            .unwrap_err()
            .to_string()
        };
        let base = OcrConfig::default();

        assert_eq!(
            with(OcrConfig {
                languages: vec![],
                ..base.clone()
            }),
            "ingest.ocr.languages: name at least one Tesseract language, such as \"eng\""
        );
        for bad in ["Eng", "eng+chi_sim", "../eng", "", "chi sim"] {
            let err = with(OcrConfig {
                languages: vec!["eng".into(), bad.into()],
                ..base.clone()
            });
            assert!(
                err.starts_with("ingest.ocr.languages: each must be"),
                "{bad}: {err}"
            );
        }
        assert!(
            with(OcrConfig {
                languages: vec!["osd".into()],
                ..base.clone()
            })
            .contains("osd is orientation detection")
        );
        assert_eq!(
            with(OcrConfig {
                min_confidence: 101,
                ..base.clone()
            }),
            "ingest.ocr.min_confidence: must be from 0 to 100"
        );
        assert_eq!(
            with(OcrConfig {
                page_timeout_secs: 0,
                ..base.clone()
            }),
            "ingest.ocr.page_timeout_secs: must be at least 1"
        );
        assert!(
            with(OcrConfig {
                max_pages: 0,
                ..base.clone()
            })
            .starts_with("ingest.ocr.max_pages: must be at least 1")
        );
        assert!(
            with(OcrConfig {
                cache_dir: Some(PathBuf::new()),
                ..base
            })
            .starts_with("ingest.ocr.cache_dir: is empty")
        );
    }
}
