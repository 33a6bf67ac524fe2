//! Human-readable output.

use kb_answer::Answer;
use kb_core::DocumentRecord;
use kb_ingest::IngestReport;
use kb_ingest::pipeline::format_duration;

pub fn print_ingest_report(r: &IngestReport) {
    let s = &r.stats;
    let t = &r.timings;
    let prefix = if r.dry_run {
        "dry run: would have "
    } else {
        ""
    };
    println!(
        "{prefix}added {}, updated {}, unchanged {}, removed {}, failed {}",
        s.added, s.updated, s.unchanged, s.removed, s.failed
    );
    if !r.dry_run {
        println!(
            "{} chunks, {} tokens, {} embedding calls in {} (read {}, split {}, embed {}, index {}, catalog {})",
            s.chunks,
            s.tokens,
            s.embedding_calls,
            format_duration(t.total_ms),
            format_duration(t.read_ms),
            format_duration(t.split_ms),
            format_duration(t.embed_ms),
            format_duration(t.upsert_ms),
            format_duration(t.catalog_ms),
        );
    }
    if !r.failures.is_empty() {
        println!("failed files:");
        for f in &r.failures {
            println!("  {}: {}", f.path, f.reason);
        }
    }
    if r.interrupted {
        println!("interrupted: run the same command again to finish (finished documents are kept)");
    }
}

pub fn print_answer(a: &Answer) {
    println!("{}\n", a.answer);
    for c in &a.citations {
        let section = if c.heading_path.is_empty() {
            String::new()
        } else {
            format!(" — {}", c.heading_path.join(" > "))
        };
        println!("[{}] {} ({}){section}", c.n, c.title, c.document);
    }
    println!("\nmode: {:?}, {:.0} ms", a.mode, a.timings.total_ms);
}

pub fn print_documents(docs: &[DocumentRecord]) {
    let width = docs
        .iter()
        .map(|d| d.id.as_str().len())
        .max()
        .unwrap_or(2)
        .max(2);
    println!("{:width$}  {:>6}  {:<12}  TITLE", "ID", "CHUNKS", "GROUPS");
    for d in docs {
        println!(
            "{:width$}  {:>6}  {:<12}  {}",
            d.id.as_str(),
            d.chunk_count,
            d.groups.join(","),
            d.title
        );
    }
    println!("{} documents", docs.len());
}
