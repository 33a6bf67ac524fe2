//! Ingest against the fake OpenAI-compatible engine through the real engine client: batch
//! caps, bounded concurrency, and rate limits answered by retrying only the failed batch.

use crate::batch::Pacing;
use crate::check::check;
use crate::pipeline::test_support::{FakeCatalog, FakeIndex};
use crate::pipeline::{IngestOptions, Ingestor};
use crate::split::SplitOptions;
use kb_core::{Catalog, Embedder};
use kb_engine::{EndpointConfig, EngineClient, EngineConfig, RemoteEmbedderOptions, RetryConfig};
use kb_testkit::{FakeEngine, Fault, Route};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const MAX_INPUTS: usize = 4;
const MAX_TOKENS: usize = 140;
const CONCURRENCY: usize = 3;

/// A corpus of `n` Markdown files of different lengths; no two chunks share a text.
fn write_corpus(dir: &std::path::Path, n: usize) {
    for d in 0..n {
        let mut text = format!("# Policy {d}\n\n");
        for s in 0..(1 + d % 4) {
            let words = 6 + (d * 7 + s * 13) % 40;
            let body: Vec<String> = (0..words).map(|w| format!("d{d}s{s}w{w}")).collect();
            text.push_str(&format!("## Part {s}\n\n{}.\n\n", body.join(" ")));
        }
        std::fs::write(dir.join(format!("doc-{d:02}.md")), text).unwrap();
    }
}

