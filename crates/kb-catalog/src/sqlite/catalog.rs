//! [`Catalog`] for [`SqliteCatalog`]: every trait method and its query.
//!
//! One block because a trait impl cannot be split across files; the parts the methods share
//! live in `documents`, `write_ahead`, `runs` and `sql`.

use async_trait::async_trait;
use kb_core::{
    Catalog, CatalogError, DocumentId, DocumentRecord, DocumentSource, IngestRun, RunStats,
    StoredChunk,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::ops::RangeInclusive;
use uuid::Uuid;

use super::SqliteCatalog;
use super::documents::{ROWS_PER_INSERT, commit_in};
use super::write_ahead::{WriteAhead, forget_write_ahead};
use crate::rows::{
    CHUNK_COLUMNS, DOCUMENT_COLUMNS, RUN_COLUMNS, chunk_from_row, document_from_row, run_from_row,
};
use crate::runs::RunOwner;
use crate::sql::{db_err, now, parse_uuid, to_json};

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<DocumentRecord>, CatalogError> {
        let row = sqlx::query(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("get document"))?;
        row.as_ref().map(document_from_row).transpose()
    }

    async fn list_documents(&self) -> Result<Vec<DocumentRecord>, CatalogError> {
        self.all_rows(
            &format!("SELECT {DOCUMENT_COLUMNS} FROM documents ORDER BY id"),
            "list documents",
            document_from_row,
        )
        .await
    }

    async fn find_message(&self, message_id: &str) -> Result<Option<DocumentId>, CatalogError> {
        // Attachments carry their message's headers too: the message is the one whose id has
        // no fragment added, else the first.
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM documents WHERE message_json IS NOT NULL \
             AND json_extract(message_json, '$.message_id') = ? ORDER BY length(id), id LIMIT 1",
        )
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("find message"))?;
        Ok(id.map(DocumentId::new))
    }

    async fn chunks(&self, id: &DocumentId) -> Result<Vec<StoredChunk>, CatalogError> {
        sqlx::query(&format!(
            "SELECT {CHUNK_COLUMNS} FROM chunks WHERE doc_id = ? ORDER BY ordinal"
        ))
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list chunks"))?
        .iter()
        .map(chunk_from_row)
        .collect()
    }

    async fn chunk_range(
        &self,
        id: &DocumentId,
        ordinals: RangeInclusive<u32>,
    ) -> Result<Vec<StoredChunk>, CatalogError> {
        // UNIQUE (doc_id, ordinal) is the index this reads.
        sqlx::query(&format!(
            "SELECT {CHUNK_COLUMNS} FROM chunks \
             WHERE doc_id = ? AND ordinal BETWEEN ? AND ? ORDER BY ordinal"
        ))
        .bind(id.as_str())
        .bind(i64::from(*ordinals.start()))
        .bind(i64::from(*ordinals.end()))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("read chunks"))?
        .iter()
        .map(chunk_from_row)
        .collect()
    }

    async fn all_point_ids(&self) -> Result<Vec<Uuid>, CatalogError> {
        self.point_id_query("SELECT point_id FROM chunks", "list point ids")
            .await
    }

    async fn record_pending_points(&self, ids: &[Uuid]) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
        let at = now();
        for rows in ids.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO pending_points (point_id, recorded_at) ",
            );
            insert.push_values(rows, |mut row, id| {
                row.push_bind(id.to_string()).push_bind(at);
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(db_err("record pending points"))?;
        }
        tx.commit().await.map_err(db_err("commit pending points"))
    }

    async fn commit_document(
        &self,
        doc: &DocumentRecord,
        chunks: &[StoredChunk],
    ) -> Result<Vec<Uuid>, CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
        let replaced = commit_in(&mut tx, doc, chunks, now()).await?;
        tx.commit().await.map_err(db_err("commit document"))?;
        Ok(replaced)
    }

    async fn commit_documents(
        &self,
        docs: &[(DocumentRecord, Vec<StoredChunk>)],
    ) -> Result<Vec<Uuid>, CatalogError> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
        let at = now();
        let mut replaced = Vec::new();
        for (doc, chunks) in docs {
            replaced.extend(commit_in(&mut tx, doc, chunks, at).await?);
        }
        tx.commit().await.map_err(db_err("commit documents"))?;
        Ok(replaced)
    }

    async fn remove_document(&self, id: &DocumentId) -> Result<Vec<Uuid>, CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
        let at = now();
        let old: Vec<String> = sqlx::query_scalar("SELECT point_id FROM chunks WHERE doc_id = ?")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("read chunks"))?;
        for point in &old {
            sqlx::query("INSERT OR IGNORE INTO tombstones (point_id, recorded_at) VALUES (?, ?)")
                .bind(point)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(db_err("record tombstone"))?;
        }
        sqlx::query("DELETE FROM documents WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err("delete document"))?;
        tx.commit().await.map_err(db_err("commit removal"))?;
        old.iter().map(|s| parse_uuid(s)).collect()
    }

    async fn set_document_source(
        &self,
        id: &DocumentId,
        source: &DocumentSource,
    ) -> Result<(), CatalogError> {
        let updated = sqlx::query(
            "UPDATE documents SET source_path = ?, source_root = ?, cli_groups_json = ? \
             WHERE id = ?",
        )
        .bind(&source.path)
        .bind(&source.root)
        .bind(source.cli_groups.as_ref().map(to_json))
        .bind(id.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_err("record document source"))?;
        if updated.rows_affected() == 0 {
            return Err(CatalogError::database_refused(format!(
                "record document source: document {id} is not catalogued"
            )));
        }
        Ok(())
    }

    async fn orphan_candidates(&self) -> Result<Vec<Uuid>, CatalogError> {
        self.point_id_query(
            "SELECT point_id FROM tombstones \
             UNION SELECT point_id FROM pending_points \
             WHERE point_id NOT IN (SELECT point_id FROM chunks)",
            "list orphan candidates",
        )
        .await
    }

    async fn pending_points(&self) -> Result<Vec<Uuid>, CatalogError> {
        self.point_id_query("SELECT point_id FROM pending_points", "list pending points")
            .await
    }

    async fn tombstones(&self) -> Result<Vec<Uuid>, CatalogError> {
        self.point_id_query("SELECT point_id FROM tombstones", "list tombstones")
            .await
    }

    async fn clear_tombstones(&self, ids: &[Uuid]) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
        for id in ids {
            forget_write_ahead(&mut tx, WriteAhead::Point(&id.to_string())).await?;
        }
        tx.commit()
            .await
            .map_err(db_err("commit cleared tombstones"))
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, CatalogError> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("get meta"))
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), CatalogError> {
        self.set_meta_many(&[(key, value)]).await
    }

    async fn set_meta_many(&self, entries: &[(&str, &str)]) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
        for (key, value) in entries {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES (?, ?) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(db_err("set meta"))?;
        }
        tx.commit().await.map_err(db_err("commit meta"))
    }

    async fn start_run(&self) -> Result<i64, CatalogError> {
        let me = RunOwner::current();
        let id = sqlx::query(
            "INSERT INTO ingest_runs (started_at, status, host, pid, process_token) \
             VALUES (?, 'running', ?, ?, ?)",
        )
        .bind(now())
        .bind(&me.host)
        .bind(i64::from(me.pid))
        .bind(&me.token)
        .execute(&self.pool)
        .await
        .map_err(db_err("start run"))?
        .last_insert_rowid();
        Ok(id)
    }

    async fn interrupt_stale_runs(&self) -> Result<Vec<i64>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, host, pid, process_token FROM ingest_runs WHERE status = 'running'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list running runs"))?;
        let me = RunOwner::current();
        let mut stale = Vec::new();
        for row in &rows {
            let owner = match (
                row.get::<Option<String>, _>("host"),
                row.get::<Option<i64>, _>("pid"),
                row.get::<Option<String>, _>("process_token"),
            ) {
                (Some(host), Some(pid), Some(token)) => Some(RunOwner {
                    host,
                    pid: u32::try_from(pid).unwrap_or(0),
                    token,
                }),
                _ => None,
            };
            if owner.is_none_or(|o| o.is_gone(&me)) {
                stale.push(row.get::<i64, _>("id"));
            }
        }
        for id in &stale {
            sqlx::query(
                "UPDATE ingest_runs SET status = 'interrupted', finished_at = ? \
                 WHERE id = ? AND status = 'running'",
            )
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err("mark run interrupted"))?;
        }
        if !stale.is_empty() {
            tracing::warn!(runs = ?stale, "marked ingest runs of processes that are gone as interrupted");
        }
        Ok(stale)
    }

    async fn finish_run(
        &self,
        run: i64,
        status: &str,
        stats: &RunStats,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE ingest_runs SET finished_at = ?, status = ?, stats_json = ? WHERE id = ?",
        )
        .bind(now())
        .bind(status)
        .bind(to_json(stats))
        .bind(run)
        .execute(&self.pool)
        .await
        .map_err(db_err("finish run"))?;
        Ok(())
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<IngestRun>, CatalogError> {
        sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM ingest_runs ORDER BY id DESC LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list runs"))?
        .iter()
        .map(run_from_row)
        .collect()
    }
}
