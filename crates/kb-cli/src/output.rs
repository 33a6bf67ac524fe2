//! Human-readable output.

use kb_answer::Answer;
use kb_core::DocumentRecord;
use kb_ingest::pipeline::format_duration;
use kb_ingest::{ConsistencyReport, IngestReport, RepairReport};
use uuid::Uuid;

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
        let p = &r.pacing;
        if p.batches > 0 {
            println!(
                "{} batches, up to {} embedding calls at once; {} batches resent after rate limits or engine errors ({} waiting)",
                p.batches,
                p.max_in_flight,
                p.retries,
                format_duration(p.retry_wait_ms),
            );
        }
    }
    if !r.failures.is_empty() {
        println!("failed files:");
        for f in &r.failures {
            println!("  {}: {}", f.path, f.reason);
        }
    }
    if !r.notes.is_empty() {
        println!("left out of files that were read:");
        for n in &r.notes {
            println!("  {}: {}", n.path, n.note);
        }
    }
    if !r.passed_over.is_empty() {
        println!(
            "passed over {} files of a type kb does not read (not ingested):",
            r.passed_over.len()
        );
        for path in &r.passed_over {
            println!("  {path}");
        }
    }
    if r.interrupted {
        println!("interrupted: run the same command again to finish (finished documents are kept)");
    }
}

/// At most this many point ids are listed per kind of problem (`--json` lists them all).
const IDS_SHOWN: usize = 5;

fn id_list(ids: &[Uuid]) -> String {
    let mut shown: Vec<String> = ids.iter().take(IDS_SHOWN).map(Uuid::to_string).collect();
    if ids.len() > IDS_SHOWN {
        shown.push(format!("and {} more", ids.len() - IDS_SHOWN));
    }
    shown.join(", ")
}

fn consistency_lines(r: &ConsistencyReport) -> Vec<String> {
    let mut lines = vec![format!(
        "catalog: {} documents, {} chunks; index: {} points",
        r.documents, r.catalog_chunks, r.index_points
    )];
    if !r.missing_in_index.is_empty() {
        lines.push(format!(
            "{} catalog chunks missing from the index: {}",
            r.missing_in_index.len(),
            id_list(&r.missing_in_index)
        ));
    }
    if !r.orphaned_in_index.is_empty() {
        lines.push(format!(
            "{} index points no catalog chunk names: {}",
            r.orphaned_in_index.len(),
            id_list(&r.orphaned_in_index)
        ));
    }
    if !r.interrupted_runs.is_empty() {
        lines.push(format!(
            "{} ingest runs were killed before they finished (now marked interrupted): {:?}",
            r.interrupted_runs.len(),
            r.interrupted_runs
        ));
    }
    if r.pending + r.tombstones > 0 {
        lines.push(format!(
            "left by an interrupted run: {} pending points, {} tombstones",
            r.pending, r.tombstones
        ));
    }
    lines
}

pub fn print_consistency_report(r: &ConsistencyReport) {
    for line in consistency_lines(r) {
        println!("{line}");
    }
    if r.consistent {
        println!("consistent");
    } else {
        println!(
            "inconsistent: run `kb check --repair` to fix it (after an interrupted ingest, running the same `kb ingest` again also does)"
        );
    }
}

pub fn print_repair_report(r: &RepairReport) {
    if r.before.consistent {
        for line in consistency_lines(&r.before) {
            println!("{line}");
        }
        println!("consistent: nothing to repair");
        return;
    }
    println!("before:");
    for line in consistency_lines(&r.before) {
        println!("  {line}");
    }
    println!(
        "repaired: deleted {} index points, cleared {} write-ahead records, re-embedded {} chunks of {} documents ({} embedding calls)",
        r.deleted_points,
        r.cleared_records,
        r.reembedded_chunks,
        r.documents.len(),
        r.embedding_calls
    );
    println!("after:");
    for line in consistency_lines(&r.after) {
        println!("  {line}");
    }
    println!(
        "{}",
        if r.after.consistent {
            "consistent"
        } else {
            "still inconsistent: is another kb process writing to the same index?"
        }
    );
}

pub fn print_answer(a: &Answer) {
    println!("{}\n", a.answer);
    for c in &a.citations {
        let section = if c.heading_path.is_empty() {
            String::new()
        } else {
            format!(" — {}", c.heading_path.join(" > "))
        };
        let place = c
            .location_label
            .as_ref()
            .map(|l| format!(", {l}"))
            .unwrap_or_default();
        let sender = c
            .message
            .as_ref()
            .and_then(|m| m.from.as_ref())
            .map(|from| format!(", e-mail from {from}"))
            .unwrap_or_default();
        println!(
            "[{}] {} ({}){section}{place}{sender}",
            c.n, c.title, c.document
        );
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
