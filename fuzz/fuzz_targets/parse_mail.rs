//! `parse_bytes` on arbitrary bytes as an e-mail message (.eml) and as a mailbox (.mbox).
#![no_main]

use kb_ingest::loader::SourceFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kb_ingest_fuzz::parse(SourceFormat::Eml, data);
    kb_ingest_fuzz::parse(SourceFormat::Mbox, data);
});
