//! The server index: a collection on a Qdrant server or cluster, over gRPC (`qdrant-client`).
//!
//! Every write waits for the server to apply it (`wait=true`), so a write that returned is as
//! durable as the server's own WAL makes it and visible to the next read. The server optimises
//! in the background, so [`VectorIndex::optimize`] is a no-op here.
//!
//! `convert` turns kb's vectors, filters and ids into qdrant-client's and its points back
//! into hits; this module holds the connection, the collection and [`VectorIndex`].

mod convert;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use kb_core::{ChunkPoint, DocumentId, Hit, IndexError, Retrieval, SearchQuery, VectorIndex};
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    CreateVectorNameRequestBuilder, DeletePointsBuilder, Distance, FieldType, Modifier, PointId,
    PointStruct, PointVectors, PointsIdsList, PrefetchQueryBuilder, Query, QueryPointsBuilder,
    RrfBuilder, ScrollPointsBuilder, SparseVectorCreationConfigBuilder, SparseVectorParamsBuilder,
    SparseVectorsConfigBuilder, UpdatePointVectorsBuilder, UpsertPointsBuilder, Vector,
    VectorInput, VectorParamsBuilder, VectorsConfigBuilder, VectorsSelector,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use tonic::Code;
use tracing::info;

use crate::payload::{
    self, Conditions, DENSE_VECTOR, DOC_ID_KEY, INDEXED_KEYS, IndexKind, SPARSE_VECTOR,
};
use crate::retrieval::{self, RRF_K};
use crate::sparse::Bm25Encoder;
use convert::{ignore_not_found, payload_of, server_filter, sparse, status_code, to_hit, uuid_of};

/// Page size when listing point ids.
const SCROLL_PAGE: u32 = 1_000;

/// Upper bound for one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How qdrant-client's channel pool words a failed connection (`channel_pool.rs`).
const CONNECT_FAILED: &str = "Failed to connect to";

/// How a collection is spread over the nodes of a Qdrant cluster; each `None` is the server's
/// default. Applied when kb creates the collection (an existing one keeps its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectionLayout {
    pub shard_number: Option<u32>,
    pub replication_factor: Option<u32>,
    pub write_consistency_factor: Option<u32>,
}

/// A collection on a Qdrant server, reached over gRPC.
pub struct QdrantServerIndex {
    client: Qdrant,
    url: String,
    collection: String,
    /// Derives the BM25 vector of every point written and of every question.
    bm25: Bm25Encoder,
    /// How the collection is laid out over a cluster's nodes when kb creates it.
    layout: CollectionLayout,
    /// The collection's dense vector size once [`VectorIndex::ensure`] has read it (0 before):
    /// vectors of another size are refused here, before a request is sent.
    dims: AtomicUsize,
}

/// Hand-written so that the API key never reaches a log.
impl fmt::Debug for QdrantServerIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QdrantServerIndex")
            .field("url", &self.url)
            .field("collection", &self.collection)
            .finish_non_exhaustive()
    }
}

impl QdrantServerIndex {
    /// A client for `collection` on the server at `url` (the gRPC port, usually
    /// `http://host:6334`).
    ///
    /// Connects lazily: an unreachable server surfaces as [`IndexError::Unavailable`] on the
    /// first call, typically [`VectorIndex::ensure`] at start-up.
    pub fn connect(url: &str, api_key: Option<&str>, collection: &str) -> Result<Self, IndexError> {
        if collection.is_empty() {
            return Err(IndexError::other(
                "qdrant collection name must not be empty",
            ));
        }
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            // The client's 5 s default is short for a large `wait=true` upsert on a busy server.
            .timeout(REQUEST_TIMEOUT)
            // The check blocks `connect` on a health request and only prints its verdict to
            // stdout; an incompatible server fails the first calls with its own error instead.
            .skip_compatibility_check()
            .build()
            .map_err(|err| IndexError::other_because(format!("qdrant server {url}"), err))?;
        Ok(Self {
            client,
            url: url.to_owned(),
            collection: collection.to_owned(),
            bm25: Bm25Encoder::new(),
            dims: AtomicUsize::new(0),
            layout: CollectionLayout::default(),
        })
    }

