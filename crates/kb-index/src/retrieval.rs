//! How a search is put together, the same in both backends: how many candidates each side of
//! a hybrid search brings, the RRF constant, and the cosine kept for the relevance threshold.
//!
//! Both engines fuse in the engine (a query with a dense and a sparse prefetch, fused by
//! RRF), so kb holds no fusion code of its own; what it fixes is the parameters, set
//! explicitly because the engines' defaults differ (qdrant-edge uses k = 2, the server 60).

/// The RRF constant: a candidate at position p (from 0) of one list scores `1 / (RRF_K + p)`,
/// summed over the lists (the engines' formula).
/// 60 is the value of the original RRF paper (Cormack et al., 2009), and the Qdrant server's
/// default.
pub(crate) const RRF_K: usize = 60;

/// Fewest candidates each side of a hybrid search brings to the fusion. Above `k`, so that a
/// chunk ranked just below `k` on both sides can still make the fused top `k`.
pub(crate) const MIN_PREFETCH: usize = 20;

/// Candidates each side of a hybrid search brings for a top-`k` search.
pub(crate) fn prefetch_limit(k: usize) -> usize {
    k.saturating_mul(2).max(MIN_PREFETCH)
}

/// Cosine similarity of two vectors of the same length; 0 when either is all zeros (Qdrant
/// stores such a vector unnormalised and scores it 0 too).
/// The cosine of `query` with the dense vector a search returned for point `id` (sparse and
/// hybrid searches score otherwise, so the refusal threshold needs it computed here).
pub(crate) fn stored_cosine(
    query: &[f32],
    stored: Option<&[f32]>,
    id: uuid::Uuid,
) -> Result<f32, kb_core::IndexError> {
    match stored {
        Some(stored) if stored.len() == query.len() => Ok(cosine(query, stored)),
        _ => Err(kb_core::IndexError::other(format!(
            "point {id}: search returned no `{}` vector",
            crate::payload::DENSE_VECTOR
        ))),
    }
}

pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(
        a.len(),
        b.len(),
        "BUG: cosine of vectors of different sizes"
    );
    let (mut dot, mut aa, mut bb) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    (dot / (aa.sqrt() * bb.sqrt())) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_ignores_length_and_handles_zero_vectors() {
        assert!((cosine(&[1.0, 0.0], &[3.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 2.0]).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn each_side_brings_at_least_twice_k_candidates() {
        assert_eq!(prefetch_limit(5), MIN_PREFETCH);
        assert_eq!(prefetch_limit(50), 100);
        assert_eq!(prefetch_limit(usize::MAX), usize::MAX);
    }
}
