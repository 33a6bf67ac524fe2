//! kb's query side: embed the question, retrieve the top chunks the caller may read, and
//! answer from them with numbered citations that are checked against what was retrieved.
//!
//! - [`prompt`] holds the grounded prompt template,
//! - [`citations`] parses and validates `[n]` markers,
//! - [`support`] checks each cited sentence against the passages it cites, and repairs,
//! - [`extractive`] answers without a chat model, from the best-matching sentences,
//! - [`sanitize`] neutralises links and images in answers (the model reads untrusted text),
//! - [`rewrite`] turns a follow-up question into a standalone one before retrieval,
//! - [`source_urls`] links citations to the documents' source systems (`answer.source_urls`),
//! - [`Answerer`] ties retrieval and generation together.

pub mod answerer;
pub mod citations;
pub mod extractive;
pub mod prompt;
pub mod rewrite;
pub mod sanitize;
pub mod source_urls;
pub mod support;

pub use answerer::{
    Answer, AnswerError, AnswerMode, AnswerOptions, Answerer, AskEvent, AskRequest, AskStream,
    Citation, Mode, Timings,
};
pub use rewrite::{Rewrite, RewriteMethod, Turn, TurnRole};
pub use sanitize::{AllowedHosts, InvalidHost, StreamSanitizer, sanitize};
pub use source_urls::{InvalidSourceUrl, SourceUrlRule, SourceUrls};
