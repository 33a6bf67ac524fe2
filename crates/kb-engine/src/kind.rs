//! [`ModelKind`]: the two kinds of call an engine serves.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a call needs from an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// `POST /embeddings`; the default logical model name is `embed`.
    Embed,
    /// `POST /chat/completions`; the default logical model name is `chat`.
    Chat,
}

impl ModelKind {
    /// Position in per-kind tables (`[T; 2]`).
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Embed => 0,
            Self::Chat => 1,
        }
    }

    /// `embed` or `chat`, as in the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embed => "embed",
            Self::Chat => "chat",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
