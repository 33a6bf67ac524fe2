//! End to end on `tests/fixtures/eval-tiny`: the real SQLite catalog and embedded index in a
//! temp folder, a deterministic bag-of-words embedder.

use kb_catalog::SqliteCatalog;
use kb_core::Retrieval;
use kb_eval::{EvalComponents, EvalError, EvalOptions, EvalReport, run};
use kb_index::EmbeddedIndex;
use kb_ingest::SplitOptions;
use kb_testkit::memory::FakeEmbedder;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DIMS: usize = 256;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/eval-tiny")
}

struct Harness {
    dir: tempfile::TempDir,
    components: EvalComponents,
    embedder: Arc<FakeEmbedder>,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(
        SqliteCatalog::open(&dir.path().join("kb.db"))
            .await
            .unwrap(),
    );
    let index = Arc::new(EmbeddedIndex::open(&dir.path().join("index")).unwrap());
    // Hashed bag of words (`kb_testkit::fake_embedding`); whitespace words are its tokens.
    let embedder = Arc::new(FakeEmbedder::named("bag-of-words").with_bag_of_words(DIMS));
    Harness {
        components: EvalComponents::new(catalog, index, embedder.clone()),
        embedder,
        dir,
    }
}

impl Harness {
    fn options(&self) -> EvalOptions {
        let mut options = EvalOptions::new(self.dir.path().join("scratch"));
        // Small chunks, so that documents have several and hits must be grouped per document.
        options.ingest.split = SplitOptions {
            chunk_tokens: 40,
            overlap_tokens: 0,
        };
        options
    }
}

fn assert_sane(report: &EvalReport) {
    for mode in &report.modes {
        let m = &mode.metrics;
        for (name, v) in [
            ("recall@1", m.recall_at_1),
            ("recall@5", m.recall_at_5),
            ("recall@10", m.recall_at_10),
            ("mrr@10", m.mrr_at_10),
            ("ndcg@10", m.ndcg_at_10),
        ] {
            assert!(
                (0.0..=1.0).contains(&v),
                "{} {name} = {v}\n{report:#?}",
                mode.mode
            );
        }
        assert!(m.recall_at_1 <= m.recall_at_5 && m.recall_at_5 <= m.recall_at_10);
    }
}

#[tokio::test]
async fn an_easy_dataset_scores_high_and_a_second_run_embeds_nothing() {
    let h = harness().await;

    let report = run(&fixture(), h.components.clone(), h.options())
        .await
        .unwrap();
    println!("{}", report.to_markdown());

    assert_eq!(report.dataset.name, "eval-tiny");
    assert_eq!(report.dataset.documents, 8);
    assert_eq!(report.dataset.queries, 6);
    assert_eq!(report.dataset.judgements, 6);
    assert_eq!(report.dataset.evaluated_queries, 5, "q6 has no judgement");
    assert_eq!(report.ingest.added, 8);
    assert!(
        report.ingest.failures.is_empty(),
        "{:?}",
        report.ingest.failures
    );
    assert!(
        report.ingest.chunks > 8,
        "small chunks split some documents"
    );
    let modes: Vec<Retrieval> = report.modes.iter().map(|m| m.mode).collect();
    assert_eq!(modes, Retrieval::ALL);
    assert_sane(&report);
    for mode in &report.modes {
        // The queries share their key words with their documents: BM25 finds them too.
        assert_eq!(
            mode.metrics.recall_at_10, 1.0,
            "{}: {:#?}",
            mode.mode, mode.queries
        );
        assert!(
            mode.metrics.mrr_at_10 >= 0.8,
            "{}: {:#?}",
            mode.mode,
            mode.queries
        );
        assert_eq!(mode.latency.search.samples, 5);
    }
    let dense = &report.modes[0];
    let m = &dense.metrics;
    assert_eq!(m.queries, 5);
    assert_eq!(m.recall_at_10, 1.0, "{report:#?}");
    assert_eq!(
        m.mean_documents_retrieved, 8.0,
        "every document has a chunk in the top 50"
    );
    // The queries share their key words with their documents only.
    assert!(m.mrr_at_10 >= 0.8, "{:#?}", dense.queries);
    assert!(m.ndcg_at_10 >= 0.8, "{:#?}", dense.queries);
    assert_eq!(dense.latency.search.samples, 5);
    assert!(dense.latency.search.p50_ms > 0.0);
    let q4 = dense.queries.iter().find(|q| q.id == "q4").unwrap();
    assert_eq!(q4.relevant, vec!["pol/security#1", "pol/security#2"]);
    assert!(report.answers.is_none());

    let calls = h.embedder.calls();
    let again = run(&fixture(), h.components.clone(), h.options())
        .await
        .unwrap();

    assert_eq!(again.ingest.unchanged, 8);
    assert_eq!(again.ingest.added + again.ingest.updated, 0);
    assert_eq!(again.ingest.embedding_calls, 0);
    assert_eq!(
        h.embedder.calls() - calls,
        15,
        "only the five questions are embedded, once per mode"
    );
    for (a, b) in again.modes.iter().zip(&report.modes) {
        assert_eq!(a.metrics, b.metrics, "{}", a.mode);
    }
}

