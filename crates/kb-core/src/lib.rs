//! kb's core: the domain types every other crate speaks and the boundary traits
//! ([`Embedder`], [`ChatModel`], [`VectorIndex`], [`Catalog`]) that adapters implement.
//!
//! Nothing here does I/O. Adapters (engine client, local model, Qdrant, SQLite) depend on
//! this crate; only the server and the CLI name concrete types.

pub mod access;
pub mod catalog;
pub mod document;
pub mod error;
pub mod index;
pub mod location;
pub mod model;

pub use access::{
    API_KEY_PREFIX, AccessRole, ApiKeyRecord, KeyStore, KeyStoreError, PUBLIC_GROUP, Principal,
    key_hash,
};
pub use catalog::{Catalog, DocumentRecord, DocumentSource, IngestRun, RunStats, StoredChunk};
pub use document::{Chunk, ChunkPayload, DocumentId, DocumentMeta, content_hash, point_id};
pub use error::{BoxError, CatalogError, IndexError, ModelError};
pub use index::{ChunkPoint, Filter, Hit, Retrieval, SearchQuery, VectorIndex};
pub use location::{Location, Mark, MessageHeaders, Place, locate};
pub use model::{
    ChatDelta, ChatMessage, ChatModel, ChatRequest, ChatResponse, ChatStream, Embedder, Embedding,
    InputKind, Role, Usage,
};
