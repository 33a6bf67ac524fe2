//! `GET /v1/documents/{id}/chunks/{n}`: a cited passage in its context, for a reader to check
//! what an answer says against the document.
//!
//! Any key may call it, under the rule searches follow: a document the caller's groups may not
//! read gets the same 404 as one that does not exist (never a 403 that would confirm it
//! exists). The answer names the document by title, the passage's place in the file (page,
//! slide, sheet rows), the e-mail headers where the document is a message, and a link to the
//! source system where `answer.source_urls` configures one; the path on the server's disk only
//! for admins ([`crate::disclosure`]).
//!
//! Document ids are paths relative to an ingest root and may hold `/` and `#`: the id is sent
//! as one path segment, percent-encoded (`encodeURIComponent` in a browser):
//! `/v1/documents/hr%2Fleave.md/chunks/3`.

use crate::auth::Caller;
use crate::disclosure;
use crate::error::{ApiError, ErrorBody};
use crate::routes::ApiJson;
use crate::state::AppState;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use kb_core::{Chunk, DocumentId, Location, MessageHeaders};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Neighbours on each side when the request names no `context`.
pub const DEFAULT_CONTEXT: u32 = 1;
/// Most neighbours on each side a request may ask for.
pub const MAX_CONTEXT: u32 = 3;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/documents/{id}/chunks/{n}", get(chunk))
}

/// The query of the chunk route.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChunkQuery {
    /// Neighbouring chunks to return on each side of the passage, 0 to 3 (default 1).
    pub context: Option<u32>,
}

/// One chunk of a document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Passage {
    /// The chunk's number in the document, from 0 (a citation's `chunk`).
    pub n: u32,
    /// The chunk's text: Markdown as kb extracted it (headings, lists, tables).
    pub text: String,
    /// Headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    /// Byte range of `text` in the document's extracted text: neighbours that overlap repeat
    /// the bytes both hold.
    pub byte_range: [usize; 2],
    /// Pages, slides or sheet rows of the source file the chunk came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// `location` as a reader names it: "p. 3", "Slide 7", "Sheet Budget, rows 2–40".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_label: Option<String>,
}

impl From<Chunk> for Passage {
    fn from(chunk: Chunk) -> Self {
        Self {
            n: chunk.ordinal,
            text: chunk.text,
            heading_path: chunk.heading_path,
            byte_range: [chunk.byte_start, chunk.byte_end],
            location_label: chunk.location.as_ref().map(ToString::to_string),
            location: chunk.location,
        }
    }
}

/// A passage with its neighbours and what the reader needs to find it in the source.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkResponse {
    pub document: String,
    pub title: String,
    /// Admins only: the path of the source file on the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Link to the document in its source system (`answer.source_urls`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// Headers of the e-mail message the document is (or is an attachment of).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageHeaders>,
    /// How many chunks the document has (numbered from 0).
    pub chunk_count: u32,
    /// The requested chunk.
    pub chunk: Passage,
    /// Up to `context` chunks before it, in document order.
    pub before: Vec<Passage>,
    /// Up to `context` chunks after it, in document order.
    pub after: Vec<Passage>,
}

/// A chunk of a document with its neighbours, for checking a citation (any key). `id` is the
/// document id as one percent-encoded path segment (`hr%2Fleave.md`); `n` the chunk number
/// (a citation's or search result's `chunk`). A document the key may not read is answered
/// exactly like a missing one (404 `document_not_found`). Readers get no server `path`.
#[utoipa::path(get, path = "/v1/documents/{id}/chunks/{n}", tag = "ask", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "document id, percent-encoded as one path segment \
            (`/` as `%2F`, `#` as `%23`)"),
        ("n" = u32, Path, description = "chunk number, from 0"),
        ChunkQuery),
    responses((status = 200, body = ChunkResponse),
        (status = 400, body = ErrorBody, description = "`n` or `context` out of range"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody,
            description = "`document_not_found` (no such document, or none this key may read: \
                the same answer) or `chunk_not_found`"),
        (status = "5XX", body = ErrorBody)))]
pub async fn chunk(
    Caller(caller): Caller,
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<ChunkQuery>, QueryRejection>,
) -> Result<ApiJson<ChunkResponse>, ApiError> {
    let Path((id, n)) =
        path.map_err(|e| ApiError::InvalidRequest(format!("path: {}", e.body_text())))?;
    let n: u32 = n.parse().map_err(|_| {
        ApiError::InvalidRequest(format!(
            "chunk number: expected a whole number from 0 (a citation's `chunk`), got {n:?}"
        ))
    })?;
    let Query(query) =
        query.map_err(|e| ApiError::InvalidRequest(format!("query: {}", e.body_text())))?;
    let context = query.context.unwrap_or(DEFAULT_CONTEXT);
    if context > MAX_CONTEXT {
        return Err(ApiError::InvalidRequest(format!(
            "context: at most {MAX_CONTEXT} neighbours on each side, got {context}"
        )));
    }

    let id = DocumentId::new(id);
    // Missing and unreadable answer alike, from the same place.
    let not_found = || ApiError::DocumentNotFound(id.to_string());
    let document = state
        .catalog
        .get_document(&id)
        .await?
        .filter(|d| disclosure::may_read(&caller, &d.groups))
        .ok_or_else(not_found)?;
    let count = document.chunk_count;
    let chunk_not_found = || ApiError::ChunkNotFound {
        document: id.to_string(),
        n,
        count,
    };
    if n >= count {
        return Err(chunk_not_found());
    }
    let window: Vec<Chunk> = state
        .catalog
        .chunk_range(&id, n.saturating_sub(context)..=n.saturating_add(context))
        .await?
        .into_iter()
        .map(|stored| stored.chunk)
        .collect();
    let at = window
        .iter()
        .position(|c| c.ordinal == n)
        .ok_or_else(chunk_not_found)?;
    let mut window = window.into_iter().map(Passage::from);
    let before: Vec<Passage> = window.by_ref().take(at).collect();
    let chunk = window
        .next()
        .expect("BUG: the window holds the chunk found");
    let after: Vec<Passage> = window.collect();

    Ok(ApiJson(ChunkResponse {
        document: document.id.to_string(),
        title: document.title,
        source_url: state.answerer.source_url(&document.path),
        path: disclosure::path_for(&caller, document.path),
        message: document.meta.message,
        chunk_count: count,
        chunk,
        before,
        after,
    }))
}
