//! kb's catalog in SQLite: documents, chunks, ingest runs, and the write-ahead records
//! (pending points, tombstones) that let the vector index be reconciled after a crash.
//!
//! The schema lives in the workspace's `migrations/` folder and is applied on open.

use async_trait::async_trait;
pub mod files;
mod keys;

pub use keys::NewKey;

use kb_core::{
    Catalog, CatalogError, Chunk, DocumentId, DocumentMeta, DocumentRecord, DocumentSource,
    IngestRun, RunStats, StoredChunk,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The SQLite catalog. Cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    pool: SqlitePool,
}

pub(crate) fn db_err(context: &str) -> impl FnOnce(sqlx::Error) -> CatalogError + '_ {
    move |e| CatalogError::database(context, e)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl SqliteCatalog {
    /// Open (creating if missing) the database file at `path` and apply pending migrations.
    ///
    /// The file and its `-wal`/`-shm` are made private to this user, and a folder created for
    /// them is 0700 ([`files`]).
    pub async fn open(path: &Path) -> Result<Self, CatalogError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            files::create_private_dir(parent).map_err(|e| {
                CatalogError::database(format!("cannot create folder {}", parent.display()), e)
            })?;
            files::warn_if_open_to_others(parent);
        }
        files::secure_database_files(path, true).map_err(|e| {
            CatalogError::database(format!("cannot make {} private", path.display()), e)
        })?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|e| CatalogError::database(path.display().to_string(), e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| CatalogError::database(format!("cannot open {}", path.display()), e))?;
        Self::from_pool(pool).await
    }

    /// Use an existing pool (e.g. from `#[sqlx::test]`) and apply migrations.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, CatalogError> {
        MIGRATOR.run(&pool).await.map_err(CatalogError::migration)?;
        Ok(Self { pool })
    }

    /// The point ids a query selects (its one column).
    async fn point_id_query(&self, sql: &str, what: &str) -> Result<Vec<Uuid>, CatalogError> {
        let rows: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err(what))?;
        rows.iter().map(|s| parse_uuid(s)).collect()
    }

    /// Every row a query selects, converted.
    async fn all_rows<T>(
        &self,
        sql: &str,
        what: &str,
        convert: fn(&sqlx::sqlite::SqliteRow) -> Result<T, CatalogError>,
    ) -> Result<Vec<T>, CatalogError> {
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err(what))?;
        rows.iter().map(convert).collect()
    }

    /// Check that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), CatalogError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err("ping"))?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The process that records a run: enough to tell later whether it is still alive.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RunOwner {
    host: String,
    pid: u32,
    /// Random per process, so that a pid reused by a later process (a container's pid 1 after
    /// a restart) is not taken for the process that started the run.
    token: String,
}

impl RunOwner {
    fn current() -> Self {
        static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        Self {
            host: host_name(),
            pid: std::process::id(),
            token: TOKEN.get_or_init(|| Uuid::new_v4().to_string()).clone(),
        }
    }

