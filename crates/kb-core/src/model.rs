//! Embedding and chat models, whether in-process or behind an OpenAI-compatible engine.

use crate::error::ModelError;
use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// A dense vector, L2-normalised by the embedders in this workspace.
pub type Embedding = Vec<f32>;

/// Whether a text is a question or a passage: some models (e5) want different prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    Query,
    Passage,
}

/// Turns texts into vectors.
#[async_trait]
pub trait Embedder: Send + Sync + Debug {
    /// One vector per input, in input order.
    async fn embed(&self, inputs: &[String], kind: InputKind)
    -> Result<Vec<Embedding>, ModelError>;

    /// Length of every vector this embedder returns.
    fn dimensions(&self) -> usize;

    /// Largest input, in the model's own tokens, that is embedded without truncation.
    fn max_input_tokens(&self) -> usize;

    /// A stable name for the model (stored in the catalog so that a model change is detected).
    fn model_id(&self) -> String;

    /// Count the model's tokens in `text` (used to size chunks and batches).
    fn count_tokens(&self, text: &str) -> usize;

    /// Byte ranges of the model's tokens in `text`, in order, when the embedder has the
    /// model's tokenizer. Splitting a document then tokenizes it once instead of once per
    /// candidate chunk: a candidate's size is the number of tokens it overlaps. `None` (the
    /// default) sizes every candidate with [`Embedder::count_tokens`].
    fn token_spans(&self, text: &str) -> Option<Vec<(usize, usize)>> {
        let _ = text;
        None
    }

    /// Whether token counts add up at ASCII whitespace: a slice of a text that starts and ends
    /// next to a space, tab or line break (or at the text's ends) has exactly the tokens that
    /// [`Embedder::token_spans`] gives inside that range of the whole text, and two texts
    /// joined by such whitespace have the tokens of both. True for tokenizers that cut words
    /// at whitespace before anything else (BERT's WordPiece). The splitter then counts a
    /// chunk's embedding text from the document's spans instead of tokenizing it again.
    /// Default false.
    fn counts_add_at_whitespace(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

/// Token counts reported by the engine (zero where it reported none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Self) {
        self.prompt_tokens += rhs.prompt_tokens;
        self.completion_tokens += rhs.completion_tokens;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub content: String,
    pub model: String,
    pub usage: Usage,
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChatDelta {
    Text(String),
    /// Sent once at the end when the engine reports usage.
    Usage(Usage),
}

pub type ChatStream = BoxStream<'static, Result<ChatDelta, ModelError>>;

/// Generates answers.
#[async_trait]
pub trait ChatModel: Send + Sync + Debug {
    async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ModelError>;

    async fn stream(&self, req: &ChatRequest) -> Result<ChatStream, ModelError>;
}
