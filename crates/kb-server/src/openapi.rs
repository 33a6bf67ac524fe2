//! The OpenAPI 3.1 document of the HTTP surface, generated from the handlers' `#[utoipa::path]`
//! annotations and the request and response types' `ToSchema` derives; served at
//! `/openapi.json`.

use crate::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::metrics;
use crate::routes::{admin, ask, health, openai, passages, web};
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
        metrics::render,
        openapi_json,
        ask::ask,
        ask::ask_stream,
        ask::search,
        passages::chunk,
        openai::list_models,
        openai::chat_completions,
        admin::list_documents,
        admin::get_document,
        admin::delete_document,
        admin::ingest,
        web::index,
        web::script,
        web::markdown_script,
        web::stylesheet,
    ),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode, kb_answer::AskEvent)),
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

/// `GET /openapi.json`, over any state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
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
    use serde_json::Value;

    fn document_json() -> Value {
        serde_json::from_str(document()).unwrap()
    }

    #[test]
    fn the_error_schema_lists_every_code_with_its_status_and_description() {
        // Act
        let doc = document_json();

        // Assert
        let schema = &doc["components"]["schemas"]["ErrorCode"];
        let listed: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("no enum of codes: {schema}"))
            .iter()
            .map(|code| code.as_str().unwrap())
            .collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(listed, all);
        let description = schema["description"].as_str().unwrap();
        for code in ErrorCode::ALL {
            let line = format!(
                "- `{}` ({}): {}",
                code.as_str(),
                code.status().as_u16(),
                code.description()
            );
            assert!(description.contains(&line), "{line} not in {description}");
        }
        for code in ["rate_limited", "payload_too_large", "request_timeout"] {
            assert!(listed.contains(&code), "{code}");
        }
    }

    #[test]
    fn the_error_body_schema_refers_to_the_codes() {
        // Act
        let doc = document_json();

        // Assert
        let detail = &doc["components"]["schemas"]["ErrorDetail"];
        assert_eq!(
            detail["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode",
            "{detail}"
        );
        assert_eq!(
            doc["components"]["schemas"]["ErrorBody"]["properties"]["error"]["$ref"],
            "#/components/schemas/ErrorDetail"
        );
    }
}
