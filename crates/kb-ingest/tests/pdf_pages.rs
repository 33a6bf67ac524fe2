//! The splitter on a real PDF read by kb-extract: chunks carry the page they come from.

use kb_ingest::{ChunkSplitter, SplitOptions, load_file};
use kb_testkit::memory::FakeEmbedder;
use std::path::Path;

fn load(name: &str) -> kb_ingest::LoadedDocument {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    load_file(&path, 20 * 1024 * 1024).unwrap()
}

#[test]
fn every_pdf_chunk_carries_the_page_it_starts_on() {
    let doc = load("travel-policy.pdf");
    let splitter = ChunkSplitter::new(
        // Whitespace-separated words are its tokens, at most 64 per input.
        std::sync::Arc::new(FakeEmbedder::default().with_max_input_tokens(64)),
        SplitOptions {
            chunk_tokens: 16,
            overlap_tokens: 0,
        },
    )
    .unwrap();

    let chunks = splitter.split(&doc.text, doc.format, &doc.title);

    assert!(chunks.len() >= 3);
    for c in &chunks {
        let page = c.chunk.heading_path.last().map(String::as_str);
        assert!(
            page.is_some_and(|p| p.starts_with("Page ")),
            "{:?}",
            c.chunk
        );
    }
    let approval = chunks
        .iter()
        .find(|c| c.chunk.text.contains("approval from a director"))
        .unwrap();
    assert_eq!(approval.chunk.heading_path, ["Page 2"]);
}
