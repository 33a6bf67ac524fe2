//! The subcommands.

use crate::output;
use crate::progress::{BarProgress, LogProgress, eprint_line};
use crate::remote::Remote;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kb_answer::{Answer, AskRequest};
use kb_app::{
    BuildError, Components, IndexGenerations, ServerInfo, SettingsGenerations, ingest_options,
};
use kb_catalog::CatalogStore;
use kb_config::Settings;
use kb_core::{DocumentId, DocumentRecord, Filter, IndexError};
use kb_ingest::{IngestReport, Progress, RunRequest};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Some files were skipped (each is listed with its reason).
const EXIT_SKIPPED: u8 = 3;
/// `kb check`: catalog and index disagree (and were not repaired).
const EXIT_INCONSISTENT: u8 = 4;
/// Stopped by Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;
/// How often ingest logs its progress when stderr is not a terminal.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files or folders to ingest (folders are walked; hidden entries are skipped).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Remove documents under the given folders whose files are gone.
    #[arg(long)]
    prune: bool,
    /// Show what would change without calling the engine or writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Access groups of documents that name none in front matter or a sidecar, comma-separated.
    /// Remembered per document: later runs without --groups keep them (default: the groups an
    /// earlier run gave, else ingest.default_groups). An empty list is refused.
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    groups: Option<Vec<String>>,
    /// Tags of documents that name none, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    tags: Vec<String>,
    /// Owner of documents that name none.
    #[arg(long)]
    owner: Option<String>,
    /// Follow symbolic links that lead outside the folders being ingested (default:
    /// ingest.follow_symlinks; otherwise such links are skipped and reported).
    #[arg(long)]
    follow_symlinks: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind (overrides server.host).
    #[arg(long)]
    host: Option<String>,
    /// Port (overrides server.port; 0 picks a free one).
    #[arg(long)]
    port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question.
    question: String,
    /// Chunks to retrieve.
    #[arg(long)]
    top_k: Option<usize>,
    /// Print the whole answer as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Fix what is wrong: delete index points the catalog does not name, and re-embed catalog
    /// chunks missing from the index (from the text the catalog stores).
    #[arg(long)]
    repair: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// List documents.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one document and its chunks.
    Show { id: String },
    /// Remove one document from the catalog and the index.
    Delete { id: String },
}

pub async fn run(
    command: crate::Command,
    mut settings: Settings,
    serve: crate::Serve,
) -> anyhow::Result<ExitCode> {
    match command {
        crate::Command::Ingest(args) => ingest(args, &settings).await,
        crate::Command::Serve(args) => {
            if let Some(host) = args.host {
                settings.server.host = host;
            }
            if let Some(port) = args.port {
                settings.server.port = port;
            }
            serve(settings).await
        }
        crate::Command::Ask(args) => ask(args, &settings).await,
        crate::Command::Docs { command } => docs(command, &settings).await,
        crate::Command::Check(args) => check(args, &settings).await,
        crate::Command::Eval(args) => eval(args, settings).await,
        crate::Command::Reindex(args) => crate::reindex::run(args, &settings).await,
        crate::Command::Keys { command } => crate::keys::run(command, &settings).await,
        crate::Command::Usage(args) => crate::usage::usage(args, &settings).await,
    }
}

/// Where a command runs: in this process, or in the server holding the index.
enum Target {
    Local(Box<Components>),
    Remote(Remote),
}

async fn open(settings: &Settings) -> anyhow::Result<Target> {
    match Components::build(settings).await {
        Ok(c) => Ok(Target::Local(Box::new(c))),
        Err(BuildError::Index(IndexError::Locked(what))) => {
            match Remote::find(&settings.data_dir) {
                Some(remote) => {
                    tracing::info!(
                        url = remote.url(),
                        "index is held by a running server; sending the command to it"
                    );
                    Ok(Target::Remote(remote))
                }
                None => bail!(
                    "the embedded index ({what}) is locked by another kb process; wait for it to finish or stop it"
                ),
            }
        }
        Err(e) => Err(e).context("opening the knowledge base"),
    }
}

