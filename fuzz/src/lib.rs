//! The bodies of the fuzz targets, shared by the cargo-fuzz binaries in `fuzz_targets/` and the
//! stable smoke test in `tests/smoke.rs`.
//!
//! Each body feeds arbitrary bytes to a public entry point of kb-ingest and checks what must
//! hold for any input: a result, never a panic (libfuzzer-sys aborts on any panic, even one
//! `parse_bytes` would catch with `catch_unwind`, so a crash inside a parser is still found),
//! and for a loaded document the invariants the pipeline relies on.

use async_trait::async_trait;
use kb_core::{Embedder, Embedding, InputKind, ModelError};
use kb_ingest::loader::{LoadError, LoadLimits, OcrSettings, SourceFormat, parse_bytes_with_limits};
use kb_ingest::{ChunkSplitter, DocumentFormat, SplitOptions};
use std::path::Path;
use std::sync::Arc;

/// Small limits, so that a fuzzer's input cannot legitimately take long or much memory; no
/// OCR (pictures are checked up to the point where the engine would start).
const LIMITS: LoadLimits = LoadLimits {
    max_file_bytes: 1024 * 1024,
    max_expanded_bytes: 16 * 1024 * 1024,
    max_sheet_cells: 100_000,
    ocr: OcrSettings::DISABLED,
};

/// Parses `data` as a file of `format` and checks the result.
pub fn parse(format: SourceFormat, data: &[u8]) {
    let path = Path::new("fuzz-input");
    match parse_bytes_with_limits(path, format, data, &LIMITS) {
        Ok(doc) => {
            assert_eq!(doc.source_format, format);
            assert_eq!(doc.format, format.text_format());
            assert!(!doc.text.trim().is_empty(), "a loaded document has text");
            assert_eq!(doc.text, doc.text.trim_end(), "text is right-trimmed");
            assert_eq!(doc.size_bytes, data.len() as u64);
        }
        Err(LoadError::ReaderCrashed { .. }) => {
            panic!("a reader panicked (caught by catch_unwind)")
        }
        Err(_) => {}
    }
}

/// Counts whitespace-separated words as tokens, CJK characters one each.
#[derive(Debug)]
struct WordCounter;

#[async_trait]
impl Embedder for WordCounter {
    async fn embed(&self, _: &[String], _: InputKind) -> Result<Vec<Embedding>, ModelError> {
        unreachable!("splitting never embeds")
    }
    fn dimensions(&self) -> usize {
        4
    }
    fn max_input_tokens(&self) -> usize {
        MAX_INPUT
    }
    fn model_id(&self) -> String {
        "words".into()
    }
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace()
            .map(|w| w.chars().filter(|c| *c as u32 >= 0x3000).count().max(1))
            .sum()
    }
}

const MAX_INPUT: usize = 64;

/// Splits `data` (as UTF-8, lossily; the first byte picks Markdown or text) and checks that
/// chunks are numbered in order, non-empty, fit the embedder, and index their text by byte
/// range: exactly, or after a table header repeated from earlier in the document.
pub fn split(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let format = if first % 2 == 0 {
        DocumentFormat::Markdown
    } else {
        DocumentFormat::Text
    };
    let text = String::from_utf8_lossy(rest);
    let splitter = ChunkSplitter::new(
        Arc::new(WordCounter),
        SplitOptions {
            chunk_tokens: 32,
            overlap_tokens: 4,
        },
    )
    .expect("BUG: valid split options");
    let chunks = splitter.split(&text, format, "Fuzz title");
    let mut last_start = 0;
    for (i, piece) in chunks.iter().enumerate() {
        let c = &piece.chunk;
        assert_eq!(c.ordinal as usize, i);
        assert!(!c.text.trim().is_empty());
        let own = &text[c.byte_start..c.byte_end];
        let repeated = c
            .text
            .strip_suffix(own)
            .expect("byte range indexes the text");
        assert!(
            repeated.is_empty()
                || (format == DocumentFormat::Markdown && text[..c.byte_start].contains(repeated)),
            "only a table header from before the chunk is repeated: {repeated:?}"
        );
        assert!(c.token_count <= MAX_INPUT, "the chunk fits the embedder");
        assert!(c.byte_start >= last_start, "chunks are in order");
        last_start = c.byte_start;
    }
}
