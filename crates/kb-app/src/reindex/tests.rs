//! The order of the reindex steps, over in-memory adapters: generations that log what is
//! opened and deleted, and what the catalog says at that moment.

use super::*;
use async_trait::async_trait;
use kb_testkit::memory::{FakeCatalog, FakeEmbedder, FakeIndex, FaultPlan, distinct_documents};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Index generations in memory. Each open or delete is logged with the catalog's generation at
/// that moment, how many handles on the generation exist outside this map and how many
/// write-ahead records the catalog still holds.
struct Generations {
    catalog: Arc<FakeCatalog>,
    indexes: Mutex<BTreeMap<u64, Arc<FakeIndex>>>,
    log: Arc<Mutex<Vec<String>>>,
    /// Generations whose deletion fails.
    undeletable: Mutex<Vec<u64>>,
    /// Faults given to the index of the next generation opened.
    faults: Mutex<Option<Arc<FaultPlan>>>,
}

impl Generations {
    fn new(catalog: Arc<FakeCatalog>, current: Arc<FakeIndex>) -> Self {
        Self {
            catalog,
            indexes: Mutex::new(BTreeMap::from([(0, current)])),
            log: Arc::default(),
            undeletable: Mutex::default(),
            faults: Mutex::default(),
        }
    }

    fn index(&self, generation: u64) -> Arc<dyn VectorIndex> {
        self.indexes.lock().unwrap()[&generation].clone()
    }

    fn events(&self) -> Vec<String> {
        std::mem::take(&mut self.log.lock().unwrap())
    }

    /// `on_building` for [`Reindex::run`], logging into the same list.
    fn announcer(&self) -> impl FnOnce(&Building) + use<> {
        let log = self.log.clone();
        move |b: &Building| {
            log.lock().unwrap().push(format!(
                "build {} with {} (resumed: {})",
                b.location, b.model, b.resumed
            ));
        }
    }

    async fn note(&self, what: String, generation: u64) {
        let held = self
            .indexes
            .lock()
            .unwrap()
            .get(&generation)
            .map_or(0, |index| Arc::strong_count(index) - 1);
        let on = reindex::generation(self.catalog.as_ref()).await.unwrap();
        let pending = self.catalog.pending_points().await.unwrap().len();
        self.log.lock().unwrap().push(format!(
            "{what} (catalog on {on}, held elsewhere {held}, pending {pending})"
        ));
    }
}

#[async_trait]
impl IndexGenerations for Generations {
    fn location(&self, generation: u64) -> String {
        format!("gen{generation}")
    }

    fn open(&self, generation: u64) -> Result<Arc<dyn VectorIndex>, IndexError> {
        self.log.lock().unwrap().push(format!("open {generation}"));
        let faults = self.faults.lock().unwrap().take();
        let mut indexes = self.indexes.lock().unwrap();
        let index = indexes.entry(generation).or_insert_with(|| {
            Arc::new(faults.map_or_else(FakeIndex::default, FakeIndex::with_faults))
        });
        Ok(index.clone())
    }

    async fn delete(&self, generation: u64) -> Result<(), IndexError> {
        self.note(format!("delete {generation}"), generation).await;
        if self.undeletable.lock().unwrap().contains(&generation) {
            return Err(IndexError::unavailable("the disk is gone"));
        }
        self.indexes.lock().unwrap().remove(&generation);
        Ok(())
    }
}

/// A catalog with three documents ingested into generation 0, and those generations.
async fn ingested() -> (Arc<FakeCatalog>, Generations, tempfile::TempDir) {
    let catalog = Arc::new(FakeCatalog::default());
    let index = Arc::new(FakeIndex::default());
    let docs = distinct_documents(3, 40);
    Ingestor::new(
        catalog.clone(),
        index.clone(),
        Arc::new(FakeEmbedder::default()),
        options(),
    )
    .unwrap()
    .ingest(&[docs.path().to_path_buf()], &CancellationToken::new())
    .await
    .unwrap();
    let generations = Generations::new(catalog.clone(), index);
    (catalog, generations, docs)
}