async fn ingest(args: IngestArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let mut paths = Vec::new();
    for p in &args.paths {
        paths.push(
            p.canonicalize()
                .with_context(|| format!("{}: no such file or folder", p.display()))?,
        );
    }
    let run = RunRequest {
        paths,
        prune: args.prune,
        dry_run: args.dry_run,
        groups: args.groups,
        tags: args.tags,
        owner: args.owner,
        follow_symlinks: args.follow_symlinks,
    };
    let report: IngestReport = match open(settings).await? {
        Target::Remote(remote) => {
            eprintln!(
                "kb: a server at {} holds the index; ingesting through it",
                remote.url()
            );
            remote.post("/v1/admin/ingest", &run).await?
        }
        Target::Local(c) => {
            let ingestor = c.ingestor(ingest_options(settings))?.for_run(&run);
            let cancel = CancellationToken::new();
            let on_signal = cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprint_line(
                        "kb: stopping after the current batch; nothing half-done is kept (Ctrl-C again to abort at once, which is safe too)",
                    );
                    on_signal.cancel();
                    if tokio::signal::ctrl_c().await.is_ok() {
                        eprint_line("kb: aborted: run the same command again to finish");
                        std::process::exit(EXIT_INTERRUPTED.into());
                    }
                }
            });
            let progress: Box<dyn Progress> = if std::io::stderr().is_terminal() {
                Box::new(BarProgress::new())
            } else {
                Box::new(LogProgress::new(PROGRESS_LOG_EVERY))
            };
            let report = ingestor
                .ingest_with_progress(&run.paths, &cancel, progress.as_ref())
                .await;
            drop(progress);
            c.close().await;
            report?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        output::print_ingest_report(&report);
    }
    if args.json && report.interrupted {
        // The human summary says so on stdout; JSON readers get it on stderr.
        eprintln!("kb: interrupted: run the same command again to finish");
    }
    Ok(ingest_exit_code(&report))
}

fn ingest_exit_code(report: &IngestReport) -> ExitCode {
    if report.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if !report.failures.is_empty() {
        ExitCode::from(EXIT_SKIPPED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Why the embedded index cannot be opened for `kb check`, and what to do.
fn index_locked(settings: &Settings, what: &str) -> anyhow::Error {
    match ServerInfo::read(&settings.data_dir) {
        Some(server) => anyhow::anyhow!(
            "the embedded index ({what}) is held by the kb server at {} (pid {}); `kb check` needs the index to itself: stop the server, run `kb check` again, then restart the server",
            server.url,
            server.pid
        ),
        None => anyhow::anyhow!(
            "the embedded index ({what}) is locked by another kb process (an ingest still running?); wait for it to finish, then run `kb check` again"
        ),
    }
}

async fn check(args: CheckArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let consistent = if args.repair {
        let c = match Components::build(settings).await {
            Err(BuildError::Index(IndexError::Locked(what))) => {
                return Err(index_locked(settings, &what));
            }
            other => other.context("opening the knowledge base")?,
        };
        let pacing = ingest_options(settings).pacing;
        let report = kb_ingest::repair(
            c.catalog.as_ref(),
            c.index.as_ref(),
            c.embedder.as_ref(),
            &pacing,
        )
        .await;
        c.close().await;
        let report = report.context("repairing")?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            output::print_repair_report(&report);
        }
        report.after.consistent
    } else {
        let catalog = open_catalog(settings).await?;
        let generation = kb_ingest::reindex::generation(&catalog).await?;
        let index = match SettingsGenerations::new(settings).open(generation) {
            Err(IndexError::Locked(what)) => return Err(index_locked(settings, &what)),
            other => other.context("opening the vector index")?,
        };
        let report = kb_ingest::check(&catalog, index.as_ref()).await;
        catalog.close().await;
        let report = report.context("checking")?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            output::print_consistency_report(&report);
        }
        report.consistent
    };
    Ok(if consistent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCONSISTENT)
    })
}

/// The catalog the settings name: the SQLite file or the Postgres database.
async fn open_catalog(settings: &Settings) -> anyhow::Result<CatalogStore> {
    let location = Components::catalog_location(settings)?;
    CatalogStore::open(&location)
        .await
        .with_context(|| format!("opening the catalog {location}"))
}

