//! [`VectorIndex`] for [`EmbeddedIndex`]: every call on the blocking pool, every write
//! flushed.

use async_trait::async_trait;
use kb_core::{ChunkPoint, DocumentId, Hit, IndexError, Retrieval, SearchQuery, VectorIndex};
use qdrant_edge::{
    Condition, CountRequest, FieldCondition, Match, PointId, PointInsertOperations,
    PointOperations, ScrollRequest, UpdateOperation, WithPayloadInterface,
};
use tracing::debug;

use super::collection::{check_dims, dense_dims, has_sparse, no_sparse_vector};
use super::points::{json_path, to_edge_point, uuid_of};
use super::search::{edge_filter, search_request, to_hit};
use super::{EmbeddedIndex, SCROLL_PAGE, edge_error, flush};
use crate::payload::{Conditions, DOC_ID_KEY};

#[async_trait]
impl VectorIndex for EmbeddedIndex {
    async fn ensure(&self, dims: usize) -> Result<(), IndexError> {
        self.blocking("ensure", move |inner| inner.ensure(dims))
            .await
    }

    async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<(), IndexError> {
        if points.is_empty() {
            return Ok(());
        }
        self.blocking("upsert", move |inner| {
            let dims = dense_dims(inner.shard_for_write()?);
            let count = points.len();
            let points = points
                .into_iter()
                .map(|point| to_edge_point(point, dims, &inner.bm25))
                .collect::<Result<Vec<_>, _>>()?;
            let operation = UpdateOperation::PointOperation(PointOperations::UpsertPoints(
                PointInsertOperations::PointsList(points),
            ));
            inner.write(operation, &format!("cannot upsert {count} points"))
        })
        .await
    }

    async fn search(&self, query: &SearchQuery<'_>) -> Result<Vec<Hit>, IndexError> {
        if query.k == 0 {
            return Ok(Vec::new());
        }
        let vector = query.vector.to_vec();
        let text = query.text.to_owned();
        let (retrieval, k) = (query.retrieval, query.k);
        let filter = edge_filter(&Conditions::from_filter(query.filter));
        self.blocking("search", move |inner| {
            let Some(shard) = inner.shard() else {
                return Ok(Vec::new());
            };
            check_dims(shard, vector.len())?;
            if retrieval != Retrieval::Dense && !has_sparse(shard) {
                return Err(no_sparse_vector(&inner.dir));
            }
            let request = search_request(
                &vector,
                &inner.bm25.query(&text),
                retrieval,
                filter,
                k,
                inner.hnsw.search_ef,
            );
            let scored = shard
                .query(request)
                .map_err(|err| edge_error(format!("{retrieval} search failed"), err))?;
            scored
                .into_iter()
                .map(|point| to_hit(point, retrieval, &vector))
                .collect()
        })
        .await
    }

    async fn delete_points(&self, ids: &[uuid::Uuid]) -> Result<(), IndexError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<PointId> = ids.iter().copied().map(PointId::Uuid).collect();
        self.blocking("delete points", move |inner| {
            if inner.shard().is_none() {
                return Ok(());
            }
            let count = ids.len();
            inner.write(
                UpdateOperation::PointOperation(PointOperations::DeletePoints { ids }),
                &format!("cannot delete {count} points"),
            )
        })
        .await
    }

    async fn delete_document(&self, id: &DocumentId) -> Result<(), IndexError> {
        let id = id.clone();
        self.blocking("delete document", move |inner| {
            if inner.shard().is_none() {
                return Ok(());
            }
            let filter =
                qdrant_edge::Filter::new_must(Condition::Field(FieldCondition::new_match(
                    json_path(DOC_ID_KEY),
                    Match::from(vec![id.as_str().to_owned()]),
                )));
            inner.write(
                UpdateOperation::PointOperation(PointOperations::DeletePointsByFilter(filter)),
                &format!("cannot delete the points of document {id}"),
            )
        })
        .await
    }

    async fn point_ids(&self) -> Result<Vec<uuid::Uuid>, IndexError> {
        self.blocking("list point ids", |inner| {
            let Some(shard) = inner.shard() else {
                return Ok(Vec::new());
            };
            let mut ids = Vec::new();
            let mut offset = None;
            loop {
                let request = ScrollRequest {
                    offset,
                    limit: Some(SCROLL_PAGE),
                    with_payload: Some(WithPayloadInterface::Bool(false)),
                    ..ScrollRequest::new()
                };
                let (records, next) = shard
                    .scroll(request)
                    .map_err(|err| edge_error("cannot list point ids", err))?;
                for record in records {
                    ids.push(uuid_of(record.id)?);
                }
                match next {
                    Some(next) => offset = Some(next),
                    None => return Ok(ids),
                }
            }
        })
        .await
    }

    async fn count(&self) -> Result<u64, IndexError> {
        self.blocking("count", |inner| {
            let Some(shard) = inner.shard() else {
                return Ok(0);
            };
            let count = shard
                .count(CountRequest::new())
                .map_err(|err| edge_error("cannot count points", err))?;
            Ok(count as u64)
        })
        .await
    }

    async fn optimize(&self) -> Result<(), IndexError> {
        self.blocking("optimize", |inner| {
            let Some(shard) = inner.shard() else {
                return Ok(());
            };
            let optimized = shard
                .optimize()
                .map_err(|err| edge_error("cannot optimize the index", err))?;
            flush(shard)?;
            if let Ok(info) = shard.info() {
                debug!(
                    optimized,
                    segments = info.segments_count,
                    points = info.points_count,
                    indexed_vectors = info.indexed_vectors_count,
                    "optimized embedded vector index"
                );
            }
            Ok(())
        })
        .await
    }
}
