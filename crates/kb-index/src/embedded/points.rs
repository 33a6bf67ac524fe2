//! kb's points as the engine stores them: ids, named vectors, payload keys.

use std::collections::HashMap;

use kb_core::{ChunkPoint, IndexError};
use qdrant_edge::{
    JsonPath, Payload, PointId, PointStructPersisted, SparseVector, VectorPersisted,
    VectorStructPersisted,
};

use crate::payload::{self, DENSE_VECTOR, SPARSE_VECTOR};
use crate::sparse::{Bm25Encoder, Terms};

pub(super) fn sparse_vector(terms: &Terms) -> SparseVector {
    SparseVector {
        indices: terms.indices.clone(),
        values: terms.values.clone(),
    }
}

pub(super) fn to_edge_point(
    point: ChunkPoint,
    dims: Option<usize>,
    bm25: &Bm25Encoder,
) -> Result<PointStructPersisted, IndexError> {
    if let Some(found) = dims.filter(|&dims| dims != point.vector.len()) {
        return Err(IndexError::DimensionMismatch {
            expected: point.vector.len(),
            found,
        });
    }
    let terms = bm25.document(&point.payload.indexed_text());
    let payload = payload::to_json(&point.payload)?;
    Ok(PointStructPersisted {
        id: PointId::Uuid(point.id),
        vector: VectorStructPersisted::Named(HashMap::from([
            (
                DENSE_VECTOR.to_owned(),
                VectorPersisted::Dense(point.vector),
            ),
            (
                SPARSE_VECTOR.to_owned(),
                VectorPersisted::Sparse(sparse_vector(&terms)),
            ),
        ])),
        payload: Some(Payload(payload)),
    })
}

pub(super) fn uuid_of(id: PointId) -> Result<uuid::Uuid, IndexError> {
    match id {
        PointId::Uuid(uuid) => Ok(uuid),
        PointId::NumId(num) => Err(IndexError::other(format!(
            "point {num} has a numeric id; the index was not written by kb"
        ))),
    }
}

pub(super) fn json_path(key: &str) -> JsonPath {
    key.parse()
        .expect("BUG: payload keys are plain identifiers, valid JSON paths")
}
