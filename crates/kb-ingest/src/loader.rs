//! Reading one file into text and metadata.

use serde::Deserialize;
use std::path::Path;

/// What kind of file a document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentFormat {
    Markdown,
    Text,
}

impl DocumentFormat {
    /// The format for a file name, or `None` if kb does not read that kind of file.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "md" | "markdown" | "mdown" => Some(Self::Markdown),
            "txt" | "text" => Some(Self::Text),
            _ => None,
        }
    }
}

/// Optional YAML front matter at the top of a Markdown file.
/// Scalars are read as text whatever YAML thinks they are (`tags: [holidays, 2026]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FrontMatter {
    #[serde(default, deserialize_with = "scalar::option")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "scalar::option")]
    pub owner: Option<String>,
    #[serde(default, deserialize_with = "scalar::option")]
    pub effective_date: Option<String>,
    #[serde(default, deserialize_with = "scalar::list")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "scalar::list")]
    pub groups: Vec<String>,
}

mod scalar {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }

    impl From<Scalar> for String {
        fn from(s: Scalar) -> Self {
            match s {
                Scalar::Text(t) => t,
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Bool(b) => b.to_string(),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Scalar),
        Many(Vec<Scalar>),
    }

    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Scalar>::deserialize(d)?.map(String::from))
    }

    /// A list of scalars, or a single scalar as a one-item list.
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match Option::<OneOrMany>::deserialize(d)? {
            None => Vec::new(),
            Some(OneOrMany::One(s)) => vec![s.into()],
            Some(OneOrMany::Many(v)) => v.into_iter().map(String::from).collect(),
        })
    }
}

/// A file read into text.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDocument {
    pub format: DocumentFormat,
    /// The text that is chunked and cited (front matter removed).
    pub text: String,
    pub title: String,
    pub front_matter: FrontMatter,
    /// Size of the source file in bytes.
    pub size_bytes: u64,
    /// sha256 of the source bytes.
    pub content_hash: String,
}

/// Why a file was skipped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    #[error("unsupported file type (kb reads .md, .markdown and .txt)")]
    Unsupported,
    #[error("file is empty")]
    Empty,
    #[error("file is {size} bytes, over the {limit}-byte limit (ingest.max_file_bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("looks like a binary file, not text")]
    Binary,
    #[error("not valid UTF-8 text (byte {0}); save it as UTF-8")]
    NotUtf8(usize),
    #[error("front matter is not valid YAML: {0}")]
    FrontMatter(String),
    #[error("no text left after removing markup")]
    NoText,
}

/// Read and parse one file. Never panics on bad input; every problem is a [`LoadError`].
pub fn load_file(path: &Path, max_bytes: u64) -> Result<LoadedDocument, LoadError> {
    let format = DocumentFormat::from_path(path).ok_or(LoadError::Unsupported)?;
    let size = std::fs::metadata(path)?.len();
    if size > max_bytes {
        return Err(LoadError::TooLarge {
            size,
            limit: max_bytes,
        });
    }
    let bytes = std::fs::read(path)?;
    parse_bytes(path, format, &bytes)
}

/// Parse the bytes of a file whose format is known.
pub fn parse_bytes(
    path: &Path,
    format: DocumentFormat,
    bytes: &[u8],
) -> Result<LoadedDocument, LoadError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(LoadError::Empty);
    }
    if bytes.contains(&0) {
        return Err(LoadError::Binary);
    }
    let raw = std::str::from_utf8(bytes).map_err(|e| LoadError::NotUtf8(e.valid_up_to()))?;
    let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
    let (front_matter, body) = match format {
        DocumentFormat::Markdown => split_front_matter(raw)?,
        DocumentFormat::Text => (FrontMatter::default(), raw.to_owned()),
    };
    let text = body.trim_end().to_owned();
    if text.trim().is_empty() {
        return Err(LoadError::NoText);
    }
    let title = front_matter
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| first_heading(&text, format))
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().replace(['-', '_'], " "))
                .unwrap_or_default()
        });
    Ok(LoadedDocument {
        format,
        text,
        title: title.trim().to_owned(),
        front_matter,
        size_bytes: bytes.len() as u64,
        content_hash: kb_core::content_hash(bytes),
    })
}

