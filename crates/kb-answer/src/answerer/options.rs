//! How answers are produced: the `answer` section of the settings.

use crate::sanitize::AllowedHosts;
use crate::source_urls::SourceUrls;
use kb_core::Retrieval;
use serde::{Deserialize, Serialize};

/// How answers are produced (configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// Generative when a chat model is configured, extractive otherwise.
    #[default]
    Auto,
    Extractive,
    Generative,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnswerOptions {
    /// Chunks retrieved when the request names no `top_k`.
    pub top_k: usize,
    /// Largest `top_k` a request may ask for.
    pub max_top_k: usize,
    /// How chunks are retrieved when the request names no `retrieval`.
    pub retrieval: Retrieval,
    /// Cosine similarity (question embedding to chunk embedding, whatever the retrieval mode)
    /// a source needs to be answered from; with none above it kb says the answer is not in
    /// the knowledge base.
    pub min_score: f32,
    pub mode: AnswerMode,
    /// Sentences quoted by an extractive answer.
    pub extractive_sentences: usize,
    /// Completion token cap for generated answers.
    pub max_answer_tokens: u32,
    /// Longest question accepted, in characters.
    pub max_question_chars: usize,
    /// Most prior messages a follow-up question may come with.
    pub max_history_messages: usize,
    /// Hosts that links and images in answers may point to, over http or https: exact names
    /// (`intranet.example.com`) or `*.example.com` for every subdomain of `example.com`.
    /// Every other link, image, link definition, autolink and bare URL in an answer is
    /// replaced by its text (or `(link removed)`), and raw HTML is always removed: the model
    /// reads untrusted documents, and a rendered image would send whatever it was told to put
    /// in its URL to that host. Default: none, so answers carry no live link or image.
    pub allowed_link_hosts: AllowedHosts,
    /// Links from citations to the documents in the systems they come from, one URL template
    /// per folder they are ingested from: `[{ root = "/srv/handbook", url =
    /// "https://wiki.example.com/handbook/{path}" }]`, `{path}` being the file's path relative
    /// to `root`, each segment percent-encoded. Readers see these links, never server paths.
    /// Default: none.
    pub source_urls: SourceUrls,
    /// Leave out of a generated answer the sentences no retrieved passage supports (they are
    /// listed in `unsupported_sentences` either way). Default false: they stay, uncited.
    pub drop_unsupported: bool,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        Self {
            top_k: 5,
            max_top_k: 20,
            // Best on the evaluation sets (docs/BENCHMARKS.md): at least as good as dense on
            // English, far better on Chinese with the default English-only model.
            retrieval: Retrieval::Hybrid,
            // Best balanced accuracy (in-scope answered vs out-of-scope refused) on the same
            // sets with the default model.
            min_score: 0.35,
            mode: AnswerMode::Auto,
            extractive_sentences: 3,
            max_answer_tokens: 512,
            max_question_chars: 2000,
            max_history_messages: 20,
            allowed_link_hosts: AllowedHosts::default(),
            source_urls: SourceUrls::default(),
            drop_unsupported: false,
        }
    }
}