    /// Whether the process that recorded this run is certainly gone, as seen from `me`.
    fn is_gone(&self, me: &RunOwner) -> bool {
        if self.host != me.host {
            return false;
        }
        if self.token == me.token {
            return false;
        }
        self.pid == me.pid || !process_exists(self.pid)
    }
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether a process with this id exists (signal 0 checks without sending anything).
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        // It exists but belongs to someone else.
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

fn parse_uuid(s: &str) -> Result<Uuid, CatalogError> {
    Uuid::parse_str(s).map_err(|e| CatalogError::corrupt_because(format!("bad point id {s:?}"), e))
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    s: &str,
    what: &str,
) -> Result<T, CatalogError> {
    serde_json::from_str(s)
        .map_err(|e| CatalogError::corrupt_because(format!("bad {what} {s:?}"), e))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("BUG: catalog values always serialise")
}

fn document_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<DocumentRecord, CatalogError> {
    let groups: String = row.get("groups_json");
    let tags: String = row.get("tags_json");
    let effective_date = row
        .get::<Option<String>, _>("effective_date")
        .map(|d| {
            d.parse()
                .map_err(|e| CatalogError::corrupt_because(format!("bad effective date {d:?}"), e))
        })
        .transpose()?;
    let source = match (
        row.get::<Option<String>, _>("source_path"),
        row.get::<Option<String>, _>("source_root"),
    ) {
        (Some(path), Some(root)) => Some(DocumentSource {
            path,
            root,
            cli_groups: row
                .get::<Option<String>, _>("cli_groups_json")
                .map(|g| parse_json(&g, "command-line groups"))
                .transpose()?,
        }),
        _ => None,
    };
    Ok(DocumentRecord {
        id: DocumentId::new(row.get::<String, _>("id")),
        path: row.get("path"),
        title: row.get("title"),
        content_hash: row.get("content_hash"),
        size_bytes: row.get::<i64, _>("size_bytes") as u64,
        text_bytes: row.get::<i64, _>("text_bytes") as u64,
        chunk_count: row.get::<i64, _>("chunk_count") as u32,
        groups: parse_json(&groups, "groups")?,
        meta: DocumentMeta {
            owner: row.get("owner"),
            effective_date,
            tags: parse_json(&tags, "tags")?,
        },
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        source,
    })
}

/// Whose write-ahead records to drop.
enum WriteAhead<'a> {
    /// One point, by id.
    Point(&'a str),
    /// Every point the `chunks` table lists for a document.
    PointsOf(&'a DocumentId),
}

/// Drop the pending records and tombstones of `points`, inside the caller's transaction.
async fn forget_write_ahead(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    points: WriteAhead<'_>,
) -> Result<(), CatalogError> {
    let (filter, key) = match points {
        WriteAhead::Point(id) => ("= ?", id),
        WriteAhead::PointsOf(doc) => (
            "IN (SELECT point_id FROM chunks WHERE doc_id = ?)",
            doc.as_str(),
        ),
    };
    for table in ["pending_points", "tombstones"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE point_id {filter}"))
            .bind(key)
            .execute(&mut **tx)
            .await
            .map_err(db_err("clear write-ahead records"))?;
    }
    Ok(())
}

const DOCUMENT_COLUMNS: &str = "id, path, title, content_hash, size_bytes, text_bytes, \
                                chunk_count, groups_json, owner, effective_date, tags_json, \
                                created_at, updated_at, source_path, source_root, \
                                cli_groups_json";

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

    async fn chunks(&self, id: &DocumentId) -> Result<Vec<StoredChunk>, CatalogError> {
        let rows = sqlx::query(
            "SELECT point_id, ordinal, heading_json, byte_start, byte_end, token_count, \
             chunk_hash, text FROM chunks WHERE doc_id = ? ORDER BY ordinal",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list chunks"))?;
        rows.iter()
            .map(|row| {
                let heading: String = row.get("heading_json");
                Ok(StoredChunk {
                    point_id: parse_uuid(row.get("point_id"))?,
                    chunk_hash: row.get("chunk_hash"),
                    chunk: Chunk {
                        ordinal: row.get::<i64, _>("ordinal") as u32,
                        text: row.get("text"),
                        heading_path: parse_json(&heading, "heading path")?,
                        byte_start: row.get::<i64, _>("byte_start") as usize,
                        byte_end: row.get::<i64, _>("byte_end") as usize,
                        token_count: row.get::<i64, _>("token_count") as usize,
                    },
                })
            })
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
        let rows = sqlx::query(
            "SELECT id, started_at, finished_at, status, stats_json FROM ingest_runs \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list runs"))?;
        rows.iter()
            .map(|row| {
                let stats: String = row.get("stats_json");
                Ok(IngestRun {
                    id: row.get("id"),
                    started_at: row.get("started_at"),
                    finished_at: row.get("finished_at"),
                    status: row.get("status"),
                    stats: if stats == "{}" {
                        RunStats::default()
                    } else {
                        parse_json(&stats, "run stats")?
                    },
                })
            })
            .collect()
    }
}

/// Swap one document's chunks inside `tx` (see [`Catalog::commit_document`]).
async fn commit_in(
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
         source_path, source_root, cli_groups_json) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT(id) DO UPDATE SET path = excluded.path, title = excluded.title, \
         content_hash = excluded.content_hash, size_bytes = excluded.size_bytes, \
         text_bytes = excluded.text_bytes, chunk_count = excluded.chunk_count, \
         groups_json = excluded.groups_json, owner = excluded.owner, \
         effective_date = excluded.effective_date, tags_json = excluded.tags_json, \
         updated_at = excluded.updated_at, source_path = excluded.source_path, \
         source_root = excluded.source_root, cli_groups_json = excluded.cli_groups_json",
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
    .execute(&mut **tx)
    .await
    .map_err(db_err("upsert document"))?;
    for rows in chunks.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO chunks (point_id, doc_id, ordinal, heading_json, byte_start, byte_end, \
             token_count, chunk_hash, text) ",
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
                .push_bind(&c.chunk.text);
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

/// Rows per multi-row INSERT: 9 parameters each stays far below SQLite's 32,766.
const ROWS_PER_INSERT: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;
    use kb_core::point_id;

