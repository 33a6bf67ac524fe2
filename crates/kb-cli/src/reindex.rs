//! `kb reindex`: rebuild the vector index from the catalog with the configured embedding
//! model, beside the index in use, then switch to it (the procedure is `kb_app::reindex`).

use anyhow::{Context, bail};
use clap::Args;
use kb_app::reindex::{Building, Reindex};
use kb_app::{BuildError, Components, SettingsGenerations, ingest_options};
use kb_config::Settings;
use kb_core::IndexError;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ReindexArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let c = match Components::build(settings).await {
        Err(BuildError::Index(IndexError::Locked(what))) => bail!(
            "the index ({what}) is held by another kb process (a server, or an ingest); `kb reindex` needs it to itself: stop that process and run `kb reindex` again"
        ),
        other => other.context("opening the knowledge base")?,
    };
    // The index in use is handed over, so that it is closed before it is deleted.
    let Components {
        catalog,
        index,
        embedder,
        ..
    } = c;
    let reindex = Reindex {
        catalog: catalog.clone(),
        current: index,
        embedder,
        options: ingest_options(settings),
    };
    let result = reindex
        .run(&SettingsGenerations::new(settings), announce)
        .await;
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

fn announce(b: &Building) {
    eprintln!(
        "kb: {} the index in {} with {} ({} dimensions); the current index serves until it is done",
        if b.resumed {
            "resuming building"
        } else {
            "building"
        },
        b.location,
        b.model,
        b.dimensions
    );
}
