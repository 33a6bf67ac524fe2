//! The three endpoints: `/v1/embeddings`, `/v1/chat/completions` (plain and SSE) and
//! `/v1/models`.

use crate::fault::{Fault, Route};
use crate::text::{fake_answer_citing, fake_embedding, obedient_answer, word_count};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

use super::errors::error_response;
use super::faults::apply_early_fault;
use super::state::{AppState, EmbeddingRequest, InFlight};
use super::stream::{StreamPlan, json_body, prefix, sse, streamed};

pub(super) async fn embeddings(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&state);
    let (request, fault) = match state.admit(Route::Embeddings, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let latency = state.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let early = apply_early_fault(&state, &fault).await;
    let inputs: Vec<String> = match &request["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "'input' must be a string or an array of strings",
            );
        }
    };
    let answered = early.is_none() && fault.as_ref().is_none_or(|f| matches!(f, Fault::Delay(_)));
    state.lock().embedding_log.push(EmbeddingRequest {
        inputs: inputs.clone(),
        succeeded: answered,
    });
    if let Some(response) = early {
        return response;
    }
    let dims = match fault {
        Some(Fault::WrongDimensions(dims)) => dims,
        _ => state.lock().dimensions,
    };
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({"object": "embedding", "index": index, "embedding": fake_embedding(text, dims)})
        })
        .collect();
    if state.reverse_embedding_order {
        data.reverse();
    }
    let tokens: usize = inputs.iter().map(|t| word_count(t)).sum();
    let model = request["model"].as_str().unwrap_or(&state.embed_model);
    let body = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    if fault.is_none() {
        state
            .embedded_inputs
            .fetch_add(inputs.len(), Ordering::SeqCst);
    }
    json_body(&state, body, fault)
}

pub(super) async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (request, fault) = match state.admit(Route::Chat, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    if let Some(response) = apply_early_fault(&state, &fault).await {
        return response;
    }
    let Some(messages) = request["messages"].as_array() else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "'messages' must be an array",
        );
    };
    let messages: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or(""),
                m["content"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let (reply, chunk_delay, obey, cited, miscited) = {
        let mut m = state.lock();
        let reply = m
            .next_chat_replies
            .pop_front()
            .or_else(|| m.chat_reply.clone());
        (
            reply,
            m.chunk_delay,
            m.obey_injections,
            m.cited_source,
            m.miscited_as,
        )
    };
    let answer = reply
        .or_else(|| {
            obey.then(|| obedient_answer(messages.iter().copied()))
                .flatten()
        })
        .unwrap_or_else(|| {
            let answer = fake_answer_citing(messages.iter().copied(), cited);
            match miscited {
                Some(wrong) => answer
                    .strip_suffix(&format!(" [{cited}]"))
                    .map_or(answer.clone(), |quote| format!("{quote} [{wrong}]")),
                None => answer,
            }
        });
    let prompt_tokens: usize = messages.iter().map(|(_, c)| word_count(c)).sum();
    let completion_tokens = word_count(&answer);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let model = request["model"]
        .as_str()
        .unwrap_or(&state.chat_model)
        .to_owned();

    if request["stream"].as_bool() != Some(true) {
        let body = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }],
            "usage": usage,
        });
        return json_body(&state, body, fault);
    }

    let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);
    let chunk = |delta: Value, finish: Value| {
        sse(&json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }))
    };
    let opening = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    let words: Vec<Bytes> = answer
        .split_inclusive(' ')
        .map(|w| chunk(json!({"content": w}), Value::Null))
        .collect();
    let mut closing = vec![chunk(json!({}), json!("stop"))];
    if include_usage {
        closing.push(sse(&json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": usage,
        })));
    }
    closing.push(Bytes::from_static(b"data: [DONE]\n\n"));

    let plan = match fault {
        Some(Fault::CutStream { after_chunks }) => {
            StreamPlan::Cut(prefix(opening, &words, after_chunks))
        }
        Some(Fault::StallStream { after_chunks }) => {
            StreamPlan::Stall(prefix(opening, &words, after_chunks))
        }
        Some(Fault::MalformedJson) => StreamPlan::Whole(vec![
            Bytes::from_static(b"data: {\"choices\": [\n\n"),
            Bytes::from_static(b"data: [DONE]\n\n"),
        ]),
        _ => {
            let mut all = vec![opening];
            all.extend(words);
            all.extend(closing);
            StreamPlan::Whole(all)
        }
    };
    let mut response = streamed(&state, plan, chunk_delay, "text/event-stream");
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub(super) async fn models(State(state): State<AppState>) -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [
            {"id": state.embed_model, "object": "model", "created": 0, "owned_by": "kb-testkit"},
            {"id": state.chat_model, "object": "model", "created": 0, "owned_by": "kb-testkit"},
        ],
    }))
    .into_response()
}