    /// Create the collection (when it does not exist yet) with `layout`.
    #[must_use]
    pub fn with_layout(mut self, layout: CollectionLayout) -> Self {
        self.layout = layout;
        self
    }

    /// The collection this index reads and writes.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// Drop the whole collection (for `reindex` and test clean-up); a missing one is fine.
    pub async fn delete_collection(&self) -> Result<(), IndexError> {
        self.client
            .delete_collection(&self.collection)
            .await
            .map(drop)
            .or_else(|err| ignore_not_found(err, ()))
            .map_err(|err| self.error("cannot delete the collection", err))
    }

    /// The dense vector size of the existing collection and whether it has the sparse vector,
    /// or `None` if it does not exist.
    async fn existing_layout(&self) -> Result<Option<(usize, bool)>, IndexError> {
        let exists = self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(|err| self.error("cannot check the collection", err))?;
        if !exists {
            return Ok(None);
        }
        let info = self
            .client
            .collection_info(&self.collection)
            .await
            .map_err(|err| self.error("cannot read the collection info", err))?;
        let params = info
            .result
            .and_then(|info| info.config)
            .and_then(|config| config.params);
        let has_sparse = params
            .as_ref()
            .and_then(|params| params.sparse_vectors_config.as_ref())
            .is_some_and(|sparse| sparse.map.contains_key(SPARSE_VECTOR));
        let vectors = params
            .and_then(|params| params.vectors_config)
            .and_then(|vectors| vectors.config);
        let size = match vectors {
            Some(VectorsConfigKind::ParamsMap(map)) => map.map.get(DENSE_VECTOR).map(|p| p.size),
            Some(VectorsConfigKind::Params(_)) | None => None,
        };
        let size = size.ok_or_else(|| {
            IndexError::other(format!(
                "qdrant collection `{}` has no `{DENSE_VECTOR}` vector; it was not created by kb",
                self.collection
            ))
        })?;
        let size = usize::try_from(size).map_err(|_| {
            IndexError::other(format!(
                "qdrant collection `{}` reports an impossible vector size {size}",
                self.collection
            ))
        })?;
        Ok(Some((size, has_sparse)))
    }

    async fn create_collection(&self, dims: usize) -> Result<(), IndexError> {
        let mut vectors = VectorsConfigBuilder::default();
        vectors.add_named_vector_params(
            DENSE_VECTOR,
            VectorParamsBuilder::new(dims as u64, Distance::Cosine),
        );
        let mut sparse = SparseVectorsConfigBuilder::default();
        sparse.add_named_vector_params(
            SPARSE_VECTOR,
            SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
        );
        let mut request = CreateCollectionBuilder::new(&self.collection)
            .vectors_config(vectors)
            .sparse_vectors_config(sparse);
        let layout = self.layout;
        if let Some(n) = layout.shard_number {
            request = request.shard_number(n);
        }
        if let Some(n) = layout.replication_factor {
            request = request.replication_factor(n);
        }
        if let Some(n) = layout.write_consistency_factor {
            request = request.write_consistency_factor(n);
        }
        let created = self.client.create_collection(request).await;
        match created {
            Ok(_) => {
                info!(url = %self.url, collection = %self.collection, dims, ?layout, "created qdrant collection");
                Ok(())
            }
            // Another process created it between our check and our create: fine, `ensure`
            // checks its dimensions next.
            Err(err) if status_code(&err) == Some(Code::AlreadyExists) => Ok(()),
            Err(err) => Err(self.error("cannot create the collection", err)),
        }
    }

