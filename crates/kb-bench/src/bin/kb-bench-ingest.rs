//! Ingest benchmark: kb's real `Ingestor` over a corpus, with time per stage.
//!
//! 1. *Stages alone*: every file is read and parsed (`load_file`), then split (`ChunkSplitter`)
//!    on one thread, timed per stage; this also yields the exact chunk texts.
//! 2. *Pipeline*: a fresh catalog and embedded index in a scratch folder, wrapped in timing
//!    decorators, and one `Ingestor::ingest` run over the corpus folder, as `kb ingest` does.
//! 3. With `--embedder local --raw`: the model alone on the chunk texts of step 1, in batches of
//!    `--batch-size`, to show whether the model or kb is the bottleneck.
//!
//! Prints a JSON result on stdout (bench/ingest.sh stores it) and a summary on stderr.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use kb_bench::{
    MachineInfo, Stage, StageClock, TimedCatalog, TimedEmbedder, TimedIndex, ZeroCostEmbedder,
    corpus, process_cpu_seconds,
};
use kb_catalog::SqliteCatalog;
use kb_core::error::chain;
use kb_core::{Catalog, Embedder, InputKind, VectorIndex};
use kb_embed_local::{LocalEmbedder, LocalEmbedderConfig};
use kb_index::EmbeddedIndex;
use kb_ingest::{ChunkSplitter, IngestOptions, Ingestor, SplitOptions, load_file_with_limits};
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum EmbedderKind {
    /// Real token counts, nearly free vectors: measures kb's own pipeline.
    Fake,
    /// The in-process local model (kb's default embedder).
    Local,
}

