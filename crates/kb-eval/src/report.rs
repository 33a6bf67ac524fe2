//! What an evaluation reports: JSON (serde) for machines, [`EvalReport::to_markdown`] for people.

use crate::calibration::{Calibration, InScopeCosines};
use crate::metrics::{Metrics, Percentiles, QueryScores};
use kb_core::Retrieval;
use kb_ingest::FileFailure;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub dataset: DatasetSummary,
    pub embedder: EmbedderSummary,
    /// Chunks retrieved per query.
    pub top_k: usize,
    /// Sources an answer gets (`answer.top_k`): the calibration looks at these.
    pub answer_top_k: usize,
    pub ingest: IngestSummary,
    pub modes: Vec<ModeReport>,
    /// Present when answer checks were asked for.
    pub answers: Option<AnswerChecks>,
    /// Wall time of the whole evaluation, ingest included.
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetSummary {
    pub name: String,
    pub path: String,
    pub documents: usize,
    /// Queries in `queries.jsonl`.
    pub queries: usize,
    /// Judgement lines in the qrels file.
    pub judgements: usize,
    /// Queries run: those with a relevant document, cut at `max_queries`.
    pub evaluated_queries: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbedderSummary {
    pub model: String,
    pub dimensions: usize,
}

/// What ingesting the corpus did (all `unchanged` and no embedding call when the data folder
/// already held this corpus).
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestSummary {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub chunks: u64,
    pub tokens: u64,
    pub embedding_calls: u64,
    pub embed_ms: u64,
    pub total_ms: u64,
    /// Corpus documents kb skipped (they can never be retrieved, which the metrics show).
    pub failures: Vec<FileFailure>,
    /// Catalogued documents that are not part of this corpus (they compete in every search:
    /// evaluate over a data folder of its own).
    pub foreign_documents: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    pub mode: Retrieval,
    pub metrics: Metrics,
    /// Out-of-scope questions searched for the calibration.
    pub out_of_scope_questions: usize,
    /// The `answer.min_score` sweep over this mode's sources.
    pub calibration: Calibration,
    pub latency: Latency,
    pub queries: Vec<QueryOutcome>,
}

/// Latency of the search call per query: all of it, and its two parts.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Question embedding plus index search, as a caller of `Answerer::search` sees it.
    pub search: Percentiles,
    pub embed: Percentiles,
    pub index: Percentiles,
}

/// One query's result.
#[derive(Debug, Clone, Serialize)]
pub struct QueryOutcome {
    pub id: String,
    pub text: String,
    pub relevant: Vec<String>,
    /// Best documents first (at most 10), each with its best chunk's score.
    pub top: Vec<(String, f32)>,
    /// Rank of the first relevant document among all retrieved ones.
    pub first_relevant_rank: Option<usize>,
    pub documents_retrieved: usize,
    pub scores: QueryScores,
    /// Best cosines among the sources an answer would get (the first `answer.top_k` chunks).
    pub cosines: InScopeCosines,
    pub latency_ms: f64,
}

/// Answers checked without a judge model: does each cite a relevant document?
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnswerChecks {
    /// `answer.min_score` the answers were given with.
    pub min_score: f32,
    pub questions: usize,
    /// Answers that cite at least one document judged relevant.
    pub citing_relevant: usize,
    /// `citing_relevant / questions`.
    pub citing_relevant_rate: f64,
    /// "Not in the knowledge base" answers (no source above `answer.min_score`).
    pub refused: usize,
    pub generative: usize,
    pub extractive: usize,
    /// Citation markers the model wrote that named no source.
    pub removed_citations: usize,
    pub latency: Percentiles,
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn duration(ms: f64) -> String {
    let secs = ms / 1000.0;
    if secs >= 60.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!("{secs:.1}s")
    }
}

