//! Benchmark programs for kb (see `bench/README.md`; never part of the test suite).
//!
//! - [`ZeroCostEmbedder`]: an in-process embedder whose vectors cost next to nothing but whose
//!   token counts are the real model's, so chunks are cut exactly as in production and the
//!   ingest benchmark measures kb's own pipeline.
//! - [`timed`]: decorators that time every call kb makes to the embedder, the vector index and
//!   the catalog, without touching the pipeline.
//! - [`corpus`]: the benchmark corpus (files kb reads, in a stable order) and subsets of it.

pub mod corpus;
pub mod fake;
pub mod timed;

pub use fake::{ZeroCostEmbedder, load_counting_tokenizer};
pub use timed::{Stage, StageClock, TimedCatalog, TimedEmbedder, TimedIndex};

/// Log to stderr (stdout carries a benchmark's JSON result), filtered by `RUST_LOG` or else by
/// `default_filter`.
pub fn init_logging(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// CPU seconds (user + system, all threads) this process has used so far, from
/// `/proc/self/stat` in clock ticks of 1/100 s (Linux's `USER_HZ` on every mainstream
/// architecture); 0 where `/proc` is missing. On a shared machine CPU time is steadier than wall
/// time: it does not count the time spent waiting for a core.
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// Machine facts printed with every result: the CPU model, cores and the load when measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MachineInfo {
    pub cpu: String,
    pub cores: usize,
    pub load_average: String,
    pub date_utc: String,
}

impl MachineInfo {
    /// Read from `/proc` (fields stay empty where it is missing).
    pub fn probe() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default();
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            cpu,
            cores,
            load_average,
            date_utc: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_while_this_process_computes() {
        let before = process_cpu_seconds();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(process_cpu_seconds() > before, "{x}");
    }
}