    #[tokio::test]
    async fn a_folder_that_cannot_be_created_is_the_cause_of_the_open_error() {
        // Arrange: the catalog's folder would be inside a regular file.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "").unwrap();

        // Act
        let error = SqliteCatalog::open(&file.join("sub").join("kb.db"))
            .await
            .unwrap_err();

        // Assert
        let source = std::error::Error::source(&error).expect("the io error is the source");
        assert!(source.is::<std::io::Error>(), "{source:?}");
        let text = kb_core::error::chain(&error).to_string();
        assert!(
            text.starts_with("catalog database error: cannot create folder "),
            "{text}"
        );
        assert_eq!(text.matches(&source.to_string()).count(), 1, "{text}");
    }

    fn doc(id: &str, hash: &str) -> DocumentRecord {
        DocumentRecord {
            id: DocumentId::new(id),
            path: format!("/handbook/{id}"),
            title: "Leave".into(),
            content_hash: hash.into(),
            size_bytes: 10,
            text_bytes: 10,
            chunk_count: 0,
            groups: vec!["all".into()],
            meta: DocumentMeta::default(),
            created_at: 0,
            updated_at: 0,
            source: None,
        }
    }

    fn chunks(d: &DocumentRecord, n: u32) -> Vec<StoredChunk> {
        (0..n)
            .map(|i| StoredChunk {
                point_id: point_id(&d.id, &d.content_hash, i),
                chunk_hash: format!("h{i}"),
                chunk: Chunk {
                    ordinal: i,
                    text: format!("chunk {i}"),
                    heading_path: vec!["Leave".into()],
                    byte_start: 0,
                    byte_end: 7,
                    token_count: 2,
                },
            })
            .collect()
    }

    /// A fresh catalog in a temporary folder (kept alive by the returned guard).
    pub(crate) async fn catalog() -> (SqliteCatalog, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open(&dir.path().join("kb.db"))
            .await
            .unwrap();
        (cat, dir)
    }