fn options() -> IngestOptions {
    let mut options = IngestOptions::default();
    options.split.chunk_tokens = 16;
    options.pacing.batch_max_inputs = 3;
    options
}

fn job(catalog: &Arc<FakeCatalog>, current: Arc<dyn VectorIndex>, model: &str) -> Reindex {
    Reindex {
        catalog: catalog.clone(),
        current,
        embedder: Arc::new(FakeEmbedder::named(model)),
        options: options(),
    }
}

#[tokio::test]
async fn the_old_generation_is_deleted_only_after_the_switch_and_once_nobody_holds_it() {
    // Arrange: an interrupted ingest left a write-ahead record.
    let (catalog, generations, _docs) = ingested().await;
    catalog
        .record_pending_points(&[uuid::Uuid::new_v4()])
        .await
        .unwrap();
    let current = generations.index(0);

    // Act
    let outcome = job(&catalog, current, "new")
        .run(&generations, generations.announcer())
        .await
        .unwrap();

    // Assert
    assert_eq!(
        generations.events(),
        [
            "delete 1 (catalog on 0, held elsewhere 0, pending 0)",
            "build gen1 with fake:new (resumed: false)",
            "open 1",
            "delete 0 (catalog on 1, held elsewhere 0, pending 0)",
        ]
    );
    assert_eq!((outcome.plan.current, outcome.plan.target), (0, 1));
    assert_eq!(outcome.location, "gen1");
    assert_eq!(reindex::retired(catalog.as_ref()).await.unwrap(), None);
    let rebuilt = generations.indexes.lock().unwrap()[&1].snapshot();
    let mut expected = catalog.all_point_ids().await.unwrap();
    expected.sort();
    assert_eq!(rebuilt.into_keys().collect::<Vec<_>>(), expected);
}

#[tokio::test]
async fn a_generation_a_killed_run_did_not_delete_is_deleted_before_the_next_rebuild() {
    // Arrange: the first reindex switched, then could not delete generation 0.
    let (catalog, generations, _docs) = ingested().await;
    generations.undeletable.lock().unwrap().push(0);
    let failed = job(&catalog, generations.index(0), "new")
        .run(&generations, |_| {})
        .await;
    assert!(
        matches!(failed, Err(ReindexError::Retire { ref location, .. }) if location == "gen0"),
        "{failed:?}"
    );
    generations.events();
    generations.undeletable.lock().unwrap().clear();

    // Act
    job(&catalog, generations.index(1), "newer")
        .run(&generations, generations.announcer())
        .await
        .unwrap();

    // Assert
    assert_eq!(
        generations.events(),
        [
            "delete 0 (catalog on 1, held elsewhere 0, pending 0)",
            "delete 2 (catalog on 1, held elsewhere 0, pending 0)",
            "build gen2 with fake:newer (resumed: false)",
            "open 2",
            "delete 1 (catalog on 2, held elsewhere 0, pending 0)",
        ]
    );
}

#[tokio::test]
async fn a_rebuild_that_fails_leaves_the_old_index_in_use_and_the_next_run_resumes_it() {
    // Arrange: the target's second write fails.
    let (catalog, generations, _docs) = ingested().await;
    let faults = Arc::new(FaultPlan::default());
    faults.fail_write(1, false);
    *generations.faults.lock().unwrap() = Some(faults);
    let failed = job(&catalog, generations.index(0), "new")
        .run(&generations, |_| {})
        .await;
    assert!(
        matches!(failed, Err(ReindexError::Rebuild(_))),
        "{failed:?}"
    );
    assert_eq!(reindex::generation(catalog.as_ref()).await.unwrap(), 0);
    generations.events();

    // Act
    let outcome = job(&catalog, generations.index(0), "new")
        .run(&generations, generations.announcer())
        .await
        .unwrap();

    // Assert: same target, not cleared, only the rest embedded.
    assert_eq!(
        generations.events(),
        [
            "build gen1 with fake:new (resumed: true)",
            "open 1",
            "delete 0 (catalog on 1, held elsewhere 0, pending 0)",
        ]
    );
    assert!(outcome.plan.resumed);
    assert!(
        outcome.rebuild.embedded < outcome.rebuild.chunks,
        "{outcome:?}"
    );
}