async fn ask(args: AskArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let answer: Answer = match open(settings).await? {
        Target::Remote(remote) => {
            remote
                .post(
                    "/v1/ask",
                    &json!({"question": args.question, "top_k": args.top_k}),
                )
                .await?
        }
        Target::Local(c) => {
            let request = AskRequest {
                question: args.question.clone(),
                top_k: args.top_k,
                filter: Filter::default(),
                retrieval: None,
            };
            let answer = c.answerer(settings).ask(&request).await;
            c.close().await;
            answer?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        output::print_answer(&answer);
    }
    Ok(ExitCode::SUCCESS)
}

async fn docs(command: DocsCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let target = open(settings).await?;
    match command {
        DocsCommand::List { json } => {
            let documents: Vec<DocumentRecord> = match &target {
                Target::Remote(r) => {
                    let v: Value = r.get("/v1/documents").await?;
                    serde_json::from_value(v["documents"].clone())?
                }
                Target::Local(c) => kb_core::Catalog::list_documents(c.catalog.as_ref()).await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&documents)?);
            } else {
                output::print_documents(&documents);
            }
        }
        DocsCommand::Show { id } => {
            let value: Value = match &target {
                Target::Remote(r) => r.get(&format!("/v1/documents/{}", encode(&id))).await?,
                Target::Local(c) => {
                    let doc_id = DocumentId::new(&id);
                    let doc = kb_core::Catalog::get_document(c.catalog.as_ref(), &doc_id)
                        .await?
                        .with_context(|| format!("no document with id {id}; see `kb docs list`"))?;
                    let chunks = kb_core::Catalog::chunks(c.catalog.as_ref(), &doc_id).await?;
                    json!({"document": doc, "chunks": chunks})
                }
            };
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        DocsCommand::Delete { id } => {
            match &target {
                Target::Remote(r) => r.delete(&format!("/v1/documents/{}", encode(&id))).await?,
                Target::Local(c) => {
                    let ingestor = c.ingestor(ingest_options(settings))?;
                    if !ingestor.remove_document(&DocumentId::new(&id)).await? {
                        bail!("no document with id {id}; see `kb docs list`");
                    }
                }
            }
            println!("deleted {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Percent-encode a document id for a URL path segment.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Dataset folder in BEIR layout.
    #[arg(long, value_name = "DIR")]
    dataset: PathBuf,
    /// Scratch data folder (default `{data_dir}/eval/{dataset name}`); kept between runs, so
    /// a rerun embeds nothing.
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// Chunks retrieved per query.
    #[arg(long, default_value_t = kb_eval::EvalOptions::DEFAULT_TOP_K)]
    top_k: usize,
    /// Run only the first N queries.
    #[arg(long)]
    max_queries: Option<usize>,
    /// Retrieval modes to evaluate, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "dense,sparse,hybrid")]
    modes: Vec<kb_core::Retrieval>,
    /// Questions the corpus does not answer, one per line: calibrates `answer.min_score`.
    #[arg(long, value_name = "FILE")]
    out_of_scope: Option<PathBuf>,
    /// Also answer every query and check the citations.
    #[arg(long)]
    answers: bool,
    /// Print the report as JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

async fn eval(args: EvalArgs, mut settings: Settings) -> anyhow::Result<ExitCode> {
    let name = args
        .dataset
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".to_owned());
    let scratch = args
        .scratch
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("eval").join(&name));
    // The evaluation gets a catalog and an embedded index of its own under the scratch folder.
    settings.data_dir = scratch.clone();
    settings.catalog.path = None;
    settings.catalog.url = None;
    settings.index.path = None;
    if settings.index.url.is_some() {
        settings.index.collection = format!(
            "{}_eval_{}",
            settings.index.collection,
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
    }
    let c = Components::build(&settings)
        .await
        .context("opening the evaluation's scratch knowledge base")?;
    let mut options = kb_eval::EvalOptions::new(&scratch);
    options.top_k = args.top_k;
    options.max_queries = args.max_queries;
    options.modes = args.modes.clone();
    if let Some(path) = &args.out_of_scope {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading out-of-scope questions from {}", path.display()))?;
        options.out_of_scope = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_owned)
            .collect();
    }
    options.ingest = ingest_options(&settings);
    options.answer = settings.answer.clone();
    options.answer_checks = args.answers;
    let components =
        kb_eval::EvalComponents::new(c.catalog.clone(), c.index.clone(), c.embedder.clone())
            .with_chat(c.chat.clone());
    let report = kb_eval::run(&args.dataset, components, options)
        .await
        .with_context(|| format!("evaluating {}", args.dataset.display()))?;
    c.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.to_markdown());
    }
    Ok(ExitCode::SUCCESS)
}
