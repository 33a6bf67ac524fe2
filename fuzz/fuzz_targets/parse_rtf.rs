//! `parse_bytes` on arbitrary bytes as an RTF document.
#![no_main]

use kb_ingest::loader::SourceFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kb_ingest_fuzz::parse(SourceFormat::Rtf, data));
