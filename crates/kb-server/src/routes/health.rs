//! Liveness and readiness probes.

use crate::error::ApiError;
use crate::routes::ApiJson;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> ApiJson<Value> {
    ApiJson(json!({"status": "ok"}))
}

/// The catalog and the index answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Object, example = json!({"status": "ready", "points": 42})),
        (status = 503, body = crate::openapi::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<ApiJson<Value>, ApiError> {
    state.catalog.list_runs(1).await?;
    let points = state.index.count().await?;
    Ok(ApiJson(json!({"status": "ready", "points": points})))
}
