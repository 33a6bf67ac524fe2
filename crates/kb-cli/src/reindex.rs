//! `kb reindex`: rebuild the vector index from the catalog with the configured embedding
//! model, beside the index in use, then switch to it (see `kb_ingest::reindex`).

use anyhow::{Context, bail};
use clap::Args;
use kb_config::Settings;
use kb_core::IndexError;
use kb_ingest::reindex::{self, RebuildReport, ReindexPlan};
use kb_server::wiring::{
    Components, WiringError, delete_index, index_location, ingest_options, open_index,
};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct ReindexOutcome {
    plan: ReindexPlan,
    rebuild: RebuildReport,
    model: String,
    dimensions: usize,
    /// Where the new index lives.
    location: String,
}

pub async fn run(args: ReindexArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let c = match Components::build(settings).await {
        Err(WiringError::Index(IndexError::Locked(what))) => bail!(
            "the index ({what}) is held by another kb process (a server, or an ingest); `kb reindex` needs it to itself: stop that process and run `kb reindex` again"
        ),
        other => other.context("opening the knowledge base")?,
    };
    let result = rebuild(&c, settings).await;
    // Close the replaced index before deleting it.
    let Components { catalog, index, .. } = c;
    drop(index);
    let result = match result {
        Ok(outcome) => retire(&catalog, settings, outcome.plan.current)
            .await
            .map(|()| outcome),
        Err(e) => Err(e),
    };
    catalog.close().await;
    let outcome = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        let r = &outcome.rebuild;
        println!(
            "reindexed {} chunks with {} ({} dimensions) into {}{}",
            r.chunks,
            outcome.model,
            outcome.dimensions,
            outcome.location,
            if outcome.plan.resumed {
                format!(
                    " (resumed: {} chunks were already done)",
                    r.chunks - r.embedded
                )
            } else {
                String::new()
            }
        );
        println!(
            "{} chunks embedded in {} calls; the previous index was deleted",
            r.embedded, r.embedding_calls
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn rebuild(c: &Components, settings: &Settings) -> anyhow::Result<ReindexOutcome> {
    let catalog = c.catalog.as_ref();
    let embedder = c.embedder.as_ref();
    // What an interrupted ingest left in the index in use goes first, so that the catalog holds
    // no write-ahead records about an index that is about to be retired.
    c.ingestor(ingest_options(settings))?
        .recover()
        .await
        .context("cleaning up after an interrupted ingest")?;
    if let Some(old) = reindex::retired(catalog).await? {
        retire(catalog, settings, old).await?;
    }
    let plan = reindex::begin(catalog, embedder).await?;
    let location = index_location(settings, plan.target);
    if plan.start_over {
        delete_index(settings, plan.target)
            .await
            .with_context(|| format!("clearing {location}"))?;
    }
    eprintln!(
        "kb: {} the index in {location} with {} ({} dimensions); the current index serves until it is done",
        if plan.resumed {
            "resuming building"
        } else {
            "building"
        },
        embedder.model_id(),
        embedder.dimensions()
    );
    let target =
        open_index(settings, plan.target).with_context(|| format!("opening {location}"))?;
    let report = reindex::rebuild(
        catalog,
        target.as_ref(),
        embedder,
        &ingest_options(settings).pacing,
    )
    .await
    .context("rebuilding the index (run `kb reindex` again to resume)")?;
    drop(target);
    reindex::switch(catalog, &plan, embedder).await?;
    // The old index is still open in `c`: the caller deletes it once it is closed (and the
    // next `kb reindex` does, if this one is killed first).
    Ok(ReindexOutcome {
        plan,
        rebuild: report,
        model: embedder.model_id(),
        dimensions: embedder.dimensions(),
        location: location.to_string(),
    })
}

/// Delete a replaced index generation and forget it.
async fn retire(
    catalog: &kb_catalog::SqliteCatalog,
    settings: &Settings,
    generation: u64,
) -> anyhow::Result<()> {
    delete_index(settings, generation).await.with_context(|| {
        format!(
            "deleting the replaced index {} (run `kb reindex` again to retry)",
            index_location(settings, generation)
        )
    })?;
    reindex::forget_retired(catalog).await?;
    Ok(())
}
