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
//!
//! # Rooms
//!
//! `folder` creates and locks the folder; `collection` creates the collection (vectors,
//! HNSW graph, payload indexes) and checks vector sizes; `vector_index` implements
//! [`VectorIndex`]; `search` builds the engine's queries and filters and reads its hits;
//! `points` converts kb's points to the engine's; `upgrade` adds BM25 vectors to an index
//! written before kb stored them. This module holds [`EmbeddedIndex`] and its shared state.
//!
//! [`VectorIndex`]: kb_core::VectorIndex
//! [`VectorIndex::optimize`]: kb_core::VectorIndex::optimize

mod collection;
mod folder;
mod points;
mod search;
mod upgrade;
mod vector_index;

pub use collection::HnswParams;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use kb_core::IndexError;
use qdrant_edge::{EdgeShard, OperationError, UpdateOperation};
use tracing::info;

use crate::sparse::Bm25Encoder;
use collection::dense_dims;
use folder::{create_private_folder, lock_folder};
use upgrade::add_missing_sparse;

/// The file qdrant-edge writes when it creates a shard (its name is private to the crate).
const EDGE_CONFIG_FILE: &str = "edge_config.json";

/// Page size when listing point ids.
const SCROLL_PAGE: usize = 1_000;

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
    ///
    /// [`VectorIndex::ensure`]: kb_core::VectorIndex::ensure
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

impl Inner {
    /// The shard, or `None` if `ensure` has not created the collection yet.
    fn shard(&self) -> Option<&EdgeShard> {
        self.shard.get()
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

fn flush(shard: &EdgeShard) -> Result<(), IndexError> {
    shard
        .flush()
        .map_err(|err| edge_error("cannot flush the index to disk", err))
}

fn edge_error(context: impl std::fmt::Display, err: OperationError) -> IndexError {
    IndexError::other_because(context.to_string(), err)
}
