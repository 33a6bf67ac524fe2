//! `parse_bytes` on arbitrary bytes as an image file: the header checks that run before OCR
//! (OCR itself is off in the fuzz limits, so no engine is started).
#![no_main]

use kb_ingest::loader::SourceFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| kb_ingest_fuzz::parse(SourceFormat::Image, data));
