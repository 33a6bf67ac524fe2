//! The engine's side of a search: the query for each retrieval mode, the payload filter,
//! and scored points read back as hits.

use kb_core::{Hit, IndexError, Retrieval};
use qdrant_edge::{
    Condition, DateTimeWrapper, FieldCondition, Fusion, Match, NamedQuery, Prefetch, QueryEnum,
    QueryRequest, Range, ScoredPoint, ScoringQuery, SearchParams, VectorInternal,
    VectorStructInternal, WithPayloadInterface, WithVector,
};

use super::points::{json_path, sparse_vector, uuid_of};
use crate::payload::{self, Conditions, DENSE_VECTOR, EFFECTIVE_DATE_KEY, SPARSE_VECTOR};
use crate::retrieval::{self, RRF_K};
use crate::sparse::Terms;

/// The engine query of one search. Dense and sparse are one nearest-neighbour query on their
/// vector; hybrid fetches candidates from both (each filtered) and fuses them by RRF. Every
/// mode but dense also returns the dense vectors, for [`Hit::cosine`].
pub(super) fn search_request(
    vector: &[f32],
    terms: &Terms,
    retrieval: Retrieval,
    filter: Option<qdrant_edge::Filter>,
    k: usize,
    search_ef: usize,
) -> QueryRequest {
    let params = || {
        Some(SearchParams {
            hnsw_ef: Some(search_ef),
            ..SearchParams::default()
        })
    };
    let dense = || nearest(VectorInternal::Dense(vector.to_vec()), DENSE_VECTOR);
    let sparse = || nearest(VectorInternal::Sparse(sparse_vector(terms)), SPARSE_VECTOR);
    let with_vector = match retrieval {
        Retrieval::Dense => WithVector::Bool(false),
        Retrieval::Sparse | Retrieval::Hybrid => WithVector::Selector(vec![DENSE_VECTOR.into()]),
    };
    let (query, prefetches) = match retrieval {
        Retrieval::Dense => (dense(), Vec::new()),
        Retrieval::Sparse => (sparse(), Vec::new()),
        Retrieval::Hybrid => {
            let prefetch = |query| Prefetch {
                query: Some(query),
                filter: filter.clone(),
                params: params(),
                ..Prefetch::new(retrieval::prefetch_limit(k))
            };
            let fusion = ScoringQuery::Fusion(Fusion::Rrf {
                k: RRF_K,
                weights: None,
            });
            (fusion, vec![prefetch(dense()), prefetch(sparse())])
        }
    };
    QueryRequest {
        prefetches,
        query: Some(query),
        filter,
        params: params(),
        with_payload: WithPayloadInterface::Bool(true),
        with_vector,
        ..QueryRequest::new(k)
    }
}

fn nearest(vector: VectorInternal, name: &str) -> ScoringQuery {
    ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery::new(vector, name)))
}

/// A scored point as a [`Hit`]; `query` is the question's embedding, for the cosine.
pub(super) fn to_hit(
    point: ScoredPoint,
    retrieval: Retrieval,
    query: &[f32],
) -> Result<Hit, IndexError> {
    let id = uuid_of(point.id)?;
    let payload = point
        .payload
        .ok_or_else(|| IndexError::other(format!("point {id}: search returned no payload")))?;
    let cosine = match retrieval {
        Retrieval::Dense => point.score,
        Retrieval::Sparse | Retrieval::Hybrid => {
            let stored = match point.vector {
                Some(VectorStructInternal::Named(mut named)) => named.remove(DENSE_VECTOR),
                _ => None,
            };
            let dense = match &stored {
                Some(VectorInternal::Dense(stored)) => Some(stored.as_slice()),
                _ => None,
            };
            retrieval::stored_cosine(query, dense, id)?
        }
    };
    Ok(Hit {
        id,
        score: point.score,
        cosine,
        payload: payload::from_json(payload.0, id)?,
    })
}

pub(super) fn edge_filter(conditions: &Conditions) -> Option<qdrant_edge::Filter> {
    if conditions.is_empty() {
        return None;
    }
    let mut must: Vec<Condition> = conditions
        .keyword_matches()
        .map(|(key, values)| {
            Condition::Field(FieldCondition::new_match(
                json_path(key),
                Match::from(values.clone()),
            ))
        })
        .collect();
    if let Some(range) = conditions.effective {
        let instant = |secs: Option<i64>| {
            secs.and_then(|s| DateTimeWrapper::from_timestamp(s.saturating_mul(1_000_000)))
        };
        let (from, to) = range.unix_seconds();
        must.push(Condition::Field(FieldCondition::new_datetime_range(
            json_path(EFFECTIVE_DATE_KEY),
            Range {
                gte: instant(from),
                lte: instant(to),
                lt: None,
                gt: None,
            },
        )));
    }
    Some(qdrant_edge::Filter {
        must: Some(must),
        ..qdrant_edge::Filter::new()
    })
}
