//! Ingestors for the tests of this crate, over kb-testkit's in-memory catalog, index and
//! embedder (re-exported here for the tests that use them).

pub(crate) use kb_testkit::memory::{FakeCatalog, FakeEmbedder, FakeIndex, FaultPlan};

use super::{GroupCommit, IngestOptions, Ingestor};
use crate::batch::Pacing;
use crate::split::SplitOptions;
use kb_core::{Catalog, Embedder, VectorIndex};
use std::sync::Arc;

/// An ingestor over these adapters that cuts documents into chunks of at most 16 words.
pub(crate) fn ingestor_over(
    catalog: Arc<dyn Catalog>,
    index: Arc<dyn VectorIndex>,
    embedder: Arc<dyn Embedder>,
    batch_size: usize,
) -> Ingestor {
    grouped_ingestor_over(catalog, index, embedder, batch_size, GroupCommit::default())
}

/// [`ingestor_over`] with a group commit policy.
pub(crate) fn grouped_ingestor_over(
    catalog: Arc<dyn Catalog>,
    index: Arc<dyn VectorIndex>,
    embedder: Arc<dyn Embedder>,
    batch_size: usize,
    group_commit: GroupCommit,
) -> Ingestor {
    let options = IngestOptions {
        split: SplitOptions {
            chunk_tokens: 16,
            overlap_tokens: 0,
        },
        pacing: Pacing {
            batch_max_inputs: batch_size,
            batch_max_tokens: 10_000,
            concurrency: 1,
            batch_retries: 0,
        },
        group_commit,
        ..IngestOptions::default()
    };
    Ingestor::new(catalog, index, embedder, options).expect("valid test options")
}
