//! The chunker (`ChunkSplitter::split`) on arbitrary text, as Markdown or plain text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kb_ingest_fuzz::split(data));
