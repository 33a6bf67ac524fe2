//! The ledger over a real database: batched writes, drops, flush on close, the catalog
//! sharing the database, and the sums `kb usage` prints.
//!
//! The cases of [`ledger_suite!`] run on a fresh SQLite file and on a fresh Postgres database
//! (from `KB_TEST_POSTGRES_URL`; skipped with a message without it, failed when
//! `KB_REQUIRE_POSTGRES=1`); `sqlite_only` and `postgres_only` test what differs.

use chrono::{TimeZone, Utc};
use kb_catalog::testing::TestDatabase;
use kb_engine::{CallRecord, ModelKind, UsageRecorder};
use kb_usage::{GroupBy, Price, Since, UsageConfig, UsageDb, UsageLedger, report};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fresh ledger database of one backend, and what keeps its storage alive.
struct Harness {
    db: UsageDb,
    _dir: Option<tempfile::TempDir>,
    database: Option<TestDatabase>,
}

impl Harness {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = UsageDb::open(&dir.path().join("kb.db")).await.unwrap();
        Self {
            db,
            _dir: Some(dir),
            database: None,
        }
    }

    async fn postgres(test: &str) -> Option<Self> {
        let database = TestDatabase::create(test).await?;
        let db = UsageDb::open_postgres(database.url()).await.unwrap();
        Some(Self {
            db,
            _dir: None,
            database: Some(database),
        })
    }
}

macro_rules! ledger_suite {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let harness = super::Harness::sqlite().await;
                    super::$case(&harness.db).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(harness) = super::Harness::postgres(stringify!($case)).await else {
                        return;
                    };
                    super::$case(&harness.db).await;
                    harness.db.close().await;
                }
            )+
        }
    };
}

/// Write the sample calls into `db`.
async fn sample(db: &UsageDb) {
    write(
        db,
        &[
            // Day one (2026-11-25): a retried chat call, then embeddings.
            call(0, "a", "gpt", ModelKind::Chat, (0, 0), 900, "429"),
            call(1, "b", "gpt", ModelKind::Chat, (1_000, 500), 100, "ok"),
            call(2, "b", "e5", ModelKind::Embed, (2_000, 0), 10, "ok"),
            call(3, "a", "e5", ModelKind::Embed, (0, 0), 400, "timeout"),
            // Day two (2026-11-26).
            call(
                24 * 60,
                "a",
                "gpt",
                ModelKind::Chat,
                (3_000, 1_000),
                300,
                "ok",
            ),
            call(
                24 * 60 + 1,
                "b",
                "e5",
                ModelKind::Embed,
                (1_000, 0),
                20,
                "ok",
            ),
        ],
    )
    .await;
}

ledger_suite!(
    close_writes_every_queued_record_in_batches,
    a_full_queue_drops_and_counts_records_without_waiting,
    records_after_close_are_dropped_and_counted,
    report_by_model_sums_calls_failures_tokens_and_cost,
    report_by_endpoint_day_and_kind,
    report_since_leaves_older_calls_out,
    a_model_without_a_price_has_no_cost_and_is_named,
    an_empty_ledger_reports_zero_calls,
);

/// 2026-11-25 10:00:00 UTC, plus `minutes`.
fn at(minutes: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_600_800 + minutes * 60)
}

fn call(
    minutes: u64,
    endpoint: &str,
    model: &str,
    kind: ModelKind,
    tokens: (u64, u64),
    latency_ms: u64,
    outcome: &str,
) -> CallRecord {
    CallRecord {
        at: at(minutes),
        endpoint: endpoint.to_owned(),
        model: model.to_owned(),
        kind,
        prompt_tokens: tokens.0,
        completion_tokens: tokens.1,
        latency_ms,
        outcome: outcome.to_owned(),
    }
}

/// Write `records` through a ledger and close it.
async fn write(db: &UsageDb, records: &[CallRecord]) {
    let ledger = UsageLedger::start(db.clone(), &UsageConfig::default());
    let recorder = ledger.recorder();
    for r in records {
        recorder.record(r);
    }
    ledger.close().await;
    assert_eq!(ledger.stats().written, records.len() as u64);
}

