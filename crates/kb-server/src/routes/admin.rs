//! Admin routes (an admin key or the server's admin token): documents and ingest.

use crate::auth::Admin;
use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use kb_core::{DocumentId, DocumentRecord};
use kb_ingest::IngestReport;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/documents", get(list_documents))
        .route(
            "/v1/documents/{id}",
            get(get_document).delete(delete_document),
        )
        .route("/v1/admin/ingest", post(ingest))
}

/// Catalogued documents (admin).
#[utoipa::path(get, path = "/v1/documents", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Object, description = "`{documents: [document record]}`"),
        (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)))]
pub async fn list_documents(
    _: Admin,
    State(state): State<AppState>,
) -> Result<ApiJson<Value>, ApiError> {
    let documents = state.catalog.list_documents().await?;
    Ok(ApiJson(json!({ "documents": documents })))
}

/// One document and its chunks (admin).
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "document id (path relative to the ingest root)")),
    responses((status = 200, body = Object, description = "`{document, chunks}`"),
        (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn get_document(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, ApiError> {
    let id = DocumentId::new(id);
    let doc: DocumentRecord = state
        .catalog
        .get_document(&id)
        .await?
        .ok_or_else(|| ApiError::DocumentNotFound(id.to_string()))?;
    let chunks = state.catalog.chunks(&id).await?;
    Ok(ApiJson(json!({ "document": doc, "chunks": chunks })))
}

/// Remove a document from the catalog and the index (admin).
#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "document id")),
    responses((status = 204, description = "removed"),
        (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn delete_document(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = DocumentId::new(id);
    let _guard = state.ingest_lock.lock().await;
    if state.ingestor.remove_document(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::DocumentNotFound(id.to_string()))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// Files or folders on the server's machine.
    #[schema(value_type = Vec<String>)]
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub prune: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Access groups of documents that name none (default `ingest.default_groups`).
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Tags of documents that name none.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Owner of documents that name none.
    #[serde(default)]
    pub owner: Option<String>,
}

/// Run an ingest inside the server (which holds the embedded index).
#[utoipa::path(post, path = "/v1/admin/ingest", tag = "admin", security(("bearer" = [])),
    request_body = IngestBody,
    responses((status = 200, body = Object, description = "the ingest report"),
        (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)))]
pub async fn ingest(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<IngestBody>,
) -> Result<ApiJson<IngestReport>, ApiError> {
    if body.paths.is_empty() {
        return Err(ApiError::InvalidRequest(
            "paths: name at least one file or folder".into(),
        ));
    }
    let _guard = state.ingest_lock.lock().await;
    let ingestor = state
        .ingestor
        .with_run_flags(body.prune, body.dry_run)
        .with_default_metadata(body.groups, body.tags, body.owner);
    // The run goes on if the client disconnects: a half-done ingest is safe, but finishing
    // it is better than leaving it for the next run.
    let report = tokio::spawn(async move {
        ingestor
            .ingest(&body.paths, &CancellationToken::new())
            .await
    })
    .await
    .map_err(|e| ApiError::Internal(format!("ingest task failed: {e}")))??;
    Ok(ApiJson(report))
}
