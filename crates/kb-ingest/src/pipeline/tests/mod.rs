//! Tests of whole runs over the in-memory catalog, index and embedder of kb-testkit.

mod commit;
mod inputs;
mod runs;

use super::test_support::{FakeCatalog, FakeEmbedder, FakeIndex, FaultPlan, grouped_ingestor_over};
use super::*;
use crate::check::check;
use crate::progress::ProgressSnapshot;
use kb_core::{DocumentMeta, DocumentRecord};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

fn words(n: usize, seed: &str) -> String {
    (0..n)
        .map(|i| format!("{seed}{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Markdown document of about `sections` × 2 chunks of 16 words.
fn long_doc(sections: usize, seed: &str) -> String {
    let mut text = format!("# Handbook {seed}\n\n");
    for s in 0..sections {
        text.push_str(&format!(
            "## Section {s}\n\n{}.\n\n{}.\n\n",
            words(12, &format!("{seed}a{s}x")),
            words(12, &format!("{seed}b{s}y"))
        ));
    }
    text
}

struct Kb {
    catalog: Arc<FakeCatalog>,
    index: Arc<FakeIndex>,
    embedder: Arc<FakeEmbedder>,
    faults: Arc<FaultPlan>,
    ingestor: Ingestor,
    docs: tempfile::TempDir,
}

impl Kb {
    fn new(embedder: FakeEmbedder, batch_size: usize) -> Self {
        Self::grouped(embedder, batch_size, GroupCommit::default())
    }

    fn grouped(embedder: FakeEmbedder, batch_size: usize, group: GroupCommit) -> Self {
        let faults = Arc::new(FaultPlan::default());
        let catalog = Arc::new(FakeCatalog::with_faults(faults.clone()));
        let index = Arc::new(FakeIndex::with_faults(faults.clone()));
        let embedder = Arc::new(embedder);
        let ingestor = grouped_ingestor_over(
            catalog.clone(),
            index.clone(),
            embedder.clone(),
            batch_size,
            group,
        );
        Self {
            catalog,
            index,
            embedder,
            faults,
            ingestor,
            docs: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.docs.path().join(name), text).unwrap();
    }

    fn remove(&self, name: &str) {
        std::fs::remove_file(self.docs.path().join(name)).unwrap();
    }

    fn roots(&self) -> Vec<PathBuf> {
        vec![self.docs.path().to_path_buf()]
    }

    async fn ingest(&self, prune: bool) -> Result<IngestReport, IngestError> {
        self.ingestor
            .with_run_flags(prune, false)
            .ingest(&self.roots(), &CancellationToken::new())
            .await
    }

    async fn assert_consistent(&self, context: &str) {
        let report = check(self.catalog.as_ref(), self.index.as_ref())
            .await
            .unwrap();
        assert!(report.consistent, "{context}: {report:#?}");
        let files = std::fs::read_dir(self.docs.path()).unwrap().count() as u64;
        assert_eq!(report.documents, files, "{context}: one document per file");
    }
}

#[test]
fn a_failed_embedding_names_its_cause_once() {
    // Arrange
    let model = ModelError::transient("engine endpoint primary", None)
        .with_source(std::io::Error::other("connection refused"));

    // Act
    let error = IngestError::from(model);

    // Assert
    let text = kb_core::error::chain(&error).to_string();
    assert!(
        text.starts_with("embedding failed; the run stopped here"),
        "{text}"
    );
    assert_eq!(text.matches("engine endpoint primary").count(), 1, "{text}");
    assert_eq!(text.matches("connection refused").count(), 1, "{text}");
}
