//! One evaluation: load the dataset, ingest its corpus through kb, run every query, score.

use crate::calibration::{Calibration, InScopeCosines};
use crate::corpus;
use crate::dataset::{Dataset, Query};
use crate::error::EvalError;
use crate::metrics::{Metrics, Percentiles, QueryScores, first_relevant_rank};
use crate::report::{
    AnswerChecks, DatasetSummary, EmbedderSummary, EvalReport, IngestSummary, Latency, ModeReport,
    QueryOutcome,
};
use kb_answer::{AnswerOptions, Answerer, AskRequest, Mode};
use kb_core::{Catalog, ChatModel, DocumentId, Embedder, Filter, Hit, Retrieval, VectorIndex};
use kb_ingest::{IngestOptions, Ingestor};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// The adapters an evaluation runs over. Give it a data folder of its own: documents already
/// catalogued that are not in the corpus compete in every search (the report counts them).
#[derive(Debug, Clone)]
pub struct EvalComponents {
    pub catalog: Arc<dyn Catalog>,
    pub index: Arc<dyn VectorIndex>,
    pub embedder: Arc<dyn Embedder>,
    /// Used by the answer checks only (generative answers); `None`: extractive answers.
    pub chat: Option<Arc<dyn ChatModel>>,
}

impl EvalComponents {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        index: Arc<dyn VectorIndex>,
        embedder: Arc<dyn Embedder>,
    ) -> Self {
        Self {
            catalog,
            index,
            embedder,
            chat: None,
        }
    }

    pub fn with_chat(mut self, chat: Option<Arc<dyn ChatModel>>) -> Self {
        self.chat = chat;
        self
    }
}

/// Settings of an evaluation.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The corpus is written here as Markdown files (`{scratch_dir}/corpus/`), replacing what
    /// was there. Keep it, with the data folder, to skip re-embedding on the next run.
    pub scratch_dir: PathBuf,
    /// Chunks retrieved per query. Several chunks may come from one document, so this should
    /// be well above 10 for the @10 metrics to see 10 documents.
    pub top_k: usize,
    /// Evaluate only the first judged queries (in file order).
    pub max_queries: Option<usize>,
    /// Retrieval modes to evaluate, each a row of the report.
    pub modes: Vec<Retrieval>,
    /// Questions the corpus does not answer: each mode searches them too, and the report
    /// sweeps `answer.min_score` over in-scope and out-of-scope questions (see
    /// [`crate::calibration`]).
    pub out_of_scope: Vec<String>,
    /// How the corpus is ingested (`prune` is forced on and `dry_run` off).
    pub ingest: IngestOptions,
    /// Also run `Answerer::ask` for every query and check the citations.
    pub answer_checks: bool,
    /// Options of the answerer used by the answer checks (min score, mode, top_k).
    pub answer: AnswerOptions,
    /// Stops the run between documents and between queries.
    pub cancel: CancellationToken,
}

impl EvalOptions {
    pub const DEFAULT_TOP_K: usize = 50;

    pub fn new(scratch_dir: impl Into<PathBuf>) -> Self {
        Self {
            scratch_dir: scratch_dir.into(),
            top_k: Self::DEFAULT_TOP_K,
            max_queries: None,
            modes: Retrieval::ALL.to_vec(),
            out_of_scope: Vec::new(),
            ingest: IngestOptions::default(),
            answer_checks: false,
            answer: AnswerOptions::default(),
            cancel: CancellationToken::new(),
        }
    }
}

/// Evaluate retrieval (and optionally answers) over the BEIR-layout dataset in `dataset_dir`.
pub async fn run(
    dataset_dir: &Path,
    components: EvalComponents,
    options: EvalOptions,
) -> Result<EvalReport, EvalError> {
    let span = info_span!("eval", dataset = %dataset_dir.display());
    run_inner(dataset_dir, components, options)
        .instrument(span)
        .await
}

