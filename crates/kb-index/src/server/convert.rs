//! Between kb's types and qdrant-client's: sparse vectors, payload filters, point ids and
//! payloads, scored points as hits, and the status of a failed request.

use std::collections::HashMap;

use kb_core::{Hit, IndexError, Retrieval};
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::vector_output::Vector as VectorOutputKind;
use qdrant_client::qdrant::{
    Condition, DatetimeRange, PointId, ScoredPoint, Timestamp, Value as QdrantValue, Vector,
};
use qdrant_client::{Payload, QdrantError};
use tonic::Code;

use crate::payload::{self, Conditions, DENSE_VECTOR, EFFECTIVE_DATE_KEY};
use crate::retrieval;
use crate::sparse::Terms;

/// A sparse vector as qdrant-client takes it.
pub(super) fn sparse(terms: &Terms) -> Vector {
    Vector::new_sparse(terms.indices.clone(), terms.values.clone())
}

/// A scored point as a [`Hit`]; `query` is the question's embedding, for the cosine.
pub(super) fn to_hit(
    point: ScoredPoint,
    retrieval: Retrieval,
    query: &[f32],
) -> Result<Hit, IndexError> {
    let id = uuid_of(point.id)?;
    let cosine = match retrieval {
        Retrieval::Dense => point.score,
        Retrieval::Sparse | Retrieval::Hybrid => {
            let stored = point
                .vectors
                .as_ref()
                .and_then(|vectors| vectors.get_vector_by_name(DENSE_VECTOR));
            let dense = match &stored {
                Some(VectorOutputKind::Dense(stored)) => Some(stored.data.as_slice()),
                _ => None,
            };
            retrieval::stored_cosine(query, dense, id)?
        }
    };
    Ok(Hit {
        id,
        score: point.score,
        cosine,
        payload: payload_of(point.payload, id)?,
    })
}

pub(super) fn server_filter(conditions: &Conditions) -> Option<qdrant_client::qdrant::Filter> {
    if conditions.is_empty() {
        return None;
    }
    let mut must: Vec<Condition> = conditions
        .keyword_matches()
        .map(|(key, values)| Condition::matches(key, values.clone()))
        .collect();
    if let Some(range) = conditions.effective {
        let instant = |secs: Option<i64>| secs.map(|seconds| Timestamp { seconds, nanos: 0 });
        let (from, to) = range.unix_seconds();
        must.push(Condition::datetime_range(
            EFFECTIVE_DATE_KEY,
            DatetimeRange {
                gte: instant(from),
                lte: instant(to),
                lt: None,
                gt: None,
            },
        ));
    }
    Some(qdrant_client::qdrant::Filter::must(must))
}

pub(super) fn uuid_of(id: Option<PointId>) -> Result<uuid::Uuid, IndexError> {
    match id.and_then(|id| id.point_id_options) {
        Some(PointIdOptions::Uuid(text)) => uuid::Uuid::parse_str(&text).map_err(|err| {
            IndexError::other_because(format!("point id {text:?} is not a UUID"), err)
        }),
        Some(PointIdOptions::Num(num)) => Err(IndexError::other(format!(
            "point {num} has a numeric id; the collection was not written by kb"
        ))),
        None => Err(IndexError::other("qdrant returned a point without an id")),
    }
}

pub(super) fn payload_of(
    payload: HashMap<String, QdrantValue>,
    id: uuid::Uuid,
) -> Result<kb_core::ChunkPayload, IndexError> {
    let map = serde_json::Map::from(Payload::from(payload));
    payload::from_json(map, id)
}

pub(super) fn status_code(err: &QdrantError) -> Option<Code> {
    match err {
        QdrantError::ResponseError { status } => Some(status.code()),
        _ => None,
    }
}

/// Reading or deleting in a collection that does not exist yet finds nothing, as in the
/// embedded index before `ensure`.
pub(super) fn ignore_not_found<T>(err: QdrantError, empty: T) -> Result<T, QdrantError> {
    if status_code(&err) == Some(Code::NotFound) {
        Ok(empty)
    } else {
        Err(err)
    }
}
