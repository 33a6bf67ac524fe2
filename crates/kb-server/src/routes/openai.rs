//! OpenAI-compatible facade, so that chat tools and SDKs that speak the OpenAI API use kb
//! unchanged: `GET /v1/models` lists one model, `kb`; `POST /v1/chat/completions` with model
//! `kb` answers the last user message from the knowledge base, the earlier user and assistant
//! messages being the conversation it follows up on (system messages are ignored: kb answers
//! under its own rules).
//!
//! Citations ride along twice: in the message content, as the `[n]` markers of the answer and a
//! closing `Sources:` list (one line per cited source), for clients that only show text; and as
//! a top-level `sources` array of citations (kb's `Citation`: `n`, `document`, `title`,
//! `heading_path`, `location`, `snippet`, `source_url`, ...; `path` for admins only) in the completion, or in the last content chunk of a stream,
//! for clients that read extra fields. Errors use OpenAI's shape,
//! `{"error": {"message", "type", "param", "code"}}`, with kb's stable code as `code`.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use kb_answer::{AskEvent, AskRequest, Citation, Turn};
use kb_core::{Filter, Usage};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};
use utoipa::ToSchema;

/// The one model the facade serves.
pub const MODEL: &str = "kb";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/chat/completions", post(chat_completions))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<ModelCard>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelCard {
    pub id: &'static str,
    /// Always `model`.
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

/// The models this server answers as: only `kb`.
#[utoipa::path(get, path = "/v1/models", tag = "openai", security(("bearer" = [])),
    responses((status = 200, body = ModelList), (status = 401, body = Object)))]
pub async fn list_models(
    caller: Result<Caller, ApiError>,
) -> Result<axum::Json<ModelList>, OpenAiError> {
    caller?;
    Ok(axum::Json(ModelList {
        object: "list",
        data: vec![ModelCard {
            id: MODEL,
            object: "model",
            created: 0,
            owned_by: "kb",
        }],
    }))
}

/// A chat completion request. Parameters kb has no use for (`temperature`, `max_tokens`,
/// `n`, `user`, ...) are accepted and ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// Must be `kb`.
    pub model: String,
    /// The conversation; the last message must be the user's question.
    pub messages: Vec<ChatCompletionMessage>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with the token usage (and no choices) before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// Text, or an array of content parts of which the `text` parts are read.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub content: Option<MessageContent>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl ChatCompletionMessage {
    fn text(&self) -> Result<String, ApiError> {
        match &self.content {
            None => Ok(String::new()),
            Some(MessageContent::Text(text)) => Ok(text.clone()),
            Some(MessageContent::Parts(parts)) => {
                let mut out = Vec::new();
                for part in parts {
                    match (part.kind.as_str(), &part.text) {
                        ("text", Some(text)) => out.push(text.as_str()),
                        (kind, _) => {
                            return Err(ApiError::InvalidRequest(format!(
                                "messages: content parts of type {kind:?} are not supported \
                                 (only text)"
                            )));
                        }
                    }
                }
                Ok(out.join("\n"))
            }
        }
    }
}

/// The question (the last user message) and the conversation before it.
fn to_conversation(messages: &[ChatCompletionMessage]) -> Result<(String, Vec<Turn>), ApiError> {
    let Some((last, earlier)) = messages.split_last() else {
        return Err(ApiError::InvalidRequest(
            "messages: must not be empty".into(),
        ));
    };
    if last.role != "user" {
        return Err(ApiError::InvalidRequest(format!(
            "messages: the last message must be the user's question, not {:?}",
            last.role
        )));
    }
    let mut history = Vec::new();
    for message in earlier {
        match message.role.as_str() {
            "system" | "developer" => {}
            "user" => history.push(Turn::user(message.text()?)),
            "assistant" => history.push(Turn::assistant(message.text()?)),
            other => {
                return Err(ApiError::InvalidRequest(format!(
                    "messages: role {other:?} is not supported (system, user, assistant)"
                )));
            }
        }
    }
    Ok((last.text()?, history))
}

/// What a completion reports of token usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl From<Usage> for CompletionUsage {
    fn from(u: Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total(),
        }
    }
}

/// A non-streamed completion: OpenAI's `chat.completion`, plus `sources`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    pub created: u64,
    pub model: &'static str,
    pub choices: Vec<Choice>,
    pub usage: CompletionUsage,
    /// The sources the answer cites, numbered as its `[n]` markers.
    pub sources: Vec<Citation>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// Always `stop`.
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The answer with its `[n]` markers, then a `Sources:` list of the cited sources.
    pub content: String,
}