impl EvalReport {
    /// A short Markdown summary: one table row per retrieval mode.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let d = &self.dataset;
        let i = &self.ingest;
        // Writing to a String cannot fail.
        let _ = writeln!(out, "## Retrieval evaluation: {}\n", d.name);
        let _ = writeln!(
            out,
            "{} documents, {} of {} queries evaluated ({} judgements); embedder {} ({} dimensions); top {} chunks per query.\n",
            d.documents,
            d.evaluated_queries,
            d.queries,
            d.judgements,
            self.embedder.model,
            self.embedder.dimensions,
            self.top_k,
        );
        let _ = writeln!(
            out,
            "Ingest: {} added, {} updated, {} unchanged, {} removed, {} failed; {} chunks, {} embedding calls, {} ({} embedding). Total {}.\n",
            i.added,
            i.updated,
            i.unchanged,
            i.removed,
            i.failures.len(),
            i.chunks,
            i.embedding_calls,
            duration(i.total_ms as f64),
            duration(i.embed_ms as f64),
            duration(self.total_ms),
        );
        if i.foreign_documents > 0 {
            let _ = writeln!(
                out,
                "**Warning:** the catalog holds {} documents outside this corpus; they compete in every search.\n",
                i.foreign_documents
            );
        }
        out.push_str(
            "| mode | nDCG@10 | MRR@10 | R@1 | R@5 | R@10 | docs/query | search p50 | p95 | p99 | embed p50 | index p50 |\n",
        );
        out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for m in &self.modes {
            let x = &m.metrics;
            let l = &m.latency;
            let _ = writeln!(
                out,
                "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {} | {} | {} | {} | {} |",
                m.mode,
                x.ndcg_at_10,
                x.mrr_at_10,
                x.recall_at_1,
                x.recall_at_5,
                x.recall_at_10,
                x.mean_documents_retrieved,
                ms(l.search.p50_ms),
                ms(l.search.p95_ms),
                ms(l.search.p99_ms),
                ms(l.embed.p50_ms),
                ms(l.index.p50_ms),
            );
        }
        self.calibration_markdown(&mut out);
        if let Some(a) = &self.answers {
            let _ = writeln!(
                out,
                "\nAnswers: {} of {} cite a relevant document ({:.1}%), {} refused as not in the knowledge base (min score {}; {} generative, {} extractive, {} citation markers removed); latency p50 {}, p95 {}.",
                a.citing_relevant,
                a.questions,
                a.citing_relevant_rate * 100.0,
                a.refused,
                a.min_score,
                a.generative,
                a.extractive,
                a.removed_citations,
                ms(a.latency.p50_ms),
                ms(a.latency.p95_ms),
            );
        }
        out
    }

    /// The threshold sweep, when out-of-scope questions were searched: one column per mode,
    /// each cell "in-scope answered / answered from a relevant document / out-of-scope
    /// refused".
    fn calibration_markdown(&self, out: &mut String) {
        let Some(first) = self.modes.first() else {
            return;
        };
        if first.out_of_scope_questions == 0 {
            return;
        }
        let _ = writeln!(
            out,
            "\nRefusal threshold (`answer.min_score`, cosine of the best of the first {} sources) over {} in-scope and {} out-of-scope questions; each cell: in-scope answered / answered from a relevant document / out-of-scope refused.\n",
            self.answer_top_k,
            first.queries.len(),
            first.out_of_scope_questions,
        );
        out.push_str("| min_score |");
        for m in &self.modes {
            let _ = write!(out, " {} |", m.mode);
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(self.modes.len()));
        out.push('\n');
        let pct = |v: f64| format!("{:.0}%", v * 100.0);
        for (i, row) in first.calibration.rows.iter().enumerate() {
            let _ = write!(out, "| {:.2} |", row.min_score);
            for m in &self.modes {
                let r = &m.calibration.rows[i];
                let _ = write!(
                    out,
                    " {} / {} / {} |",
                    pct(r.in_scope_answered),
                    pct(r.in_scope_answered_relevant),
                    pct(r.out_of_scope_refused)
                );
            }
            out.push('\n');
        }
        out.push_str("\nBest balanced accuracy (mean of answered and refused):");
        for m in &self.modes {
            if let Some(best) = m.calibration.best_balanced {
                let _ = write!(
                    out,
                    " {} at {:.2} ({} / {});",
                    m.mode,
                    best.min_score,
                    pct(best.in_scope_answered),
                    pct(best.out_of_scope_refused)
                );
            }
        }
        out.push('\n');
    }
}
