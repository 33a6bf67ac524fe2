//! Ranking metrics with binary relevance, and latency percentiles.
//!
//! `ranked` is a query's list of retrieved corpus ids, best first, without repeats; `relevant`
//! the ids judged relevant. The formulas are the usual ones (as in BEIR / `trec_eval`):
//!
//! - recall@k = |top k ∩ relevant| / |relevant|
//! - reciprocal rank@k = 1 / rank of the first relevant id within the top k, else 0
//! - nDCG@k = DCG@k / IDCG@k, with DCG@k = Σ_{i=1..k} rel_i / log2(i + 1) and IDCG@k the DCG of
//!   the ideal ranking (min(|relevant|, k) relevant ids first)
//!
//! A query without relevant ids scores 0 everywhere (the runner does not evaluate such queries).

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

pub fn recall_at<S: AsRef<str>>(ranked: &[S], relevant: &HashSet<String>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let found: HashSet<&str> = ranked
        .iter()
        .take(k)
        .map(AsRef::as_ref)
        .filter(|id| relevant.contains(*id))
        .collect();
    found.len() as f64 / relevant.len() as f64
}

/// 1-based rank of the first relevant id, if any is retrieved.
pub fn first_relevant_rank<S: AsRef<str>>(
    ranked: &[S],
    relevant: &HashSet<String>,
) -> Option<usize> {
    ranked
        .iter()
        .position(|id| relevant.contains(id.as_ref()))
        .map(|i| i + 1)
}

pub fn reciprocal_rank_at<S: AsRef<str>>(
    ranked: &[S],
    relevant: &HashSet<String>,
    k: usize,
) -> f64 {
    match first_relevant_rank(ranked, relevant) {
        Some(rank) if rank <= k => 1.0 / rank as f64,
        _ => 0.0,
    }
}

pub fn ndcg_at<S: AsRef<str>>(ranked: &[S], relevant: &HashSet<String>, k: usize) -> f64 {
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let ideal: f64 = (0..relevant.len().min(k)).map(discount).sum();
    if ideal == 0.0 {
        return 0.0;
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut dcg = 0.0;
    for (i, id) in ranked.iter().take(k).enumerate() {
        let id = id.as_ref();
        if relevant.contains(id) && seen.insert(id) {
            dcg += discount(i);
        }
    }
    dcg / ideal
}

/// Mean retrieval quality over the evaluated queries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Queries evaluated (those with at least one relevant document).
    pub queries: usize,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    pub mrr_at_10: f64,
    pub ndcg_at_10: f64,
    /// Distinct documents per query behind the retrieved chunks (fewer than 10 makes the @10
    /// numbers pessimistic: raise `top_k`).
    pub mean_documents_retrieved: f64,
}

/// One query's scores, the per-query rows behind [`Metrics`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryScores {
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    pub rr_at_10: f64,
    pub ndcg_at_10: f64,
}

impl QueryScores {
    pub fn compute<S: AsRef<str>>(ranked: &[S], relevant: &HashSet<String>) -> Self {
        Self {
            recall_at_1: recall_at(ranked, relevant, 1),
            recall_at_5: recall_at(ranked, relevant, 5),
            recall_at_10: recall_at(ranked, relevant, 10),
            rr_at_10: reciprocal_rank_at(ranked, relevant, 10),
            ndcg_at_10: ndcg_at(ranked, relevant, 10),
        }
    }
}

impl Metrics {
    /// Means of per-query scores; `documents` is the count of distinct documents retrieved
    /// for each query.
    pub fn mean(scores: &[QueryScores], documents: &[usize]) -> Self {
        let n = scores.len();
        if n == 0 {
            return Self::default();
        }
        let mean = |f: fn(&QueryScores) -> f64| scores.iter().map(f).sum::<f64>() / n as f64;
        Self {
            queries: n,
            recall_at_1: mean(|s| s.recall_at_1),
            recall_at_5: mean(|s| s.recall_at_5),
            recall_at_10: mean(|s| s.recall_at_10),
            mrr_at_10: mean(|s| s.rr_at_10),
            ndcg_at_10: mean(|s| s.ndcg_at_10),
            mean_documents_retrieved: if documents.is_empty() {
                0.0
            } else {
                documents.iter().sum::<usize>() as f64 / documents.len() as f64
            },
        }
    }
}