#[derive(Debug, Parser)]
#[command(about = "Benchmark kb's ingest pipeline stage by stage")]
struct Args {
    /// Folder of documents to ingest.
    #[arg(long)]
    corpus: PathBuf,
    /// Scratch folder for the catalog and the index (emptied first).
    #[arg(long)]
    scratch: PathBuf,
    #[arg(long, value_enum, default_value = "fake")]
    embedder: EmbedderKind,
    /// Model folder (its tokenizer counts tokens for the fake embedder too).
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    model_dir: PathBuf,
    #[arg(long, default_value_t = 200)]
    chunk_tokens: usize,
    /// Chunks per embedding call (kb's `ingest.batch_size`).
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Also time the model alone on the same chunks (local embedder only).
    #[arg(long)]
    raw: bool,
    /// Also read and split every file alone, one stage at a time, before the pipeline run.
    #[arg(long)]
    stages_alone: bool,
    /// Write the chunk texts (as embedded) to this file, one JSON string per line.
    #[arg(long)]
    dump_chunks: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct StagesAlone {
    files: usize,
    bytes: u64,
    chunks: usize,
    tokens: u64,
    read_parse_s: f64,
    split_s: f64,
    cpu_s: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kb_bench::init_logging("warn");
    let args = Args::parse();
    let machine = MachineInfo::probe();

    let local = match args.embedder {
        EmbedderKind::Local => Some(
            LocalEmbedder::load(&LocalEmbedderConfig {
                model_dir: args.model_dir.clone(),
                batch_size: args.batch_size,
                ..LocalEmbedderConfig::default()
            })
            .context("loading the local model")?,
        ),
        EmbedderKind::Fake => None,
    };
    let embedder: Arc<dyn Embedder> = match &local {
        Some(model) => Arc::new(model.clone()),
        // Same input limit as the local model at kb's default max_tokens (256 - [CLS] - [SEP]).
        None => Arc::new(ZeroCostEmbedder::new(&args.model_dir, 254)?),
    };
    let split = SplitOptions {
        chunk_tokens: args.chunk_tokens,
        overlap_tokens: 0,
    };

    let files = corpus::files(&args.corpus)?;
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let (alone, texts) = if args.stages_alone || args.raw || args.dump_chunks.is_some() {
        let (alone, texts) = stages_alone(&files, embedder.clone(), split)?;
        eprintln!(
            "stages alone: {} files, {:.1} MB, {} chunks: read+parse {:.2} s, split {:.2} s",
            alone.files,
            alone.bytes as f64 / 1e6,
            alone.chunks,
            alone.read_parse_s,
            alone.split_s
        );
        (Some(alone), texts)
    } else {
        (None, Vec::new())
    };

    if let Some(path) = &args.dump_chunks {
        let lines: Vec<String> = texts
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()?;
        std::fs::write(path, lines.join("\n") + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }

    let pipeline = run_pipeline(&args, embedder.clone(), split).await?;
    eprintln!("pipeline: {pipeline:#}");

    let raw = match (&local, args.raw) {
        (Some(model), true) => {
            let cpu = process_cpu_seconds();
            let started = Instant::now();
            for batch in texts.chunks(args.batch_size.max(1)) {
                model.embed_sync(batch, InputKind::Passage)?;
            }
            let secs = started.elapsed().as_secs_f64();
            let cpu = process_cpu_seconds() - cpu;
            eprintln!(
                "raw model: {} chunks in {secs:.2} s = {:.1} chunks/s",
                texts.len(),
                texts.len() as f64 / secs
            );
            Some(json!({
                "chunks": texts.len(),
                "seconds": secs,
                "cpu_s": cpu,
                "chunks_per_s": texts.len() as f64 / secs,
            }))
        }
        _ => None,
    };

    let result = json!({
        "benchmark": "ingest",
        "machine": machine,
        "corpus": args.corpus,
        "embedder": args.embedder,
        "chunk_tokens": args.chunk_tokens,
        "batch_size": args.batch_size,
        "corpus_files": files.len(),
        "corpus_bytes": bytes,
        "stages_alone": alone,
        "pipeline": pipeline,
        "raw_model": raw,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

/// Read and split every file on this thread, timing each stage; returns the embedding texts.
fn stages_alone(
    files: &[PathBuf],
    embedder: Arc<dyn Embedder>,
    split: SplitOptions,
) -> anyhow::Result<(StagesAlone, Vec<String>)> {
    let cpu = process_cpu_seconds();
    let splitter = ChunkSplitter::new(embedder, split)?;
    let limits = IngestOptions::default().load_limits;
    let (mut read, mut cut) = (0.0, 0.0);
    let (mut bytes, mut tokens) = (0, 0);
    let mut texts = Vec::new();
    for path in files {
        let started = Instant::now();
        let doc = match load_file_with_limits(path, &limits) {
            Ok(doc) => doc,
            Err(error) => {
                eprintln!("skipping {}: {}", path.display(), chain(&error));
                continue;
            }
        };
        read += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let pieces = splitter.split(&doc.text, doc.format, &doc.title);
        cut += started.elapsed().as_secs_f64();
        bytes += doc.size_bytes;
        tokens += pieces
            .iter()
            .map(|p| p.chunk.token_count as u64)
            .sum::<u64>();
        texts.extend(pieces.into_iter().map(|p| p.embedding_text));
    }
    let alone = StagesAlone {
        files: files.len(),
        bytes,
        chunks: texts.len(),
        tokens,
        read_parse_s: read,
        split_s: cut,
        cpu_s: process_cpu_seconds() - cpu,
    };
    Ok((alone, texts))
}

/// One real ingest run into a fresh scratch folder; per-stage times from the decorators.
async fn run_pipeline(
    args: &Args,
    embedder: Arc<dyn Embedder>,
    split: SplitOptions,
) -> anyhow::Result<serde_json::Value> {
    if args.scratch.exists() {
        std::fs::remove_dir_all(&args.scratch)
            .with_context(|| format!("emptying {}", args.scratch.display()))?;
    }
    let clock = StageClock::new();
    let catalog: Arc<dyn Catalog> = Arc::new(TimedCatalog {
        inner: Arc::new(SqliteCatalog::open(&args.scratch.join("kb.db")).await?),
        clock: clock.clone(),
    });
    let index: Arc<dyn VectorIndex> = Arc::new(TimedIndex {
        inner: Arc::new(EmbeddedIndex::open(&args.scratch.join("index"))?),
        clock: clock.clone(),
    });
    let embedder: Arc<dyn Embedder> = Arc::new(TimedEmbedder {
        inner: embedder,
        clock: clock.clone(),
    });
    let options = IngestOptions {
        split,
        pacing: kb_ingest::Pacing {
            batch_max_inputs: args.batch_size,
            ..kb_ingest::Pacing::default()
        },
        ..IngestOptions::default()
    };
    let ingestor = Ingestor::new(catalog, index, embedder, options)?;

    let cpu = process_cpu_seconds();
    let started = Instant::now();
    let report = ingestor
        .ingest(
            std::slice::from_ref(&args.corpus),
            &CancellationToken::new(),
        )
        .await?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu;
    anyhow::ensure!(
        report.failures.is_empty(),
        "{} files failed, first: {:?}",
        report.failures.len(),
        report.failures.first()
    );

    let stage = |s: Stage| clock.elapsed(s).as_secs_f64();
    let (embed, upsert, catalog, optimize) = (
        stage(Stage::Embed),
        stage(Stage::Upsert),
        stage(Stage::Catalog),
        stage(Stage::Optimize),
    );
    let stats = &report.stats;
    let files = stats.added + stats.updated + stats.unchanged;
    Ok(json!({
        "wall_s": wall,
        "cpu_s": cpu,
        "files": files,
        "chunks": stats.chunks,
        "tokens": stats.tokens,
        "embedding_calls": stats.embedding_calls,
        "files_per_s": files as f64 / wall,
        "chunks_per_s": stats.chunks as f64 / wall,
        // Decorators: exact busy time in each adapter.
        "embed_s": embed,
        "upsert_s": upsert,
        "catalog_s": catalog,
        // The index build at the end of the run (segment merge, HNSW graph).
        "optimize_s": optimize,
        // Everything else: reading, parsing, splitting, hashing and orchestration. Reading and
        // splitting run on other threads at the same time as the writes, so this can be small.
        "rest_s": (wall - embed - upsert - catalog - optimize).max(0.0),
        // The pipeline's own per-document millisecond counters, for comparison.
        "reported_timings_ms": report.timings,
    }))
}
