//! Bringing an index written before kb stored BM25 vectors up to date, on open.

use std::collections::HashMap;

use kb_core::IndexError;
use qdrant_edge::{
    Condition, CreateVectorName, EdgeShard, HasVectorCondition, PointVectorsPersisted,
    ScrollRequest, UpdateOperation, UpdateVectorsOp, VectorNameConfig, VectorNameOperations,
    VectorOperations, VectorPersisted, VectorStructPersisted, WithPayloadInterface,
};
use tracing::info;

use super::collection::{dense_dims, has_sparse};
use super::points::{sparse_vector, uuid_of};
use super::{SCROLL_PAGE, edge_error, flush};
use crate::payload::{self, SPARSE_VECTOR};
use crate::sparse::{Bm25Encoder, Terms};

/// Bring an index written before kb stored BM25 vectors up to date: add the sparse vector to
/// the collection and derive it, from the text in the payload, for every point that lacks it.
/// On a current index this is one filtered scroll that finds nothing; after a crash half-way,
/// the next open finishes the job.
pub(super) fn add_missing_sparse(shard: &EdgeShard, bm25: &Bm25Encoder) -> Result<(), IndexError> {
    if dense_dims(shard).is_none() {
        // Not a kb index; `ensure` says so.
        return Ok(());
    }
    let added_vector = !has_sparse(shard);
    if added_vector {
        let config: VectorNameConfig =
            serde_json::from_value(serde_json::json!({ "sparse": { "modifier": "idf" } }))
                .expect("BUG: the documented shape of a sparse vector config");
        shard
            .update(UpdateOperation::VectorNameOperation(
                VectorNameOperations::CreateVectorName(CreateVectorName {
                    vector_name: SPARSE_VECTOR.into(),
                    config,
                }),
            ))
            .map_err(|err| edge_error(format!("cannot add the `{SPARSE_VECTOR}` vector"), err))?;
        info!("index was created without BM25 vectors; adding them from the stored text");
    }
    let lacking = qdrant_edge::Filter::new_must_not(Condition::HasVector(
        HasVectorCondition::from(SPARSE_VECTOR.to_owned()),
    ));
    let mut filled = 0_usize;
    let mut offset = None;
    loop {
        let request = ScrollRequest {
            offset,
            limit: Some(SCROLL_PAGE),
            filter: Some(lacking.clone()),
            with_payload: Some(WithPayloadInterface::Bool(true)),
            ..ScrollRequest::new()
        };
        let (records, next) = shard
            .scroll(request)
            .map_err(|err| edge_error("cannot list points without BM25 vectors", err))?;
        let points = records
            .into_iter()
            .map(|record| {
                let id = uuid_of(record.id)?;
                let payload = record.payload.ok_or_else(|| {
                    IndexError::other(format!("point {id}: scroll returned no payload"))
                })?;
                let text = payload::from_json(payload.0, id)?.indexed_text();
                Ok(PointVectorsPersisted {
                    id: record.id,
                    vector: sparse_only(&bm25.document(&text)),
                })
            })
            .collect::<Result<Vec<_>, IndexError>>()?;
        if !points.is_empty() {
            filled += points.len();
            shard
                .update(UpdateOperation::VectorOperation(
                    VectorOperations::UpdateVectors(UpdateVectorsOp {
                        points,
                        update_filter: None,
                    }),
                ))
                .map_err(|err| edge_error("cannot add BM25 vectors", err))?;
        }
        match next {
            Some(next) => offset = Some(next),
            None => break,
        }
    }
    if added_vector || filled > 0 {
        flush(shard)?;
        info!(points = filled, "added BM25 vectors to existing points");
    }
    Ok(())
}

fn sparse_only(terms: &Terms) -> VectorStructPersisted {
    VectorStructPersisted::Named(HashMap::from([(
        SPARSE_VECTOR.to_owned(),
        VectorPersisted::Sparse(sparse_vector(terms)),
    )]))
}
