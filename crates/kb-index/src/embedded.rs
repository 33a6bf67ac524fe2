//! The embedded index: Qdrant's in-process engine (`qdrant-edge`) on a local folder.
//!
//! # Folder layout and locking
//!
//! The folder holds one edge shard (`edge_config.json`, `wal/`, `segments/`) and a `LOCK`
//! file. [`EmbeddedIndex::open`] takes an exclusive advisory lock (`flock`) on `LOCK` before
//! touching anything else and keeps it for the life of the index, so a second opener — another
//! process, or the same process twice — fails with [`IndexError::Locked`] instead of corrupting
//! the shard. The kernel releases the lock when the process exits, even on SIGKILL, so there is
//! no stale lock to clean up. `open` retries for half a second before giving up, which covers a
//! previous process that is still exiting. (qdrant-edge also `flock`s its `wal/` directory, but
//! only once the shard exists, and with an error that cannot be told apart from other WAL
//! failures.)
//!
//! # Durability
//!
//! `EdgeShard::update` appends the operation to the shard's write-ahead log before applying it.
//! The WAL segments are memory-mapped files, so once an update returns its record is in the
//! kernel's page cache: it survives the process being killed (SIGKILL, panic, OOM) and is
//! re-applied by `EdgeShard::load` on the next open (`tests/durability.rs` kills a writer to
//! prove it). Nothing is synced to the disk itself, though: qdrant-edge has no timer flush, it
//! only syncs a WAL segment when it rotates and on `EdgeShard::flush`. So every write here ends
//! with `EdgeShard::flush`, which syncs the WAL and the segments: a write that returned also
//! survives an OS crash or power loss. That costs about 8 ms per write call on this machine
//! (43 batches of 64 × 1024-d points: 0.45 s instead of 0.1 s), small next to embedding the
//! batch. Dropping the index flushes once more.
//!
//! # Threads
//!
//! qdrant-edge is synchronous (and `Send + Sync`); every call runs on tokio's blocking pool.
//! Reads run in parallel; qdrant-edge serialises updates internally. It never optimises in the
//! background: [`VectorIndex::optimize`] runs its optimisers (segment merge and HNSW build for
//! segments above the indexing threshold, ~10 MB of vectors). Below that, search is an exact
//! brute-force scan, which is fast at that size.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kb_core::{ChunkPoint, DocumentId, Hit, IndexError, VectorIndex};
use kb_core::{Retrieval, SearchQuery};
use qdrant_edge::{
    Condition, CountRequest, CreateVectorName, DateTimeWrapper, Distance, EdgeConfig, EdgeShard,
    EdgeSparseVectorParams, EdgeSparseVectorParamsBuilder, EdgeVectorParamsBuilder, FieldCondition,
    FieldIndexOperations, Fusion, HasVectorCondition, HnswIndexConfig, JsonPath, Match, Modifier,
    NamedQuery, OperationError, Payload, PayloadFieldSchema, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStructPersisted, PointVectorsPersisted, Prefetch,
    QueryEnum, QueryRequest, Range, ScoredPoint, ScoringQuery, ScrollRequest, SearchParams,
    SparseVector, UpdateOperation, UpdateVectorsOp, VectorInternal, VectorNameConfig,
    VectorNameOperations, VectorOperations, VectorPersisted, VectorStructInternal,
    VectorStructPersisted, WithPayloadInterface, WithVector,
};
use tracing::{debug, info, warn};

use crate::payload::{
    self, Conditions, DENSE_VECTOR, DOC_ID_KEY, EFFECTIVE_DATE_KEY, INDEXED_KEYS, IndexKind,
    SPARSE_VECTOR,
};
use crate::retrieval::{self, RRF_K};
use crate::sparse::{Bm25Encoder, Terms};

/// The lock file that marks the folder as owned by one process.
const LOCK_FILE: &str = "LOCK";

/// The file qdrant-edge writes when it creates a shard (its name is private to the crate).
const EDGE_CONFIG_FILE: &str = "edge_config.json";

/// Page size when listing point ids.
const SCROLL_PAGE: usize = 1_000;

/// How long `open` waits for a lock that is on its way out before reporting it as held: a
/// previous process still shutting down, or a child process between `fork` and `exec` that
/// briefly shares the descriptor (a `flock` lives until every copy is closed).
const LOCK_GRACE: Duration = Duration::from_millis(500);
const LOCK_RETRY: Duration = Duration::from_millis(20);

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

/// Qdrant's embedded engine on a local folder.
///
/// Share one handle (behind an `Arc`) per process; dropping it flushes the shard and releases
/// the folder's lock.
pub struct EmbeddedIndex {
    inner: Arc<Inner>,
}

/// Short on purpose: the shard's own `Debug` dumps every segment.
impl fmt::Debug for EmbeddedIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedIndex")
            .field("dir", &self.inner.dir)
            .field("dims", &self.inner.shard().and_then(dense_dims))
            .finish()
    }
}