    async fn ensure_payload_indexes(&self) -> Result<(), IndexError> {
        let schema = self
            .client
            .collection_info(&self.collection)
            .await
            .map_err(|err| self.error("cannot read the collection info", err))?
            .result
            .map(|info| info.payload_schema)
            .unwrap_or_default();
        for (key, kind) in INDEXED_KEYS {
            if schema.contains_key(key) {
                continue;
            }
            let field_type = match kind {
                IndexKind::Keyword => FieldType::Keyword,
                IndexKind::Datetime => FieldType::Datetime,
            };
            self.client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(&self.collection, key, field_type)
                        .wait(true),
                )
                .await
                .map_err(|err| self.error(&format!("cannot index payload field `{key}`"), err))?;
        }
        Ok(())
    }

    /// Bring a collection created before kb stored BM25 vectors up to date: add the sparse
    /// vector (needs a server that has the create-vector-name API) and derive it, from the text
    /// in the payload, for every point that lacks it. Resumable: a later `ensure` finishes
    /// what an interrupted one started.
    async fn add_missing_sparse(&self, has_sparse: bool) -> Result<(), IndexError> {
        if !has_sparse {
            self.client
                .create_vector_name(
                    CreateVectorNameRequestBuilder::new(
                        &self.collection,
                        SPARSE_VECTOR,
                        SparseVectorCreationConfigBuilder::default().modifier(Modifier::Idf),
                    )
                    .wait(true),
                )
                .await
                .map_err(|err| {
                    self.error(
                        &format!(
                            "the collection has no `{SPARSE_VECTOR}` vector (created before BM25 retrieval) and adding it failed; re-create it (delete the collection, re-ingest)"
                        ),
                        err,
                    )
                })?;
            info!(url = %self.url, collection = %self.collection, "added the BM25 sparse vector to the collection");
        }
        let lacking =
            qdrant_client::qdrant::Filter::must_not([Condition::has_vector(SPARSE_VECTOR)]);
        let mut offset: Option<PointId> = None;
        let mut filled = 0_usize;
        loop {
            let mut request = ScrollPointsBuilder::new(&self.collection)
                .filter(lacking.clone())
                .limit(SCROLL_PAGE)
                .with_payload(true);
            if let Some(offset) = offset.take() {
                request = request.offset(offset);
            }
            let page = self
                .client
                .scroll(request)
                .await
                .map_err(|err| self.error("cannot list points without BM25 vectors", err))?;
            let points = page
                .result
                .into_iter()
                .map(|point| {
                    let id = uuid_of(point.id)?;
                    let text = payload_of(point.payload, id)?.indexed_text();
                    let vectors = HashMap::from([(
                        SPARSE_VECTOR.to_owned(),
                        sparse(&self.bm25.document(&text)),
                    )]);
                    Ok(PointVectors {
                        id: Some(PointId::from(id.to_string())),
                        vectors: Some(vectors.into()),
                    })
                })
                .collect::<Result<Vec<_>, IndexError>>()?;
            if !points.is_empty() {
                filled += points.len();
                self.client
                    .update_vectors(
                        UpdatePointVectorsBuilder::new(&self.collection, points).wait(true),
                    )
                    .await
                    .map_err(|err| self.error("cannot add BM25 vectors", err))?;
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        if filled > 0 {
            info!(points = filled, "added BM25 vectors to existing points");
        }
        Ok(())
    }

    /// Refuse a vector whose size is not the collection's (when `ensure` has read it): the
    /// server would refuse it too, with a message kb cannot act on.
    fn check_dims(&self, len: usize) -> Result<(), IndexError> {
        match self.dims.load(Ordering::Relaxed) {
            0 => Ok(()),
            found if found == len => Ok(()),
            found => Err(IndexError::DimensionMismatch {
                expected: len,
                found,
            }),
        }
    }

    fn error(&self, context: &str, err: QdrantError) -> IndexError {
        if let Some(mismatch) = dimension_mismatch(&err) {
            return mismatch;
        }
        let message = format!(
            "qdrant server {} collection `{}`: {context}",
            self.url, self.collection
        );
        match &err {
            QdrantError::ResponseError { status } => match status.code() {
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Aborted
                | Code::Cancelled => IndexError::unavailable_because(message, err),
                // qdrant-client reports a failed connection as `internal`, with this message.
                Code::Internal if status.message().starts_with(CONNECT_FAILED) => {
                    IndexError::unavailable_because(message, err)
                }
                Code::Unauthenticated | Code::PermissionDenied => {
                    IndexError::other_because(format!("{message} (check the qdrant API key)"), err)
                }
                Code::NotFound => IndexError::other_because(
                    format!("{message} (the collection does not exist; `ensure` creates it)"),
                    err,
                ),
                _ => IndexError::other_because(message, err),
            },
            QdrantError::ResourceExhaustedError { .. } | QdrantError::Io(_) => {
                IndexError::unavailable_because(message, err)
            }
            _ => IndexError::other_because(message, err),
        }
    }
}

#[async_trait]
impl VectorIndex for QdrantServerIndex {
    async fn ensure(&self, dims: usize) -> Result<(), IndexError> {
        if dims == 0 {
            return Err(IndexError::other(
                "cannot create a vector index for 0-dimensional vectors",
            ));
        }
        let (found, has_sparse) = match self.existing_layout().await? {
            Some(found) => found,
            None => {
                self.create_collection(dims).await?;
                self.existing_layout().await?.ok_or_else(|| {
                    IndexError::other(format!(
                        "qdrant collection `{}` vanished right after it was created",
                        self.collection
                    ))
                })?
            }
        };
        self.dims.store(found, Ordering::Relaxed);
        if found != dims {
            return Err(IndexError::DimensionMismatch {
                expected: dims,
                found,
            });
        }
        self.ensure_payload_indexes().await?;
        self.add_missing_sparse(has_sparse).await
    }

    async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<(), IndexError> {
        if points.is_empty() {
            return Ok(());
        }
        let count = points.len();
        for point in &points {
            self.check_dims(point.vector.len())?;
        }
        let points = points
            .into_iter()
            .map(|point| {
                let terms = self.bm25.document(&point.payload.indexed_text());
                let payload = Payload::from(payload::to_json(&point.payload)?);
                let vectors = HashMap::from([
                    (DENSE_VECTOR.to_owned(), Vector::new_dense(point.vector)),
                    (SPARSE_VECTOR.to_owned(), sparse(&terms)),
                ]);
                Ok(PointStruct::new(point.id.to_string(), vectors, payload))
            })
            .collect::<Result<Vec<_>, IndexError>>()?;
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true))
            .await
            .map_err(|err| self.error(&format!("cannot upsert {count} points"), err))?;
        Ok(())
    }

    async fn search(&self, query: &SearchQuery<'_>) -> Result<Vec<Hit>, IndexError> {
        if query.k == 0 {
            return Ok(Vec::new());
        }
        self.check_dims(query.vector.len())?;
        let retrieval = query.retrieval;
        let filter = server_filter(&Conditions::from_filter(query.filter));
        let terms = self.bm25.query(query.text);
        let dense = || Query::new_nearest(query.vector.to_vec());
        let sparse = || {
            Query::new_nearest(VectorInput::new_sparse(
                terms.indices.clone(),
                terms.values.clone(),
            ))
        };
        let mut request = QueryPointsBuilder::new(&self.collection)
            .limit(query.k as u64)
            .with_payload(true);
        request = match retrieval {
            Retrieval::Dense => request.query(dense()).using(DENSE_VECTOR),
            Retrieval::Sparse => request.query(sparse()).using(SPARSE_VECTOR),
            Retrieval::Hybrid => {
                let limit = retrieval::prefetch_limit(query.k) as u64;
                let prefetch = |q: Query, using: &str| {
                    let prefetch = PrefetchQueryBuilder::default()
                        .query(q)
                        .using(using)
                        .limit(limit);
                    match &filter {
                        Some(filter) => prefetch.filter(filter.clone()),
                        None => prefetch,
                    }
                };
                request
                    .add_prefetch(prefetch(dense(), DENSE_VECTOR))
                    .add_prefetch(prefetch(sparse(), SPARSE_VECTOR))
                    .query(Query::new_rrf(RrfBuilder::with_k(RRF_K as u32)))
            }
        };
        if retrieval != Retrieval::Dense {
            request = request.with_vectors(VectorsSelector {
                names: vec![DENSE_VECTOR.to_owned()],
            });
        }
        if let Some(filter) = filter.clone() {
            request = request.filter(filter);
        }
        let response = match self.client.query(request).await {
            Ok(response) => response,
            Err(err) => {
                return ignore_not_found(err, Vec::new())
                    .map_err(|err| self.error(&format!("{retrieval} search failed"), err));
            }
        };
        response
            .result
            .into_iter()
            .map(|point| to_hit(point, retrieval, query.vector))
            .collect()
    }

    async fn delete_points(&self, ids: &[uuid::Uuid]) -> Result<(), IndexError> {
        if ids.is_empty() {
            return Ok(());
        }
        let selector = PointsIdsList {
            ids: ids.iter().map(|id| PointId::from(id.to_string())).collect(),
        };
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(selector)
                    .wait(true),
            )
            .await
            .map(drop)
            .or_else(|err| ignore_not_found(err, ()))
            .map_err(|err| self.error(&format!("cannot delete {} points", ids.len()), err))
    }

    async fn delete_document(&self, id: &DocumentId) -> Result<(), IndexError> {
        let filter = qdrant_client::qdrant::Filter::must([Condition::matches(
            DOC_ID_KEY,
            id.as_str().to_owned(),
        )]);
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(filter)
                    .wait(true),
            )
            .await
            .map(drop)
            .or_else(|err| ignore_not_found(err, ()))
            .map_err(|err| self.error(&format!("cannot delete the points of document {id}"), err))
    }

    async fn point_ids(&self) -> Result<Vec<uuid::Uuid>, IndexError> {
        let mut ids = Vec::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut request = ScrollPointsBuilder::new(&self.collection)
                .limit(SCROLL_PAGE)
                .with_payload(false);
            if let Some(offset) = offset.take() {
                request = request.offset(offset);
            }
            let page = match self.client.scroll(request).await {
                Ok(page) => page,
                Err(err) => {
                    return ignore_not_found(err, Vec::new())
                        .map_err(|err| self.error("cannot list point ids", err));
                }
            };
            for point in page.result {
                ids.push(uuid_of(point.id)?);
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(ids),
            }
        }
    }

    async fn count(&self) -> Result<u64, IndexError> {
        match self
            .client
            .count(CountPointsBuilder::new(&self.collection).exact(true))
            .await
        {
            Ok(response) => Ok(response.result.map_or(0, |result| result.count)),
            Err(err) => {
                ignore_not_found(err, 0).map_err(|err| self.error("cannot count points", err))
            }
        }
    }

    async fn optimize(&self) -> Result<(), IndexError> {
        // The server builds its indexes in the background.
        Ok(())
    }
}

