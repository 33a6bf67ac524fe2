//! Questions and search: `POST /v1/ask`, `POST /v1/search`. Any key may call them; a reader
//! only ever retrieves documents its groups may read (the restriction is part of the index
//! query filter, so nothing else reaches the prompt, the sources or the results).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::post;
use chrono::NaiveDate;
use futures::{Stream, StreamExt};
use kb_answer::{Answer, AskEvent, AskRequest};
use kb_core::{DocumentId, Filter, Principal, Retrieval};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/ask", post(ask))
        .route("/v1/ask/stream", post(ask_stream))
        .route("/v1/search", post(search))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskBody {
    pub question: String,
    pub top_k: Option<usize>,
    #[serde(default)]
    pub filter: SearchFilter,
    /// `dense`, `sparse` or `hybrid`; default `answer.retrieval`.
    pub retrieval: Option<Retrieval>,
}

/// What a caller may narrow a search to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchFilter {
    /// Only these document ids.
    #[serde(default)]
    pub documents: Vec<String>,
    /// Only documents with at least one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Only documents whose effective date lies in this inclusive range.
    #[serde(default)]
    pub effective_date: Option<DateRange>,
}

/// `{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}`, either end optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl SearchFilter {
    /// The index filter for `caller`: the request's own conditions and, for a reader, its
    /// access groups.
    fn into_filter(self, caller: &Principal) -> Result<Filter, ApiError> {
        let range = self.effective_date.unwrap_or_default();
        if let (Some(from), Some(to)) = (range.from, range.to)
            && from > to
        {
            return Err(ApiError::InvalidRequest(format!(
                "filter.effective_date: from ({from}) is after to ({to})"
            )));
        }
        Ok(Filter {
            doc_ids: self.documents.into_iter().map(DocumentId::new).collect(),
            groups: caller.readable_groups(),
            tags: self.tags,
            effective_from: range.from,
            effective_to: range.to,
        })
    }
}

async fn ask(
    Caller(caller): Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AskBody>,
) -> Result<ApiJson<Answer>, ApiError> {
    let request = AskRequest {
        question: body.question,
        top_k: body.top_k,
        filter: body.filter.into_filter(&caller)?,
        retrieval: body.retrieval,
    };
    let answer = state.answerer.ask(&request).await?;
    crate::metrics::record_answer(&answer);
    Ok(ApiJson(answer))
}

/// `POST /v1/ask/stream`: server-sent events. `sources` (every retrieved source, numbered),
/// then `delta` events (`{"text"}`), then `done` (the complete answer with checked citations).
/// A failure after the first byte is an `error` event (`{"code", "message"}`) that ends the
/// stream; an answer cut that way is incomplete. Dropping the connection cancels the engine
/// call (the chat stream is dropped with the response).
async fn ask_stream(
    Caller(caller): Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AskBody>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let request = AskRequest {
        question: body.question,
        top_k: body.top_k,
        filter: body.filter.into_filter(&caller)?,
        retrieval: body.retrieval,
    };
    let events = state.answerer.ask_stream(&request).await?;
    let sse = events.map(|item| {
        Ok(match item {
            Ok(event) => {
                let name = match &event {
                    AskEvent::Sources { .. } => "sources",
                    AskEvent::Delta { .. } => "delta",
                    AskEvent::Done { .. } => "done",
                };
                let data = match event {
                    AskEvent::Sources { sources } => serde_json::json!({ "sources": sources }),
                    AskEvent::Delta { text } => serde_json::json!({ "text": text }),
                    AskEvent::Done { answer } => {
                        crate::metrics::record_answer(&answer);
                        serde_json::to_value(answer).expect("BUG: answers serialise")
                    }
                };
                Event::default().event(name).data(data.to_string())
            }
            Err(e) => {
                let error = ApiError::from(e);
                tracing::warn!(error = %error, "stream ended with an error");
                Event::default()
                    .event("error")
                    .data(error.to_json_body().to_string())
            }
        })
    });
    Ok(Sse::new(sse).keep_alive(KeepAlive::default()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    pub query: String,
    pub top_k: Option<usize>,
    #[serde(default)]
    pub filter: SearchFilter,
    /// `dense`, `sparse` or `hybrid`; default `answer.retrieval`.
    pub retrieval: Option<Retrieval>,
}

#[derive(Debug, Serialize)]
pub struct SearchResult {
    pub rank: usize,
    pub document: String,
    pub title: String,
    pub path: String,
    pub heading_path: Vec<String>,
    pub chunk: u32,
    pub byte_range: [usize; 2],
    pub text: String,
    /// The score the retrieval mode ranked by (cosine, BM25 or RRF).
    pub score: f32,
    pub owner: Option<String>,
    pub effective_date: Option<NaiveDate>,
    pub tags: Vec<String>,
    /// Cosine similarity of the chunk to the query, whatever the mode.
    pub cosine: f32,
}

#[derive(Debug, Serialize)]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    pub timings: kb_answer::Timings,
}

async fn search(
    Caller(caller): Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<ApiJson<SearchResponse>, ApiError> {
    let filter = body.filter.into_filter(&caller)?;
    let (hits, _, timings) = state
        .answerer
        .search(&body.query, &filter, body.top_k, body.retrieval)
        .await?;
    let results = hits
        .into_iter()
        .enumerate()
        .map(|(i, h)| SearchResult {
            rank: i + 1,
            document: h.payload.doc_id.to_string(),
            title: h.payload.title,
            path: h.payload.path,
            heading_path: h.payload.heading_path,
            chunk: h.payload.ordinal,
            byte_range: [h.payload.byte_start, h.payload.byte_end],
            text: h.payload.text,
            score: h.score,
            owner: h.payload.meta.owner,
            effective_date: h.payload.meta.effective_date,
            tags: h.payload.meta.tags,
            cosine: h.cosine,
        })
        .collect();
    Ok(ApiJson(SearchResponse { results, timings }))
}
