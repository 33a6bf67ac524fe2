//! Questions and search: `POST /v1/ask`, `POST /v1/search`. Any key may call them; a reader
//! only ever retrieves documents its groups may read (the restriction is part of the index
//! query filter, so nothing else reaches the prompt, the sources or the results).

use crate::auth::Caller;
use crate::disclosure;
use crate::error::{ApiError, ErrorBody};
use crate::routes::ApiJson;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::post;
use chrono::NaiveDate;
use futures::{Stream, StreamExt};
use kb_answer::{Answer, AskEvent, AskRequest, Citation, Rewrite, Turn};
use kb_core::{DocumentId, Filter, Location, MessageHeaders, Principal, Retrieval};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/ask", post(ask))
        .route("/v1/ask/stream", post(ask_stream))
        .route("/v1/search", post(search))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskBody {
    pub question: String,
    pub top_k: Option<usize>,
    #[serde(default)]
    pub filter: SearchFilter,
    /// `dense`, `sparse` or `hybrid`; default `answer.retrieval`.
    pub retrieval: Option<Retrieval>,
    /// Prior messages of the conversation, oldest first; with them, `question` is a follow-up
    /// that is rewritten into a standalone question before retrieval.
    #[serde(default)]
    pub messages: Vec<Turn>,
}

impl AskBody {
    /// The answerer's request as `caller` may make it, and the prior messages.
    pub fn into_parts(self, caller: &Principal) -> Result<(AskRequest, Vec<Turn>), ApiError> {
        let request = AskRequest {
            question: self.question,
            top_k: self.top_k,
            filter: self.filter.into_filter(caller)?,
            retrieval: self.retrieval,
        };
        Ok((request, self.messages))
    }
}

/// What a caller may narrow a search to.
#[derive(Debug, Default, Deserialize, ToSchema)]
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
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl SearchFilter {
    /// The index filter for `caller`: the request's own conditions and, for a reader, its
    /// access groups.
    fn into_filter(self, caller: &Principal) -> Result<Filter, ApiError> {
        crate::limits::check_filter_lists(&self.documents, &self.tags)?;
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

/// Answer a question (or a follow-up, with the prior `messages`) with checked citations. The
/// answer's `retrieval` names the mode that ran: the request's, or `answer.retrieval`.
#[utoipa::path(post, path = "/v1/ask", tag = "ask", request_body = AskBody, security(("bearer" = [])),
    responses((status = 200, body = Answer), (status = "4XX", body = ErrorBody),
        (status = "5XX", body = ErrorBody)))]
pub async fn ask(
    Caller(caller): Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AskBody>,
) -> Result<ApiJson<Answer>, ApiError> {
    let (request, history) = body.into_parts(&caller)?;
    let answer = state
        .answerer
        .ask_in_conversation(&request, &history)
        .await?;
    crate::metrics::record_answer(&answer);
    Ok(ApiJson(disclosure::answer(&caller, answer)))
}

/// `POST /v1/ask/stream`: server-sent events. `sources` (every retrieved source, numbered,
/// and the `retrieval` mode that ranked them), then `delta` events (`{"text"}`), then `done`
/// (the complete answer with checked citations).
/// A failure after the first byte is an `error` event (`{"code", "message"}`) that ends the
/// stream; an answer cut that way is incomplete. Dropping the connection cancels the engine
/// call (the chat stream is dropped with the response).
#[utoipa::path(post, path = "/v1/ask/stream", tag = "ask", request_body = AskBody, security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "events `sources` (`{sources, retrieval, rewrite?}`: `retrieval` is the \
            mode that ran, `dense`, `sparse` or `hybrid`), `delta` (`{text}`), `done` (an \
            `Answer`, whose `retrieval` names the same mode); a failure after the first byte is \
            an `error` event (`ErrorBody`)"),
        (status = "4XX", body = ErrorBody),
        (status = "5XX", body = ErrorBody)))]
