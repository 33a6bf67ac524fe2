//! Choosing `answer.min_score` by measurement: how many in-scope questions keep a source at a
//! threshold, and how many out-of-scope questions it turns away.
//!
//! kb answers from the retrieved sources whose cosine similarity to the question reaches
//! `answer.min_score`, and refuses when none does. So a question is answered at threshold `t`
//! exactly when the best cosine among the sources an answer gets (the first `answer.top_k`
//! chunks) is at least `t`; that best cosine per question is all the sweep needs.

use serde::Serialize;

/// Thresholds the sweep reports: 0.10 to 0.90 in steps of 0.05.
pub fn thresholds() -> impl Iterator<Item = f32> {
    (2..=18).map(|i| i as f32 * 0.05)
}

/// One threshold of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThresholdRow {
    pub min_score: f32,
    /// In-scope questions with a source at or above the threshold (answered), as a fraction.
    pub in_scope_answered: f64,
    /// In-scope questions answered with a relevant document among those sources, as a fraction.
    pub in_scope_answered_relevant: f64,
    /// Out-of-scope questions with no source at or above the threshold (refused), as a fraction.
    pub out_of_scope_refused: f64,
}

/// The best cosine among an in-scope question's answer sources, and the best among those from
/// a relevant document (`None` when no relevant document is among them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InScopeCosines {
    pub best: Option<f32>,
    pub best_relevant: Option<f32>,
}

/// The threshold sweep of one retrieval mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub rows: Vec<ThresholdRow>,
    /// The threshold with the best balanced accuracy (mean of the answered and refused
    /// fractions; the lowest on ties), when out-of-scope questions were given.
    pub best_balanced: Option<ThresholdRow>,
}

impl Calibration {
    /// Sweep the thresholds over in-scope and out-of-scope questions' best cosines (`None`:
    /// nothing was retrieved, refused at any threshold).
    pub fn sweep(in_scope: &[InScopeCosines], out_of_scope: &[Option<f32>]) -> Self {
        let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        let reaches = |cosine: Option<f32>, t: f32| cosine.is_some_and(|c| c >= t);
        let rows: Vec<ThresholdRow> = thresholds()
            .map(|t| ThresholdRow {
                min_score: t,
                in_scope_answered: share(
                    in_scope.iter().filter(|q| reaches(q.best, t)).count(),
                    in_scope.len(),
                ),
                in_scope_answered_relevant: share(
                    in_scope
                        .iter()
                        .filter(|q| reaches(q.best_relevant, t))
                        .count(),
                    in_scope.len(),
                ),
                out_of_scope_refused: share(
                    out_of_scope.iter().filter(|c| !reaches(**c, t)).count(),
                    out_of_scope.len(),
                ),
            })
            .collect();
        let best_balanced = if out_of_scope.is_empty() {
            None
        } else {
            let balanced = |r: &ThresholdRow| (r.in_scope_answered + r.out_of_scope_refused) / 2.0;
            rows.iter().copied().reduce(|best, r| {
                if balanced(&r) > balanced(&best) {
                    r
                } else {
                    best
                }
            })
        };
        Self {
            rows,
            best_balanced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(c: &Calibration, t: f32) -> ThresholdRow {
        *c.rows
            .iter()
            .find(|r| (r.min_score - t).abs() < 1e-6)
            .expect("threshold in the sweep")
    }

    #[test]
    fn the_sweep_counts_answered_and_refused_questions_per_threshold() {
        let in_scope = [
            InScopeCosines {
                best: Some(0.62),
                best_relevant: Some(0.62),
            },
            InScopeCosines {
                best: Some(0.48),
                best_relevant: Some(0.41),
            },
            InScopeCosines {
                best: Some(0.33),
                best_relevant: None,
            },
            InScopeCosines {
                best: None,
                best_relevant: None,
            },
        ];
        let out_of_scope = [Some(0.30), Some(0.44), None];

        let c = Calibration::sweep(&in_scope, &out_of_scope);

        assert_eq!(c.rows.len(), 17);
        let at_045 = row(&c, 0.45);
        assert_eq!(at_045.in_scope_answered, 0.5);
        assert_eq!(at_045.in_scope_answered_relevant, 0.25);
        assert_eq!(at_045.out_of_scope_refused, 1.0);
        let at_030 = row(&c, 0.30);
        assert_eq!(at_030.in_scope_answered, 0.75);
        assert!((at_030.out_of_scope_refused - 1.0 / 3.0).abs() < 1e-9);
        // Balanced accuracy: 0.35 → (0.5 + 2/3) / 2, 0.45 → (0.5 + 1) / 2: the latter wins,
        // and so do 0.50 … 0.60 with the same score, but ties keep the lowest.
        let best = c.best_balanced.expect("out-of-scope questions given");
        assert!((best.min_score - 0.45).abs() < 1e-6, "{best:?}");
    }

    #[test]
    fn without_out_of_scope_questions_there_is_no_best_threshold() {
        let c = Calibration::sweep(
            &[InScopeCosines {
                best: Some(0.5),
                best_relevant: Some(0.5),
            }],
            &[],
        );

        assert_eq!(c.best_balanced, None);
        assert_eq!(row(&c, 0.5).in_scope_answered, 1.0);
        assert_eq!(row(&c, 0.55).in_scope_answered, 0.0);
    }
}