/// Latency summary in milliseconds; percentiles by the nearest-rank method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(samples_ms: &[f64]) -> Self {
        if samples_ms.is_empty() {
            return Self::default();
        }
        let mut sorted = samples_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        // Nearest rank: the smallest sample with at least p% of the samples at or below it.
        let at = |p: f64| sorted[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Self {
            samples: n,
            p50_ms: at(50.0),
            p95_ms: at(95.0),
            p99_ms: at(99.0),
            mean_ms: sorted.iter().sum::<f64>() / n as f64,
            max_ms: sorted[n - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn recall_counts_relevant_ids_in_the_top_k() {
        let ranked = ["x", "a", "y", "b", "z"];
        let relevant = rel(&["a", "b", "c"]);

        assert_eq!(recall_at(&ranked, &relevant, 1), 0.0);
        assert!(close(recall_at(&ranked, &relevant, 2), 1.0 / 3.0));
        assert!(close(recall_at(&ranked, &relevant, 5), 2.0 / 3.0));
        assert!(close(recall_at(&ranked, &relevant, 100), 2.0 / 3.0));
    }

    #[test]
    fn reciprocal_rank_is_one_over_the_first_relevant_rank_within_k() {
        let ranked = ["x", "y", "a", "b"];
        let relevant = rel(&["a", "b"]);

        assert_eq!(first_relevant_rank(&ranked, &relevant), Some(3));
        assert!(close(reciprocal_rank_at(&ranked, &relevant, 10), 1.0 / 3.0));
        assert_eq!(reciprocal_rank_at(&ranked, &relevant, 2), 0.0);
        assert_eq!(reciprocal_rank_at(&["x"], &relevant, 10), 0.0);
    }

    #[test]
    fn ndcg_of_a_single_relevant_document_is_one_over_log2_of_rank_plus_one() {
        let relevant = rel(&["a"]);

        assert!(close(ndcg_at(&["a", "x"], &relevant, 10), 1.0));
        // rank 2: 1 / log2(3)
        assert!(close(
            ndcg_at(&["x", "a"], &relevant, 10),
            0.630_929_753_571_457_4
        ));
        // rank 4: 1 / log2(5)
        assert!(close(
            ndcg_at(&["w", "x", "y", "a"], &relevant, 10),
            0.430_676_558_073_393
        ));
        assert_eq!(ndcg_at(&["x", "a"], &relevant, 1), 0.0);
    }

    #[test]
    fn ndcg_with_two_relevant_documents_matches_a_hand_computation() {
        // Relevant at ranks 1 and 3: DCG = 1 + 1/log2(4) = 1.5.
        // Ideal: ranks 1 and 2: IDCG = 1 + 1/log2(3) = 1.630929753571457.
        let relevant = rel(&["a", "b"]);

        let got = ndcg_at(&["a", "x", "b"], &relevant, 10);

        assert!(close(got, 1.5 / 1.630_929_753_571_457), "{got}");
        assert!(close(ndcg_at(&["b", "a", "x"], &relevant, 10), 1.0));
    }

    #[test]
    fn ndcg_ideal_is_cut_at_k_when_more_documents_are_relevant() {
        // Three relevant, k = 2, both top slots relevant: a perfect score.
        let relevant = rel(&["a", "b", "c"]);

        assert!(close(ndcg_at(&["c", "a", "x"], &relevant, 2), 1.0));
    }

    #[test]
    fn metrics_are_zero_without_relevant_documents() {
        let none = HashSet::new();

        assert_eq!(QueryScores::compute(&["a"], &none), QueryScores::default());
    }

    #[test]
    fn metrics_average_over_queries() {
        let a = QueryScores::compute(&["a", "x"], &rel(&["a"]));
        let b = QueryScores::compute(&["x", "b"], &rel(&["b"]));

        let m = Metrics::mean(&[a, b], &[2, 4]);

        assert_eq!(m.queries, 2);
        assert!(close(m.recall_at_1, 0.5));
        assert!(close(m.recall_at_5, 1.0));
        assert!(close(m.mrr_at_10, 0.75));
        assert!(close(m.ndcg_at_10, (1.0 + 0.630_929_753_571_457_4) / 2.0));
        assert!(close(m.mean_documents_retrieved, 3.0));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();

        let p = Percentiles::of(&samples);

        assert_eq!(p.samples, 100);
        assert_eq!(
            (p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
        assert!(close(p.mean_ms, 50.5));

        let few = Percentiles::of(&[3.0, 1.0, 2.0]);
        assert_eq!((few.p50_ms, few.p95_ms, few.p99_ms), (2.0, 3.0, 3.0));
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
    }
}
