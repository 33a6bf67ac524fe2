//! Local embedder benchmark: inputs per second of kb's local embedder at given batch sizes.
//!
//! Reads texts from a file of JSON strings, one per line (the same file the
//! sentence-transformers side reads), embeds them all in one call per batch size after a
//! warm-up, and prints a JSON result. Threads: the embedder uses rayon, sized by `RAYON_NUM_THREADS`.

use anyhow::Context;
use clap::Parser;
use kb_bench::{MachineInfo, process_cpu_seconds};
use kb_core::{Embedder, InputKind};
use kb_embed_local::{LocalEmbedder, LocalEmbedderConfig};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(about = "Benchmark kb's local embedder")]
struct Args {
    /// Texts to embed: one JSON string per line.
    #[arg(long)]
    inputs: PathBuf,
    /// A name for the input set in the result (e.g. "sentences", "chunks").
    #[arg(long)]
    label: String,
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    model_dir: PathBuf,
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    batch_sizes: Vec<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let raw = std::fs::read_to_string(&args.inputs)
        .with_context(|| format!("reading {}", args.inputs.display()))?;
    let texts: Vec<String> = raw
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "{}: expected one JSON string per line",
                args.inputs.display()
            )
        })?;
    anyhow::ensure!(!texts.is_empty(), "{}: no texts", args.inputs.display());

    let mut runs = Vec::new();
    for &batch_size in &args.batch_sizes {
        let model = LocalEmbedder::load(&LocalEmbedderConfig {
            model_dir: args.model_dir.clone(),
            batch_size,
            ..LocalEmbedderConfig::default()
        })?;
        let tokens: usize = texts.iter().map(|t| model.count_tokens(t) + 2).sum();
        model.embed_sync(&texts[..texts.len().min(8)], InputKind::Passage)?;
        let cpu = process_cpu_seconds();
        let started = Instant::now();
        let vectors = model.embed_sync(&texts, InputKind::Passage)?;
        let secs = started.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - cpu;
        anyhow::ensure!(vectors.len() == texts.len(), "BUG: a vector per input");
        eprintln!(
            "kb {}: batch {batch_size}: {:.1} inputs/s",
            args.label,
            texts.len() as f64 / secs
        );
        runs.push(json!({
            "batch_size": batch_size,
            "inputs": texts.len(),
            "tokens": tokens,
            "seconds": secs,
            "cpu_s": cpu,
            "inputs_per_s": texts.len() as f64 / secs,
        }));
    }
    let result = json!({
        "benchmark": "embed",
        "engine": "kb-embed-local",
        "label": args.label,
        "threads": std::env::var("RAYON_NUM_THREADS").ok(),
        "machine": MachineInfo::probe(),
        "runs": runs,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