/// The `Sources:` list appended to the content: one line per cited source, with its section
/// and its place in the file (page, slide, sheet rows) where known.
pub fn sources_footer(citations: &[Citation]) -> String {
    if citations.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n\nSources:");
    for c in citations {
        out.push_str(&format!("\n[{}] {} ({}", c.n, c.title, c.document));
        if !c.heading_path.is_empty() {
            out.push_str(&format!(", {}", c.heading_path.join(" > ")));
        }
        if let Some(label) = &c.location_label {
            out.push_str(&format!(", {label}"));
        }
        out.push(')');
    }
    out
}

/// Answer the conversation's last user message from the knowledge base, OpenAI style:
/// `chat.completion`, or with `stream: true` server-sent `chat.completion.chunk` events ended by
/// `data: [DONE]`. The last content chunk of a stream carries the top-level `sources`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", security(("bearer" = [])),
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, body = ChatCompletion, description = "non-streamed (`stream` false)"),
        (status = 200, content_type = "text/event-stream", body = String,
            description = "`stream: true`: `data: {chat.completion.chunk}` events, then \
                `data: [DONE]`; an error after the first byte is `data: {\"error\": {...}}`"),
        (status = 404, body = Object, description = "unknown model (`model_not_found`)"),
        (status = "4XX", body = Object, description = "OpenAI-style error"),
        (status = "5XX", body = Object, description = "OpenAI-style error")))]
pub async fn chat_completions(
    caller: Result<Caller, ApiError>,
    State(state): State<AppState>,
    OpenAiJson(body): OpenAiJson<ChatCompletionRequest>,
) -> Result<Response, OpenAiError> {
    let Caller(caller) = caller?;
    if body.model != MODEL {
        return Err(OpenAiError::ModelNotFound(body.model));
    }
    let (question, history) = to_conversation(&body.messages)?;
    let request = AskRequest {
        question,
        top_k: None,
        // The caller's access groups restrict the search like on /v1/ask.
        filter: Filter {
            groups: caller.readable_groups(),
            ..Filter::default()
        },
        retrieval: None,
    };
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    if !body.stream {
        let answer = state
            .answerer
            .ask_in_conversation(&request, &history)
            .await
            .map_err(ApiError::from)?;
        crate::metrics::record_answer(&answer);
        let answer = crate::disclosure::answer(&caller, answer);
        let content = format!("{}{}", answer.answer, sources_footer(&answer.citations));
        return Ok(axum::Json(ChatCompletion {
            id,
            object: "chat.completion",
            created,
            model: MODEL,
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content,
                },
                finish_reason: "stop",
            }],
            usage: answer.usage.into(),
            sources: answer.citations,
        })
        .into_response());
    }

    let include_usage = body.stream_options.is_some_and(|o| o.include_usage);
    let events = state
        .answerer
        .ask_stream_in_conversation(&request, &history)
        .await
        .map_err(ApiError::from)?;
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let frames = events.flat_map(move |item| {
        let values: Vec<Value> = match item {
            Ok(AskEvent::Sources { .. }) => {
                vec![chunk(json!({"role": "assistant", "content": ""}), None)]
            }
            Ok(AskEvent::Delta { text }) => vec![chunk(json!({ "content": text }), None)],
            Ok(AskEvent::Done { answer }) => {
                crate::metrics::record_answer(&answer);
                let answer = crate::disclosure::answer(&caller, answer);
                let mut last = chunk(
                    json!({ "content": sources_footer(&answer.citations) }),
                    Some("stop"),
                );
                last["sources"] =
                    serde_json::to_value(&answer.citations).expect("BUG: citations serialise");
                let mut values = vec![last];
                if include_usage {
                    let mut usage = chunk(Value::Null, None);
                    usage["choices"] = json!([]);
                    usage["usage"] = serde_json::to_value(CompletionUsage::from(answer.usage))
                        .expect("BUG: usage serialises");
                    values.push(usage);
                }
                values.push(Value::String("[DONE]".into()));
                values
            }
            Err(e) => {
                let error = ApiError::from(e);
                tracing::warn!(error = %error.chain(), "completion stream ended with an error");
                vec![openai_error_body(&error)]
            }
        };
        futures::stream::iter(values.into_iter().map(|v| {
            let data = match v {
                Value::String(done) => done,
                other => other.to_string(),
            };
            Ok::<_, Infallible>(Event::default().data(data))
        }))
    });
    Ok(Sse::new(frames)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `Json` whose rejections are OpenAI-style errors.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(OpenAiError))]