fn split_front_matter(raw: &str) -> Result<(FrontMatter, String), LoadError> {
    if !raw.starts_with("---") {
        return Ok((FrontMatter::default(), raw.to_owned()));
    }
    let matter = gray_matter::Matter::<gray_matter::engine::YAML>::new();
    let parsed = matter
        .parse::<FrontMatter>(raw)
        .map_err(|e| LoadError::FrontMatter(e.to_string()))?;
    let front = parsed.data.unwrap_or_default();
    Ok((front, parsed.content))
}

/// The first Markdown H1 (`# Title`), or the first non-empty line of a text file if short.
fn first_heading(text: &str, format: DocumentFormat) -> Option<String> {
    match format {
        DocumentFormat::Markdown => text
            .lines()
            .find_map(|l| l.strip_prefix("# "))
            .map(|t| t.trim().to_owned()),
        DocumentFormat::Text => text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .filter(|l| l.chars().count() <= 120)
            .map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(bytes: &str) -> Result<LoadedDocument, LoadError> {
        parse_bytes(
            Path::new("leave.md"),
            DocumentFormat::Markdown,
            bytes.as_bytes(),
        )
    }

    #[test]
    fn front_matter_gives_title_and_groups_and_is_removed_from_text() {
        let doc = md("---\ntitle: Leave Policy\ngroups: [hr, finance]\ntags:\n  - leave\n---\n# Leave\n\nBody.\n").unwrap();

        assert_eq!(doc.title, "Leave Policy");
        assert_eq!(doc.front_matter.groups, vec!["hr", "finance"]);
        assert_eq!(doc.front_matter.tags, vec!["leave"]);
        assert!(doc.text.starts_with("# Leave"));
    }

    #[test]
    fn front_matter_scalars_of_any_type_are_read_as_text() {
        let doc =
            md("---\ntitle: 2026\ntags: [holidays, 2026, true]\ngroups: hr\n---\nBody.\n").unwrap();

        assert_eq!(doc.title, "2026");
        assert_eq!(doc.front_matter.tags, vec!["holidays", "2026", "true"]);
        assert_eq!(doc.front_matter.groups, vec!["hr"]);
    }

    #[test]
    fn title_falls_back_to_first_heading_then_file_name() {
        assert_eq!(
            md("intro\n# Travel Policy\n").unwrap().title,
            "Travel Policy"
        );
        assert_eq!(md("just text").unwrap().title, "leave");
    }

    #[test]
    fn empty_binary_and_non_utf8_files_are_rejected_with_reasons() {
        assert!(matches!(md("  \n"), Err(LoadError::Empty)));
        assert!(matches!(
            parse_bytes(Path::new("a.txt"), DocumentFormat::Text, b"ab\0cd"),
            Err(LoadError::Binary)
        ));
        assert!(matches!(
            parse_bytes(Path::new("a.txt"), DocumentFormat::Text, b"ok \xff\xfe bad"),
            Err(LoadError::NotUtf8(3))
        ));
    }

    #[test]
    fn broken_front_matter_is_an_error_not_a_panic() {
        assert!(matches!(
            md("---\ntitle: [unclosed\n---\nbody\n"),
            Err(LoadError::FrontMatter(_))
        ));
    }

    #[test]
    fn unsupported_extensions_are_refused() {
        assert_eq!(DocumentFormat::from_path(Path::new("a.exe")), None);
        assert_eq!(
            DocumentFormat::from_path(Path::new("A.MD")),
            Some(DocumentFormat::Markdown)
        );
    }
}
