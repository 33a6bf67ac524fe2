//! OCR results kept on disk by content hash, so an unchanged file is never read by OCR twice.
//!
//! The key of an entry is the sha256 of everything its result depends on: the sha256 of the
//! file's bytes, which part of the file (the whole picture, or one PDF page), the languages,
//! the engine's version, and [`FORMAT`] (how kb turns the engine's output into text). The
//! confidence threshold is not in the key: entries keep each page's confidence, so changing
//! `ingest.ocr.min_confidence` needs no OCR again. Entries are JSON files under a two-letter
//! fan-out folder (`ab/abcdef….json`), written to a temporary file beside them and renamed
//! into place, so a reader never sees half an entry. An entry that cannot be read or parsed is
//! ignored (and replaced by the next result); a cache that cannot be written costs time, not
//! correctness, so write failures are logged and otherwise ignored.

use super::tsv::OcrPage;
use serde::{Deserialize, Serialize};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

/// The version of the text an entry holds; raised when the way kb turns Tesseract's output
/// into text changes, so that old entries stop matching.
const FORMAT: u32 = 1;
/// Entries larger than this are not read (a page of text is a few kilobytes).
const MAX_ENTRY_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    key: String,
    pages: Vec<OcrPage>,
}

/// A cache folder (see the module documentation).
#[derive(Debug)]
pub(crate) struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The key of a result: what it was read from (`content_hash` of the file, `part` of it),
    /// how (`languages`, `engine` version).
    pub(crate) fn key(
        content_hash: &str,
        part: &str,
        languages: &[String],
        engine: &str,
    ) -> String {
        let described = format!(
            "kb-ocr {FORMAT}\nfile {content_hash}\npart {part}\nlanguages {}\nengine {engine}\n",
            languages.join("+")
        );
        kb_core::content_hash(described.as_bytes())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.json"))
    }

    /// The pages stored under `key`, if a sound entry is there.
    pub(crate) fn get(&self, key: &str) -> Option<Vec<OcrPage>> {
        let path = self.path(key);
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_ENTRY_BYTES + 1).read_to_end(&mut bytes));
        match read {
            Ok(n) if n as u64 <= MAX_ENTRY_BYTES => {}
            Ok(_) => {
                tracing::warn!(path = %path.display(), "OCR cache entry too large; ignored");
                return None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot read OCR cache entry");
                return None;
            }
        }
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(entry) if entry.format == FORMAT && entry.key == key => Some(entry.pages),
            _ => {
                tracing::warn!(path = %path.display(), "OCR cache entry is corrupt; OCR runs again");
                None
            }
        }
    }

    /// Stores `pages` under `key`; failures are logged.
    pub(crate) fn put(&self, key: &str, pages: &[OcrPage]) {
        if let Err(error) = self.try_put(key, pages) {
            tracing::warn!(%error, dir = %self.dir.display(), "cannot write to the OCR cache");
        }
    }

    fn try_put(&self, key: &str, pages: &[OcrPage]) -> std::io::Result<()> {
        let path = self.path(key);
        let folder = path.parent().expect("BUG: a cache entry path has a folder");
        std::fs::create_dir_all(folder)?;
        let entry = Entry {
            format: FORMAT,
            key: key.to_owned(),
            pages: pages.to_vec(),
        };
        let mut file = tempfile::NamedTempFile::new_in(folder)?;
        file.write_all(&serde_json::to_vec(&entry).map_err(std::io::Error::other)?)?;
        file.as_file().sync_all()?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> OcrPage {
        OcrPage {
            number: 1,
            confidence: 91.5,
            text: text.to_owned(),
        }
    }

    #[test]
    fn a_stored_result_is_found_under_its_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let langs = vec!["eng".to_owned()];
        let key = Cache::key("abc", "page 1", &langs, "tesseract 5.3.0");

        cache.put(&key, &[page("25 days")]);

        assert_eq!(cache.get(&key), Some(vec![page("25 days")]));
        for other in [
            Cache::key("abd", "page 1", &langs, "tesseract 5.3.0"),
            Cache::key("abc", "page 2", &langs, "tesseract 5.3.0"),
            Cache::key("abc", "page 1", &["chi_sim".to_owned()], "tesseract 5.3.0"),
            Cache::key("abc", "page 1", &langs, "tesseract 5.4.0"),
        ] {
            assert_ne!(other, key);
            assert_eq!(cache.get(&other), None);
        }
    }

    #[test]
    fn a_corrupt_or_misplaced_entry_is_ignored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let key = Cache::key("abc", "image", &[], "tesseract 5.3.0");
        let other = Cache::key("xyz", "image", &[], "tesseract 5.3.0");
        cache.put(&other, &[page("someone else's")]);
        std::fs::create_dir_all(cache.path(&key).parent().unwrap()).unwrap();

        std::fs::write(cache.path(&key), b"{\"format\": 1, \"pag").unwrap();
        assert_eq!(cache.get(&key), None);
        std::fs::copy(cache.path(&other), cache.path(&key)).unwrap();
        assert_eq!(cache.get(&key), None, "an entry stored under another key");

        cache.put(&key, &[page("fresh")]);
        assert_eq!(cache.get(&key), Some(vec![page("fresh")]));
        let leftovers: Vec<_> = std::fs::read_dir(cache.path(&key).parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
    }

    #[test]
    fn a_cache_that_cannot_be_written_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, b"not a folder").unwrap();
        let cache = Cache::new(&blocked);
        let key = Cache::key("abc", "image", &[], "v");

        cache.put(&key, &[page("x")]);

        assert_eq!(cache.get(&key), None);
    }
}
