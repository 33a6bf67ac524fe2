//! The OpenAPI 3.1 document of the HTTP surface, generated from the handlers' `#[utoipa::path]`
//! annotations and the request and response types' `ToSchema` derives; served at
//! `/openapi.json`.

use crate::routes::{admin, ask, health, openai, web};
use crate::state::AppState;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// kb's error body, `{"error": {"code", "message"}}` (see [`crate::ApiError`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code: `invalid_request`, `unauthorized`, `forbidden`,
    /// `document_not_found`, `not_found`, `upstream_unavailable`, `upstream_error`,
    /// `internal_error`.
    pub code: String,
    pub message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kb",
        description = "Company knowledge base: answers with checked citations, search, an \
            OpenAI-compatible facade (model `kb`) and admin routes."
    ),
    paths(
        health::healthz,
        health::readyz,
        crate::metrics::render,
        openapi_json,
        ask::ask,
        ask::ask_stream,
        ask::search,
        openai::list_models,
        openai::chat_completions,
        admin::list_documents,
        admin::get_document,
        admin::delete_document,
        admin::ingest,
        web::index,
        web::script,
        web::stylesheet,
    ),
    components(schemas(ErrorBody, ErrorDetail, kb_answer::AskEvent)),
    modifiers(&BearerAuth),
    tags(
        (name = "ask", description = "Questions, follow-ups and search"),
        (name = "openai", description = "OpenAI-compatible facade: model `kb`"),
        (name = "admin", description = "Documents and ingest (admin token)"),
        (name = "operations", description = "Probes, metrics, this document"),
        (name = "web", description = "The chat page"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document, rendered once.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("BUG: the OpenAPI document serialises")
    })
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, content_type = "application/json", body = Object,
        description = "OpenAPI 3.1")))]
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiError;

    #[test]
    fn the_error_schema_matches_the_error_body() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: "forbidden".into(),
                message: ApiError::Forbidden.to_string(),
            },
        };

        assert_eq!(
            serde_json::to_value(body).unwrap(),
            ApiError::Forbidden.to_json_body()
        );
    }
}
