//! The corpus as Markdown files, so that it goes through kb's own ingest (loader, splitter,
//! embedder, index) exactly as a handbook does.
//!
//! Each document becomes `{name}.md` holding `# {title}\n\n{text}`. Corpus ids may hold any
//! character (`faq/basic-defs#001`), so `{name}` is the id with every byte outside
//! `[A-Za-z0-9_.-]` percent-encoded: one flat folder, one stable file per id (stable names are
//! what lets a kept data folder skip re-embedding), and a map back from document id to corpus id.

use crate::dataset::CorpusDoc;
use kb_core::DocumentId;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// Longest file name kept readable; longer ones are cut and end in a hash of the id.
const MAX_NAME_BYTES: usize = 200;

/// The file name (and kb document id) of a corpus document.
pub fn file_name(corpus_id: &str) -> String {
    let mut name = String::with_capacity(corpus_id.len() + 3);
    for (i, b) in corpus_id.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            name.push(b as char);
        } else {
            write!(name, "%{b:02X}").expect("BUG: writing to a String cannot fail");
        }
    }
    if name.len() > MAX_NAME_BYTES {
        let hash = kb_core::content_hash(corpus_id.as_bytes());
        name.truncate(MAX_NAME_BYTES - 17);
        name.push('~');
        name.push_str(&hash[..16]);
    }
    name.push_str(".md");
    name
}

/// The Markdown text of a corpus document. An empty title still gets its `# ` line, so that
/// the loader takes an empty title rather than one made from the file name.
pub fn markdown(doc: &CorpusDoc) -> String {
    let title = doc.title.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("# {title}\n\n{}\n", doc.text.trim_end())
}

/// Marks a folder as written by [`write`] (ingest skips dot files), so that only such a folder
/// is ever replaced.
pub const MARKER_FILE: &str = ".kb-eval-corpus";

/// Replace `dir` with one file per corpus document; returns document id → corpus id.
///
/// An existing non-empty `dir` is replaced only if an earlier call wrote it (it holds
/// [`MARKER_FILE`]): a mistyped scratch folder never loses someone's files.
pub fn write(
    dir: &Path,
    corpus: &[CorpusDoc],
) -> Result<HashMap<DocumentId, String>, std::io::Error> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(MARKER_FILE).exists() {
            return Err(std::io::Error::other(
                "exists and was not written by kb-eval; choose another scratch folder or empty it",
            ));
        }
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(MARKER_FILE),
        "written by kb-eval: this folder is replaced on every run\n",
    )?;
    let mut ids = HashMap::with_capacity(corpus.len());
    for doc in corpus {
        let name = file_name(&doc.id);
        if let Some(other) = ids.insert(DocumentId::new(name.clone()), doc.id.clone()) {
            return Err(std::io::Error::other(format!(
                "corpus ids {other:?} and {:?} map to the same file name {name}",
                doc.id
            )));
        }
        std::fs::write(dir.join(&name), markdown(doc))?;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_safe_characters_and_encode_the_rest() {
        assert_eq!(file_name("doc-1_a.b"), "doc-1_a.b.md");
        assert_eq!(file_name("faq/basic-defs#001"), "faq%2Fbasic-defs%23001.md");
        assert_eq!(file_name(".hidden"), "%2Ehidden.md");
        assert_eq!(file_name("50%"), "50%25.md");
        assert_eq!(file_name("年"), "%E5%B9%B4.md");
    }

    #[test]
    fn long_ids_get_short_distinct_names() {
        let a = file_name(&"x".repeat(300));
        let b = file_name(&format!("{}y", "x".repeat(299)));

        assert!(a.len() <= MAX_NAME_BYTES + 3, "{}", a.len());
        assert_ne!(a, b);
    }

    #[test]
    fn markdown_puts_the_title_as_heading() {
        let doc = CorpusDoc {
            id: "a".into(),
            title: "Leave\npolicy".into(),
            text: "Body.\n\n".into(),
        };

        assert_eq!(markdown(&doc), "# Leave policy\n\nBody.\n");
    }

    #[test]
    fn writing_replaces_the_folder_and_maps_names_back_to_ids() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("corpus");
        let corpus = vec![CorpusDoc {
            id: "faq/1".into(),
            title: "T".into(),
            text: "x".into(),
        }];
        write(&folder, &corpus).unwrap();
        std::fs::write(folder.join("stale.md"), "old").unwrap();

        let ids = write(&folder, &corpus).unwrap();

        assert!(!folder.join("stale.md").exists());
        assert_eq!(ids[&DocumentId::new("faq%2F1.md")], "faq/1");
        assert_eq!(
            std::fs::read_to_string(folder.join("faq%2F1.md")).unwrap(),
            "# T\n\nx\n"
        );
    }

    #[test]
    fn a_folder_not_written_by_kb_eval_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious.md"), "mine").unwrap();

        let err = write(dir.path(), &[]).unwrap_err();

        assert!(err.to_string().contains("not written by kb-eval"), "{err}");
        assert!(dir.path().join("precious.md").exists());
    }
}