#[tokio::test]
async fn max_queries_and_answer_checks_are_honoured_and_the_report_renders() {
    let h = harness().await;
    let mut options = h.options();
    options.max_queries = Some(3);
    options.answer_checks = true;
    // Bag-of-words cosines run lower than a real model's.
    options.answer.min_score = 0.1;

    let report = run(&fixture(), h.components.clone(), options)
        .await
        .unwrap();

    assert_eq!(report.dataset.evaluated_queries, 3);
    assert_eq!(report.modes[0].metrics.queries, 3);
    let answers = report.answers.as_ref().unwrap();
    assert_eq!(answers.questions, 3);
    assert_eq!(answers.refused, 0);
    assert_eq!(answers.extractive, 3);
    assert_eq!(answers.citing_relevant, 3, "{answers:#?}");
    assert_eq!(answers.citing_relevant_rate, 1.0);

    let md = report.to_markdown();
    assert!(md.contains("## Retrieval evaluation: eval-tiny"), "{md}");
    assert!(
        md.contains("| mode | nDCG@10 | MRR@10 | R@1 | R@5 | R@10 |"),
        "{md}"
    );
    for mode in ["dense", "sparse", "hybrid"] {
        assert!(md.contains(&format!("\n| {mode} | ")), "{md}");
    }
    assert!(
        !md.contains("Refusal threshold"),
        "no out-of-scope questions: {md}"
    );
    assert!(
        md.contains("Answers: 3 of 3 cite a relevant document"),
        "{md}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["modes"][0]["mode"], "dense");
    assert!(json["modes"][0]["metrics"]["ndcg_at_10"].is_number());
}

#[tokio::test]
async fn documents_outside_the_corpus_are_counted_and_take_their_ranks() {
    let h = harness().await;
    // A document ingested by someone else into the same catalog and index.
    let other = h.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("handbook.md"),
        "# Handbook\n\nParking for bicycles is in the yard.\n",
    )
    .unwrap();
    let ingestor = kb_ingest::Ingestor::new(
        h.components.catalog.clone(),
        h.components.index.clone(),
        h.components.embedder.clone(),
        kb_ingest::IngestOptions::default(),
    )
    .unwrap();
    ingestor
        .ingest(&[other], &Default::default())
        .await
        .unwrap();

    let report = run(&fixture(), h.components.clone(), h.options())
        .await
        .unwrap();

    assert_eq!(report.ingest.foreign_documents, 1);
    assert!(
        report
            .to_markdown()
            .contains("1 documents outside this corpus")
    );
    assert_eq!(report.modes[0].metrics.mean_documents_retrieved, 9.0);
    assert_sane(&report);
}