fn prices(items: &[(&str, f64, f64)]) -> BTreeMap<String, Price> {
    items
        .iter()
        .map(|(model, input, output)| {
            (
                (*model).to_owned(),
                Price {
                    input_per_million: *input,
                    output_per_million: *output,
                },
            )
        })
        .collect()
}

async fn close_writes_every_queued_record_in_batches(db: &UsageDb) {
    // Arrange
    let config = UsageConfig {
        batch_size: 7,
        ..UsageConfig::default()
    };
    let ledger = UsageLedger::start(db.clone(), &config);
    let recorder = ledger.recorder();

    // Act
    for i in 0..500 {
        recorder.record(&call(i, "a", "m", ModelKind::Chat, (1, 1), 5, "ok"));
    }
    ledger.close().await;

    // Assert
    let stats = ledger.stats();
    assert_eq!((stats.written, stats.dropped, stats.failed), (500, 0, 0));
    let total = report(db, None, GroupBy::Model, &BTreeMap::new())
        .await
        .unwrap()
        .total;
    assert_eq!(total.calls, 500);
}

async fn a_full_queue_drops_and_counts_records_without_waiting(db: &UsageDb) {
    // Arrange: on this single-threaded runtime the writer cannot run while the loop records.
    let config = UsageConfig {
        queue_capacity: 8,
        ..UsageConfig::default()
    };
    let ledger = UsageLedger::start(db.clone(), &config);
    let recorder = ledger.recorder();

    // Act
    for i in 0..100 {
        recorder.record(&call(i, "a", "m", ModelKind::Embed, (1, 0), 5, "ok"));
    }
    ledger.close().await;

    // Assert
    let stats = ledger.stats();
    assert_eq!((stats.written, stats.dropped), (8, 92));
}

async fn records_after_close_are_dropped_and_counted(db: &UsageDb) {
    // Arrange
    let ledger = UsageLedger::start(db.clone(), &UsageConfig::default());
    let recorder = ledger.recorder();
    ledger.close().await;

    // Act
    recorder.record(&call(0, "a", "m", ModelKind::Chat, (1, 1), 5, "ok"));
    ledger.close().await;

    // Assert
    assert_eq!(ledger.stats().dropped, 1);
    assert_eq!(ledger.stats().written, 0);
}

async fn report_by_model_sums_calls_failures_tokens_and_cost(db: &UsageDb) {
    // Arrange
    sample(db).await;
    let prices = prices(&[("gpt", 1.0, 4.0), ("e5", 0.5, 0.0)]);

    // Act
    let report = report(db, None, GroupBy::Model, &prices).await.unwrap();

    // Assert
    let keys: Vec<&str> = report.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["e5", "gpt"]);
    let gpt = &report.rows[1];
    assert_eq!((gpt.calls, gpt.failures), (3, 1));
    assert_eq!((gpt.prompt_tokens, gpt.completion_tokens), (4_000, 1_500));
    // 4000 * 1 / 1e6 + 1500 * 4 / 1e6
    assert!((gpt.cost.unwrap() - 0.01).abs() < 1e-12, "{gpt:?}");
    // Successful chat latencies 100 and 300: p50 = 100, p95 = 300 (nearest rank).
    assert_eq!(
        (gpt.latency_p50_ms, gpt.latency_p95_ms),
        (Some(100), Some(300))
    );
    let total = &report.total;
    assert_eq!(
        (total.key.as_str(), total.calls, total.failures),
        ("total", 6, 2)
    );
    assert!((total.cost.unwrap() - 0.0115).abs() < 1e-12, "{total:?}");
    assert_eq!(
        (total.latency_p50_ms, total.latency_p95_ms),
        (Some(20), Some(300))
    );
    assert!(report.unpriced_models.is_empty());
}

