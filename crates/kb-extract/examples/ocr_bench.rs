//! OCR throughput and what the OCR cache saves (docs/BENCHMARKS.md, "OCR").
//!
//! ```sh
//! cargo run -p kb-extract --example ocr_bench -- [ROUNDS] [WORKERS]
//! ```
//!
//! Reads the scans in tests/fixtures/scans with kb's readers (`load_file_with_limits`), the
//! way ingest does: first without a cache, `ROUNDS` times over (default 3), with `WORKERS`
//! files read at once (default 1), for each language setting; then twice with a fresh cache
//! folder, cold and warm. Prints pages per second and the time of each pass.

use kb_extract::{LoadLimits, OcrSettings, load_file_with_limits};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// The scans, with the pages each has.
const ENGLISH: &[(&str, u32)] = &[
    ("leave-policy.png", 1),
    ("travel-rules-rotated.jpg", 1),
    ("board-minutes-scan.pdf", 2),
    ("two-page-scan.tif", 2),
];
const CHINESE: &[(&str, u32)] = &[("leave-policy-zh.png", 1)];

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .map_or(3, |a| a.parse().expect("ROUNDS is a number"));
    let workers: usize = args
        .next()
        .map_or(1, |a| a.parse().expect("WORKERS is a number"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/scans");

    for (label, files, languages) in [
        (
            "English pages, eng+chi_sim",
            ENGLISH,
            &["eng", "chi_sim"][..],
        ),
        ("English pages, eng", ENGLISH, &["eng"][..]),
        (
            "Chinese page, eng+chi_sim",
            CHINESE,
            &["eng", "chi_sim"][..],
        ),
    ] {
        let limits = limits(languages, None);
        let jobs: Vec<_> = (0..rounds).flat_map(|_| files.iter().copied()).collect();
        let (secs, pages) = run(&dir, &jobs, &limits, workers);
        println!(
            "{label}: {pages} pages in {secs:.1} s = {:.2} pages/s ({workers} at once)",
            f64::from(pages) / secs
        );
    }

    let cache = tempfile::tempdir().expect("a temporary folder");
    let limits = limits(&["eng", "chi_sim"], Some(cache.path().to_owned()));
    let all: Vec<_> = ENGLISH.iter().chain(CHINESE).copied().collect();
    let (cold, pages) = run(&dir, &all, &limits, workers);
    let (warm, _) = run(&dir, &all, &limits, workers);
    println!(
        "cache: {pages} pages read in {cold:.2} s cold, {warm:.3} s warm ({:.0}× faster)",
        cold / warm
    );
}

fn limits(languages: &[&str], cache_dir: Option<PathBuf>) -> LoadLimits {
    LoadLimits {
        ocr: OcrSettings {
            languages: languages.iter().map(|l| (*l).to_owned()).collect(),
            cache_dir,
            ..OcrSettings::default()
        },
        ..LoadLimits::default()
    }
}

/// Reads every job, `workers` at a time; returns the seconds taken and the pages read.
fn run(dir: &Path, jobs: &[(&str, u32)], limits: &LoadLimits, workers: usize) -> (f64, u32) {
    let queue = Mutex::new(jobs.iter());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    // The guard is dropped here, before the file is read.
                    let next = queue.lock().expect("queue").next();
                    let Some((name, _)) = next else { break };
                    let path = dir.join(name);
                    if let Err(e) = load_file_with_limits(&path, limits) {
                        panic!("{name}: {e}");
                    }
                }
            });
        }
    });
    let pages = jobs.iter().map(|(_, p)| p).sum();
    (started.elapsed().as_secs_f64(), pages)
}
