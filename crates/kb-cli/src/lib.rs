//! The `kb` command line. Library so the root binary stays a one-liner.
//!
//! Commands open the adapters named by the settings. When a running `kb serve` holds the
//! embedded index, `ingest`, `ask` and `docs` are sent to it through its admin API instead
//! (it advertises itself in `{data_dir}/server.json`).

mod commands;
mod keys;
mod output;
mod progress;
mod reindex;
mod remote;
mod usage;

use clap::{Parser, Subcommand};
use kb_config::{LogFormat, Settings};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;

/// What runs `kb serve` with the settings (`server.host` and `server.port` already overridden
/// by the command line): the binary passes the HTTP server in, so that the command line does
/// not depend on it.
pub type Serve = fn(Settings) -> Pin<Box<dyn Future<Output = anyhow::Result<ExitCode>> + Send>>;

#[derive(Debug, Parser)]
#[command(
    name = "kb",
    version,
    about = "Company knowledge base: ingest documents, answer questions with citations"
)]
struct Cli {
    /// Settings file (TOML); also KB_CONFIG. Environment variables KB__SECTION__KEY win.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Folder for the catalog and the embedded index (overrides data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Show progress logs (info level) for commands other than serve.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load files and folders (Markdown, text, HTML, PDF, DOCX) into the knowledge base.
    Ingest(commands::IngestArgs),
    /// Serve the HTTP API.
    Serve(commands::ServeArgs),
    /// Answer one question from the command line.
    Ask(commands::AskArgs),
    /// List, show or delete documents.
    Docs {
        #[command(subcommand)]
        command: commands::DocsCommand,
    },
    /// Check that the catalog and the vector index agree (exit 4 when they do not).
    Check(commands::CheckArgs),
    /// Measure retrieval on a BEIR-layout dataset (corpus.jsonl, queries.jsonl, qrels.tsv).
    Eval(commands::EvalArgs),
    /// Rebuild the vector index from the catalog with the configured embedding model.
    Reindex(reindex::ReindexArgs),
    /// Create, list or revoke API keys for the HTTP API.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Engine calls, failures, tokens, cost and latency from the usage ledger.
    Usage(usage::UsageArgs),
}

/// Run the CLI; prints `kb: error` chains and returns the exit code.
/// Parse the command line and run the command; `serve` runs `kb serve`.
pub fn main(serve: Serve) -> ExitCode {
    let cli = Cli::parse();
    let settings = match load_settings(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kb: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&settings, &cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kb: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli.command, settings, serve)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kb: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(cli: &Cli) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        settings.data_dir = dir.clone();
    }
    Ok(settings)
}

fn init_tracing(settings: &Settings, cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match (&cli.command, cli.verbose) {
        (Command::Serve(_), _) | (_, true) => settings.telemetry.level.clone(),
        // Ingest progress: a bar on a terminal, else these log lines every few seconds.
        (Command::Ingest(_), false) => "warn,kb::progress=info".to_owned(),
        _ => "warn".to_owned(),
    };
    // qdrant-edge warns about process-wide flags it expects its own server to set; they do
    // not apply to the embedded engine.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},qdrant_edge::common=error")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(progress::StderrWriter::default)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match settings.telemetry.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.compact().init(),
    }
}