#[tokio::test]
async fn a_broken_dataset_stops_the_run_before_anything_is_ingested() {
    let h = harness().await;
    let dataset = h.dir.path().join("broken");
    std::fs::create_dir_all(&dataset).unwrap();
    for file in ["corpus.jsonl", "queries.jsonl"] {
        std::fs::copy(fixture().join(file), dataset.join(file)).unwrap();
    }
    std::fs::write(
        dataset.join("qrels.tsv"),
        "query-id\tcorpus-id\tscore\nq1\tpol/remote-work#1\t1\nq2\tpol/missing\t1\n",
    )
    .unwrap();

    let err = run(&dataset, h.components.clone(), h.options())
        .await
        .unwrap_err();

    assert!(matches!(err, EvalError::Parse { line: 3, .. }), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("qrels.tsv:3: corpus-id \"pol/missing\" is not in corpus.jsonl"),
        "{err}"
    );
    assert!(
        h.components
            .catalog
            .list_documents()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_changed_corpus_is_brought_up_to_date_in_the_same_data_folder() {
    let h = harness().await;
    let dataset = h.dir.path().join("tiny-copy");
    std::fs::create_dir_all(&dataset).unwrap();
    for file in ["corpus.jsonl", "queries.jsonl", "qrels.tsv"] {
        std::fs::copy(fixture().join(file), dataset.join(file)).unwrap();
    }
    run(&dataset, h.components.clone(), h.options())
        .await
        .unwrap();
    // Drop the canteen document (judged for no query) and edit the expenses one.
    let corpus = std::fs::read_to_string(dataset.join("corpus.jsonl")).unwrap();
    let corpus: String = corpus
        .lines()
        .filter(|l| !l.contains("pol/canteen#1"))
        .map(|l| l.replace("55 euros per day", "60 euros per day") + "\n")
        .collect();
    std::fs::write(dataset.join("corpus.jsonl"), corpus).unwrap();

    let report = run(&dataset, h.components.clone(), h.options())
        .await
        .unwrap();

    let i = &report.ingest;
    assert_eq!(
        (i.added, i.updated, i.unchanged, i.removed),
        (0, 1, 6, 1),
        "{i:#?}"
    );
    assert_eq!(i.foreign_documents, 0);
    assert_eq!(report.modes[0].metrics.mean_documents_retrieved, 7.0);
    assert_eq!(report.modes[0].metrics.recall_at_10, 1.0);
}

#[tokio::test]
async fn a_cancelled_run_stops_with_interrupted() {
    let h = harness().await;
    let options = h.options();
    options.cancel.cancel();

    let err = run(&fixture(), h.components.clone(), options)
        .await
        .unwrap_err();

    assert!(matches!(err, EvalError::Interrupted), "{err:?}");
}

#[tokio::test]
async fn top_k_zero_is_refused_up_front() {
    let h = harness().await;
    let mut options = h.options();
    options.top_k = 0;

    let err = run(&fixture(), h.components.clone(), options)
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        "invalid evaluation options: top_k: must be at least 1"
    );
}

#[tokio::test]
async fn out_of_scope_questions_calibrate_the_refusal_threshold_per_mode() {
    let h = harness().await;
    let mut options = h.options();
    options.modes = vec![Retrieval::Dense, Retrieval::Hybrid];
    options.out_of_scope = vec![
        "What is the boiling point of mercury in kelvin?".into(),
        "Who won the football world cup in 1998?".into(),
    ];

    let report = run(&fixture(), h.components.clone(), options)
        .await
        .unwrap();

    assert_eq!(report.modes.len(), 2);
    for mode in &report.modes {
        assert_eq!(mode.out_of_scope_questions, 2);
        let rows = &mode.calibration.rows;
        // In-scope questions share words with their documents, out-of-scope ones share none,
        // so with the bag-of-words embedder the first answers at low thresholds and the second
        // is refused at any threshold above zero.
        assert_eq!(rows[0].in_scope_answered, 1.0, "{}: {rows:#?}", mode.mode);
        assert!(
            rows.iter().all(|r| r.out_of_scope_refused == 1.0),
            "{rows:#?}"
        );
        assert!(
            rows.windows(2)
                .all(|w| w[1].in_scope_answered <= w[0].in_scope_answered),
            "answered falls as the threshold rises: {rows:#?}"
        );
        let best = mode.calibration.best_balanced.expect("a best threshold");
        assert_eq!(best.in_scope_answered, 1.0, "{best:?}");
        for q in &mode.queries {
            let best = q.cosines.best.expect("every query retrieves something");
            assert!(q.cosines.best_relevant.is_some_and(|r| r <= best), "{q:#?}");
        }
    }
    let md = report.to_markdown();
    assert!(md.contains("| min_score | dense | hybrid |"), "{md}");
    assert!(md.contains("| 0.10 | 100% / 100% / 100% |"), "{md}");
    assert!(md.contains("Best balanced accuracy"), "{md}");
}

#[tokio::test]
async fn no_retrieval_mode_is_refused_up_front() {
    let h = harness().await;
    let mut options = h.options();
    options.modes.clear();

    let err = run(&fixture(), h.components.clone(), options)
        .await
        .unwrap_err();

    assert!(
        err.to_string().contains("modes: name at least one"),
        "{err}"
    );
}
