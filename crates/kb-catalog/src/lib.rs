//! kb's catalog: documents, chunks, ingest runs, and the write-ahead records (pending points,
//! tombstones) that let the vector index be reconciled after a crash; also the API keys.
//!
//! Two backends behind kb-core's [`Catalog`](kb_core::Catalog) and
//! [`KeyStore`](kb_core::KeyStore), chosen by the settings ([`CatalogLocation`]) and opened
//! as a [`CatalogStore`]:
//!
//! - [`SqliteCatalog`]: one SQLite file, the embedded default (`catalog.path`);
//! - [`PgCatalog`]: a Postgres database that several `kb serve` replicas and `kb ingest`
//!   processes share (`catalog.url`, a [`DatabaseUrl`] whose password is never shown).
//!
//! Each applies its own migration set on open (`migrations/sqlite/`, `migrations/postgres/`:
//! the same versions, kept in step) and has its own SQL. What they share: `rows` turns rows
//! into records, `sql` holds the helpers every query uses (error context, timestamps, JSON
//! and UUID columns), `keys` makes API keys, `runs` names the process that records a run.
//! [`files`] keeps SQLite's files private. With the `testing` feature, [`testing`] gives
//! tests a fresh Postgres database of their own.

pub mod files;
mod keys;
mod postgres;
mod rows;
mod runs;
mod sql;
mod sqlite;
mod store;
mod url;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

pub use keys::NewKey;
pub use postgres::{PgCatalog, connect as connect_postgres};
pub use sqlite::SqliteCatalog;
pub use store::{CatalogLocation, CatalogStore};
pub use url::{DatabaseUrl, DatabaseUrlError};