    #[tokio::test]
    async fn committing_a_document_stores_it_with_its_chunks() {
        let (cat, _dir) = catalog().await;
        let d = doc("leave.md", "v1");
        let c = chunks(&d, 3);
        cat.record_pending_points(&c.iter().map(|c| c.point_id).collect::<Vec<_>>())
            .await
            .unwrap();

        let replaced = cat.commit_document(&d, &c).await.unwrap();

        assert!(replaced.is_empty());
        let stored = cat.get_document(&d.id).await.unwrap().unwrap();
        assert_eq!(stored.chunk_count, 3);
        assert_eq!(cat.chunks(&d.id).await.unwrap(), c);
        assert!(cat.orphan_candidates().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn document_metadata_round_trips() {
        let (cat, _dir) = catalog().await;
        let mut d = doc("handbook.pdf", "v1");
        d.meta = DocumentMeta {
            owner: Some("People Team".into()),
            effective_date: "2026-03-01".parse().ok(),
            tags: vec!["leave".into(), "policy".into()],
        };

        cat.commit_document(&d, &chunks(&d, 1)).await.unwrap();
        let mut changed = d.clone();
        changed.meta.owner = None;
        cat.commit_document(&changed, &chunks(&changed, 1))
            .await
            .unwrap();

        let stored = cat.get_document(&d.id).await.unwrap().unwrap();
        assert_eq!(stored.meta, changed.meta);
        assert_eq!(cat.list_documents().await.unwrap()[0].meta, changed.meta);
    }

    fn source(path: &str, groups: Option<&[&str]>) -> DocumentSource {
        DocumentSource {
            path: path.into(),
            root: "/handbook".into(),
            cli_groups: groups.map(|g| g.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[tokio::test]
    async fn a_documents_source_round_trips_and_can_be_recorded_alone() {
        let (cat, _dir) = catalog().await;
        let mut d = doc("budget.md", "v1");
        d.source = Some(source("/handbook/finance/budget.md", Some(&["finance"])));
        let legacy = doc("old.md", "v1");
        cat.commit_document(&d, &chunks(&d, 2)).await.unwrap();
        cat.commit_document(&legacy, &chunks(&legacy, 1))
            .await
            .unwrap();

        assert_eq!(
            cat.get_document(&d.id).await.unwrap().unwrap().source,
            d.source
        );
        assert_eq!(
            cat.get_document(&legacy.id).await.unwrap().unwrap().source,
            None
        );

        let moved = source("/handbook/old.md", None);
        cat.set_document_source(&legacy.id, &moved).await.unwrap();

        let stored = cat.get_document(&legacy.id).await.unwrap().unwrap();
        assert_eq!(stored.source, Some(moved));
        assert_eq!(cat.chunks(&legacy.id).await.unwrap(), chunks(&legacy, 1));
        let missing = cat
            .set_document_source(&DocumentId::new("nope.md"), &source("/x", None))
            .await;
        assert!(missing.is_err());
    }

    #[tokio::test]
    async fn two_documents_cannot_come_from_one_file() {
        let (cat, _dir) = catalog().await;
        let mut first = doc("budget.md", "v1");
        first.source = Some(source("/handbook/finance/budget.md", None));
        let mut copy = doc("finance/budget.md", "v1");
        copy.source = first.source.clone();
        cat.commit_document(&first, &chunks(&first, 1))
            .await
            .unwrap();

        let refused = cat.commit_document(&copy, &chunks(&copy, 1)).await;

        assert!(refused.is_err(), "{refused:?}");
        assert!(cat.get_document(&copy.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_new_version_tombstones_the_old_points() {
        let (cat, _dir) = catalog().await;
        let v1 = doc("leave.md", "v1");
        let old = chunks(&v1, 2);
        cat.commit_document(&v1, &old).await.unwrap();
        let v2 = doc("leave.md", "v2");
        let new = chunks(&v2, 1);

        let replaced = cat.commit_document(&v2, &new).await.unwrap();

        let mut expected: Vec<Uuid> = old.iter().map(|c| c.point_id).collect();
        expected.sort();
        let mut got = replaced.clone();
        got.sort();
        assert_eq!(got, expected);
        let mut orphans = cat.orphan_candidates().await.unwrap();
        orphans.sort();
        assert_eq!(orphans, expected);
        cat.clear_tombstones(&replaced).await.unwrap();
        assert!(cat.orphan_candidates().await.unwrap().is_empty());
        assert_eq!(cat.all_point_ids().await.unwrap(), vec![new[0].point_id]);
    }

    #[tokio::test]
    async fn a_group_of_documents_commits_together_and_returns_every_replaced_point() {
        let (cat, _dir) = catalog().await;
        let v1 = doc("leave.md", "v1");
        let old = chunks(&v1, 2);
        cat.commit_document(&v1, &old).await.unwrap();
        let (v2, other) = (doc("leave.md", "v2"), doc("travel.md", "v1"));
        let group = vec![
            (v2.clone(), chunks(&v2, 1)),
            (other.clone(), chunks(&other, 3)),
        ];
        let ids: Vec<Uuid> = group
            .iter()
            .flat_map(|(_, c)| c.iter().map(|c| c.point_id))
            .collect();
        cat.record_pending_points(&ids).await.unwrap();

        let mut replaced = cat.commit_documents(&group).await.unwrap();

        replaced.sort();
        let mut expected: Vec<Uuid> = old.iter().map(|c| c.point_id).collect();
        expected.sort();
        assert_eq!(replaced, expected);
        assert_eq!(cat.chunks(&v2.id).await.unwrap(), group[0].1);
        assert_eq!(cat.chunks(&other.id).await.unwrap(), group[1].1);
        assert!(cat.pending_points().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_group_that_fails_commits_none_of_its_documents() {
        let (cat, _dir) = catalog().await;
        let (good, bad) = (doc("good.md", "v1"), doc("bad.md", "v1"));
        let mut bad_chunks = chunks(&bad, 2);
        // Two chunks with one point id: the second insert violates the primary key.
        bad_chunks[1].point_id = bad_chunks[0].point_id;

        let failed = cat
            .commit_documents(&[(good.clone(), chunks(&good, 1)), (bad, bad_chunks)])
            .await;

        assert!(failed.is_err());
        assert!(cat.get_document(&good.id).await.unwrap().is_none());
        assert!(cat.all_point_ids().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn pending_points_of_an_uncommitted_run_are_orphan_candidates() {
        let (cat, _dir) = catalog().await;
        let d = doc("leave.md", "v1");
        let c = chunks(&d, 2);
        let ids: Vec<Uuid> = c.iter().map(|c| c.point_id).collect();

        cat.record_pending_points(&ids).await.unwrap();

        let mut orphans = cat.orphan_candidates().await.unwrap();
        orphans.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(orphans, expected);
    }

    #[tokio::test]
    async fn write_ahead_records_are_listed_until_cleared() {
        let (cat, _dir) = catalog().await;
        let v1 = doc("leave.md", "v1");
        let old = chunks(&v1, 2);
        cat.commit_document(&v1, &old).await.unwrap();
        let v2 = doc("leave.md", "v2");
        let new = chunks(&v2, 1);
        let new_ids: Vec<Uuid> = new.iter().map(|c| c.point_id).collect();
        cat.record_pending_points(&new_ids).await.unwrap();
        assert_eq!(cat.pending_points().await.unwrap(), new_ids);
        assert!(cat.tombstones().await.unwrap().is_empty());

        let replaced = cat.commit_document(&v2, &new).await.unwrap();

        assert!(cat.pending_points().await.unwrap().is_empty());
        let mut tombstones = cat.tombstones().await.unwrap();
        tombstones.sort();
        let mut expected = replaced.clone();
        expected.sort();
        assert_eq!(tombstones, expected);
        cat.clear_tombstones(&replaced).await.unwrap();
        assert!(cat.tombstones().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn removing_a_document_deletes_chunks_and_returns_their_points() {
        let (cat, _dir) = catalog().await;
        let d = doc("leave.md", "v1");
        let c = chunks(&d, 2);
        cat.commit_document(&d, &c).await.unwrap();

        let removed = cat.remove_document(&d.id).await.unwrap();

        assert_eq!(removed.len(), 2);
        assert!(cat.get_document(&d.id).await.unwrap().is_none());
        assert!(cat.all_point_ids().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn runs_of_processes_that_are_gone_are_marked_interrupted() {
        let (cat, _dir) = catalog().await;
        let mine = cat.start_run().await.unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let me = RunOwner::current();
        let insert = |host: Option<String>, pid: Option<u32>, token: Option<String>| {
            let pool = cat.pool.clone();
            async move {
                sqlx::query(
                    "INSERT INTO ingest_runs (started_at, status, host, pid, process_token) \
                     VALUES (0, 'running', ?, ?, ?)",
                )
                .bind(host)
                .bind(pid.map(i64::from))
                .bind(token)
                .execute(&pool)
                .await
                .unwrap()
                .last_insert_rowid()
            }
        };
        let killed = insert(Some(me.host.clone()), Some(dead_pid), Some("old".into())).await;
        let same_pid_earlier_process =
            insert(Some(me.host.clone()), Some(me.pid), Some("old".into())).await;
        let other_host = insert(Some("elsewhere".into()), Some(dead_pid), Some("x".into())).await;
        let before_owners_were_recorded = insert(None, None, None).await;

        let stale = cat.interrupt_stale_runs().await.unwrap();

        assert_eq!(
            stale,
            [
                killed,
                same_pid_earlier_process,
                before_owners_were_recorded
            ]
        );
        let status =
            |id: i64, runs: &[IngestRun]| runs.iter().find(|r| r.id == id).unwrap().status.clone();
        let runs = cat.list_runs(10).await.unwrap();
        assert_eq!(status(killed, &runs), "interrupted");
        assert_eq!(status(mine, &runs), "running");
        assert_eq!(status(other_host, &runs), "running");
        assert!(cat.interrupt_stale_runs().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn runs_and_meta_round_trip() {
        let (cat, _dir) = catalog().await;
        let run = cat.start_run().await.unwrap();
        let stats = RunStats {
            added: 2,
            chunks: 7,
            ..RunStats::default()
        };
        cat.finish_run(run, "completed", &stats).await.unwrap();
        cat.set_meta("embedding_model", "local:all-MiniLM-L6-v2")
            .await
            .unwrap();

        let runs = cat.list_runs(10).await.unwrap();
        assert_eq!(runs[0].stats, stats);
        assert_eq!(runs[0].status, "completed");
        assert_eq!(
            cat.get_meta("embedding_model").await.unwrap().as_deref(),
            Some("local:all-MiniLM-L6-v2")
        );
    }
}
