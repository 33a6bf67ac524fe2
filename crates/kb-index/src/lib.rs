//! kb's vector index: the [`VectorIndex`](kb_core::VectorIndex) boundary trait implemented over
//! Qdrant, either embedded in the process or as a server.
//!
//! - [`EmbeddedIndex`] runs Qdrant's in-process engine (`qdrant-edge`) on a local folder. It is
//!   the default: nothing to install, one process owns the folder (a second one gets
//!   [`IndexError::Locked`](kb_core::IndexError::Locked)).
//! - [`QdrantServerIndex`] talks gRPC to a Qdrant server or cluster (`qdrant-client`), for
//!   deployments where several processes share one index.
//!
//! Both store the same thing, so switching backends only needs a re-ingest:
//!
//! - one named dense vector, [`DENSE_VECTOR`] (`"dense"`), compared by cosine similarity (a
//!   named vector leaves room for a sparse vector beside it later, for hybrid search);
//! - point ids are the chunk UUIDs of [`kb_core::point_id`];
//! - the payload is [`ChunkPayload`](kb_core::ChunkPayload) as flat JSON keys (`doc_id`,
//!   `doc_hash`, `ordinal`, `title`, `path`, `heading_path`, `text`, `byte_start`, `byte_end`,
//!   `groups`, and when known `owner`, `effective_date` as `YYYY-MM-DD`, `tags`), with keyword
//!   indexes on `doc_id`, `groups` and `tags` and a datetime index on `effective_date`.
//!
//! Access control is a payload filter: a reader restricted to some groups sees the points whose
//! `groups` contain one of them or [`PUBLIC_GROUP`] (`"all"`). It is one `must` condition beside
//! the caller's own (documents, tags any-of, effective-date range), so no other condition can
//! widen it.

mod embedded;
mod payload;
mod retrieval;
mod server;
mod sparse;

pub use embedded::{EmbeddedIndex, EmbeddedIndexInfo, HnswParams};
pub use payload::{DENSE_VECTOR, PUBLIC_GROUP, SPARSE_VECTOR};
pub use server::{CollectionLayout, QdrantServerIndex};