/// What [`EmbeddedIndex::info`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbeddedIndexInfo {
    /// Points stored (approximate while an optimisation runs).
    pub points: usize,
    /// Vectors in a search index: dense vectors covered by an HNSW graph (the other dense
    /// vectors are searched by brute force) plus every sparse vector (always in its inverted
    /// index).
    pub indexed_vectors: usize,
    /// Storage segments.
    pub segments: usize,
}

struct Inner {
    dir: PathBuf,
    hnsw: HnswParams,
    /// Derives the BM25 vector of every point written and of every question.
    bm25: Bm25Encoder,
    /// Set once the collection exists: on open if the folder holds a shard, else by `ensure`.
    shard: OnceLock<EdgeShard>,
    /// Serialises shard creation and index setup in `ensure`.
    setup: Mutex<()>,
    /// Holds the folder's exclusive lock. Declared last so that it is dropped (unlocked) only
    /// after the shard has been flushed and closed.
    _lock: File,
}

impl EmbeddedIndex {
    /// Open the index in `dir`, creating the folder if missing, and lock it for this process.
    ///
    /// An existing shard is loaded (re-applying whatever its WAL holds beyond the last flush);
    /// otherwise the collection is created by the first [`VectorIndex::ensure`], which knows
    /// the vector size. Fails with [`IndexError::Locked`] while another handle — in this
    /// process or another one — has the folder open.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        Self::open_with(dir, HnswParams::default())
    }

    /// [`EmbeddedIndex::open`] with other graph parameters. `m` and `ef_construct` apply when
    /// this call creates the collection (an existing one keeps those it was built with);
    /// `search_ef` applies to every search.
    pub fn open_with(dir: &Path, hnsw: HnswParams) -> Result<Self, IndexError> {
        create_private_folder(dir).map_err(|err| {
            IndexError::other_because(format!("cannot create index folder {}", dir.display()), err)
        })?;
        let lock = lock_folder(dir)?;
        let bm25 = Bm25Encoder::new();

        let shard = if dir.join(EDGE_CONFIG_FILE).exists() {
            let loaded = EdgeShard::load(dir, None)
                .map_err(|err| edge_error(format!("cannot load index {}", dir.display()), err))?;
            let dims = dense_dims(&loaded);
            info!(dir = %dir.display(), ?dims, "opened embedded vector index");
            add_missing_sparse(&loaded, &bm25)?;
            OnceLock::from(loaded)
        } else {
            info!(dir = %dir.display(), "embedded vector index folder is empty; `ensure` creates it");
            OnceLock::new()
        };

        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                hnsw,
                bm25,
                shard,
                setup: Mutex::new(()),
                _lock: lock,
            }),
        })
    }

    /// The folder this index lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Size and index state, for status output: a fresh folder reports all zeros.
    pub async fn info(&self) -> Result<EmbeddedIndexInfo, IndexError> {
        self.blocking("info", |inner| {
            let Some(shard) = inner.shard() else {
                return Ok(EmbeddedIndexInfo::default());
            };
            let info = shard
                .info()
                .map_err(|err| edge_error("cannot read index info", err))?;
            Ok(EmbeddedIndexInfo {
                points: info.points_count,
                indexed_vectors: info.indexed_vectors_count,
                segments: info.segments_count,
            })
        })
        .await
    }

    /// Run `job` on the blocking pool with the shared state.
    async fn blocking<T, F>(&self, what: &'static str, job: F) -> Result<T, IndexError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, IndexError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || job(&inner))
            .await
            .map_err(|err| IndexError::other_because(format!("{what}: index task failed"), err))?
    }
}

/// Create the index folder (and missing parents) with mode 0700 on Unix: its payloads hold the
/// text of every chunk, restricted or not. The folder is kb's own, so an existing one that
/// other users may enter is tightened to 0700 (with a warning; only the warning when its mode
/// cannot be changed).
fn create_private_folder(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            match fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
                Ok(()) => warn!(
                    dir = %dir.display(),
                    from = format_args!("{mode:o}"),
                    "the index folder was open to other users; made it private to kb's user"
                ),
                Err(error) => warn!(
                    dir = %dir.display(),
                    mode = format_args!("{mode:o}"),
                    %error,
                    "the index folder is open to other users and its mode cannot be changed; \
                     run `chmod 700` on it as its owner"
                ),
            }
        }
    }
    Ok(())
}

/// Take the folder's exclusive lock, or report who has it.
fn lock_folder(dir: &Path) -> Result<File, IndexError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|err| {
            IndexError::other_because(format!("cannot open lock file {}", path.display()), err)
        })?;
    let deadline = Instant::now() + LOCK_GRACE;
    loop {
        // `fs4` rather than the inherent `File::try_lock`: it is a plain `flock` on every Unix
        // (the std one is unsupported on some targets), the same call qdrant-edge uses for its
        // WAL.
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => return Ok(file),
            Err(fs4::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY);
            }
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(IndexError::Locked(dir.display().to_string()));
            }
            Err(fs4::TryLockError::Error(err)) => {
                return Err(IndexError::other_because(
                    format!("cannot lock {}", path.display()),
                    err,
                ));
            }
        }
    }
}

