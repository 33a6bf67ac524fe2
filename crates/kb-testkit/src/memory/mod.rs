//! In-memory adapters for tests of code written against kb-core's traits: a catalog that
//! follows the same write-ahead protocol as the SQLite one ([`FakeCatalog`]), a vector index
//! ([`FakeIndex`]), and an embedder whose vectors are a function of the text
//! ([`FakeEmbedder`]). Catalog and index share a [`FaultPlan`] that fails their n-th write
//! (before or after applying it), which is what a process killed at that moment leaves behind.

mod catalog;
mod embedder;
mod index;

pub use catalog::FakeCatalog;
pub use embedder::FakeEmbedder;
pub use index::FakeIndex;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which write (counted over catalog and index together) fails, and whether it is applied
/// before failing.
#[derive(Debug, Default)]
pub struct FaultPlan {
    writes: AtomicUsize,
    fail_at: Mutex<Option<(usize, bool)>>,
}

impl FaultPlan {
    /// Fail the `n`-th write from now (0-based), after applying it if `applied`.
    pub fn fail_write(&self, n: usize, applied: bool) {
        self.writes.store(0, Ordering::SeqCst);
        *self.fail_at.lock().unwrap() = Some((n, applied));
    }

    /// Fail no write.
    pub fn clear(&self) {
        *self.fail_at.lock().unwrap() = None;
    }

    /// `None`: go on. `Some(applied)`: fail this write, after applying it if `applied`.
    fn hit(&self) -> Option<bool> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        match *self.fail_at.lock().unwrap() {
            Some((at, applied)) if at == n => Some(applied),
            _ => None,
        }
    }
}

/// A folder of `count` Markdown documents `0.md`, `1.md`, … of `words` distinct words each
/// (`d{n}w{i}`), under a `# Doc n` heading: a corpus whose documents share no word.
pub fn distinct_documents(count: usize, words: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    for d in 0..count {
        let body: Vec<String> = (0..words).map(|w| format!("d{d}w{w}")).collect();
        std::fs::write(
            dir.path().join(format!("{d}.md")),
            format!(
                "# Doc {d}

{}
",
                body.join(" ")
            ),
        )
        .expect("write a test document");
    }
    dir
}

/// The dependency error of a failure the plan injects.
fn injected() -> std::io::Error {
    std::io::Error::other("injected failure")
}
