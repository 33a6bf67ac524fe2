//! `parse_bytes` on arbitrary bytes as a spreadsheet: the first byte picks the format (XLSX,
//! XLS, ODS, CSV or TSV), the rest is the file.
#![no_main]

use kb_ingest::loader::SourceFormat;
use libfuzzer_sys::fuzz_target;

const FORMATS: [SourceFormat; 5] = [
    SourceFormat::Xlsx,
    SourceFormat::Xls,
    SourceFormat::Ods,
    SourceFormat::Csv,
    SourceFormat::Tsv,
];

fuzz_target!(|data: &[u8]| {
    if let Some((first, file)) = data.split_first() {
        kb_ingest_fuzz::parse(FORMATS[usize::from(*first) % FORMATS.len()], file);
    }
});
