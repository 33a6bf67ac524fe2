//! The OpenAI API's JSON: the bodies of `POST /embeddings` and `POST /chat/completions`, and
//! their answers (whole, or as SSE chunks), with only the fields the client reads.
//!
//! Answers are read leniently: a field the client can do without is optional, since
//! OpenAI-compatible engines differ in what they send.

use kb_core::{ChatMessage, ChatRequest, Usage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of `POST /embeddings`.
#[derive(Serialize)]
pub(crate) struct EmbeddingRequest<'a> {
    pub model: &'a str,
    pub input: &'a [String],
    /// `query` or `passage`, for engines that add e5-style prefixes themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_type: Option<&'a str>,
}

/// The answer to `POST /embeddings`.
#[derive(Deserialize)]
pub(crate) struct EmbeddingResponse {
    pub data: Vec<EmbeddingItem>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Deserialize)]
pub(crate) struct EmbeddingItem {
    pub embedding: Vec<f32>,
    /// The input's position; some engines leave it out and answer in input order.
    #[serde(default)]
    pub index: Option<usize>,
}

/// The body of `POST /chat/completions`.
#[derive(Serialize)]
pub(crate) struct ChatCompletionRequest<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    /// The request's `f32` widened to `f64`: 0.7 is sent as 0.699999988079071.
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    /// Ask for a last chunk with the usage, which streams leave out by default.
    include_usage: bool,
}

impl<'a> ChatCompletionRequest<'a> {
    /// `req` for the model id `model`; `stream`: as SSE, with the usage at the end.
    pub fn new(req: &'a ChatRequest, model: &'a str, stream: bool) -> Self {
        Self {
            model,
            messages: &req.messages,
            max_tokens: req.max_tokens,
            temperature: req.temperature.map(f64::from),
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }
}

/// The answer to a plain `POST /chat/completions`.
#[derive(Deserialize)]
pub(crate) struct CompletionResponse {
    pub choices: Vec<CompletionChoice>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Deserialize)]
pub(crate) struct CompletionChoice {
    pub message: CompletionMessage,
}

#[derive(Deserialize)]
pub(crate) struct CompletionMessage {
    #[serde(default)]
    pub content: Option<String>,
}

/// The `data:` of one SSE event of a streamed `POST /chat/completions`.
#[derive(Deserialize)]
pub(crate) struct StreamChunk {
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// An error the engine reports in the stream, after its `200`.
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Deserialize)]
pub(crate) struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: ChunkDelta,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
pub(crate) struct ChunkDelta {
    #[serde(default)]
    pub content: Option<String>,
}

/// The `usage` of an answer or of a stream's last chunk.
#[derive(Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_core::Role;

    fn request(temperature: Option<f32>) -> ChatRequest {
        ChatRequest {
            messages: vec![ChatMessage {
                role: Role::User,
                content: "hi".to_owned(),
            }],
            max_tokens: None,
            temperature,
        }
    }

    #[test]
    fn chat_body_leaves_out_what_the_request_does_not_set() {
        // Arrange
        let req = request(None);

        // Act
        let body = serde_json::to_value(ChatCompletionRequest::new(&req, "m", false)).unwrap();

        // Assert
        assert_eq!(
            body,
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn streamed_chat_body_asks_for_the_usage_and_widens_the_temperature() {
        // Arrange
        let req = request(Some(0.7));

        // Act
        let body = serde_json::to_string(&ChatCompletionRequest::new(&req, "m", true)).unwrap();

        // Assert
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            serde_json::json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 0.7_f32,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
        assert!(body.contains("\"temperature\":0.699999988079071"), "{body}");
    }
}
