//! `GET /metrics` in Prometheus text format.

use crate::helpers::shared_app;

#[tokio::test]
async fn metrics_count_requests_answers_and_refusals() {
    let app = shared_app().app();
    app.ask("How often is my laptop replaced?").await;
    app.ask("Who won the football world cup in 1998?").await;

    let body = app.metrics().await;

    for expected in [
        r#"kb_http_requests_total{method="POST",route="/v1/ask",status="200"}"#,
        r#"kb_http_request_duration_seconds_bucket{method="POST",route="/v1/ask",status="200",le="0.5"}"#,
        r#"kb_answers_total{mode="extractive"}"#,
        r#"kb_answers_total{mode="not_found"}"#,
        "kb_refusals_total",
        "kb_citations_removed_total",
        "kb_retrieval_seconds_bucket",
    ] {
        assert!(body.contains(expected), "{expected} missing from:\n{body}");
    }
}
