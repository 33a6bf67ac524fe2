//! Liveness and readiness probes.

use crate::error::{ApiError, ErrorBody};
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

/// The catalog and the index answer, and (when an engine is configured) at least one engine
/// route can take calls: its endpoint's circuit is not open and it has a key the engine has not
/// refused. The engine is judged from what the client has seen, without calling it: a probe
/// costs nothing and cannot itself spend quota. Open to anyone, so it reports no counts of
/// documents or chunks (an admin finds them in `GET /v1/documents`).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Object,
            example = json!({"status": "ready", "engine": [{"name": "gateway", "circuit": "closed"}]})),
        (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<ApiJson<Value>, ApiError> {
    state.catalog.list_runs(1).await?;
    state.index.count().await?;
    let Some(engine) = &state.engine else {
        return Ok(ApiJson(json!({"status": "ready"})));
    };
    let health = engine.health();
    let usable = |h: &kb_engine::EndpointHealth| {
        h.circuit != kb_engine::CircuitState::Open && h.keys_disabled < h.keys
    };
    if !health.iter().any(usable) {
        let endpoints: Vec<String> = health
            .iter()
            .map(|h| {
                format!(
                    "{} (circuit {:?}, {} of {} keys refused)",
                    h.name, h.circuit, h.keys_disabled, h.keys
                )
            })
            .collect();
        return Err(ApiError::Unavailable {
            message: format!(
                "no engine route can take calls: {}; check the engine and its keys",
                endpoints.join(", ")
            ),
            retry_after: None,
        });
    }
    Ok(ApiJson(json!({"status": "ready", "engine": health})))
}