pub async fn ask_stream(
    Caller(caller): Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AskBody>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (request, history) = body.into_parts(&caller)?;
    let events = state
        .answerer
        .ask_stream_in_conversation(&request, &history)
        .await?;
    let sse = events.map(move |item| {
        Ok(match item.map(|event| disclosure::event(&caller, event)) {
            Ok(event) => {
                let name = match &event {
                    AskEvent::Sources { .. } => "sources",
                    AskEvent::Delta { .. } => "delta",
                    AskEvent::Done { .. } => "done",
                };
                // Serialised straight to text: through a `serde_json::Value` the f32 scores
                // would widen to f64 and read differently from `/v1/ask`'s (0.437076 became
                // 0.43707600235939026).
                let data = match event {
                    AskEvent::Sources {
                        sources,
                        retrieval,
                        rewrite,
                    } => serde_json::to_string(&SourcesData {
                        sources,
                        retrieval,
                        rewrite,
                    }),
                    AskEvent::Delta { text } => serde_json::to_string(&DeltaData { text }),
                    AskEvent::Done { answer } => {
                        crate::metrics::record_answer(&answer);
                        serde_json::to_string(&answer)
                    }
                }
                .expect("BUG: stream events serialise");
                Event::default().event(name).data(data)
            }
            Err(e) => {
                let error = ApiError::from(e);
                tracing::warn!(error = %error.chain(), "stream ended with an error");
                let body = serde_json::to_string(&error.body()).expect("BUG: errors serialise");
                Event::default().event("error").data(body)
            }
        })
    });
    Ok(Sse::new(sse).keep_alive(KeepAlive::default()))
}

/// The data of a `sources` event.
#[derive(Serialize)]
struct SourcesData {
    sources: Vec<Citation>,
    retrieval: Retrieval,
    /// `null` without prior messages.
    rewrite: Option<Rewrite>,
}

/// The data of a `delta` event.
#[derive(Serialize)]
struct DeltaData {
    text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    pub query: String,
    pub top_k: Option<usize>,
    #[serde(default)]
    pub filter: SearchFilter,
    /// `dense`, `sparse` or `hybrid`; default `answer.retrieval`.
    pub retrieval: Option<Retrieval>,
}

/// One passage of a search: its rank and cosine for everyone, the mode's raw score and the
/// server path for admins.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    /// Position in the results, from 1: the order of the retrieval mode.
    pub rank: usize,
    pub document: String,
    pub title: String,
    /// Admins only: the path of the source file on the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Link to the document in its source system (`answer.source_urls`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub heading_path: Vec<String>,
    /// Chunk ordinal: `GET /v1/documents/{document}/chunks/{chunk}` shows it in context.
    pub chunk: u32,
    pub byte_range: [usize; 2],
    pub text: String,
    /// Pages, slides or sheet rows of the source file the passage came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// `location` as a reader names it ("p. 3", "Slide 7", "Sheet Budget, rows 2–40").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_label: Option<String>,
    /// Headers of the e-mail message the document is (or is an attachment of).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageHeaders>,
    pub owner: Option<String>,
    pub effective_date: Option<NaiveDate>,
    pub tags: Vec<String>,
    /// Cosine similarity of the chunk to the query, whatever the mode: it depends on the
    /// passage and the query alone.
    pub cosine: f32,
    /// Admins only: the score the retrieval mode ranked by (cosine, BM25 or RRF). BM25 and RRF
    /// scores depend on the whole collection (a word's rarity counts documents the caller may
    /// not read), so a reader never gets them: they would tell what restricted documents say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_score: Option<f32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    pub timings: kb_answer::Timings,
}

/// The best passages for a query, without an answer. Each result carries its `rank` and its
/// `cosine`; only admins also get `raw_score`, the mode's own score, and `path`, the file's
/// path on the server (readers get `source_url` where one is configured).
#[utoipa::path(post, path = "/v1/search", tag = "ask", request_body = SearchBody, security(("bearer" = [])),
    responses((status = 200, body = SearchResponse),
        (status = "4XX", body = ErrorBody),
        (status = "5XX", body = ErrorBody)))]
pub async fn search(
    Caller(caller): Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<ApiJson<SearchResponse>, ApiError> {
    let filter = body.filter.into_filter(&caller)?;
    let raw_scores = caller.is_admin();
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
            source_url: state.answerer.source_url(&h.payload.path),
            path: disclosure::path_for(&caller, h.payload.path),
            heading_path: h.payload.heading_path,
            chunk: h.payload.ordinal,
            byte_range: [h.payload.byte_start, h.payload.byte_end],
            text: h.payload.text,
            location_label: h.payload.location.as_ref().map(ToString::to_string),
            location: h.payload.location,
            message: h.payload.meta.message,
            owner: h.payload.meta.owner,
            effective_date: h.payload.meta.effective_date,
            tags: h.payload.meta.tags,
            cosine: h.cosine,
            raw_score: raw_scores.then_some(h.score),
        })
        .collect();
    Ok(ApiJson(SearchResponse { results, timings }))
}
