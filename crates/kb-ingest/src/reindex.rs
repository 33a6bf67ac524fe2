//! `kb reindex`: rebuild the vector index from the catalog with the configured embedder, for a
//! change of embedding model or dimensions.
//!
//! The catalog stores every chunk's text, so the sources are not read again. The new index
//! is built beside the one in use, in a new *generation* (a sibling folder of the embedded
//! index, or a sibling collection on a Qdrant server; where exactly is the caller's choice), and
//! the catalog's meta pointer `index_generation` is switched to it in one transaction together
//! with the model it was built with. So at every moment the catalog names one complete index:
//!
//! 1. [`begin`] records the target generation and the model in `reindex_target` (a rerun after
//!    a kill resumes the same target, or starts it over if the model changed meanwhile),
//! 2. [`rebuild`] makes the target hold exactly the catalog's chunks (deleting what it holds
//!    beyond them, embedding what it lacks: a resumed rebuild embeds only the rest),
//! 3. [`switch`] points the catalog at the target and names the old generation in
//!    `index_retired`, which the caller deletes ([`retired`], [`forget_retired`]).
//!
//! Killed before step 3, the old index keeps serving and the next `kb reindex` finishes the
//! job; killed after it, the new one serves and the next `kb reindex` deletes the old one.

use crate::batch::Pacing;
use crate::check::{Restored, restore_points};
use crate::pipeline::{IngestError, META_DIMS, META_MODEL};
use kb_core::{Catalog, CatalogError, Embedder, VectorIndex};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tracing::info;
use uuid::Uuid;

/// Catalog meta key: the generation of the index in use (absent: 0).
pub const META_GENERATION: &str = "index_generation";
/// Catalog meta key: `"{generation} {model} {dims}"` of a rebuild in progress.
const META_TARGET: &str = "reindex_target";
/// Catalog meta key: a generation replaced by a rebuild and not deleted yet (empty: none).
const META_RETIRED: &str = "index_retired";

/// The generation of the index in use.
pub async fn generation(catalog: &dyn Catalog) -> Result<u64, CatalogError> {
    parse_generation(catalog.get_meta(META_GENERATION).await?.as_deref())
}

fn parse_generation(value: Option<&str>) -> Result<u64, CatalogError> {
    value.map_or(Ok(0), |v| {
        v.parse().map_err(|_| {
            CatalogError::corrupt(format!("{META_GENERATION} = {v:?} is not a number"))
        })
    })
}

/// A rebuild to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReindexPlan {
    /// The generation in use.
    pub current: u64,
    /// The generation being built.
    pub target: u64,
    /// The target may hold points of an earlier attempt with another model: delete it first.
    pub start_over: bool,
    /// Resuming an attempt that was interrupted.
    pub resumed: bool,
}

fn model_key(embedder: &dyn Embedder) -> String {
    format!("{} {}", embedder.model_id(), embedder.dimensions())
}

/// Choose (or resume) the target generation and record it.
pub async fn begin(
    catalog: &dyn Catalog,
    embedder: &dyn Embedder,
) -> Result<ReindexPlan, IngestError> {
    let current = generation(catalog).await?;
    let model = model_key(embedder);
    let recorded = catalog.get_meta(META_TARGET).await?;
    let in_progress = recorded.as_deref().and_then(|r| {
        let (generation, model) = r.split_once(' ')?;
        Some((generation.parse::<u64>().ok()?, model.to_owned()))
    });
    let plan = match in_progress {
        Some((target, was)) if target > current => ReindexPlan {
            current,
            target,
            start_over: was != model,
            resumed: was == model,
        },
        _ => ReindexPlan {
            current,
            target: current + 1,
            start_over: true,
            resumed: false,
        },
    };
    catalog
        .set_meta(META_TARGET, &format!("{} {model}", plan.target))
        .await?;
    Ok(plan)
}

/// What [`rebuild`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildReport {
    /// Chunks in the catalog (all now in the target).
    pub chunks: u64,
    /// Chunks embedded by this run (fewer than `chunks` when resuming).
    pub embedded: u64,
    pub embedding_calls: u64,
    /// Points the target held that the catalog does not name (deleted).
    pub deleted: u64,
}

/// Make `target` hold exactly the catalog's chunks, embedded with `embedder`.
pub async fn rebuild(
    catalog: &dyn Catalog,
    target: &dyn VectorIndex,
    embedder: &dyn Embedder,
    pacing: &Pacing,
) -> Result<RebuildReport, IngestError> {
    target.ensure(embedder.dimensions()).await?;
    let in_catalog: HashSet<Uuid> = catalog.all_point_ids().await?.into_iter().collect();
    let in_target: HashSet<Uuid> = target.point_ids().await?.into_iter().collect();
    let extra: Vec<Uuid> = in_target.difference(&in_catalog).copied().collect();
    if !extra.is_empty() {
        target.delete_points(&extra).await?;
    }
    let missing: HashSet<Uuid> = in_catalog.difference(&in_target).copied().collect();
    info!(
        chunks = in_catalog.len(),
        missing = missing.len(),
        deleted = extra.len(),
        "rebuilding the index from the catalog"
    );
    let Restored {
        chunks,
        embedding_calls,
        ..
    } = restore_points(catalog, target, embedder, pacing, &missing).await?;
    let now: HashSet<Uuid> = target.point_ids().await?.into_iter().collect();
    if now != in_catalog {
        return Err(IngestError::Index(kb_core::IndexError::other(format!(
            "the rebuilt index holds {} points for {} catalog chunks; is another process writing to it?",
            now.len(),
            in_catalog.len()
        ))));
    }
    target.optimize().await?;
    Ok(RebuildReport {
        chunks: in_catalog.len() as u64,
        embedded: chunks,
        embedding_calls,
        deleted: extra.len() as u64,
    })
}

