//! The reindex procedure (`kb reindex`): rebuild the vector index from the catalog with the
//! configured embedder into a new generation beside the one in use, switch the catalog to it,
//! and delete the old one. The catalog side of each step (what is recorded where, so that a
//! kill at any moment is finished by the next run) is `kb_ingest::reindex`; this module is the
//! order of the steps, which crash safety depends on:
//!
//! 1. finish what an interrupted ingest left in the index in use (so the catalog holds no
//!    write-ahead records about an index about to be retired);
//! 2. delete a generation an earlier reindex replaced but was killed before deleting;
//! 3. choose (or resume) the target generation; clear it if it holds another model's points;
//! 4. rebuild the target from the catalog and close it;
//! 5. switch the catalog to the target (one transaction: from here on it serves);
//! 6. close the replaced index, then delete it and forget it.

use crate::generations::IndexGenerations;
use kb_core::{Catalog, CatalogError, Embedder, IndexError, VectorIndex};
use kb_ingest::reindex::{self, RebuildReport, ReindexPlan};
use kb_ingest::{IngestError, IngestOptions, Ingestor};
use serde::Serialize;
use std::sync::Arc;

/// What a reindex works on: the catalog, the index in use (handed over, so that it can be
/// closed before it is deleted), the embedder to rebuild with and the ingest settings (for
/// the recovery of an interrupted ingest, and the pacing of embedding calls).
pub struct Reindex {
    pub catalog: Arc<dyn Catalog>,
    pub current: Arc<dyn VectorIndex>,
    pub embedder: Arc<dyn Embedder>,
    pub options: IngestOptions,
}

/// Said once the target is chosen, before the long part starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Building {
    pub resumed: bool,
    pub location: String,
    pub model: String,
    pub dimensions: usize,
}

/// What a reindex did.
#[derive(Debug, Serialize)]
pub struct ReindexOutcome {
    pub plan: ReindexPlan,
    pub rebuild: RebuildReport,
    pub model: String,
    pub dimensions: usize,
    /// Where the new index lives.
    pub location: String,
}

/// Why a reindex stopped. Every step can be retried by running it again.
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    #[error("cleaning up after an interrupted ingest")]
    Recover(#[source] IngestError),
    #[error("deleting the replaced index {location} (run `kb reindex` again to retry)")]
    Retire {
        location: String,
        #[source]
        source: IndexError,
    },
    #[error("clearing {location}")]
    Clear {
        location: String,
        #[source]
        source: IndexError,
    },
    #[error("opening {location}")]
    Open {
        location: String,
        #[source]
        source: IndexError,
    },
    #[error("rebuilding the index (run `kb reindex` again to resume)")]
    Rebuild(#[source] IngestError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl Reindex {
    /// Run the steps in order; `on_building` is called when the rebuild starts.
    pub async fn run(
        self,
        generations: &dyn IndexGenerations,
        on_building: impl FnOnce(&Building),
    ) -> Result<ReindexOutcome, ReindexError> {
        let Self {
            catalog,
            current,
            embedder,
            options,
        } = self;
        let pacing = options.pacing;
        // 1. The recovering ingestor holds the index in use only for this step.
        Ingestor::new(catalog.clone(), current.clone(), embedder.clone(), options)?
            .recover()
            .await
            .map_err(ReindexError::Recover)?;
        let catalog = catalog.as_ref();
        // 2.
        if let Some(old) = reindex::retired(catalog).await? {
            retire(catalog, generations, old).await?;
        }
        // 3.
        let plan = reindex::begin(catalog, embedder.as_ref()).await?;
        let location = generations.location(plan.target);
        if plan.start_over {
            generations
                .delete(plan.target)
                .await
                .map_err(|source| ReindexError::Clear {
                    location: location.clone(),
                    source,
                })?;
        }
        on_building(&Building {
            resumed: plan.resumed,
            location: location.clone(),
            model: embedder.model_id(),
            dimensions: embedder.dimensions(),
        });
        // 4.
        let target = generations
            .open(plan.target)
            .map_err(|source| ReindexError::Open {
                location: location.clone(),
                source,
            })?;
        let report = reindex::rebuild(catalog, target.as_ref(), embedder.as_ref(), &pacing)
            .await
            .map_err(ReindexError::Rebuild)?;
        drop(target);
        // 5.
        reindex::switch(catalog, &plan, embedder.as_ref()).await?;
        // 6. (killed before this, the next run deletes it at step 2)
        drop(current);
        retire(catalog, generations, plan.current).await?;
        Ok(ReindexOutcome {
            plan,
            rebuild: report,
            model: embedder.model_id(),
            dimensions: embedder.dimensions(),
            location,
        })
    }
}

/// Delete a replaced index generation and forget it.
async fn retire(
    catalog: &dyn Catalog,
    generations: &dyn IndexGenerations,
    generation: u64,
) -> Result<(), ReindexError> {
    generations
        .delete(generation)
        .await
        .map_err(|source| ReindexError::Retire {
            location: generations.location(generation),
            source,
        })?;
    reindex::forget_retired(catalog).await?;
    Ok(())
}

#[cfg(test)]
mod tests;