fn engine_embedder(engine: &FakeEngine) -> Arc<dyn Embedder> {
    let client = EngineClient::new(EngineConfig {
        endpoints: vec![EndpointConfig {
            name: "fake".into(),
            base_url: engine.base_url(),
            embed_model: Some("fake-embed".into()),
            ..EndpointConfig::default()
        }],
        // One attempt per call: every 429 reaches the ingest pipeline, which must retry just
        // that batch.
        retry: RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        },
        ..EngineConfig::default()
    })
    .unwrap();
    Arc::new(client.embedder(RemoteEmbedderOptions {
        dimensions: 8,
        max_input_tokens: 128,
        ..RemoteEmbedderOptions::default()
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_engine_embeds_every_chunk_once_within_caps_and_concurrency() {
    // Arrange
    let engine = FakeEngine::builder().dimensions(8).seed(42).start().await;
    engine.set_embedding_latency(Duration::from_millis(25));
    engine.set_failure_rate(
        Route::Embeddings,
        0.3,
        Fault::RateLimited {
            retry_after: Some(Duration::from_millis(200)),
        },
    );
    let embedder = engine_embedder(&engine);
    let catalog = Arc::new(FakeCatalog::default());
    let index = Arc::new(FakeIndex::default());
    let options = IngestOptions {
        split: SplitOptions {
            chunk_tokens: 48,
            overlap_tokens: 0,
        },
        pacing: Pacing {
            batch_max_inputs: MAX_INPUTS,
            batch_max_tokens: MAX_TOKENS,
            concurrency: CONCURRENCY,
            batch_retries: 20,
        },
        ..IngestOptions::default()
    };
    let ingestor =
        Ingestor::new(catalog.clone(), index.clone(), embedder.clone(), options).unwrap();
    let docs = tempfile::tempdir().unwrap();
    write_corpus(docs.path(), 12);

    // Act
    let report = ingestor
        .ingest(&[docs.path().to_path_buf()], &CancellationToken::new())
        .await
        .unwrap();

    // Assert: everything ingested, catalog and index agree.
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.stats.added, 12);
    let state = check(catalog.as_ref(), index.as_ref()).await.unwrap();
    assert!(state.consistent, "{state:#?}");
    assert_eq!(state.index_points, report.stats.chunks);

    // Every chunk was embedded successfully exactly once: a batch that succeeded was never
    // sent again, and each failed one was resent until it succeeded.
    let requests = engine.embedding_requests();
    let mut succeeded: HashMap<&str, usize> = HashMap::new();
    for r in requests.iter().filter(|r| r.succeeded) {
        for input in &r.inputs {
            *succeeded.entry(input.as_str()).or_default() += 1;
        }
    }
    let twice: Vec<_> = succeeded.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "embedded more than once: {twice:?}");
    assert_eq!(succeeded.len() as u64, report.stats.chunks);
    for doc in catalog.list_documents().await.unwrap() {
        for stored in catalog.chunks(&doc.id).await.unwrap() {
            assert!(
                succeeded.keys().any(|t| t.ends_with(&stored.chunk.text)),
                "chunk {} of {} was never embedded",
                stored.chunk.ordinal,
                doc.id
            );
        }
    }
    let failed = requests.iter().filter(|r| !r.succeeded).count() as u64;
    assert!(
        failed >= 3,
        "the fault rate hit only {failed} of {} calls",
        requests.len()
    );
    assert_eq!(
        report.pacing.retries, failed,
        "one resend per rate-limited call"
    );
    assert_eq!(report.stats.embedding_calls, requests.len() as u64);
    assert!(
        report.pacing.retry_wait_ms >= 200 * failed,
        "{:?}",
        report.pacing
    );

    // Both caps held for every call, and the caps were reached.
    for r in &requests {
        let tokens: usize = r.inputs.iter().map(|t| embedder.count_tokens(t)).sum();
        assert!(r.inputs.len() <= MAX_INPUTS, "{} inputs", r.inputs.len());
        assert!(tokens <= MAX_TOKENS, "{tokens} tokens in {:?}", r.inputs);
    }
    assert!(requests.iter().any(|r| r.inputs.len() == MAX_INPUTS));
    // Concurrency was used, and bounded.
    let most = engine.max_embeddings_in_flight();
    assert!(
        (2..=CONCURRENCY).contains(&most),
        "{most} calls in flight at once"
    );
    assert!(report.pacing.max_in_flight <= CONCURRENCY);
    eprintln!(
        "{} calls, {failed} rate limited, {:?}",
        requests.len(),
        report.pacing
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_the_model_refuses_fails_only_its_document() {
    // Arrange: the first call is refused as too long; its batch is resent one chunk at a
    // time, and the chunk that is refused again fails its document alone.
    let engine = FakeEngine::builder().dimensions(8).start().await;
    let embedder = engine_embedder(&engine);
    let catalog = Arc::new(FakeCatalog::default());
    let index = Arc::new(FakeIndex::default());
    let options = IngestOptions {
        pacing: Pacing {
            batch_max_inputs: 8,
            batch_max_tokens: 4096,
            concurrency: 1,
            batch_retries: 0,
        },
        ..IngestOptions::default()
    };
    let ingestor = Ingestor::new(catalog.clone(), index.clone(), embedder, options).unwrap();
    let docs = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(
            docs.path().join(format!("{name}.md")),
            format!("# {name}\n\nText {name}.\n"),
        )
        .unwrap();
    }
    engine.push_fault(Route::Embeddings, Fault::ContextLengthExceeded);
    engine.push_fault(Route::Embeddings, Fault::ContextLengthExceeded);

    // Act
    let report = ingestor
        .ingest(&[docs.path().to_path_buf()], &CancellationToken::new())
        .await
        .unwrap();

    // Assert
    assert_eq!(report.stats.added, 2, "{report:#?}");
    assert_eq!(report.failures.len(), 1);
    assert!(
        report.failures[0].path.ends_with("a.md"),
        "{:?}",
        report.failures
    );
    assert!(
        report.failures[0]
            .reason
            .contains("the embedding model refused it"),
        "{:?}",
        report.failures
    );
    let requests = engine.embedding_requests();
    assert_eq!(
        requests[0].inputs.len(),
        3,
        "one batch of three documents first"
    );
    assert!(requests[1..].iter().all(|r| r.inputs.len() == 1));
    let state = check(catalog.as_ref(), index.as_ref()).await.unwrap();
    assert!(state.consistent, "{state:#?}");
    assert_eq!(state.documents, 2);
}