/// Point the catalog at the rebuilt generation, with the model it was built with, in one
/// transaction; the replaced generation is recorded as retired.
pub async fn switch(
    catalog: &dyn Catalog,
    plan: &ReindexPlan,
    embedder: &dyn Embedder,
) -> Result<(), IngestError> {
    let (target, current) = (plan.target.to_string(), plan.current.to_string());
    let (model, dims) = (embedder.model_id(), embedder.dimensions().to_string());
    catalog
        .set_meta_many(&[
            (META_GENERATION, target.as_str()),
            (META_MODEL, model.as_str()),
            (META_DIMS, dims.as_str()),
            (META_RETIRED, current.as_str()),
        ])
        .await?;
    info!(
        generation = plan.target,
        model, "the catalog now names the rebuilt index"
    );
    Ok(())
}

/// A replaced generation still to delete, if any.
pub async fn retired(catalog: &dyn Catalog) -> Result<Option<u64>, CatalogError> {
    let current = generation(catalog).await?;
    Ok(catalog
        .get_meta(META_RETIRED)
        .await?
        .filter(|v| !v.is_empty())
        .map(|v| parse_generation(Some(&v)))
        .transpose()?
        .filter(|g| *g != current))
}

/// The retired generation is deleted.
pub async fn forget_retired(catalog: &dyn Catalog) -> Result<(), CatalogError> {
    catalog.set_meta(META_RETIRED, "").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::test_support::{FakeCatalog, FakeEmbedder, FakeIndex, ingestor_over};
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    fn pacing() -> Pacing {
        Pacing {
            batch_max_inputs: 3,
            batch_max_tokens: 10_000,
            concurrency: 1,
            batch_retries: 0,
        }
    }

    async fn ingested(catalog: &Arc<FakeCatalog>) -> (Arc<FakeIndex>, tempfile::TempDir) {
        let index = Arc::new(FakeIndex::default());
        let docs = kb_testkit::memory::distinct_documents(3, 40);
        let ingestor = ingestor_over(
            catalog.clone(),
            index.clone(),
            Arc::new(FakeEmbedder::default()),
            4,
        );
        ingestor
            .ingest(&[docs.path().to_path_buf()], &CancellationToken::new())
            .await
            .unwrap();
        (index, docs)
    }

    #[tokio::test]
    async fn a_rebuild_interrupted_before_the_switch_is_resumed_and_then_switched() {
        // Arrange
        let catalog = Arc::new(FakeCatalog::default());
        let (old, _docs) = ingested(&catalog).await;
        let new_model = FakeEmbedder::named("other-model");
        let target = FakeIndex::default();
        let plan = begin(catalog.as_ref(), &new_model).await.unwrap();
        assert_eq!((plan.current, plan.target, plan.resumed), (0, 1, false));
        // A first attempt got part of the way: some points, and one stray.
        target.ensure(8).await.unwrap();
        let ids = catalog.all_point_ids().await.unwrap();
        let partial = rebuild_some(&catalog, &target, &new_model, &ids[..2]).await;
        let stray = target.insert_stray();

        // Act: the rerun resumes the same target.
        let again = begin(catalog.as_ref(), &new_model).await.unwrap();
        let report = rebuild(catalog.as_ref(), &target, &new_model, &pacing())
            .await
            .unwrap();
        switch(catalog.as_ref(), &again, &new_model).await.unwrap();

        // Assert
        assert_eq!(
            (again.target, again.resumed, again.start_over),
            (1, true, false)
        );
        assert_eq!(report.chunks, ids.len() as u64);
        assert_eq!(report.embedded, (ids.len() - partial) as u64);
        assert_eq!(report.deleted, 1);
        assert!(!target.snapshot().contains_key(&stray));
        assert_eq!(generation(catalog.as_ref()).await.unwrap(), 1);
        assert_eq!(retired(catalog.as_ref()).await.unwrap(), Some(0));
        assert_eq!(
            catalog.get_meta(META_MODEL).await.unwrap().as_deref(),
            Some("fake:other-model")
        );
        // Same points as the old index, new vectors.
        let (old, new) = (old.snapshot(), target.snapshot());
        assert_eq!(
            old.keys().collect::<Vec<_>>(),
            new.keys().collect::<Vec<_>>()
        );
        for (id, point) in &new {
            assert_eq!(point.payload, old[id].payload);
        }
        forget_retired(catalog.as_ref()).await.unwrap();
        assert_eq!(retired(catalog.as_ref()).await.unwrap(), None);
        let next = begin(catalog.as_ref(), &new_model).await.unwrap();
        assert_eq!((next.current, next.target, next.resumed), (1, 2, false));
    }

    #[tokio::test]
    async fn a_rebuild_for_another_model_than_the_interrupted_one_starts_over() {
        let catalog = Arc::new(FakeCatalog::default());
        let _kept = ingested(&catalog).await;
        begin(catalog.as_ref(), &FakeEmbedder::named("first"))
            .await
            .unwrap();

        let plan = begin(catalog.as_ref(), &FakeEmbedder::named("second"))
            .await
            .unwrap();

        assert_eq!(
            (plan.target, plan.start_over, plan.resumed),
            (1, true, false)
        );
    }

    /// Embed only `ids` into `target` (a rebuild cut short); returns how many.
    async fn rebuild_some(
        catalog: &Arc<FakeCatalog>,
        target: &FakeIndex,
        embedder: &FakeEmbedder,
        ids: &[Uuid],
    ) -> usize {
        let wanted: HashSet<Uuid> = ids.iter().copied().collect();
        restore_points(catalog.as_ref(), target, embedder, &pacing(), &wanted)
            .await
            .unwrap();
        wanted.len()
    }
}
