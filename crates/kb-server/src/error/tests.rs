//! Unit tests of [`super::ApiError`]: codes, statuses, headers and what never reaches a caller.

use super::*;
use axum::http::StatusCode;
use kb_core::{CatalogError, IndexError, ModelError};
use std::collections::BTreeSet;

const MARKER: &str = "SECRET-ENGINE-BODY-7f3a";

/// A dependency's error that says [`MARKER`].
fn cause() -> std::io::Error {
    std::io::Error::other(MARKER)
}

fn body_of(error: ApiError) -> (StatusCode, Option<String>, String) {
    let body = serde_json::to_string(&error.body()).unwrap();
    let response = error.into_response();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), retry_after, body)
}

#[test]
fn no_model_error_passes_the_engines_words_to_the_caller() {
    // Arrange
    let said = || format!("engine endpoint primary: http 503: {MARKER}");
    let errors = [
        ModelError::transient(said(), None),
        ModelError::rate_limited(said(), Some(Duration::from_secs(3))),
        ModelError::context_length_exceeded(said()),
        ModelError::invalid_request(said()),
        ModelError::permanent(said()),
        ModelError::transient("engine endpoint primary", None).with_source(cause()),
    ];

    for error in errors {
        // Act
        let (status, _, body) = body_of(ApiError::from(error));

        // Assert
        assert!(!body.contains(MARKER), "{status}: {body}");
        assert!(!body.contains("primary"), "{status}: {body}");
    }
}

#[test]
fn engine_failures_map_to_stable_codes_and_statuses() {
    // Act
    let unavailable = body_of(ModelError::transient(MARKER, None).into());
    let limited = body_of(ModelError::rate_limited(MARKER, Some(Duration::from_secs(3))).into());
    let refused = body_of(ModelError::invalid_request(MARKER).into());
    let too_long = body_of(ModelError::context_length_exceeded(MARKER).into());

    // Assert
    assert_eq!(unavailable.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.1.as_deref(), Some("5"), "default wait");
    assert!(
        unavailable.2.contains("upstream_unavailable"),
        "{}",
        unavailable.2
    );
    assert_eq!(limited.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(limited.1.as_deref(), Some("3"), "the engine's wait");
    assert_eq!(refused.0, StatusCode::BAD_GATEWAY);
    assert!(
        refused.2.contains("the engine refused the request"),
        "{}",
        refused.2
    );
    assert_eq!(too_long.0, StatusCode::BAD_REQUEST);
    assert!(too_long.2.contains("top_k"), "{}", too_long.2);
}

#[test]
fn an_interrupted_stream_says_the_answer_is_incomplete() {
    // Arrange
    let cut = ModelError::transient(kb_engine::INTERRUPTED.to_owned(), None);

    // Act
    let error = ApiError::from(cut);

    // Assert
    assert_eq!(error.code(), ErrorCode::UpstreamUnavailable);
    assert!(error.to_string().contains("incomplete"), "{error}");
}

#[test]
fn index_errors_keep_the_index_words_out_of_the_response() {
    // Act
    let (status, retry_after, body) =
        body_of(IndexError::unavailable_because("grpc status", cause()).into());

    // Assert
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after.is_some());
    assert!(!body.contains(MARKER), "{body}");
    assert!(body.contains("vector index"), "{body}");
}

/// One error of each kind `ApiError` has.
fn one_of_each() -> Vec<ApiError> {
    vec![
        ApiError::InvalidRequest("top_k: must be at least 1".into()),
        ApiError::Unauthorized,
        ApiError::Forbidden,
        ApiError::Refused("outside ingest.roots".into()),
        ApiError::RateLimited {
            retry_after: Duration::from_millis(1_500),
        },
        ApiError::PayloadTooLarge,
        ApiError::DocumentNotFound("handbook/leave.md".into()),
        ApiError::ChunkNotFound {
            document: "handbook/leave.md".into(),
            n: 9,
            count: 3,
        },
        ApiError::NotFound,
        ApiError::Timeout,
        ApiError::Unavailable {
            message: "no engine route can take calls".into(),
            retry_after: None,
        },
        ModelError::transient(MARKER, None).into(),
        ModelError::permanent(MARKER).into(),
        ApiError::MisdirectedRequest,
        ApiError::internal(CatalogError::database("write", cause())),
    ]
}

#[tokio::test]
async fn every_response_carries_the_status_of_its_code() {
    // Arrange
    let mut carried = BTreeSet::new();

    for error in one_of_each() {
        let code = error.code();
        let expected = serde_json::to_value(error.body()).unwrap();

        // Act
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();

        // Assert
        assert_eq!(status, code.status(), "{body}");
        assert_eq!(body["error"]["code"], code.as_str(), "{body}");
        assert_eq!(body, expected);
        carried.insert(code.as_str());
    }
    // `model_not_found` is the OpenAI facade's: `routes::openai` checks its response.
    carried.insert(ErrorCode::ModelNotFound.as_str());
    let all: BTreeSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(carried, all, "a code no response carries");
}

#[test]
fn the_body_is_code_then_message() {
    // Act
    let body = serde_json::to_string(&ApiError::Forbidden.body()).unwrap();

    // Assert
    assert_eq!(
        body,
        r#"{"error":{"code":"forbidden","message":"this route needs an admin key"}}"#
    );
}

#[test]
fn codes_are_distinct_snake_case_words() {
    // Act
    let codes: BTreeSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();

    // Assert
    assert_eq!(codes.len(), ErrorCode::ALL.len(), "{codes:?}");
    for code in codes {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
    }
}

#[test]
fn the_log_chain_names_each_cause_once_and_the_body_none() {
    // Arrange
    let internal = ApiError::from(CatalogError::database("disk full", cause()));
    let upstream = ApiError::from(IndexError::unavailable_because("grpc", cause()));

    // Act
    let internal_chain = internal.chain().to_string();
    let upstream_chain = upstream.chain().to_string();

    // Assert
    for (chain, layer) in [
        (&internal_chain, "internal error: "),
        (
            &upstream_chain,
            "the vector index is unavailable; try again later: ",
        ),
    ] {
        assert!(chain.starts_with(layer), "{chain}");
        assert_eq!(chain.matches(MARKER).count(), 1, "{chain}");
    }
    assert_eq!(internal.to_string(), "internal error");
    assert!(!upstream.to_string().contains(MARKER), "{upstream}");
}