async fn run_inner(
    dataset_dir: &Path,
    c: EvalComponents,
    options: EvalOptions,
) -> Result<EvalReport, EvalError> {
    let started = Instant::now();
    if options.top_k == 0 {
        return Err(EvalError::Options("top_k: must be at least 1".into()));
    }
    if options.modes.is_empty() {
        return Err(EvalError::Options(
            "modes: name at least one retrieval mode".into(),
        ));
    }
    let dir = dataset_dir.to_owned();
    let dataset = tokio::task::spawn_blocking(move || Dataset::load(&dir))
        .await
        .expect("BUG: dataset loading panicked")?;
    let queries: Vec<&Query> = dataset
        .judged_queries()
        .take(options.max_queries.unwrap_or(usize::MAX))
        .collect();
    info!(
        documents = dataset.corpus.len(),
        queries = queries.len(),
        "dataset loaded"
    );

    let (ingest, doc_ids) = ingest_corpus(&dataset, &c, &options).await?;

    let search_options = AnswerOptions {
        top_k: options.top_k,
        max_top_k: options.top_k.max(100),
        max_question_chars: usize::MAX,
        ..options.answer.clone()
    };
    let answerer = Answerer::new(c.embedder.clone(), c.index.clone(), None, search_options);
    let mut modes = Vec::with_capacity(options.modes.len());
    for &mode in &options.modes {
        let span = info_span!("mode", %mode);
        let report = evaluate_mode(mode, &dataset, &queries, &answerer, &doc_ids, &options)
            .instrument(span)
            .await?;
        info!(%mode, ndcg_at_10 = report.metrics.ndcg_at_10, "mode evaluated");
        modes.push(report);
    }

    let answers = if options.answer_checks {
        let answerer = Answerer::new(
            c.embedder.clone(),
            c.index.clone(),
            c.chat.clone(),
            AnswerOptions {
                max_question_chars: usize::MAX,
                ..options.answer.clone()
            },
        );
        Some(check_answers(&dataset, &queries, &answerer, &doc_ids, &options).await?)
    } else {
        None
    };

    Ok(EvalReport {
        dataset: DatasetSummary {
            name: dataset.name.clone(),
            path: dataset.dir.display().to_string(),
            documents: dataset.corpus.len(),
            queries: dataset.queries.len(),
            judgements: dataset.qrels_count,
            evaluated_queries: queries.len(),
        },
        embedder: EmbedderSummary {
            model: c.embedder.model_id(),
            dimensions: c.embedder.dimensions(),
        },
        top_k: options.top_k,
        answer_top_k: options.answer.top_k,
        ingest,
        modes,
        answers,
        total_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Write the corpus as files and ingest them; returns the summary and document id → corpus id.
async fn ingest_corpus(
    dataset: &Dataset,
    c: &EvalComponents,
    options: &EvalOptions,
) -> Result<(IngestSummary, HashMap<DocumentId, String>), EvalError> {
    let folder = options.scratch_dir.join("corpus");
    let docs = dataset.corpus.clone();
    let target = folder.clone();
    let doc_ids = tokio::task::spawn_blocking(move || corpus::write(&target, &docs))
        .await
        .expect("BUG: writing the corpus panicked")
        .map_err(|source| EvalError::Scratch {
            path: folder.clone(),
            source,
        })?;

    let mut ingest_options = options.ingest.clone();
    ingest_options.prune = true;
    ingest_options.dry_run = false;
    let ingestor = Ingestor::new(
        c.catalog.clone(),
        c.index.clone(),
        c.embedder.clone(),
        ingest_options,
    )?;
    info!(folder = %folder.display(), "ingesting the corpus");
    let report = ingestor.ingest(&[folder], &options.cancel).await?;
    if report.interrupted {
        return Err(EvalError::Interrupted);
    }
    for failure in &report.failures {
        warn!(path = %failure.path, reason = %failure.reason, "corpus document skipped");
    }
    let foreign_documents = c
        .catalog
        .list_documents()
        .await?
        .iter()
        .filter(|d| !doc_ids.contains_key(&d.id))
        .count();
    if foreign_documents > 0 {
        warn!(
            foreign_documents,
            "the catalog holds documents outside the corpus; they compete in every search"
        );
    }
    let s = &report.stats;
    let summary = IngestSummary {
        added: s.added,
        updated: s.updated,
        unchanged: s.unchanged,
        removed: s.removed,
        chunks: s.chunks,
        tokens: s.tokens,
        embedding_calls: s.embedding_calls,
        embed_ms: report.timings.embed_ms,
        total_ms: report.timings.total_ms,
        failures: report.failures,
        foreign_documents,
    };
    info!(
        added = s.added,
        unchanged = s.unchanged,
        embedding_calls = s.embedding_calls,
        total_ms = summary.total_ms,
        "corpus ingested"
    );
    Ok((summary, doc_ids))
}

/// Documents behind chunk hits, best first, each scored by its best chunk. Documents outside
/// the corpus keep their kb id, marked, so that they still take their rank.
pub(crate) fn rank_documents(
    hits: &[Hit],
    doc_ids: &HashMap<DocumentId, String>,
) -> Vec<(String, f32)> {
    let mut best: Vec<(String, f32)> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for hit in hits {
        let id = doc_ids
            .get(&hit.payload.doc_id)
            .cloned()
            .unwrap_or_else(|| format!("(not in corpus) {}", hit.payload.doc_id));
        match position.get(&id) {
            Some(&i) => best[i].1 = best[i].1.max(hit.score),
            None => {
                position.insert(id.clone(), best.len());
                best.push((id, hit.score));
            }
        }
    }
    // Stable: equal scores keep the index's order.
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    best
}

/// Best cosine among the sources an answer would get: the first `answer_top_k` chunks, all of
/// them or only those of a relevant document.
fn best_cosine<'a>(
    hits: &'a [Hit],
    answer_top_k: usize,
    mut keep: impl FnMut(&'a Hit) -> bool,
) -> Option<f32> {
    hits.iter()
        .take(answer_top_k)
        .filter(|hit| keep(hit))
        .map(|hit| hit.cosine)
        .reduce(f32::max)
}

async fn evaluate_mode(
    mode: Retrieval,
    dataset: &Dataset,
    queries: &[&Query],
    answerer: &Answerer,
    doc_ids: &HashMap<DocumentId, String>,
    options: &EvalOptions,
) -> Result<ModeReport, EvalError> {
    let answer_top_k = options.answer.top_k;
    let filter = Filter::default();
    let mut outcomes = Vec::with_capacity(queries.len());
    let (mut total, mut embed, mut index) = (Vec::new(), Vec::new(), Vec::new());
    for (n, query) in queries.iter().enumerate() {
        if options.cancel.is_cancelled() {
            return Err(EvalError::Interrupted);
        }
        let t = Instant::now();
        let (hits, _, timings) = answerer
            .search(&query.text, &filter, Some(options.top_k), Some(mode))
            .await
            .map_err(|source| EvalError::Query {
                query_id: query.id.clone(),
                source,
            })?;
        let latency_ms = t.elapsed().as_secs_f64() * 1000.0;
        total.push(latency_ms);
        embed.push(timings.embed_ms);
        index.push(timings.search_ms);

        let ranked = rank_documents(&hits, doc_ids);
        let ids: Vec<&str> = ranked.iter().map(|(id, _)| id.as_str()).collect();
        let relevant = dataset.relevant(&query.id);
        let mut relevant_sorted: Vec<String> = relevant.iter().cloned().collect();
        relevant_sorted.sort();
        let cosines = InScopeCosines {
            best: best_cosine(&hits, answer_top_k, |_| true),
            best_relevant: best_cosine(&hits, answer_top_k, |hit| {
                doc_ids
                    .get(&hit.payload.doc_id)
                    .is_some_and(|id| relevant.contains(id))
            }),
        };
        outcomes.push(QueryOutcome {
            id: query.id.clone(),
            text: query.text.clone(),
            first_relevant_rank: first_relevant_rank(&ids, &relevant),
            scores: QueryScores::compute(&ids, &relevant),
            documents_retrieved: ranked.len(),
            top: ranked.into_iter().take(10).collect(),
            relevant: relevant_sorted,
            cosines,
            latency_ms,
        });
        if (n + 1) % 20 == 0 {
            info!(done = n + 1, of = queries.len(), "queries searched");
        }
    }
    let mut out_of_scope = Vec::with_capacity(options.out_of_scope.len());
    for (n, question) in options.out_of_scope.iter().enumerate() {
        if options.cancel.is_cancelled() {
            return Err(EvalError::Interrupted);
        }
        let (hits, _, _) = answerer
            .search(question, &filter, Some(options.top_k), Some(mode))
            .await
            .map_err(|source| EvalError::Query {
                query_id: format!("out-of-scope #{}", n + 1),
                source,
            })?;
        out_of_scope.push(best_cosine(&hits, answer_top_k, |_| true));
    }
    let scores: Vec<QueryScores> = outcomes.iter().map(|o| o.scores.clone()).collect();
    let documents: Vec<usize> = outcomes.iter().map(|o| o.documents_retrieved).collect();
    let in_scope: Vec<InScopeCosines> = outcomes.iter().map(|o| o.cosines).collect();
    Ok(ModeReport {
        mode,
        calibration: Calibration::sweep(&in_scope, &out_of_scope),
        out_of_scope_questions: out_of_scope.len(),
        metrics: Metrics::mean(&scores, &documents),
        latency: Latency {
            search: Percentiles::of(&total),
            embed: Percentiles::of(&embed),
            index: Percentiles::of(&index),
        },
        queries: outcomes,
    })
}

async fn check_answers(
    dataset: &Dataset,
    queries: &[&Query],
    answerer: &Answerer,
    doc_ids: &HashMap<DocumentId, String>,
    options: &EvalOptions,
) -> Result<AnswerChecks, EvalError> {
    let mut checks = AnswerChecks {
        min_score: answerer.options().min_score,
        questions: queries.len(),
        ..AnswerChecks::default()
    };
    let mut latency = Vec::with_capacity(queries.len());
    for query in queries {
        if options.cancel.is_cancelled() {
            return Err(EvalError::Interrupted);
        }
        let t = Instant::now();
        let answer = answerer
            .ask(&AskRequest {
                question: query.text.clone(),
                top_k: None,
                filter: Filter::default(),
                retrieval: None,
            })
            .await
            .map_err(|source| EvalError::Query {
                query_id: query.id.clone(),
                source,
            })?;
        latency.push(t.elapsed().as_secs_f64() * 1000.0);
        match answer.mode {
            Mode::NotFound => checks.refused += 1,
            Mode::Generative => checks.generative += 1,
            Mode::Extractive => checks.extractive += 1,
        }
        checks.removed_citations += answer.removed_citations;
        let relevant = dataset.relevant(&query.id);
        let cited: HashSet<&String> = answer
            .citations
            .iter()
            .filter_map(|c| doc_ids.get(&DocumentId::new(c.document.clone())))
            .collect();
        if cited.iter().any(|id| relevant.contains(*id)) {
            checks.citing_relevant += 1;
        }
    }
    checks.citing_relevant_rate = if checks.questions == 0 {
        0.0
    } else {
        checks.citing_relevant as f64 / checks.questions as f64
    };
    checks.latency = Percentiles::of(&latency);
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_core::ChunkPayload;
    use uuid::Uuid;

    fn hit(doc: &str, ordinal: u32, score: f32) -> Hit {
        Hit {
            id: Uuid::nil(),
            score,
            cosine: score,
            payload: ChunkPayload {
                doc_id: DocumentId::new(doc),
                doc_hash: String::new(),
                ordinal,
                title: String::new(),
                path: String::new(),
                heading_path: Vec::new(),
                text: String::new(),
                byte_start: 0,
                byte_end: 0,
                location: None,
                groups: Vec::new(),
                meta: kb_core::DocumentMeta::default(),
            },
        }
    }

    #[test]
    fn chunk_hits_become_documents_scored_by_their_best_chunk() {
        let ids = HashMap::from([
            (DocumentId::new("a.md"), "a".to_owned()),
            (DocumentId::new("b.md"), "b".to_owned()),
        ]);
        let hits = [
            hit("b.md", 0, 0.9),
            hit("a.md", 1, 0.8),
            hit("b.md", 3, 0.7),
            hit("other.md", 0, 0.6),
            hit("a.md", 0, 0.5),
        ];

        let ranked = rank_documents(&hits, &ids);

        assert_eq!(
            ranked,
            vec![
                ("b".to_owned(), 0.9),
                ("a".to_owned(), 0.8),
                ("(not in corpus) other.md".to_owned(), 0.6),
            ]
        );
    }
}
