//! Swapping documents' chunks inside a transaction, the locks that keep two processes from
//! swapping the same document at once, and dropping settled write-ahead records.

use kb_core::{CatalogError, DocumentId, DocumentRecord, StoredChunk};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use std::collections::HashSet;
use uuid::Uuid;

use crate::sql::{db_err, parse_uuid, to_json};

/// The first key of every document lock (see `runs::RUN_LOCK_CLASS`).
const DOCUMENT_LOCK_CLASS: i32 = 0x6b62_0002;

/// Rows per multi-row INSERT: 10 parameters each stays far below Postgres' 65,535.
const ROWS_PER_INSERT: usize = 500;

/// Take the transaction locks of these documents, in one order (that of their keys) so that
/// two transactions locking overlapping groups cannot deadlock on them. Held until the
/// transaction ends.
pub(super) async fn lock_documents(
    tx: &mut PgConnection,
    ids: impl IntoIterator<Item = &DocumentId>,
) -> Result<(), CatalogError> {
    let ids: Vec<&str> = ids.into_iter().map(DocumentId::as_str).collect();
    // DISTINCT keeps the subquery from being merged into the outer one, so the locks are
    // taken in the subquery's order.
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1, k) FROM \
         (SELECT DISTINCT hashtext(id) AS k FROM unnest($2::text[]) AS t(id) ORDER BY k) AS keys",
    )
    .bind(DOCUMENT_LOCK_CLASS)
    .bind(&ids)
    .execute(&mut *tx)
    .await
    .map_err(db_err("lock documents"))?;
    Ok(())
}

/// Record these points as tombstones (those already recorded stay as they are).
pub(super) async fn tombstone(
    tx: &mut PgConnection,
    points: &[String],
    at: i64,
) -> Result<(), CatalogError> {
    if points.is_empty() {
        return Ok(());
    }
    let mut points = points.to_vec();
    points.sort();
    sqlx::query(
        "INSERT INTO tombstones (point_id, recorded_at) \
         SELECT p, $2 FROM unnest($1::text[]) AS t(p) ORDER BY p ON CONFLICT DO NOTHING",
    )
    .bind(&points)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db_err("record tombstones"))?;
    Ok(())
}

/// Swap one document's chunks inside `tx`, whose lock on the document is held (see
/// [`Catalog::commit_document`](kb_core::Catalog::commit_document)).
pub(super) async fn commit_in(
    tx: &mut PgConnection,
    doc: &DocumentRecord,
    chunks: &[StoredChunk],
    at: i64,
) -> Result<Vec<Uuid>, CatalogError> {
    let old: Vec<String> = sqlx::query_scalar("SELECT point_id FROM chunks WHERE doc_id = $1")
        .bind(doc.id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err("read old chunks"))?;
    let new: HashSet<String> = chunks.iter().map(|c| c.point_id.to_string()).collect();
    let gone: Vec<String> = old.into_iter().filter(|id| !new.contains(id)).collect();
    tombstone(tx, &gone, at).await?;
    let replaced = gone
        .iter()
        .map(|id| parse_uuid(id))
        .collect::<Result<Vec<_>, _>>()?;
    sqlx::query("DELETE FROM chunks WHERE doc_id = $1")
        .bind(doc.id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err("delete old chunks"))?;
    sqlx::query(
        "INSERT INTO documents (id, path, title, content_hash, size_bytes, text_bytes, \
         chunk_count, groups_json, owner, effective_date, tags_json, created_at, updated_at, \
         source_path, source_root, cli_groups_json, message_json) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (id) DO UPDATE SET path = excluded.path, title = excluded.title, \
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
    .bind(saturating(doc.size_bytes))
    .bind(saturating(doc.text_bytes))
    .bind(saturating(chunks.len() as u64))
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
    .execute(&mut *tx)
    .await
    .map_err(db_err("upsert document"))?;
    for rows in chunks.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO chunks (point_id, doc_id, ordinal, heading_json, byte_start, byte_end, \
             token_count, chunk_hash, text, location_json) ",
        );
        insert.push_values(rows, |mut row, c| {
            row.push_bind(c.point_id.to_string())
                .push_bind(doc.id.as_str())
                .push_bind(i64::from(c.chunk.ordinal))
                .push_bind(to_json(&c.chunk.heading_path))
                .push_bind(saturating(c.chunk.byte_start as u64))
                .push_bind(saturating(c.chunk.byte_end as u64))
                .push_bind(saturating(c.chunk.token_count as u64))
                .push_bind(&c.chunk_hash)
                .push_bind(&c.chunk.text)
                .push_bind(c.chunk.location.as_ref().map(to_json));
        });
        insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(db_err("insert chunks"))?;
    }
    // The new points are committed: drop their pending records (and any tombstone of a point
    // that is back).
    for table in ["pending_points", "tombstones"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE point_id IN (SELECT point_id FROM chunks WHERE doc_id = $1)"
        ))
        .bind(doc.id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err("clear write-ahead records"))?;
    }
    Ok(replaced)
}

/// Drop the pending records and tombstones of these points.
pub(super) async fn forget_points(
    tx: &mut PgConnection,
    points: &[String],
) -> Result<(), CatalogError> {
    for table in ["pending_points", "tombstones"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE point_id = ANY($1::text[])"
        ))
        .bind(points)
        .execute(&mut *tx)
        .await
        .map_err(db_err("clear write-ahead records"))?;
    }
    Ok(())
}

/// A size or count as Postgres' BIGINT.
pub(super) fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
