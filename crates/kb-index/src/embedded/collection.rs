//! The collection: created with its dense and sparse vectors, HNSW graph and payload
//! indexes on first `ensure`; vector sizes checked against it.

use std::path::Path;
use std::sync::PoisonError;

use kb_core::IndexError;
use qdrant_edge::{
    Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams, EdgeSparseVectorParamsBuilder,
    EdgeVectorParamsBuilder, FieldIndexOperations, HnswIndexConfig, Modifier, PayloadFieldSchema,
    PayloadSchemaType, UpdateOperation,
};
use tracing::info;

use super::points::json_path;
use super::{Inner, edge_error, flush};
use crate::payload::{DENSE_VECTOR, INDEXED_KEYS, IndexKind, SPARSE_VECTOR};

/// The HNSW graph of the dense vectors.
///
/// The defaults are measured (`bench/hnsw.sh`, docs/BENCHMARKS.md): over 50,000 MiniLM vectors
/// of kernel-docs sentences, `ef_construct` 64 builds the graph in 60% of the time of Qdrant's
/// default 100 (7.2 s against 12.1 s on 2 cores), and searching with `search_ef` 128 finds
/// 98.9% of the exact top 10 (Qdrant's defaults: 99.0%) in about the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per point (Qdrant's `m`; twice as many on the bottom layer).
    pub m: usize,
    /// Candidates kept while linking a new point: build time grows with it.
    pub ef_construct: usize,
    /// Candidates kept while searching (Qdrant's `hnsw_ef`; never fewer than the results asked
    /// for): recall and search time grow with it.
    pub search_ef: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construct: 64,
            search_ef: 128,
        }
    }
}

impl HnswParams {
    fn graph_config(&self) -> HnswIndexConfig {
        HnswIndexConfig {
            m: self.m,
            ef_construct: self.ef_construct,
            ..HnswIndexConfig::default()
        }
    }
}

impl Inner {
    pub(super) fn ensure(&self, dims: usize) -> Result<(), IndexError> {
        if dims == 0 {
            return Err(IndexError::other(
                "cannot create a vector index for 0-dimensional vectors",
            ));
        }
        // The guarded value is `()`, so a panic in another `ensure` left nothing inconsistent.
        let _setup = self.setup.lock().unwrap_or_else(PoisonError::into_inner);

        let shard = match self.shard.get() {
            Some(shard) => shard,
            None => {
                let config = EdgeConfig::builder()
                    .vector(
                        DENSE_VECTOR,
                        EdgeVectorParamsBuilder::new(dims, Distance::Cosine).build(),
                    )
                    .hnsw_config(self.hnsw.graph_config())
                    .sparse_vector(SPARSE_VECTOR, sparse_params())
                    .build();
                let created = EdgeShard::new(&self.dir, config).map_err(|err| {
                    edge_error(
                        format!("cannot create index in {}", self.dir.display()),
                        err,
                    )
                })?;
                info!(dir = %self.dir.display(), dims, "created embedded vector index");
                self.shard.get_or_init(move || created)
            }
        };

        let found = dense_dims(shard).ok_or_else(|| {
            IndexError::other(format!(
                "index in {} has no `{DENSE_VECTOR}` vector; it was not written by kb",
                self.dir.display()
            ))
        })?;
        if found != dims {
            return Err(IndexError::DimensionMismatch {
                expected: dims,
                found,
            });
        }

        let schema = shard
            .info()
            .map_err(|err| edge_error("cannot read index info", err))?
            .payload_schema;
        let mut created_any = false;
        for (key, kind) in INDEXED_KEYS {
            let field = json_path(key);
            if schema.contains_key(&field) {
                continue;
            }
            let field_type = match kind {
                IndexKind::Keyword => PayloadSchemaType::Keyword,
                IndexKind::Datetime => PayloadSchemaType::Datetime,
            };
            let create = qdrant_edge::CreateIndex {
                field_name: field,
                field_schema: Some(PayloadFieldSchema::FieldType(field_type)),
            };
            shard
                .update(UpdateOperation::FieldIndexOperation(
                    FieldIndexOperations::CreateIndex(create),
                ))
                .map_err(|err| edge_error(format!("cannot index payload field `{key}`"), err))?;
            created_any = true;
        }
        if created_any {
            flush(shard)?;
        }
        Ok(())
    }
}

/// The sparse vector's parameters: BM25 term weights, IDF applied by the engine at search time.
fn sparse_params() -> EdgeSparseVectorParams {
    EdgeSparseVectorParamsBuilder::new()
        .modifier(Modifier::Idf)
        .build()
}

pub(super) fn has_sparse(shard: &EdgeShard) -> bool {
    shard.config().sparse_vectors.contains_key(SPARSE_VECTOR)
}

pub(super) fn no_sparse_vector(dir: &Path) -> IndexError {
    IndexError::other(format!(
        "index in {} has no `{SPARSE_VECTOR}` sparse vector, so it cannot search by BM25; it was not written by kb",
        dir.display()
    ))
}

/// Size of the shard's dense vector, if it has one.
pub(super) fn dense_dims(shard: &EdgeShard) -> Option<usize> {
    shard
        .config()
        .vectors
        .get(DENSE_VECTOR)
        .map(|params| params.size)
}

/// Reject a vector of the wrong size with the error that tells the user what to do.
pub(super) fn check_dims(shard: &EdgeShard, len: usize) -> Result<(), IndexError> {
    match dense_dims(shard) {
        Some(found) if found != len => Err(IndexError::DimensionMismatch {
            expected: len,
            found,
        }),
        _ => Ok(()),
    }
}