impl Inner {
    /// The shard, or `None` if `ensure` has not created the collection yet.
    fn shard(&self) -> Option<&EdgeShard> {
        self.shard.get()
    }

    fn ensure(&self, dims: usize) -> Result<(), IndexError> {
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

    /// The shard, for a write: the collection must exist.
    fn shard_for_write(&self) -> Result<&EdgeShard, IndexError> {
        self.shard().ok_or_else(|| {
            IndexError::other(format!(
                "index in {} has no collection yet; call `ensure` with the vector size first",
                self.dir.display()
            ))
        })
    }

    /// Apply one update and make it durable.
    fn write(&self, operation: UpdateOperation, what: &str) -> Result<(), IndexError> {
        let shard = self.shard_for_write()?;
        shard
            .update(operation)
            .map_err(|err| edge_error(what, err))?;
        flush(shard)
    }
}

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

/// The engine query of one search. Dense and sparse are one nearest-neighbour query on their
/// vector; hybrid fetches candidates from both (each filtered) and fuses them by RRF. Every
/// mode but dense also returns the dense vectors, for [`Hit::cosine`].
fn search_request(
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

fn sparse_vector(terms: &Terms) -> SparseVector {
    SparseVector {
        indices: terms.indices.clone(),
        values: terms.values.clone(),
    }
}

/// A scored point as a [`Hit`]; `query` is the question's embedding, for the cosine.
fn to_hit(point: ScoredPoint, retrieval: Retrieval, query: &[f32]) -> Result<Hit, IndexError> {
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

/// The sparse vector's parameters: BM25 term weights, IDF applied by the engine at search time.
fn sparse_params() -> EdgeSparseVectorParams {
    EdgeSparseVectorParamsBuilder::new()
        .modifier(Modifier::Idf)
        .build()
}

fn has_sparse(shard: &EdgeShard) -> bool {
    shard.config().sparse_vectors.contains_key(SPARSE_VECTOR)
}

fn no_sparse_vector(dir: &Path) -> IndexError {
    IndexError::other(format!(
        "index in {} has no `{SPARSE_VECTOR}` sparse vector, so it cannot search by BM25; it was not written by kb",
        dir.display()
    ))
}

/// Bring an index written before kb stored BM25 vectors up to date: add the sparse vector to
/// the collection and derive it, from the text in the payload, for every point that lacks it.
/// On a current index this is one filtered scroll that finds nothing; after a crash half-way,
/// the next open finishes the job.
fn add_missing_sparse(shard: &EdgeShard, bm25: &Bm25Encoder) -> Result<(), IndexError> {
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

/// Size of the shard's dense vector, if it has one.
fn dense_dims(shard: &EdgeShard) -> Option<usize> {
    shard
        .config()
        .vectors
        .get(DENSE_VECTOR)
        .map(|params| params.size)
}

/// Reject a vector of the wrong size with the error that tells the user what to do.
fn check_dims(shard: &EdgeShard, len: usize) -> Result<(), IndexError> {
    match dense_dims(shard) {
        Some(found) if found != len => Err(IndexError::DimensionMismatch {
            expected: len,
            found,
        }),
        _ => Ok(()),
    }
}

fn to_edge_point(
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

fn edge_filter(conditions: &Conditions) -> Option<qdrant_edge::Filter> {
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

fn uuid_of(id: PointId) -> Result<uuid::Uuid, IndexError> {
    match id {
        PointId::Uuid(uuid) => Ok(uuid),
        PointId::NumId(num) => Err(IndexError::other(format!(
            "point {num} has a numeric id; the index was not written by kb"
        ))),
    }
}

fn json_path(key: &str) -> JsonPath {
    key.parse()
        .expect("BUG: payload keys are plain identifiers, valid JSON paths")
}

fn flush(shard: &EdgeShard) -> Result<(), IndexError> {
    shard
        .flush()
        .map_err(|err| edge_error("cannot flush the index to disk", err))
}

fn edge_error(context: impl std::fmt::Display, err: OperationError) -> IndexError {
    IndexError::other_because(context.to_string(), err)
}

#[cfg(all(test, unix))]
mod folder_mode_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_index_folder_and_its_new_parents_are_0700() {
        // Arrange
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("data").join("index");

        // Act
        let index = EmbeddedIndex::open(&dir).unwrap();

        // Assert
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&temp.path().join("data")), 0o700);
        drop(index);
    }

    #[test]
    fn an_existing_world_readable_index_folder_is_tightened() {
        // Arrange: a folder left by an older kb under umask 022.
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("index");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();

        // Act
        let index = EmbeddedIndex::open(&dir).unwrap();

        // Assert
        assert_eq!(mode(&dir), 0o700);
        drop(index);
    }
}
