//! `kb usage`: the usage ledger summed, read straight from the catalog's database, the SQLite
//! file or Postgres (no server needed; running servers keep writing to it meanwhile).

use anyhow::{Context, bail};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use kb_app::Components;
use kb_catalog::CatalogLocation;
use kb_config::Settings;
use kb_usage::{GroupBy, Since, UsageDb, UsageReport, UsageRow};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Only calls since then: a duration back from now (7d, 24h, 30m), a UTC day
    /// (2026-11-01) or an RFC 3339 time. Default: every recorded call.
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// One row per model (as sent to the engine), endpoint, UTC day or kind (embed/chat).
    #[arg(
        long,
        default_value = "model",
        value_parser = PossibleValuesParser::new(["model", "endpoint", "day", "kind"])
            .map(|s| s.parse::<GroupBy>().expect("BUG: the possible values parse")),
    )]
    by: GroupBy,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn usage(args: UsageArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| Since::parse(s, chrono::Utc::now()))
        .transpose()?;
    let db = match Components::catalog_location(settings)? {
        CatalogLocation::File(path) => {
            if !path.exists() {
                bail!(
                    "no usage recorded: {} does not exist (kb serve, kb ingest and kb ask record engine calls there when an engine is configured)",
                    path.display()
                );
            }
            UsageDb::open_existing(&path)
                .await
                .with_context(|| format!("opening the usage ledger {}", path.display()))?
        }
        CatalogLocation::Postgres(url) => UsageDb::open_postgres(&url)
            .await
            .with_context(|| format!("opening the usage ledger {url}"))?,
    };
    let report = kb_usage::report(&db, since, args.by, &settings.usage.prices).await;
    db.close().await;
    let report = report.context("reading the usage ledger")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &UsageReport) {
    match &report.since {
        Some(since) => println!(
            "engine calls since {}",
            since.0.format("%Y-%m-%d %H:%M UTC")
        ),
        None => println!("all recorded engine calls"),
    }
    let key_width = report
        .rows
        .iter()
        .map(|r| r.key.chars().count())
        .chain([5, by_name(report).len()])
        .max()
        .unwrap_or(5);
    println!(
        "{:<key_width$} {:>8} {:>8} {:>14} {:>14} {:>12} {:>8} {:>8}",
        by_name(report),
        "calls",
        "failed",
        "prompt tok",
        "completion tok",
        "cost",
        "p50 ms",
        "p95 ms"
    );
    for row in report.rows.iter().chain([&report.total]) {
        print_row(row, key_width);
    }
    if !report.unpriced_models.is_empty() {
        println!(
            "no price for {}: set usage.prices.\"MODEL\" (input_per_million, output_per_million) to see their cost",
            report.unpriced_models.join(", ")
        );
    }
}

fn by_name(report: &UsageReport) -> &'static str {
    match report.by {
        GroupBy::Model => "model",
        GroupBy::Endpoint => "endpoint",
        GroupBy::Day => "day",
        GroupBy::Kind => "kind",
    }
}

fn print_row(row: &UsageRow, key_width: usize) {
    let or_dash = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    println!(
        "{:<key_width$} {:>8} {:>8} {:>14} {:>14} {:>12} {:>8} {:>8}",
        row.key,
        row.calls,
        row.failures,
        row.prompt_tokens,
        row.completion_tokens,
        row.cost
            .map_or_else(|| "-".to_owned(), |c| format!("{c:.4}")),
        or_dash(row.latency_p50_ms),
        or_dash(row.latency_p95_ms),
    );
}
