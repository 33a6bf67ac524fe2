//! Document rows, and swapping one document's chunks inside a transaction.

use kb_core::{CatalogError, DocumentRecord, StoredChunk};
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use super::write_ahead::{WriteAhead, forget_write_ahead};
use crate::sql::{db_err, parse_uuid, to_json};

/// Swap one document's chunks inside `tx` (see
/// [`Catalog::commit_document`](kb_core::Catalog::commit_document)).
pub(crate) async fn commit_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    doc: &DocumentRecord,
    chunks: &[StoredChunk],
    at: i64,
) -> Result<Vec<Uuid>, CatalogError> {
    let old: Vec<String> = sqlx::query_scalar("SELECT point_id FROM chunks WHERE doc_id = ?")
        .bind(doc.id.as_str())
        .fetch_all(&mut **tx)
        .await
        .map_err(db_err("read old chunks"))?;
    let new: std::collections::HashSet<String> =
        chunks.iter().map(|c| c.point_id.to_string()).collect();
    let mut replaced = Vec::new();
    for id in old.iter().filter(|id| !new.contains(*id)) {
        sqlx::query("INSERT OR IGNORE INTO tombstones (point_id, recorded_at) VALUES (?, ?)")
            .bind(id)
            .bind(at)
            .execute(&mut **tx)
            .await
            .map_err(db_err("record tombstone"))?;
        replaced.push(parse_uuid(id)?);
    }
    sqlx::query("DELETE FROM chunks WHERE doc_id = ?")
        .bind(doc.id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db_err("delete old chunks"))?;
    sqlx::query(
        "INSERT INTO documents (id, path, title, content_hash, size_bytes, text_bytes, \
         chunk_count, groups_json, owner, effective_date, tags_json, created_at, updated_at, \
         source_path, source_root, cli_groups_json, message_json) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT(id) DO UPDATE SET path = excluded.path, title = excluded.title, \
         content_hash = excluded.content_hash, size_bytes = excluded.size_bytes, \
         text_bytes = excluded.text_bytes, chunk_count = excluded.chunk_count, \
         groups_json = excluded.groups_json, owner = excluded.owner, \
         effective_date = excluded.effective_date, tags_json = excluded.tags_json, \
         updated_at = excluded.updated_at, source_path = excluded.source_path, \
         source_root = excluded.source_root, cli_groups_json = excluded.cli_groups_json, \
         message_json = excluded.message_json",
    )
    .bind(doc.id.as_str())
    .bind(&doc.path)
    .bind(&doc.title)
    .bind(&doc.content_hash)
    .bind(doc.size_bytes as i64)
    .bind(doc.text_bytes as i64)
    .bind(chunks.len() as i64)
    .bind(to_json(&doc.groups))
    .bind(&doc.meta.owner)
    .bind(doc.meta.effective_date.map(|d| d.to_string()))
    .bind(to_json(&doc.meta.tags))
    .bind(at)
    .bind(at)
    .bind(doc.source.as_ref().map(|s| &s.path))
    .bind(doc.source.as_ref().map(|s| &s.root))
    .bind(
        doc.source
            .as_ref()
            .and_then(|s| s.cli_groups.as_ref())
            .map(to_json),
    )
    .bind(doc.meta.message.as_ref().map(to_json))
    .execute(&mut **tx)
    .await
    .map_err(db_err("upsert document"))?;
    for rows in chunks.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO chunks (point_id, doc_id, ordinal, heading_json, byte_start, byte_end, \
             token_count, chunk_hash, text, location_json) ",
        );
        insert.push_values(rows, |mut row, c| {
            row.push_bind(c.point_id.to_string())
                .push_bind(doc.id.as_str())
                .push_bind(c.chunk.ordinal as i64)
                .push_bind(to_json(&c.chunk.heading_path))
                .push_bind(c.chunk.byte_start as i64)
                .push_bind(c.chunk.byte_end as i64)
                .push_bind(c.chunk.token_count as i64)
                .push_bind(&c.chunk_hash)
                .push_bind(&c.chunk.text)
                .push_bind(c.chunk.location.as_ref().map(to_json));
        });
        insert
            .build()
            .execute(&mut **tx)
            .await
            .map_err(db_err("insert chunks"))?;
    }
    // The new points are committed: drop their pending records (and any tombstone of a point
    // that is back).
    forget_write_ahead(tx, WriteAhead::PointsOf(&doc.id)).await?;
    Ok(replaced)
}

/// Rows per multi-row INSERT: 10 parameters each stays far below SQLite's 32,766.
pub(crate) const ROWS_PER_INSERT: usize = 500;
