//! [`FakeCatalog`]: the catalog's write-ahead protocol (pending points, tombstones, one
//! transaction per commit) over maps in memory.

use super::{FaultPlan, injected};
use async_trait::async_trait;
use kb_core::{
    Catalog, CatalogError, DocumentId, DocumentRecord, DocumentSource, IngestRun, RunStats,
    StoredChunk,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

#[derive(Debug, Default)]
struct CatalogState {
    documents: BTreeMap<DocumentId, DocumentRecord>,
    chunks: BTreeMap<DocumentId, Vec<StoredChunk>>,
    pending: BTreeSet<Uuid>,
    tombstones: BTreeSet<Uuid>,
    meta: HashMap<String, String>,
    runs: Vec<IngestRun>,
}

impl CatalogState {
    fn point_ids(&self) -> BTreeSet<Uuid> {
        self.chunks.values().flatten().map(|c| c.point_id).collect()
    }
}

#[derive(Debug, Default)]
pub struct FakeCatalog {
    state: Mutex<CatalogState>,
    faults: Arc<FaultPlan>,
}

impl FakeCatalog {
    pub fn with_faults(faults: Arc<FaultPlan>) -> Self {
        Self {
            faults,
            ..Self::default()
        }
    }

    /// Drop every document's recorded source (as catalogued before sources existed).
    pub fn forget_sources(&self) {
        for doc in self.state.lock().unwrap().documents.values_mut() {
            doc.source = None;
        }
    }

    pub fn add_tombstone(&self, id: Uuid) {
        self.state.lock().unwrap().tombstones.insert(id);
    }

    /// Run a write: apply `f` unless the fault plan fails it first.
    fn write<T>(&self, f: impl FnOnce(&mut CatalogState) -> T) -> Result<T, CatalogError> {
        match self.faults.hit() {
            None => Ok(f(&mut self.state.lock().unwrap())),
            Some(applied) => {
                if applied {
                    f(&mut self.state.lock().unwrap());
                }
                Err(CatalogError::database("write", injected()))
            }
        }
    }
}

#[async_trait]
impl Catalog for FakeCatalog {
    async fn get_document(&self, id: &DocumentId) -> Result<Option<DocumentRecord>, CatalogError> {
        Ok(self.state.lock().unwrap().documents.get(id).cloned())
    }

    async fn list_documents(&self) -> Result<Vec<DocumentRecord>, CatalogError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .documents
            .values()
            .cloned()
            .collect())
    }

    async fn find_message(&self, message_id: &str) -> Result<Option<DocumentId>, CatalogError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .documents
            .values()
            .find(|d| {
                d.meta
                    .message
                    .as_ref()
                    .and_then(|m| m.message_id.as_deref())
                    == Some(message_id)
            })
            .map(|d| d.id.clone()))
    }

    async fn chunks(&self, id: &DocumentId) -> Result<Vec<StoredChunk>, CatalogError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .chunks
            .get(id)
            .cloned()
            .unwrap_or_default())
    }

    async fn all_point_ids(&self) -> Result<Vec<Uuid>, CatalogError> {
        Ok(self.state.lock().unwrap().point_ids().into_iter().collect())
    }

    async fn record_pending_points(&self, ids: &[Uuid]) -> Result<(), CatalogError> {
        self.write(|s| s.pending.extend(ids.iter().copied()))
    }

    async fn commit_document(
        &self,
        doc: &DocumentRecord,
        chunks: &[StoredChunk],
    ) -> Result<Vec<Uuid>, CatalogError> {
        self.write(|s| {
            let new: BTreeSet<Uuid> = chunks.iter().map(|c| c.point_id).collect();
            let replaced: Vec<Uuid> = s
                .chunks
                .get(&doc.id)
                .into_iter()
                .flatten()
                .map(|c| c.point_id)
                .filter(|id| !new.contains(id))
                .collect();
            s.tombstones.extend(replaced.iter().copied());
            for id in &new {
                s.pending.remove(id);
                s.tombstones.remove(id);
            }
            let mut record = doc.clone();
            record.chunk_count = chunks.len() as u32;
            s.documents.insert(doc.id.clone(), record);
            s.chunks.insert(doc.id.clone(), chunks.to_vec());
            replaced
        })
    }

    async fn remove_document(&self, id: &DocumentId) -> Result<Vec<Uuid>, CatalogError> {
        self.write(|s| {
            s.documents.remove(id);
            let old: Vec<Uuid> = s
                .chunks
                .remove(id)
                .unwrap_or_default()
                .iter()
                .map(|c| c.point_id)
                .collect();
            s.tombstones.extend(old.iter().copied());
            old
        })
    }

    async fn set_document_source(
        &self,
        id: &DocumentId,
        source: &DocumentSource,
    ) -> Result<(), CatalogError> {
        self.write(|s| {
            let doc = s.documents.get_mut(id).ok_or_else(|| {
                CatalogError::database_refused(format!("document {id} is not catalogued"))
            })?;
            doc.source = Some(source.clone());
            Ok(())
        })?
    }

    async fn orphan_candidates(&self) -> Result<Vec<Uuid>, CatalogError> {
        let s = self.state.lock().unwrap();
        let committed = s.point_ids();
        let mut out: BTreeSet<Uuid> = s.tombstones.clone();
        out.extend(s.pending.iter().filter(|id| !committed.contains(id)));
        Ok(out.into_iter().collect())
    }

    async fn pending_points(&self) -> Result<Vec<Uuid>, CatalogError> {
        Ok(self.state.lock().unwrap().pending.iter().copied().collect())
    }

    async fn tombstones(&self) -> Result<Vec<Uuid>, CatalogError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .tombstones
            .iter()
            .copied()
            .collect())
    }

    async fn clear_tombstones(&self, ids: &[Uuid]) -> Result<(), CatalogError> {
        self.write(|s| {
            for id in ids {
                s.tombstones.remove(id);
                s.pending.remove(id);
            }
        })
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, CatalogError> {
        Ok(self.state.lock().unwrap().meta.get(key).cloned())
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), CatalogError> {
        self.set_meta_many(&[(key, value)]).await
    }

    async fn set_meta_many(&self, entries: &[(&str, &str)]) -> Result<(), CatalogError> {
        let mut s = self.state.lock().unwrap();
        for (key, value) in entries {
            s.meta.insert((*key).to_owned(), (*value).to_owned());
        }
        Ok(())
    }

    async fn start_run(&self) -> Result<i64, CatalogError> {
        let mut s = self.state.lock().unwrap();
        let id = s.runs.len() as i64 + 1;
        s.runs.push(IngestRun {
            id,
            started_at: 0,
            finished_at: None,
            status: "running".into(),
            stats: RunStats::default(),
        });
        Ok(id)
    }

    async fn finish_run(
        &self,
        run: i64,
        status: &str,
        stats: &RunStats,
    ) -> Result<(), CatalogError> {
        let mut s = self.state.lock().unwrap();
        let run = &mut s.runs[run as usize - 1];
        run.status = status.to_owned();
        run.stats = stats.clone();
        Ok(())
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<IngestRun>, CatalogError> {
        let s = self.state.lock().unwrap();
        Ok(s.runs.iter().rev().take(limit as usize).cloned().collect())
    }

    /// Runs live in this process's memory, so none can outlive the process that ran them.
    async fn interrupt_stale_runs(&self) -> Result<Vec<i64>, CatalogError> {
        Ok(Vec::new())
    }
}
