//! Rows to records, once for both backends: the tables have the same columns on SQLite and
//! Postgres (TEXT, and INTEGER or BIGINT read as `i64`), so only reading a column differs.

use kb_core::{
    AccessRole, ApiKeyRecord, CatalogError, Chunk, DocumentId, DocumentMeta, DocumentRecord,
    DocumentSource, IngestRun, RunStats, StoredChunk,
};
use sqlx::Row;

use crate::sql::{parse_json, parse_uuid};

/// Reading one column of a catalog row; a value of the wrong type is corrupt data, not a
/// panic.
pub(crate) trait CatalogRow {
    fn text(&self, column: &str) -> Result<String, CatalogError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, CatalogError>;
    fn int(&self, column: &str) -> Result<i64, CatalogError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, CatalogError>;
}

fn bad_column(column: &str) -> impl FnOnce(sqlx::Error) -> CatalogError + '_ {
    move |e| CatalogError::corrupt_because(format!("column {column}"), e)
}

macro_rules! catalog_row {
    ($row:ty) => {
        impl CatalogRow for $row {
            fn text(&self, column: &str) -> Result<String, CatalogError> {
                self.try_get(column).map_err(bad_column(column))
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, CatalogError> {
                self.try_get(column).map_err(bad_column(column))
            }
            fn int(&self, column: &str) -> Result<i64, CatalogError> {
                self.try_get(column).map_err(bad_column(column))
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, CatalogError> {
                self.try_get(column).map_err(bad_column(column))
            }
        }
    };
}

catalog_row!(sqlx::sqlite::SqliteRow);
catalog_row!(sqlx::postgres::PgRow);

/// A stored count or size, which is never negative.
fn unsigned<T: TryFrom<i64>>(row: &impl CatalogRow, column: &str) -> Result<T, CatalogError> {
    let value = row.int(column)?;
    T::try_from(value)
        .map_err(|_| CatalogError::corrupt(format!("column {column}: {value} is out of range")))
}

pub(crate) const DOCUMENT_COLUMNS: &str = "id, path, title, content_hash, size_bytes, text_bytes, \
                                chunk_count, groups_json, owner, effective_date, tags_json, \
                                created_at, updated_at, source_path, source_root, \
                                cli_groups_json, message_json";

pub(crate) fn document_from_row(row: &impl CatalogRow) -> Result<DocumentRecord, CatalogError> {
    let effective_date = row
        .opt_text("effective_date")?
        .map(|d| {
            d.parse()
                .map_err(|e| CatalogError::corrupt_because(format!("bad effective date {d:?}"), e))
        })
        .transpose()?;
    let source = match (row.opt_text("source_path")?, row.opt_text("source_root")?) {
        (Some(path), Some(root)) => Some(DocumentSource {
            path,
            root,
            cli_groups: row
                .opt_text("cli_groups_json")?
                .map(|g| parse_json(&g, "command-line groups"))
                .transpose()?,
        }),
        _ => None,
    };
    Ok(DocumentRecord {
        id: DocumentId::new(row.text("id")?),
        path: row.text("path")?,
        title: row.text("title")?,
        content_hash: row.text("content_hash")?,
        size_bytes: unsigned(row, "size_bytes")?,
        text_bytes: unsigned(row, "text_bytes")?,
        chunk_count: unsigned(row, "chunk_count")?,
        groups: parse_json(&row.text("groups_json")?, "groups")?,
        meta: DocumentMeta {
            owner: row.opt_text("owner")?,
            effective_date,
            tags: parse_json(&row.text("tags_json")?, "tags")?,
            message: row
                .opt_text("message_json")?
                .map(|m| parse_json(&m, "message headers"))
                .transpose()?,
        },
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
        source,
    })
}

pub(crate) const CHUNK_COLUMNS: &str = "point_id, ordinal, heading_json, byte_start, byte_end, \
    token_count, chunk_hash, text, location_json";

pub(crate) fn chunk_from_row(row: &impl CatalogRow) -> Result<StoredChunk, CatalogError> {
    Ok(StoredChunk {
        point_id: parse_uuid(&row.text("point_id")?)?,
        chunk_hash: row.text("chunk_hash")?,
        chunk: Chunk {
            ordinal: unsigned(row, "ordinal")?,
            text: row.text("text")?,
            heading_path: parse_json(&row.text("heading_json")?, "heading path")?,
            byte_start: unsigned(row, "byte_start")?,
            byte_end: unsigned(row, "byte_end")?,
            token_count: unsigned(row, "token_count")?,
            location: row
                .opt_text("location_json")?
                .map(|l| parse_json(&l, "chunk location"))
                .transpose()?,
        },
    })
}

pub(crate) const KEY_COLUMNS: &str = "id, name, role, groups_json, created_at, revoked_at";

pub(crate) fn key_from_row(row: &impl CatalogRow) -> Result<ApiKeyRecord, CatalogError> {
    let role: AccessRole = row
        .text("role")?
        .parse()
        .map_err(|e: String| CatalogError::corrupt(format!("api key role: {e}")))?;
    Ok(ApiKeyRecord {
        id: row.text("id")?,
        name: row.text("name")?,
        role,
        groups: parse_json(&row.text("groups_json")?, "key groups")?,
        created_at: row.int("created_at")?,
        revoked_at: row.opt_int("revoked_at")?,
    })
}

pub(crate) const RUN_COLUMNS: &str = "id, started_at, finished_at, status, stats_json";

pub(crate) fn run_from_row(row: &impl CatalogRow) -> Result<IngestRun, CatalogError> {
    let stats = row.text("stats_json")?;
    Ok(IngestRun {
        id: row.int("id")?,
        started_at: row.int("started_at")?,
        finished_at: row.opt_int("finished_at")?,
        status: row.text("status")?,
        stats: if stats == "{}" {
            RunStats::default()
        } else {
            parse_json(&stats, "run stats")?
        },
    })
}
