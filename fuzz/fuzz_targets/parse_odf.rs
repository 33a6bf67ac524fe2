//! `parse_bytes` on arbitrary bytes as an OpenDocument text and as a presentation (one
//! reader serves both).
#![no_main]

use kb_ingest::loader::SourceFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kb_ingest_fuzz::parse(SourceFormat::Odt, data);
    kb_ingest_fuzz::parse(SourceFormat::Odp, data);
});
