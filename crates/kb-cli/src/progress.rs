//! Showing an ingest run's progress: a bar when stderr is a terminal, a log line every few
//! seconds otherwise (CI logs, cron, pipes). The pipeline only reports counters
//! ([`kb_ingest::Progress`]); rates and ETAs are computed here.
//!
//! While a bar is drawn, log lines and messages go through [`StderrWriter`] / [`eprint_line`],
//! which lift the bar out of the way so that the two do not tear each other.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kb_ingest::{Phase, Progress, ProgressSnapshot};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bar being drawn, if any: log output suspends it while it writes.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn active_bar() -> Option<ProgressBar> {
    ACTIVE_BAR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Write a line to stderr without tearing a progress bar.
pub fn eprint_line(line: &str) {
    let write = || {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    };
    match active_bar() {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// The writer of the log subscriber: stderr, one event per write, around the bar.
#[derive(Debug, Default)]
pub struct StderrWriter {
    buf: Vec<u8>,
}

impl Write for StderrWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StderrWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.buf);
        };
        match active_bar() {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// Chunks per second and the time left, from the counters and the time elapsed.
fn rate_and_eta(s: &ProgressSnapshot, elapsed: Duration) -> (f64, Option<Duration>) {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        s.chunks as f64 / secs
    } else {
        0.0
    };
    // Files are the unit of work the run knows in advance; their rate gives the ETA.
    let eta = (s.files_done > 0 && s.files_done < s.files_total).then(|| {
        let per_file = secs / s.files_done as f64;
        Duration::from_secs_f64(per_file * (s.files_total - s.files_done) as f64)
    });
    (rate, eta)
}

fn format_eta(eta: Option<Duration>) -> String {
    match eta {
        Some(d) if d.as_secs() >= 60 => format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60),
        Some(d) => format!("{}s", d.as_secs()),
        None => "-".to_owned(),
    }
}

fn phase_label(s: &ProgressSnapshot) -> String {
    match s.phase {
        Phase::Starting => "starting".to_owned(),
        Phase::Files => s
            .current
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default(),
        Phase::Pruning => "removing documents whose files are gone".to_owned(),
        Phase::Optimizing => "optimizing the index".to_owned(),
        Phase::Finished => "done".to_owned(),
    }
}

/// A terminal progress bar over the files, with chunk, token and call counters.
pub struct BarProgress {
    bar: ProgressBar,
    started: Instant,
}

impl BarProgress {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed:>4} [{bar:24}] {pos}/{len} files  {wide_msg}",
            )
            .expect("BUG: the progress template is valid")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        *ACTIVE_BAR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar.clone());
        Self {
            bar,
            started: Instant::now(),
        }
    }
}

impl Progress for BarProgress {
    fn update(&self, s: &ProgressSnapshot) {
        if s.phase == Phase::Finished {
            self.bar.finish_and_clear();
            return;
        }
        let (rate, eta) = rate_and_eta(s, self.started.elapsed());
        self.bar.set_length(s.files_total);
        self.bar.set_position(s.files_done);
        self.bar.set_message(format!(
            "{} chunks, {} tokens, {} calls, {rate:.1} chunks/s, ETA {}  {}",
            s.chunks,
            s.tokens,
            s.embedding_calls,
            format_eta(eta),
            phase_label(s),
        ));
    }
}

impl Drop for BarProgress {
    fn drop(&mut self) {
        *ACTIVE_BAR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.bar.finish_and_clear();
    }
}

/// One `info` log line (target `kb::progress`) every `every`, for logs that are not a terminal.
pub struct LogProgress {
    every: Duration,
    started: Instant,
    last: Mutex<Instant>,
}

impl LogProgress {
    pub fn new(every: Duration) -> Self {
        let now = Instant::now();
        Self {
            every,
            started: now,
            last: Mutex::new(now),
        }
    }
}

impl Progress for LogProgress {
    fn update(&self, s: &ProgressSnapshot) {
        {
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if s.phase == Phase::Finished || last.elapsed() < self.every {
                return;
            }
            *last = Instant::now();
        }
        let (rate, eta) = rate_and_eta(s, self.started.elapsed());
        tracing::info!(
            target: "kb::progress",
            files = format!("{}/{}", s.files_done, s.files_total),
            chunks = s.chunks,
            tokens = s.tokens,
            embedding_calls = s.embedding_calls,
            chunks_per_sec = format!("{rate:.1}"),
            eta = format_eta(eta),
            "ingesting: {}",
            phase_label(s),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_comes_from_the_rate_of_files_done() {
        let s = ProgressSnapshot {
            files_total: 10,
            files_done: 4,
            chunks: 40,
            ..ProgressSnapshot::default()
        };

        let (rate, eta) = rate_and_eta(&s, Duration::from_secs(8));

        assert_eq!(rate, 5.0);
        assert_eq!(eta, Some(Duration::from_secs(12)));
        assert_eq!(format_eta(eta), "12s");
        assert_eq!(format_eta(Some(Duration::from_secs(125))), "2m05s");
    }

    #[test]
    fn no_eta_before_the_first_file_or_after_the_last() {
        let mut s = ProgressSnapshot {
            files_total: 3,
            ..ProgressSnapshot::default()
        };
        assert_eq!(rate_and_eta(&s, Duration::ZERO), (0.0, None));
        s.files_done = 3;
        assert_eq!(rate_and_eta(&s, Duration::from_secs(1)).1, None);
    }
}
