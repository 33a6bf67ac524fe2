//! The benchmark corpus: the files under a folder that kb reads, in the order kb walks them.

use kb_ingest::SourceFormat;
use std::path::{Path, PathBuf};

/// Files under `dir` that kb ingests (by extension; hidden entries skipped as kb skips them),
/// sorted by path.
pub fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry?;
        if entry.file_type().is_file() && SourceFormat::from_path(entry.path()).is_some() {
            files.push(entry.into_path());
        }
    }
    anyhow::ensure!(!files.is_empty(), "{}: no file kb reads", dir.display());
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_readable_files_sorted_and_skips_hidden_and_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        for name in ["b/z.rst.txt", "a.md", "c.gz", ".git/x.txt"] {
            std::fs::write(dir.path().join(name), "text").unwrap();
        }

        let found = files(dir.path()).unwrap();

        let names: Vec<_> = found
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["a.md", "b/z.rst.txt"]);
    }
}
