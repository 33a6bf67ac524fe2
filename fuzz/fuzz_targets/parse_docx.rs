//! `parse_bytes` on arbitrary bytes as a Docx file.
#![no_main]

use kb_ingest::loader::SourceFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kb_ingest_fuzz::parse(SourceFormat::Docx, data));