async fn report_by_endpoint_day_and_kind(db: &UsageDb) {
    // Arrange
    sample(db).await;
    let none = BTreeMap::new();

    // Act
    let by_endpoint = report(db, None, GroupBy::Endpoint, &none).await.unwrap();
    let by_day = report(db, None, GroupBy::Day, &none).await.unwrap();
    let by_kind = report(db, None, GroupBy::Kind, &none).await.unwrap();

    // Assert
    let summary = |r: &kb_usage::UsageReport| -> Vec<(String, u64, u64)> {
        r.rows
            .iter()
            .map(|row| (row.key.clone(), row.calls, row.failures))
            .collect()
    };
    let owned = |items: &[(&str, u64, u64)]| -> Vec<(String, u64, u64)> {
        items
            .iter()
            .map(|(k, c, f)| ((*k).to_owned(), *c, *f))
            .collect()
    };
    assert_eq!(summary(&by_endpoint), owned(&[("a", 3, 2), ("b", 3, 0)]));
    assert_eq!(
        summary(&by_day),
        owned(&[("2026-11-25", 4, 2), ("2026-11-26", 2, 0)])
    );
    assert_eq!(summary(&by_kind), owned(&[("chat", 3, 1), ("embed", 3, 1)]));
    // Endpoint a's only successful call is day two's chat: its latency is both percentiles.
    assert_eq!(by_endpoint.rows[0].latency_p50_ms, Some(300));
}

async fn report_since_leaves_older_calls_out(db: &UsageDb) {
    // Arrange
    sample(db).await;
    let since = Since::parse(
        "2026-11-26",
        Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap(),
    )
    .unwrap();

    // Act
    let report = report(db, Some(since), GroupBy::Model, &BTreeMap::new())
        .await
        .unwrap();

    // Assert
    assert_eq!(report.total.calls, 2);
    assert_eq!(report.total.prompt_tokens, 4_000);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["since"], "2026-11-26T00:00:00Z");
    assert_eq!(json["by"], "model");
}

async fn a_model_without_a_price_has_no_cost_and_is_named(db: &UsageDb) {
    // Arrange
    sample(db).await;
    let prices = prices(&[("gpt", 1.0, 4.0)]);

    // Act
    let report = report(db, None, GroupBy::Model, &prices).await.unwrap();

    // Assert
    assert_eq!(report.unpriced_models, ["e5"]);
    assert_eq!(report.rows[0].cost, None);
    assert!(report.rows[1].cost.is_some());
    assert_eq!(report.total.cost, None);
}

async fn an_empty_ledger_reports_zero_calls(db: &UsageDb) {
    // Arrange

    // Act
    let report = report(db, None, GroupBy::Day, &BTreeMap::new())
        .await
        .unwrap();

    // Assert
    assert!(report.rows.is_empty());
    assert_eq!(report.total.calls, 0);
    assert_eq!(report.total.cost, Some(0.0));
    assert_eq!(report.total.latency_p50_ms, None);
}

mod sqlite_only {
    use super::*;

    #[tokio::test]
    async fn the_ledger_and_the_catalog_share_one_file_and_one_migration_set() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kb.db");

        // Act: the catalog migrates first, the ledger finds nothing to do, and the other way round.
        let catalog = kb_catalog::SqliteCatalog::open(&path).await.unwrap();
        let db = UsageDb::open(&path).await.unwrap();
        write(&db, &[call(0, "a", "m", ModelKind::Chat, (1, 1), 5, "ok")]).await;
        catalog.close().await;
        db.close().await;
        let other = dir.path().join("other.db");
        let db = UsageDb::open(&other).await.unwrap();
        let catalog = kb_catalog::SqliteCatalog::open(&other).await.unwrap();

        // Assert
        assert!(catalog.ping().await.is_ok());
        let again = UsageDb::open_existing(&path).await.unwrap();
        let total = report(&again, None, GroupBy::Kind, &BTreeMap::new())
            .await
            .unwrap()
            .total;
        assert_eq!(total.calls, 1);
        drop(db);
    }

    #[tokio::test]
    async fn open_existing_refuses_a_missing_file() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.db");

        // Act
        let err = UsageDb::open_existing(&path).await.unwrap_err().to_string();

        // Assert
        assert!(err.contains("none.db"), "{err}");
        assert!(!path.exists());
    }
}

mod postgres_only {
    use super::*;
    use kb_catalog::{CatalogStore, NewKey, PgCatalog};
    use kb_core::{AccessRole, Catalog, KeyStore};

