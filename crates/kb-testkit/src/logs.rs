//! Log capture for tests that assert on what was (or was not) logged.
//!
//! One global subscriber, installed on first use in a test binary, writes every event to the
//! capture of the thread it happens on (tokio's default test runtime runs a test and its tasks
//! on one thread). A scoped subscriber per test (`tracing::subscriber::set_default`) lost events
//! now and then: tracing caches each call site's interest across all dispatchers, and a call
//! site first hit on another test's thread while a test registered its dispatcher could keep
//! the answer "nobody listens" (`api_keys_never_appear_in_debug_or_errors` failed that way once).
//! A binary that installs its own global subscriber first (e.g. with `TEST_LOG`) captures
//! nothing: [`CapturedLogs::install`] says so.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Log lines written on one test's thread while its [`CaptureGuard`] lives.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    /// Where this thread's log lines go, if its test captures them.
    static SINK: RefCell<Option<CapturedLogs>> = const { RefCell::new(None) };
}

/// Writes a log line to the capture of the current thread, or nowhere.
struct ThreadSink;

impl Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|sink| {
            if let Some(captured) = &*sink.borrow() {
                captured.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stops the thread's capture when dropped.
pub struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        SINK.with(|sink| sink.borrow_mut().take());
    }
}

impl CapturedLogs {
    /// Capture every event (all levels) logged on this thread until the guard is dropped.
    ///
    /// # Panics
    /// If another global subscriber was installed in this test binary first.
    pub fn install(&self) -> CaptureGuard {
        static INSTALLED: OnceLock<bool> = OnceLock::new();
        let installed = *INSTALLED.get_or_init(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                // No timestamps: tests look for secrets in the text, and digits of a time
                // could match them by chance.
                .without_time()
                .with_writer(|| ThreadSink)
                .finish();
            tracing::subscriber::set_global_default(subscriber).is_ok()
        });
        assert!(
            installed,
            "another global tracing subscriber is installed (TEST_LOG?): log capture cannot work"
        );
        SINK.with(|sink| *sink.borrow_mut() = Some(self.clone()));
        CaptureGuard
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_this_thread_are_captured_and_others_are_not() {
        let logs = CapturedLogs::default();
        let guard = logs.install();
        tracing::trace!("on this thread");
        std::thread::spawn(|| tracing::info!("on another thread"))
            .join()
            .unwrap();
        drop(guard);
        tracing::info!("after the guard");

        let text = logs.text();
        assert!(text.contains("on this thread"), "{text}");
        assert!(!text.contains("on another thread"), "{text}");
        assert!(!text.contains("after the guard"), "{text}");
    }
}
