//! `parse_bytes` on arbitrary bytes as a PPTX deck.
#![no_main]

use kb_ingest::loader::SourceFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kb_ingest_fuzz::parse(SourceFormat::Pptx, data));
