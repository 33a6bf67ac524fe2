//! Admin routes (an admin key or the server's admin token): documents and ingest.
//!
//! Ingest reads files on the server's machine, so it is confined: with `ingest.roots` set,
//! every path (after `..` and symbolic links) must lie inside one of them, whoever asks; with
//! none, only the server's own admin token (the `kb` CLI beside the server) may ingest, and
//! admin API keys may not. A refused path gets one answer whether or not it exists.

use crate::auth::{Admin, Credential};
use crate::error::{ApiError, ErrorBody};
use crate::ingest_roots::{IngestRoots, PathRefused};
use crate::routes::ApiJson;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use kb_core::{DocumentId, DocumentRecord};
use kb_ingest::{IngestReport, RunRequest};
use serde_json::{Value, json};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/documents", get(list_documents))
        .route(
            "/v1/documents/{id}",
            get(get_document).delete(delete_document),
        )
        .route("/v1/admin/ingest", post(ingest))
}

/// Catalogued documents, and the number of chunks in the index (admin; the open probes
/// publish no counts). The index should hold exactly the catalogued documents' chunks.
#[utoipa::path(get, path = "/v1/documents", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Object, description = "`{documents: [document record], index_points}`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_documents(
    _: Admin,
    State(state): State<AppState>,
) -> Result<ApiJson<Value>, ApiError> {
    let documents = state.catalog.list_documents().await?;
    let index_points = state.index.count().await?;
    Ok(ApiJson(
        json!({ "documents": documents, "index_points": index_points }),
    ))
}

/// One document and its chunks (admin).
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "document id (path relative to the ingest root)")),
    responses((status = 200, body = Object, description = "`{document, chunks}`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
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
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
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

/// Whether `admin` may ingest over HTTP at all, following links out of the ingested folders
/// or not: without roots only the server token may; with roots, nobody may follow such links.
fn check_caller(roots: &IngestRoots, admin: &Admin, follow_symlinks: bool) -> Result<(), ApiError> {
    match (roots.is_empty(), admin.credential) {
        (true, Credential::ServerToken) => Ok(()),
        (true, Credential::ApiKey) => {
            tracing::info!(key = %admin.principal.name, "admin key refused: no ingest.roots");
            Err(ApiError::Refused(
                "an admin key may ingest over HTTP only inside ingest.roots, and none is set; \
                 list the folders keys may ingest in the server's ingest.roots, or run \
                 `kb ingest` on the server's machine"
                    .into(),
            ))
        }
        (false, _) if follow_symlinks => Err(ApiError::Refused(
            "follow_symlinks: links that leave the ingested folders could lead outside \
             ingest.roots, so they are not followed over HTTP while ingest.roots is set"
                .into(),
        )),
        (false, _) => Ok(()),
    }
}

/// The paths to hand the ingestor: with roots, each resolved to its real path inside one of
/// them (or refused); without, as given (only the server token gets here).
fn confine_paths(
    roots: &IngestRoots,
    admin: &Admin,
    paths: Vec<PathBuf>,
) -> Result<Vec<PathBuf>, ApiError> {
    if roots.is_empty() {
        return Ok(paths);
    }
    paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            roots.confine(path).map_err(|refused| match refused {
                PathRefused::Outside => {
                    tracing::info!(
                        key = %admin.principal.name,
                        path = %path.display(),
                        "ingest path outside ingest.roots refused"
                    );
                    ApiError::Refused(format!("paths[{i}]: {refused}"))
                }
                PathRefused::Missing(_)
                | PathRefused::Relative(_)
                | PathRefused::Unreadable { .. } => {
                    ApiError::InvalidRequest(format!("paths[{i}]: {refused}"))
                }
            })
        })
        .collect()
}

/// `groups` of an ingest request: absent, or at least one valid group name.
fn check_groups(groups: Option<&[String]>) -> Result<(), ApiError> {
    let Some(groups) = groups else {
        return Ok(());
    };
    if groups.is_empty() {
        return Err(ApiError::InvalidRequest(
            "groups: an empty list would give the documents to no one (it never means everyone); \
             name at least one group, or leave groups out for the default"
                .into(),
        ));
    }
    for group in groups {
        kb_core::access::validate_name("groups: access group", group)
            .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    }
    Ok(())
}

/// The task running an ingest panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("ingest task failed")]
struct IngestTaskFailed(#[source] tokio::task::JoinError);

/// Run an ingest inside the server (which holds the embedded index). With `ingest.roots` set,
/// every path must lie inside them (after `..` and links): else 403, the same answer whether or
/// not the path exists. Without roots, only the server's admin token may ingest (403 for an
/// admin key).
#[utoipa::path(post, path = "/v1/admin/ingest", tag = "admin", security(("bearer" = [])),
    request_body = RunRequest,
    responses((status = 200, body = Object, description = "the ingest report"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody,
            description = "a reader key, a path outside `ingest.roots`, or an admin key while `ingest.roots` is empty")))]
pub async fn ingest(
    admin: Admin,
    State(state): State<AppState>,
    ApiJson(mut run): ApiJson<RunRequest>,
) -> Result<ApiJson<IngestReport>, ApiError> {
    check_caller(&state.ingest_roots, &admin, run.follow_symlinks)?;
    if run.paths.is_empty() {
        return Err(ApiError::InvalidRequest(
            "paths: name at least one file or folder".into(),
        ));
    }
    check_groups(run.groups.as_deref())?;
    let paths = confine_paths(&state.ingest_roots, &admin, std::mem::take(&mut run.paths))?;
    let _guard = state.ingest_lock.lock().await;
    let ingestor = state.ingestor.for_run(&run);
    // The run goes on if the client disconnects: a half-done ingest is safe, but finishing
    // it is better than leaving it for the next run.
    let report =
        tokio::spawn(async move { ingestor.ingest(&paths, &CancellationToken::new()).await })
            .await
            .map_err(|e| ApiError::internal(IngestTaskFailed(e)))??;
    Ok(ApiJson(report))
}
