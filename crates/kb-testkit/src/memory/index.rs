//! [`FakeIndex`]: a vector index in a map, ranking by dot product.

use super::{FaultPlan, injected};
use async_trait::async_trait;
use kb_core::{ChunkPoint, DocumentId, Hit, IndexError, SearchQuery, VectorIndex};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct FakeIndex {
    points: Mutex<BTreeMap<Uuid, ChunkPoint>>,
    dims: Mutex<Option<usize>>,
    faults: Arc<FaultPlan>,
    /// Calls to `upsert`.
    upserts: AtomicUsize,
}

impl FakeIndex {
    pub fn upsert_calls(&self) -> usize {
        self.upserts.load(Ordering::SeqCst)
    }

    pub fn with_faults(faults: Arc<FaultPlan>) -> Self {
        Self {
            faults,
            ..Self::default()
        }
    }

    pub fn snapshot(&self) -> BTreeMap<Uuid, ChunkPoint> {
        self.points.lock().unwrap().clone()
    }

    /// A point no catalog knows about; returns its id.
    pub fn insert_stray(&self) -> Uuid {
        let mut points = self.points.lock().unwrap();
        let template = points
            .values()
            .next()
            .expect("an index with points")
            .clone();
        let id = Uuid::new_v4();
        points.insert(id, ChunkPoint { id, ..template });
        id
    }

    /// Lose everything, collection included (a deleted index folder).
    pub fn wipe(&self) {
        self.points.lock().unwrap().clear();
        *self.dims.lock().unwrap() = None;
    }

    fn write(&self, f: impl FnOnce(&mut BTreeMap<Uuid, ChunkPoint>)) -> Result<(), IndexError> {
        if self.dims.lock().unwrap().is_none() {
            return Err(IndexError::other("no collection; call ensure"));
        }
        match self.faults.hit() {
            None => {
                f(&mut self.points.lock().unwrap());
                Ok(())
            }
            Some(applied) => {
                if applied {
                    f(&mut self.points.lock().unwrap());
                }
                Err(IndexError::unavailable_because("write", injected()))
            }
        }
    }
}

#[async_trait]
impl VectorIndex for FakeIndex {
    async fn ensure(&self, dims: usize) -> Result<(), IndexError> {
        let mut current = self.dims.lock().unwrap();
        match *current {
            Some(found) if found != dims => Err(IndexError::DimensionMismatch {
                expected: dims,
                found,
            }),
            _ => {
                *current = Some(dims);
                Ok(())
            }
        }
    }

    async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<(), IndexError> {
        self.upserts.fetch_add(1, Ordering::SeqCst);
        self.write(|all| {
            for p in points {
                all.insert(p.id, p);
            }
        })
    }

    /// Dense ranking by dot product whatever the mode: ingest never searches by text.
    async fn search(&self, query: &SearchQuery<'_>) -> Result<Vec<Hit>, IndexError> {
        let filter = query.filter;
        let points = self.points.lock().unwrap();
        let mut hits: Vec<Hit> = points
            .values()
            .filter(|p| filter.doc_ids.is_empty() || filter.doc_ids.contains(&p.payload.doc_id))
            .map(|p| {
                let score = p.vector.iter().zip(query.vector).map(|(a, b)| a * b).sum();
                Hit {
                    id: p.id,
                    score,
                    cosine: score,
                    payload: p.payload.clone(),
                }
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(query.k);
        Ok(hits)
    }

    async fn delete_points(&self, ids: &[Uuid]) -> Result<(), IndexError> {
        self.write(|all| {
            for id in ids {
                all.remove(id);
            }
        })
    }

    async fn delete_document(&self, id: &DocumentId) -> Result<(), IndexError> {
        self.write(|all| all.retain(|_, p| &p.payload.doc_id != id))
    }

    async fn point_ids(&self) -> Result<Vec<Uuid>, IndexError> {
        Ok(self.points.lock().unwrap().keys().copied().collect())
    }

    async fn count(&self) -> Result<u64, IndexError> {
        Ok(self.points.lock().unwrap().len() as u64)
    }

    async fn optimize(&self) -> Result<(), IndexError> {
        Ok(())
    }
}