pub struct OpenAiJson<T>(pub T);

/// An error of the facade, in OpenAI's shape.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiError {
    #[error("The model `{0}` does not exist; this server serves the model `kb`.")]
    ModelNotFound(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<JsonRejection> for OpenAiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::Api(rejection.into())
    }
}

/// OpenAI's error `type` for a status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        500.. => "api_error",
        _ => "invalid_request_error",
    }
}

fn openai_error_body(error: &ApiError) -> Value {
    let code = error.code();
    json!({"error": {
        "message": error.to_string(),
        "type": error_type(code.status()),
        "param": null,
        "code": code,
    }})
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        match self {
            Self::ModelNotFound(_) => {
                let body = json!({"error": {
                    "message": self.to_string(),
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": ErrorCode::ModelNotFound,
                }});
                (ErrorCode::ModelNotFound.status(), axum::Json(body)).into_response()
            }
            Self::Api(error) => {
                let body = openai_error_body(&error);
                // kb's own response keeps the status, Retry-After and the log line; only the
                // body changes shape.
                let (mut parts, _) = error.into_response().into_parts();
                parts.headers.remove(header::CONTENT_LENGTH);
                Response::from_parts(parts, Body::from(body.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, content: Value) -> ChatCompletionMessage {
        serde_json::from_value(json!({"role": role, "content": content})).unwrap()
    }

    #[test]
    fn the_last_user_message_is_the_question_and_the_rest_the_conversation() {
        let messages = vec![
            message("system", json!("Be nice.")),
            message("user", json!("How many vacation days?")),
            message("assistant", json!("25 [1].")),
            message(
                "user",
                json!([{"type": "text", "text": "and for part-timers?"}]),
            ),
        ];

        let (question, history) = to_conversation(&messages).unwrap();

        assert_eq!(question, "and for part-timers?");
        assert_eq!(
            history,
            [
                Turn::user("How many vacation days?"),
                Turn::assistant("25 [1].")
            ]
        );
    }

    #[test]
    fn a_conversation_must_end_with_a_user_message_of_text() {
        assert!(to_conversation(&[]).is_err());
        assert!(to_conversation(&[message("assistant", json!("hi"))]).is_err());
        assert!(
            to_conversation(&[message("tool", json!("x")), message("user", json!("q"))]).is_err()
        );
        assert!(
            to_conversation(&[message(
                "user",
                json!([{"type": "image_url", "image_url": {}}])
            )])
            .is_err()
        );
    }

    #[test]
    fn the_footer_lists_each_cited_source_with_its_section_and_place() {
        let citation = Citation {
            n: 1,
            document: "leave-policy.md".into(),
            title: "Leave Policy".into(),
            path: Some("/h/leave-policy.md".into()),
            source_url: None,
            heading_path: vec!["Leave Policy".into(), "Vacation".into()],
            chunk: 0,
            byte_range: [0, 1],
            snippet: "…".into(),
            score: 0.7,
            location: None,
            location_label: None,
            message: None,
        };
        let on_page = Citation {
            n: 2,
            document: "travel.pdf".into(),
            title: "Travel".into(),
            heading_path: vec![],
            location: Some(kb_core::Location::Pages { first: 3, last: 3 }),
            location_label: Some("p. 3".into()),
            ..citation.clone()
        };

        assert_eq!(
            sources_footer(&[citation, on_page]),
            "\n\nSources:\n[1] Leave Policy (leave-policy.md, Leave Policy > Vacation)\
             \n[2] Travel (travel.pdf, p. 3)"
        );
        assert_eq!(sources_footer(&[]), "");
    }

    #[test]
    fn api_errors_keep_their_status_and_code_in_openai_shape() {
        let body = openai_error_body(&ApiError::Unauthorized);

        assert_eq!(body["error"]["type"], "authentication_error");
        assert_eq!(body["error"]["code"], "unauthorized");
    }

    #[tokio::test]
    async fn an_unknown_model_gets_the_status_and_code_of_model_not_found() {
        // Act
        let response = OpenAiError::ModelNotFound("gpt-4".into()).into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();

        // Assert
        assert_eq!(status, ErrorCode::ModelNotFound.status());
        assert_eq!(body["error"]["code"], ErrorCode::ModelNotFound.as_str());
        assert_eq!(body["error"]["param"], "model");
    }
}
