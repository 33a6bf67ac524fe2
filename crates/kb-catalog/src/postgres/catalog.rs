//! [`Catalog`] for [`PgCatalog`]: every trait method and its query.

use async_trait::async_trait;
use kb_core::{
    Catalog, CatalogError, DocumentId, DocumentRecord, DocumentSource, IngestRun, RunStats,
    StoredChunk,
};
use std::ops::RangeInclusive;
use uuid::Uuid;

use super::documents::{commit_in, forget_points, lock_documents, tombstone};
use super::{PgCatalog, retrying};
use crate::rows::{
    CHUNK_COLUMNS, DOCUMENT_COLUMNS, RUN_COLUMNS, chunk_from_row, document_from_row, run_from_row,
};
use crate::sql::{db_err, now, parse_uuid, to_json};

impl PgCatalog {
    /// One attempt at committing `docs` in one transaction.
    async fn commit_once(
        &self,
        docs: &[(&DocumentRecord, &[StoredChunk])],
        what: &str,
    ) -> Result<Vec<Uuid>, CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
        lock_documents(&mut tx, docs.iter().map(|(doc, _)| &doc.id)).await?;
        let at = now();
        let mut replaced = Vec::new();
        for (doc, chunks) in docs {
            replaced.extend(commit_in(&mut tx, doc, chunks, at).await?);
        }
        tx.commit().await.map_err(db_err(what))?;
        Ok(replaced)
    }

    async fn remove_once(&self, id: &DocumentId) -> Result<Vec<Uuid>, CatalogError> {
        let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
        lock_documents(&mut tx, [id]).await?;
        let old: Vec<String> = sqlx::query_scalar("SELECT point_id FROM chunks WHERE doc_id = $1")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err("read chunks"))?;
        tombstone(&mut tx, &old, now()).await?;
        sqlx::query("DELETE FROM documents WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err("delete document"))?;
        tx.commit().await.map_err(db_err("commit removal"))?;
        old.iter().map(|s| parse_uuid(s)).collect()
    }
}

#[async_trait]
impl Catalog for PgCatalog {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<DocumentRecord>, CatalogError> {
        let row = sqlx::query(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("get document"))?;
        row.as_ref().map(document_from_row).transpose()
    }

    async fn list_documents(&self) -> Result<Vec<DocumentRecord>, CatalogError> {
        // COLLATE "C": the byte order SQLite sorts by, whatever the database's collation.
        sqlx::query(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents ORDER BY id COLLATE \"C\""
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list documents"))?
        .iter()
        .map(document_from_row)
        .collect()
    }

    async fn find_message(&self, message_id: &str) -> Result<Option<DocumentId>, CatalogError> {
        // Attachments carry their message's headers too: the message is the one whose id has
        // no fragment added, else the first.
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM documents WHERE message_json IS NOT NULL \
             AND message_json::jsonb ->> 'message_id' = $1 \
             ORDER BY length(id), id COLLATE \"C\" LIMIT 1",
        )
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("find message"))?;
        Ok(id.map(DocumentId::new))
    }

    async fn chunks(&self, id: &DocumentId) -> Result<Vec<StoredChunk>, CatalogError> {
        sqlx::query(&format!(
            "SELECT {CHUNK_COLUMNS} FROM chunks WHERE doc_id = $1 ORDER BY ordinal"
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
             WHERE doc_id = $1 AND ordinal BETWEEN $2 AND $3 ORDER BY ordinal"
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
        // Sorted: two processes recording overlapping points insert them in one order.
        let mut ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        ids.sort();
        ids.dedup();
        retrying("record pending points", || async {
            sqlx::query(
                "INSERT INTO pending_points (point_id, recorded_at) \
                 SELECT p, $2 FROM unnest($1::text[]) AS t(p) ORDER BY p ON CONFLICT DO NOTHING",
            )
            .bind(&ids)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(db_err("record pending points"))?;
            Ok(())
        })
        .await
    }

    async fn commit_document(
        &self,
        doc: &DocumentRecord,
        chunks: &[StoredChunk],
    ) -> Result<Vec<Uuid>, CatalogError> {
        let docs = [(doc, chunks)];
        retrying("commit document", || {
            self.commit_once(&docs, "commit document")
        })
        .await
    }

    async fn commit_documents(
        &self,
        docs: &[(DocumentRecord, Vec<StoredChunk>)],
    ) -> Result<Vec<Uuid>, CatalogError> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let docs: Vec<(&DocumentRecord, &[StoredChunk])> =
            docs.iter().map(|(d, c)| (d, c.as_slice())).collect();
        retrying("commit documents", || {
            self.commit_once(&docs, "commit documents")
        })
        .await
    }

    async fn remove_document(&self, id: &DocumentId) -> Result<Vec<Uuid>, CatalogError> {
        retrying("remove document", || self.remove_once(id)).await
    }

    async fn set_document_source(
        &self,
        id: &DocumentId,
        source: &DocumentSource,
    ) -> Result<(), CatalogError> {
        let updated = sqlx::query(
            "UPDATE documents SET source_path = $1, source_root = $2, cli_groups_json = $3 \
             WHERE id = $4",
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
        let mut ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        ids.sort();
        retrying("clear tombstones", || async {
            let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
            forget_points(&mut tx, &ids).await?;
            tx.commit()
                .await
                .map_err(db_err("commit cleared tombstones"))
        })
        .await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, CatalogError> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("get meta"))
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), CatalogError> {
        self.set_meta_many(&[(key, value)]).await
    }

    async fn set_meta_many(&self, entries: &[(&str, &str)]) -> Result<(), CatalogError> {
        // Sorted by key: two processes setting overlapping keys lock them in one order.
        let mut entries = entries.to_vec();
        entries.sort_by_key(|(key, _)| *key);
        retrying("set meta", || async {
            let mut tx = self.pool.begin().await.map_err(db_err("begin"))?;
            for (key, value) in &entries {
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(db_err("set meta"))?;
            }
            tx.commit().await.map_err(db_err("commit meta"))
        })
        .await
    }

    async fn start_run(&self) -> Result<i64, CatalogError> {
        self.start_locked_run().await
    }

    async fn interrupt_stale_runs(&self) -> Result<Vec<i64>, CatalogError> {
        self.interrupt_unlocked_runs().await
    }

    async fn finish_run(
        &self,
        run: i64,
        status: &str,
        stats: &RunStats,
    ) -> Result<(), CatalogError> {
        let finished = sqlx::query(
            "UPDATE ingest_runs SET finished_at = $1, status = $2, stats_json = $3 WHERE id = $4",
        )
        .bind(now())
        .bind(status)
        .bind(to_json(stats))
        .bind(run)
        .execute(&self.pool)
        .await
        .map_err(db_err("finish run"));
        // Recorded or not, the run is over for this process.
        self.finish_run_lock(run).await;
        finished?;
        Ok(())
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<IngestRun>, CatalogError> {
        sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM ingest_runs ORDER BY id DESC LIMIT $1"
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
