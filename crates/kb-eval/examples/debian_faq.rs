//! Evaluate kb's retrieval on a BEIR-layout dataset (by default the Debian FAQ set) with the
//! components `kb` itself would build, and print the Markdown table.
//!
//! ```sh
//! cargo run --example debian_faq -p kb-eval -- [DATASET_DIR] [--data-dir DIR] [--top-k N]
//!     [--max-queries N] [--answers]
//! ```
//!
//! Settings load as for `kb` (`KB_CONFIG`, `KB__SECTION__KEY`), so another embedder can be
//! measured the same way; a relative `embedder.local.model_dir` is taken from the workspace root.
//! The data folder (default `{tmp}/kb-eval-{dataset}`) is kept: a second run re-embeds nothing.
//! The full report is written beside it as `report.json`.

use kb_app::{Components, ingest_options};
use kb_config::Settings;
use kb_eval::{EvalComponents, EvalOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

const DEFAULT_DATASET: &str = "/work/shared/eval/debian-faq-en";

struct Args {
    dataset: PathBuf,
    data_dir: Option<PathBuf>,
    top_k: Option<usize>,
    max_queries: Option<usize>,
    answers: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dataset: PathBuf::from(DEFAULT_DATASET),
        data_dir: None,
        top_k: None,
        max_queries: None,
        answers: false,
    };
    let mut it = std::env::args().skip(1);
    let number = |name: &str, v: Option<String>| -> Result<usize, String> {
        v.and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--data-dir" => {
                args.data_dir = Some(it.next().ok_or("--data-dir needs a folder")?.into())
            }
            "--top-k" => args.top_k = Some(number("--top-k", it.next())?),
            "--max-queries" => args.max_queries = Some(number("--max-queries", it.next())?),
            "--answers" => args.answers = true,
            a if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => args.dataset = arg.into(),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    if let Err(err) = real_main().await {
        eprintln!("debian_faq: {}", kb_core::error::chain(&*err));
        std::process::exit(1);
    }
}

async fn real_main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,qdrant_edge=warn,segment=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args()?;
    let name = args
        .dataset
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());

    let mut settings = Settings::load(None)?;
    settings.data_dir = args
        .data_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("kb-eval-{name}")));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if settings.embedder.local.model_dir.is_relative() {
        settings.embedder.local.model_dir = root.join(&settings.embedder.local.model_dir);
    }
    eprintln!(
        "dataset {}, data folder {}",
        args.dataset.display(),
        settings.data_dir.display()
    );

    let started = Instant::now();
    let components = Components::build(&settings).await?;
    let eval_components = EvalComponents::new(
        components.catalog.clone(),
        components.index.clone(),
        components.embedder.clone(),
    )
    .with_chat(components.chat.clone());
    let mut options = EvalOptions::new(settings.data_dir.join("eval-scratch"));
    options.ingest = ingest_options(&settings);
    options.answer = settings.answer.clone();
    options.answer_checks = args.answers;
    options.max_queries = args.max_queries;
    if let Some(k) = args.top_k {
        options.top_k = k;
    }
    let cancel = options.cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });

    let report = kb_eval::run(&args.dataset, eval_components, options).await?;
    let json_path = settings.data_dir.join("report.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)?;
    println!("{}", report.to_markdown());
    eprintln!(
        "wall time {:.1}s (model load included); full report in {}",
        started.elapsed().as_secs_f64(),
        json_path.display()
    );
    Ok(())
}