    #[tokio::test]
    async fn the_ledger_and_the_catalog_share_one_database_and_one_migration_set() {
        // Arrange: the ledger migrates the database first, the catalog finds nothing to do.
        let Some(harness) = Harness::postgres("ledger_and_catalog_share").await else {
            return;
        };
        let url = harness.database.as_ref().unwrap().url();

        // Act
        let catalog = PgCatalog::open(url).await.unwrap();
        write(
            &harness.db,
            &[call(0, "a", "m", ModelKind::Chat, (1, 1), 5, "ok")],
        )
        .await;
        let again = UsageDb::open_at(&kb_catalog::CatalogLocation::Postgres(url.clone()))
            .await
            .unwrap();

        // Assert
        assert!(catalog.ping().await.is_ok());
        let total = report(&again, None, GroupBy::Kind, &BTreeMap::new())
            .await
            .unwrap()
            .total;
        assert_eq!(total.calls, 1);
        again.close().await;
        catalog.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_write_the_ledger_keys_and_documents_at_once_and_nothing_is_lost() {
        // Arrange: four processes, each with its catalog and ledger on one database.
        const REPLICAS: usize = 4;
        const CALLS: u64 = 300;
        let Some(harness) = Harness::postgres("replicas_write_at_once").await else {
            return;
        };
        let url = harness.database.as_ref().unwrap().url().clone();

        // Act
        let mut replicas = tokio::task::JoinSet::new();
        for replica in 0..REPLICAS {
            let url = url.clone();
            replicas.spawn(async move {
                let catalog = CatalogStore::Postgres(PgCatalog::open(&url).await.unwrap());
                let db = UsageDb::open_postgres(&url).await.unwrap();
                let config = UsageConfig {
                    batch_size: 16,
                    ..UsageConfig::default()
                };
                let ledger = UsageLedger::start(db.clone(), &config);
                let recorder = ledger.recorder();
                let run = catalog.start_run().await.unwrap();
                for i in 0..CALLS {
                    let endpoint = format!("replica-{replica}");
                    recorder.record(&call(i, &endpoint, "m", ModelKind::Embed, (10, 0), 3, "ok"));
                    if i % 30 == 0 {
                        let (key, _) = catalog
                            .issue_key(&NewKey {
                                name: format!("r{replica}-{i}"),
                                role: AccessRole::Reader,
                                groups: Vec::new(),
                            })
                            .await
                            .unwrap();
                        catalog.revoke_key(&key.id).await.unwrap().unwrap();
                        let doc = kb_core::DocumentRecord {
                            id: kb_core::DocumentId::new(format!("r{replica}/{i}.md")),
                            path: format!("/docs/r{replica}/{i}.md"),
                            title: "T".into(),
                            content_hash: "v1".into(),
                            size_bytes: 1,
                            text_bytes: 1,
                            chunk_count: 0,
                            groups: vec!["all".into()],
                            meta: kb_core::DocumentMeta::default(),
                            created_at: 0,
                            updated_at: 0,
                            source: None,
                        };
                        catalog.commit_document(&doc, &[]).await.unwrap();
                        tokio::task::yield_now().await;
                    }
                }
                ledger.close().await;
                catalog
                    .finish_run(run, "completed", &kb_core::RunStats::default())
                    .await
                    .unwrap();
                let stats = ledger.stats();
                db.close().await;
                catalog.close().await;
                stats
            });
        }
        let stats = replicas.join_all().await;

        // Assert
        for s in &stats {
            assert_eq!((s.written, s.dropped, s.failed), (CALLS, 0, 0), "{s:?}");
        }
        let by_endpoint = report(&harness.db, None, GroupBy::Endpoint, &BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(by_endpoint.rows.len(), REPLICAS);
        assert!(by_endpoint.rows.iter().all(|r| r.calls == CALLS));
        let catalog = PgCatalog::open(&url).await.unwrap();
        let keys = catalog.list_keys().await.unwrap();
        assert_eq!(keys.len(), REPLICAS * CALLS.div_ceil(30) as usize);
        assert!(keys.iter().all(|k| k.revoked_at.is_some()));
        assert_eq!(
            catalog.list_documents().await.unwrap().len(),
            REPLICAS * CALLS.div_ceil(30) as usize
        );
        let runs = catalog.list_runs(10).await.unwrap();
        assert!(runs.len() == REPLICAS && runs.iter().all(|r| r.status == "completed"));
        catalog.close().await;
    }
}
