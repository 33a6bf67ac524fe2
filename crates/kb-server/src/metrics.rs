//! Prometheus metrics: request latency by route and status, retrieval and generation time,
//! tokens by model, answers by mode, refusals and removed citations. Served at `/metrics`.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::IntoResponse;
use kb_answer::{Answer, Mode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process-wide recorder (installed once; every server in the process shares it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("BUG: bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String,
        description = "Prometheus text format")))]
pub async fn render() -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        handle().render(),
    )
}

/// Middleware: count requests and time them by method, matched route and status.
pub async fn track(req: Request, next: Next) -> impl IntoResponse {
    let started = Instant::now();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", path),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("kb_http_requests_total", &labels).increment(1);
    metrics::histogram!("kb_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Record how one answer went. (Tokens by model are counted per engine call, where the
/// model is known.)
pub fn record_answer(answer: &Answer) {
    let mode = match answer.mode {
        Mode::Generative => "generative",
        Mode::Extractive => "extractive",
        Mode::NotFound => "not_found",
    };
    metrics::counter!("kb_answers_total", "mode" => mode).increment(1);
    if answer.mode == Mode::NotFound {
        metrics::counter!("kb_refusals_total").increment(1);
    }
    metrics::counter!("kb_citations_removed_total").increment(answer.removed_citations as u64);
    // The citation check: markers moved to the passage that supports their sentence, and
    // sentences and numbers no passage supports.
    metrics::counter!("kb_citations_moved_total").increment(answer.moved_citations as u64);
    metrics::counter!("kb_unsupported_sentences_total")
        .increment(answer.unsupported_sentences.len() as u64);
    metrics::counter!("kb_unsupported_numbers_total")
        .increment(answer.unsupported_numbers.len() as u64);
    // Links, images and raw HTML neutralised in answers (off `answer.allowed_link_hosts`).
    metrics::counter!("kb_answer_links_removed_total").increment(answer.removed_links as u64);
    let t = &answer.timings;
    metrics::histogram!("kb_retrieval_seconds").record((t.embed_ms + t.search_ms) / 1000.0);
    if answer.mode != Mode::NotFound {
        metrics::histogram!("kb_generation_seconds", "mode" => mode).record(t.generate_ms / 1000.0);
    }
}

/// Counts every engine call (retries included) by endpoint, model, kind and outcome, and
/// its tokens by model. The endpoint is its configured name; keys never reach here.
#[derive(Debug, Default)]
pub struct EngineMetrics;

impl kb_engine::UsageRecorder for EngineMetrics {
    fn record(&self, r: &kb_engine::CallRecord) {
        let kind = r.kind.as_str();
        metrics::counter!(
            "kb_engine_calls_total",
            "endpoint" => r.endpoint.clone(),
            "model" => r.model.clone(),
            "kind" => kind,
            "outcome" => r.outcome.clone(),
        )
        .increment(1);
        metrics::histogram!(
            "kb_engine_call_duration_seconds",
            "endpoint" => r.endpoint.clone(),
            "kind" => kind,
        )
        .record(r.latency_ms as f64 / 1000.0);
        for (direction, tokens) in [("in", r.prompt_tokens), ("out", r.completion_tokens)] {
            if tokens > 0 {
                metrics::counter!(
                    "kb_tokens_total",
                    "model" => r.model.clone(),
                    "kind" => kind,
                    "direction" => direction,
                )
                .increment(tokens);
            }
        }
    }
}