/// The server's refusal of a vector of the wrong size ("Wrong input: Vector dimension error:
/// expected dim: 4, got 5 for vector 'dense'") as [`IndexError::DimensionMismatch`], for a
/// process that has not read the collection's size yet.
fn dimension_mismatch(err: &QdrantError) -> Option<IndexError> {
    let QdrantError::ResponseError { status } = err else {
        return None;
    };
    if status.code() != Code::InvalidArgument {
        return None;
    }
    let rest = status
        .message()
        .split_once("Vector dimension error: expected dim: ")?
        .1;
    let (found, rest) = rest.split_once(", got ")?;
    let expected: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(IndexError::DimensionMismatch {
        expected: expected.parse().ok()?,
        found: found.trim().parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_dimension_error_becomes_a_dimension_mismatch() {
        let refused = QdrantError::ResponseError {
            status: tonic::Status::invalid_argument(
                "Wrong input: Vector dimension error: expected dim: 384, got 768 for vector 'dense'",
            ),
        };
        assert!(matches!(
            dimension_mismatch(&refused),
            Some(IndexError::DimensionMismatch {
                expected: 768,
                found: 384
            })
        ));
        let other = QdrantError::ResponseError {
            status: tonic::Status::invalid_argument("Wrong input: something else"),
        };
        assert!(dimension_mismatch(&other).is_none());
    }
}
