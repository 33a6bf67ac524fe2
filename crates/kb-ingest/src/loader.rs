//! Reading one file into text and metadata.
//!
//! | extensions                  | [`SourceFormat`] | text ([`DocumentFormat`]) |
//! |-----------------------------|------------------|---------------------------|
//! | `.md` `.markdown` `.mdown`  | `Markdown`       | Markdown, front matter read |
//! | `.txt` `.text`              | `Text`           | plain text                |
//! | `.html` `.htm`              | `Html`           | Markdown made from the page |
//! | `.pdf`                      | `Pdf`            | Markdown, one `# Page N` heading per page |
//! | `.docx`                     | `Docx`           | Markdown made from the document |
//!
//! [`DocumentFormat`] is how the splitter reads the text: HTML, PDF and DOCX become Markdown
//! (`#` headings, `- ` lists, pipe tables) so their chunks get heading paths; for a PDF the
//! heading path of every chunk is `["Page N"]`, the page the chunk starts on.
//!
//! Text files (Markdown, text, HTML) may be UTF-8, UTF-16 with a byte-order mark, or a legacy
//! encoding (GBK/GB18030, Big5, Shift_JIS, windows-1252, …) that is detected; HTML may also
//! declare its charset. See `formats/text.rs` for the order of the checks.
//!
//! Metadata (title, owner, effective date, tags, access groups) comes from Markdown front
//! matter and, for any format, from a sidecar file beside the document named after it plus
//! `.meta.yaml` (`handbook.pdf.meta.yaml`) with the same fields. Front matter wins field by
//! field; [`load_file`] reads the sidecar (a sidecar is not a document: kb reads no `.yaml`).
//! No other metadata can set access: HTML, PDF and DOCX give a title only (`<title>`, the
//! PDF Info `Title`, DOCX `dc:title`), and a text file has none.
//!
//! Metadata fails closed: a mistake that could leave a restricted document readable by
//! everyone fails the file with a reason instead of ingesting it under the default groups.
//!
//! | written                                                  | result |
//! |----------------------------------------------------------|--------|
//! | `---` on line 1, YAML, `---` (byte-order marks before it are dropped) | read |
//! | `---` on line 1 never closed                             | fails: "front matter opened with --- on line 1 is never closed; …" |
//! | blank lines or spaces before a `---` that opens YAML with a metadata key | fails: "front matter must start on the first line; …" |
//! | `+++` on line 1 (TOML front matter)                      | fails |
//! | front matter or sidecar that is not a YAML mapping       | fails |
//! | `title`, `owner`, `effective_date`, `tags`, `groups`     | read (`effective_date` must be `YYYY-MM-DD`) |
//! | a front matter key of [`IGNORED_FRONT_MATTER_KEYS`] (`author`, `date`, `draft`, …) | ignored (front matter only) |
//! | a key that looks like an access field (`group`, `Groups`, `acl`, `audience`, `roles`, `allowed_groups`, `gruops`, …) | fails: "…; did you mean groups? …" |
//! | any other key                                            | fails, naming it and the keys kb reads |
//! | `groups: []`, `groups:`, `groups: ""`, a list of blanks  | fails: "groups is empty; name at least one group ("all" for everyone)" |
//! | `groups: "hr, finance"` or `groups: hr finance` (one string) | fails: write a YAML list |
//! | a group or tag name with a comma in it                   | fails: write one name per item |
//! | `groups` not written                                     | the sidecar's, else `kb ingest --groups`, else `ingest.default_groups` |
//! | a text or HTML file that starts with `---` YAML naming `groups` (or an access-like key) | fails: kb reads front matter in Markdown only |
//!
//! A `---` further down (a Markdown rule), or a `---` after blank lines followed by ordinary
//! text, is body text.
//!
//! Every problem is a [`LoadError`] whose message says what to do; nothing here panics on bad
//! input (third-party parsers run under `catch_unwind` as a last resort), and a file either
//! loads whole or not at all. Work is bounded by [`LoadLimits`]: the file size, and how much a
//! compressed container (DOCX zip parts, PDF streams) may expand.

#[path = "formats/mod.rs"]
mod formats;

use chrono::NaiveDate;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// How the text of a loaded document is split: as Markdown (with `#` headings) or plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentFormat {
    Markdown,
    Text,
}

impl DocumentFormat {
    /// The text format a file of this name is read into, or `None` if kb does not read that
    /// kind of file (see [`SourceFormat::from_path`]).
    pub fn from_path(path: &Path) -> Option<Self> {
        SourceFormat::from_path(path).map(SourceFormat::text_format)
    }
}

/// What kind of file a document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Markdown,
    Text,
    Html,
    Pdf,
    Docx,
}

impl SourceFormat {
    /// Every format kb reads.
    pub const ALL: [Self; 5] = [
        Self::Markdown,
        Self::Text,
        Self::Html,
        Self::Pdf,
        Self::Docx,
    ];

    /// The format for a file name (by extension, any case), or `None` if kb does not read that
    /// kind of file. Legacy `.doc` files are not read: save them as `.docx`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "md" | "markdown" | "mdown" => Some(Self::Markdown),
            "txt" | "text" => Some(Self::Text),
            "html" | "htm" => Some(Self::Html),
            "pdf" => Some(Self::Pdf),
            "docx" => Some(Self::Docx),
            _ => None,
        }
    }

    /// How the text read from this format is split.
    pub fn text_format(self) -> DocumentFormat {
        match self {
            Self::Text => DocumentFormat::Text,
            Self::Markdown | Self::Html | Self::Pdf | Self::Docx => DocumentFormat::Markdown,
        }
    }
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Markdown => "Markdown",
            Self::Text => "text",
            Self::Html => "HTML",
            Self::Pdf => "PDF",
            Self::Docx => "DOCX",
        })
    }
}

/// Bounds on the work of loading one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    /// Files larger than this are refused before they are read (`ingest.max_file_bytes`).
    pub max_file_bytes: u64,
    /// How many bytes a compressed container may expand to: the zip parts of a DOCX together,
    /// each stream of a PDF, and the text taken from a PDF.
    pub max_expanded_bytes: u64,
}

impl LoadLimits {
    /// How many times the file size a container may expand to, by default.
    pub const EXPANSION_FACTOR: u64 = 10;
    /// The most any container may expand to, whatever the file size limit.
    pub const MAX_EXPANDED_BYTES: u64 = 256 * 1024 * 1024;

    /// Limits for a file size cap: containers may expand [`Self::EXPANSION_FACTOR`] times
    /// that, up to [`Self::MAX_EXPANDED_BYTES`].
    pub fn for_max_file_bytes(max_file_bytes: u64) -> Self {
        Self {
            max_file_bytes,
            max_expanded_bytes: max_file_bytes
                .saturating_mul(Self::EXPANSION_FACTOR)
                .min(Self::MAX_EXPANDED_BYTES),
        }
    }
}

impl Default for LoadLimits {
    /// The limits for kb's default `ingest.max_file_bytes` (20 MiB): 200 MiB expanded.
    fn default() -> Self {
        Self::for_max_file_bytes(20 * 1024 * 1024)
    }
}

/// A document's own metadata: YAML front matter at the top of a Markdown file, completed by a
/// `<file>.meta.yaml` sidecar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrontMatter {
    pub title: Option<String>,
    pub owner: Option<String>,
    /// Validated: a front matter or sidecar date that is not `YYYY-MM-DD` fails the file.
    pub effective_date: Option<NaiveDate>,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
}

impl FrontMatter {
    /// These fields, each completed from `other` where this one has nothing.
    fn or(self, other: FrontMatter) -> FrontMatter {
        let pick = |mine: Vec<String>, theirs: Vec<String>| {
            if mine.is_empty() { theirs } else { mine }
        };
        FrontMatter {
            title: self.title.or(other.title),
            owner: self.owner.or(other.owner),
            effective_date: self.effective_date.or(other.effective_date),
            tags: pick(self.tags, other.tags),
            groups: pick(self.groups, other.groups),
        }
    }
}

/// The fields as written. Scalars are read as text whatever YAML thinks they are
/// (`tags: [holidays, 2026]`); `tags` and `groups` keep whether and how they were written, so
/// that `groups: []` and `groups: "hr, finance"` can be refused.
#[derive(Debug, Default, Deserialize)]
struct RawFrontMatter {
    #[serde(default, deserialize_with = "scalar::option")]
    title: Option<String>,
    #[serde(default, deserialize_with = "scalar::option")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "scalar::option")]
    effective_date: Option<String>,
    #[serde(default, deserialize_with = "scalar::list")]
    tags: Option<scalar::List>,
    #[serde(default, deserialize_with = "scalar::list")]
    groups: Option<scalar::List>,
}

/// The fields kb reads from front matter and sidecars.
const METADATA_FIELDS: [&str; 5] = ["title", "owner", "effective_date", "tags", "groups"];

/// Front matter keys that static-site and documentation tools write and kb ignores. Front
/// matter only: a sidecar is written for kb, so anything more in it is a typo. None of them
/// looks like an access field (a test checks), and any other key fails the file.
pub const IGNORED_FRONT_MATTER_KEYS: [&str; 20] = [
    "aliases",
    "author",
    "authors",
    "categories",
    "date",
    "description",
    "draft",
    "keywords",
    "lang",
    "language",
    "lastmod",
    "layout",
    "permalink",
    "sidebar_label",
    "sidebar_position",
    "slug",
    "summary",
    "toc",
    "type",
    "weight",
];

/// Parts of a key (lowercase, letters and digits only) that say its author meant to restrict
/// who may read the document: such a key is answered with "did you mean groups?".
const ACCESS_WORDS: [&str; 24] = [
    "group",
    "grp",
    "acl",
    "access",
    "audience",
    "visib",
    "permission",
    "role",
    "reader",
    "member",
    "allow",
    "deny",
    "restrict",
    "private",
    "public",
    "confidential",
    "secret",
    "classif",
    "sensitiv",
    "share",
    "hidden",
    "protect",
    "secur",
    "team",
];

/// Sidecars are a few lines; anything much larger is not one.
const MAX_SIDECAR_BYTES: u64 = 64 * 1024;

/// The UTF-8 byte-order mark, as a character (some editors write it, some write it twice).
const BOM: char = '\u{feff}';

/// Where a document's metadata was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetadataSource {
    FrontMatter,
    Sidecar,
}

/// The metadata in a parsed YAML document: nothing, or a mapping of known keys.
fn metadata_from_yaml(
    pod: &gray_matter::Pod,
    source: MetadataSource,
) -> Result<FrontMatter, String> {
    match pod {
        gray_matter::Pod::Null => Ok(FrontMatter::default()),
        gray_matter::Pod::Hash(fields) => {
            check_keys(fields.keys().map(String::as_str), source)?;
            pod.deserialize::<RawFrontMatter>()
                .map_err(|e| format!("not valid metadata: {e}"))?
                .validate()
        }
        _ => Err("not a YAML mapping of metadata fields".into()),
    }
}

/// Refuse keys kb does not read (front matter may also have [`IGNORED_FRONT_MATTER_KEYS`]):
/// a misspelt `groups` must never leave a document readable by everyone.
fn check_keys<'a>(
    keys: impl Iterator<Item = &'a str>,
    source: MetadataSource,
) -> Result<(), String> {
    let ignored: &[&str] = match source {
        MetadataSource::FrontMatter => &IGNORED_FRONT_MATTER_KEYS,
        MetadataSource::Sidecar => &[],
    };
    let mut unknown: Vec<&str> = keys
        .filter(|k| !METADATA_FIELDS.contains(k) && !ignored.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    let access = unknown.iter().any(|k| looks_like_an_access_field(k));
    let unknown = unknown.join(", ");
    let fields = METADATA_FIELDS.join(", ");
    let has = match source {
        MetadataSource::FrontMatter => "kb reads",
        MetadataSource::Sidecar => "a sidecar has",
    };
    if access {
        return Err(format!(
            "unknown field(s) {unknown}; did you mean groups? only groups sets who may read a document ({has} {fields})"
        ));
    }
    Err(match source {
        MetadataSource::FrontMatter => format!(
            "unknown field(s) {unknown} (kb reads {fields} and ignores {}); remove or rename them",
            IGNORED_FRONT_MATTER_KEYS.join(", ")
        ),
        MetadataSource::Sidecar => format!("unknown field(s) {unknown} ({has} {fields})"),
    })
}

/// Whether a key other than `groups` reads like an attempt to set access: `group`, `Groups`,
/// `acl`, `audience`, `allowed_groups`, `gruops`, …
fn looks_like_an_access_field(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    ACCESS_WORDS.iter().any(|word| key.contains(word)) || edit_distance(&key, "groups") <= 2
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

impl RawFrontMatter {
    /// Check the fields; the error says which one is wrong and how to write it.
    fn validate(self) -> Result<FrontMatter, String> {
        let effective_date = self
            .effective_date
            .map(|raw| {
                let raw = raw.trim().to_owned();
                match raw.parse::<NaiveDate>() {
                    Ok(date) if raw.len() == 10 => Ok(date),
                    _ => Err(format!(
                        "effective_date {raw:?} is not a date; write it as YYYY-MM-DD"
                    )),
                }
            })
            .transpose()?;
        Ok(FrontMatter {
            title: self.title,
            owner: self
                .owner
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty()),
            effective_date,
            tags: checked_tags(self.tags)?,
            groups: checked_groups(self.groups)?,
        })
    }
}

/// The items of a list, trimmed, blanks dropped.
fn clean(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// How `names` is written as a YAML list of names split at commas and spaces.
fn yaml_list(names: &[String]) -> String {
    let names: Vec<&str> = names
        .iter()
        .flat_map(|n| n.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|n| !n.is_empty())
        .collect();
    format!("[{}]", names.join(", "))
}

/// `groups` as written. Not written at all, it is not set here (the sidecar, `--groups` or
/// `ingest.default_groups` apply); written, it must name at least one group, one per item.
fn checked_groups(given: Option<scalar::List>) -> Result<Vec<String>, String> {
    let Some(given) = given else {
        return Ok(Vec::new());
    };
    let single = matches!(given, scalar::List::One(_));
    let groups = clean(given.into_vec());
    if groups.is_empty() {
        return Err(r#"groups is empty; name at least one group ("all" for everyone)"#.into());
    }
    if single && groups[0].contains(|c: char| c == ',' || c.is_whitespace()) {
        return Err(format!(
            "groups {:?} is one group name with a comma or space in it; write a YAML list: groups: {}",
            groups[0],
            yaml_list(&groups)
        ));
    }
    if let Some(name) = groups.iter().find(|g| g.contains(',')) {
        return Err(format!(
            "group name {name:?} has a comma in it; write one group per item: groups: {}",
            yaml_list(&groups)
        ));
    }
    Ok(groups)
}

/// `tags` as written: may be empty, but one tag with a comma in it is a list written wrong.
fn checked_tags(given: Option<scalar::List>) -> Result<Vec<String>, String> {
    let Some(given) = given else {
        return Ok(Vec::new());
    };
    let tags = clean(given.into_vec());
    if let Some(tag) = tags.iter().find(|t| t.contains(',')) {
        return Err(format!(
            "tag {tag:?} has a comma in it; write a YAML list: tags: {}",
            yaml_list(&tags)
        ));
    }
    Ok(tags)
}

/// The sidecar of a document: its path plus `.meta.yaml`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".meta.yaml");
    PathBuf::from(name)
}

/// Read a document's sidecar, if it has one.
pub fn read_sidecar(document: &Path) -> Result<Option<FrontMatter>, LoadError> {
    let path = sidecar_path(document);
    let origin = || {
        format!(
            "sidecar {}",
            path.file_name().unwrap_or_default().to_string_lossy()
        )
    };
    let bad = |message: String| LoadError::Metadata {
        origin: origin(),
        message,
    };
    let size = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("cannot read it: {e}"))),
    };
    if size > MAX_SIDECAR_BYTES {
        return Err(bad(format!(
            "{size} bytes; a sidecar holds a few metadata fields"
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    parse_sidecar(&text).map(Some).map_err(bad)
}

fn parse_sidecar(text: &str) -> Result<FrontMatter, String> {
    use gray_matter::engine::Engine;
    let text = text.trim_start_matches(BOM);
    let pod = gray_matter::engine::YAML::parse(text).map_err(|e| format!("not valid YAML: {e}"))?;
    metadata_from_yaml(&pod, MetadataSource::Sidecar)
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

    /// A list field as written: one scalar (`groups: hr`) or a list (`groups: [hr]`; a key
    /// with no value is an empty list).
    #[derive(Debug)]
    pub enum List {
        One(String),
        Many(Vec<String>),
    }

    impl List {
        pub fn into_vec(self) -> Vec<String> {
            match self {
                Self::One(s) => vec![s],
                Self::Many(v) => v,
            }
        }
    }

    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Scalar>::deserialize(d)?.map(String::from))
    }

    /// A list field that is present (serde gives `None` only when the key is missing).
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<List>, D::Error> {
        Ok(Some(match Option::<OneOrMany>::deserialize(d)? {
            None => List::Many(Vec::new()),
            Some(OneOrMany::One(s)) => List::One(s.into()),
            Some(OneOrMany::Many(v)) => List::Many(v.into_iter().map(String::from).collect()),
        }))
    }
}

/// A file read into text.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDocument {
    /// How [`Self::text`] is split.
    pub format: DocumentFormat,
    /// What kind of file it was read from.
    pub source_format: SourceFormat,
    /// The text that is chunked and cited (front matter removed; for HTML, PDF and DOCX the
    /// Markdown made from the file).
    pub text: String,
    pub title: String,
    pub front_matter: FrontMatter,
    /// The character encoding a text file (Markdown, text, HTML) was decoded from, as
    /// `encoding_rs` names it ("UTF-8", "UTF-16LE", "GBK", "windows-1252", …); `None` for PDF
    /// and DOCX.
    pub encoding: Option<&'static str>,
    /// Where [`Self::text`] starts in the source file, in bytes, when the text is the file's own
    /// bytes from there on (a UTF-8 Markdown or text file: the byte-order mark and front matter
    /// are what comes before it), so that a chunk's byte range plus this offset locates the
    /// chunk in the file. `None` when the text was decoded from another encoding or made from
    /// the file (HTML, PDF, DOCX): byte ranges then index the text itself.
    pub source_offset: Option<usize>,
    /// Size of the source file in bytes.
    pub size_bytes: u64,
    /// sha256 of the source bytes.
    pub content_hash: String,
}

/// Why a file was skipped. Messages are lowercase and say what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "unsupported file type (kb reads .md, .markdown, .txt, .text, .html, .htm, .pdf and .docx)"
    )]
    Unsupported,
    #[error("file is empty")]
    Empty,
    #[error("file is {size} bytes, over the {limit}-byte limit (ingest.max_file_bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("looks like a binary file, not text")]
    Binary,
    #[error("not UTF-8 and the encoding could not be determined; save it as UTF-8")]
    UnknownEncoding,
    #[error(
        "not valid {encoding} text (bad bytes at byte {offset}); fix the file or save it again as UTF-8"
    )]
    InvalidEncoding {
        encoding: &'static str,
        offset: usize,
    },
    #[error("front matter is not valid YAML: {0}")]
    FrontMatter(String),
    #[error("front matter opened with --- on line 1 is never closed; add a line with --- after it")]
    UnclosedFrontMatter,
    #[error(
        "front matter must start on the first line; remove the blank lines or spaces before the --- on line {line}"
    )]
    MisplacedFrontMatter { line: usize },
    #[error("front matter in TOML (+++) is not read; write it in YAML between --- lines")]
    TomlFrontMatter,
    #[error(
        "{format} files have no front matter, so these groups would be ignored; put the fields in a sidecar (the file name plus .meta.yaml) or save the file as .md"
    )]
    FrontMatterNotRead { format: SourceFormat },
    #[error("{origin}: {message}")]
    Metadata { origin: String, message: String },
    #[error("no text left after removing markup")]
    NoText,
    #[error("PDF has no text layer (scanned?); run it through OCR first")]
    NoTextLayer,
    #[error("{format} is encrypted; remove the password and ingest again")]
    Encrypted { format: SourceFormat },
    #[error("{format} file is corrupt or unreadable: {detail}")]
    Corrupt {
        format: SourceFormat,
        detail: String,
    },
    #[error(
        "{format} expands to more than {limit} bytes; refusing (zip bomb?); if the file is genuine, raise ingest.max_file_bytes"
    )]
    ExpandsTooMuch { format: SourceFormat, limit: u64 },
    #[error("the {format} reader crashed on this file (a bug; please report it with the file)")]
    ReaderCrashed { format: SourceFormat },
}

/// Read and parse one file, refusing files over `max_bytes` before reading them. Never panics
/// on bad input; every problem is a [`LoadError`].
pub fn load_file(path: &Path, max_bytes: u64) -> Result<LoadedDocument, LoadError> {
    load_file_with_limits(path, &LoadLimits::for_max_file_bytes(max_bytes))
}

/// [`load_file`] with explicit limits.
pub fn load_file_with_limits(
    path: &Path,
    limits: &LoadLimits,
) -> Result<LoadedDocument, LoadError> {
    let format = SourceFormat::from_path(path).ok_or(LoadError::Unsupported)?;
    let size = std::fs::metadata(path)?.len();
    if size > limits.max_file_bytes {
        return Err(LoadError::TooLarge {
            size,
            limit: limits.max_file_bytes,
        });
    }
    let sidecar = read_sidecar(path)?;
    let bytes = std::fs::read(path)?;
    let mut doc = parse_bytes_with_limits(path, format, &bytes, limits)?;
    if let Some(sidecar) = sidecar {
        if doc.front_matter.title.is_none()
            && let Some(title) = sidecar.title.as_deref().map(str::trim)
            && !title.is_empty()
        {
            doc.title = title.to_owned();
        }
        doc.front_matter = std::mem::take(&mut doc.front_matter).or(sidecar);
    }
    Ok(doc)
}

/// Parse the bytes of a file whose format is known, with the default [`LoadLimits`]. `path`
/// only names the document (its stem is the title of last resort).
pub fn parse_bytes(
    path: &Path,
    format: SourceFormat,
    bytes: &[u8],
) -> Result<LoadedDocument, LoadError> {
    parse_bytes_with_limits(path, format, bytes, &LoadLimits::default())
}

/// [`parse_bytes`] with explicit limits.
pub fn parse_bytes_with_limits(
    path: &Path,
    format: SourceFormat,
    bytes: &[u8],
    limits: &LoadLimits,
) -> Result<LoadedDocument, LoadError> {
    let size = bytes.len() as u64;
    if size > limits.max_file_bytes {
        return Err(LoadError::TooLarge {
            size,
            limit: limits.max_file_bytes,
        });
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(LoadError::Empty);
    }
    // The readers return errors for bad input; this only turns a bug (ours or a parser's)
    // into a skipped file instead of a crashed ingest.
    let extracted = std::panic::catch_unwind(|| extract(format, bytes, limits))
        .unwrap_or(Err(LoadError::ReaderCrashed { format }))?;
    let text = extracted.text.trim_end().to_owned();
    // The text is a verbatim tail of the file (up to trailing whitespace) only when it was
    // read as UTF-8 and not converted; then its offset in the file is what precedes it.
    let source_offset = (matches!(format, SourceFormat::Markdown | SourceFormat::Text)
        && extracted.encoding == Some(encoding_rs::UTF_8.name())
        && bytes.ends_with(extracted.text.as_bytes()))
    .then(|| bytes.len() - extracted.text.len());
    if text.trim().is_empty() {
        return Err(if extracted.decoded_empty {
            LoadError::Empty
        } else {
            LoadError::NoText
        });
    }
    let text_format = format.text_format();
    let front_matter = extracted.front_matter;
    let title = front_matter
        .title
        .clone()
        .or(extracted.title)
        .filter(|t| !t.trim().is_empty())
        // A PDF's first heading is "Page 1": its file name says more.
        .or_else(|| (format != SourceFormat::Pdf).then(|| first_heading(&text, text_format))?)
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().replace(['-', '_'], " "))
                .unwrap_or_default()
        });
    Ok(LoadedDocument {
        format: text_format,
        source_format: format,
        text,
        title: title.trim().to_owned(),
        front_matter,
        encoding: extracted.encoding,
        source_offset,
        size_bytes: size,
        content_hash: kb_core::content_hash(bytes),
    })
}

/// What a format's reader made of the bytes.
struct Extracted {
    text: String,
    title: Option<String>,
    front_matter: FrontMatter,
    encoding: Option<&'static str>,
    /// The file decoded to nothing but whitespace (e.g. a UTF-16 byte-order mark alone).
    decoded_empty: bool,
}

fn extract(
    format: SourceFormat,
    bytes: &[u8],
    limits: &LoadLimits,
) -> Result<Extracted, LoadError> {
    let mut out = Extracted {
        text: String::new(),
        title: None,
        front_matter: FrontMatter::default(),
        encoding: None,
        decoded_empty: false,
    };
    match format {
        SourceFormat::Markdown | SourceFormat::Text | SourceFormat::Html => {
            let declared = match format {
                SourceFormat::Html => formats::text::html_declared_charset(bytes),
                _ => None,
            };
            let decoded = formats::text::decode(bytes, declared)?;
            out.encoding = Some(decoded.encoding.name());
            out.decoded_empty = decoded.text.trim().is_empty();
            match format {
                SourceFormat::Markdown => {
                    (out.front_matter, out.text) = split_front_matter(&decoded.text)?;
                }
                SourceFormat::Html => {
                    check_no_access_front_matter(&decoded.text, format)?;
                    let page = formats::html::to_markdown(&decoded.text)?;
                    (out.title, out.text) = (page.title, page.markdown);
                }
                _ => {
                    check_no_access_front_matter(&decoded.text, format)?;
                    out.text = decoded.text.trim_start_matches(BOM).to_owned();
                }
            }
        }
        SourceFormat::Pdf => {
            let pdf = formats::pdf::to_markdown(bytes, limits)?;
            (out.title, out.text) = (pdf.title, pdf.markdown);
        }
        SourceFormat::Docx => {
            let docx = formats::docx::to_markdown(bytes, limits)?;
            (out.title, out.text) = (docx.title, docx.markdown);
        }
    }
    Ok(out)
}

/// Separate YAML front matter from the body of a Markdown file.
///
/// Front matter is a `---` first line, YAML, and a `---` line that closes it. What looks like
/// an attempt at front matter but would not be read as one fails the file rather than being
/// indexed as text under the default groups: an opening `---` that is never closed, metadata
/// between `---` lines below blank lines or indented, TOML (`+++`) front matter. Byte-order
/// marks before the first line are dropped.
fn split_front_matter(raw: &str) -> Result<(FrontMatter, String), LoadError> {
    use gray_matter::engine::Engine;
    let raw = raw.trim_start_matches(BOM);
    let lines: Vec<&str> = raw.lines().collect();
    match lines.first().map(|l| l.trim_end()) {
        Some("---") => {}
        Some("+++") => return Err(LoadError::TomlFrontMatter),
        _ => {
            if let Some(line) = misplaced_front_matter(&lines) {
                return Err(LoadError::MisplacedFrontMatter { line });
            }
            return Ok((FrontMatter::default(), raw.to_owned()));
        }
    }
    let close = 1 + lines[1..]
        .iter()
        .position(|l| l.trim_end() == "---")
        .ok_or(LoadError::UnclosedFrontMatter)?;
    let yaml = lines[1..close].join("\n");
    let pod = gray_matter::engine::YAML::parse(&yaml)
        .map_err(|e| LoadError::FrontMatter(e.to_string()))?;
    let front = metadata_from_yaml(&pod, MetadataSource::FrontMatter).map_err(|message| {
        LoadError::Metadata {
            origin: "front matter".into(),
            message,
        }
    })?;
    // The body is the file's own text after the closing line (not re-joined lines), so byte
    // ranges in it stay byte ranges in the file.
    let body_start: usize = raw
        .split_inclusive('\n')
        .take(close + 1)
        .map(str::len)
        .sum();
    let body = raw[body_start..].trim_start_matches(['\n', '\r']);
    Ok((front, body.to_owned()))
}

/// The line number of a `---` that opens metadata but not at the start of the file: a
/// [`leading_yaml_block`] with a metadata key (or a key that looks like an access field) in it.
/// A `---` rule in ordinary Markdown is followed by text.
fn misplaced_front_matter(lines: &[&str]) -> Option<usize> {
    let (line, keys) = leading_yaml_block(lines)?;
    keys.iter()
        .any(|k| {
            METADATA_FIELDS.contains(k)
                || IGNORED_FRONT_MATTER_KEYS.contains(k)
                || looks_like_an_access_field(k)
        })
        .then_some(line)
}

/// The first thing in a text (after blank lines) if it is a `---` line followed by lines that
/// all look like YAML, up to a closing `---` (or, if there is none, a blank line): the line
/// number of that `---` and the top-level keys below it.
fn leading_yaml_block<'a>(lines: &[&'a str]) -> Option<(usize, Vec<&'a str>)> {
    let open = lines.iter().position(|l| !l.trim().is_empty())?;
    if lines[open].trim() != "---" {
        return None;
    }
    let after = &lines[open + 1..];
    let end = after
        .iter()
        .position(|l| l.trim() == "---")
        .or_else(|| after.iter().position(|l| l.trim().is_empty()))
        .unwrap_or(after.len());
    let block = &after[..end];
    block
        .iter()
        .all(|l| looks_like_yaml(l))
        .then(|| (open + 1, block.iter().filter_map(|l| yaml_key(l)).collect()))
}

/// Refuse a text or HTML file that starts with front matter setting access: kb reads front
/// matter in Markdown only, so its `groups` would be ignored and its YAML indexed as text.
fn check_no_access_front_matter(text: &str, format: SourceFormat) -> Result<(), LoadError> {
    let lines: Vec<&str> = text.trim_start_matches(BOM).lines().collect();
    match leading_yaml_block(&lines) {
        Some((_, keys))
            if keys
                .iter()
                .any(|k| *k == "groups" || looks_like_an_access_field(k)) =>
        {
            Err(LoadError::FrontMatterNotRead { format })
        }
        _ => Ok(()),
    }
}

/// A line that could be part of a YAML mapping: blank, a comment, a list item, indented, or
/// `key: value`.
fn looks_like_yaml(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty()
        || trimmed.starts_with('#')
        || trimmed == "-"
        || trimmed.starts_with("- ")
        || line.starts_with([' ', '\t'])
        || yaml_key(line).is_some()
}

/// The key of a top-level `key: value` line (quotes removed).
fn yaml_key(line: &str) -> Option<&str> {
    let (key, rest) = line.split_once(':')?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let key = key.trim_end().trim_matches(['"', '\'']);
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-'))
    .then_some(key)
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
            SourceFormat::Markdown,
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
    fn the_text_of_a_utf8_markdown_or_text_file_says_where_it_starts_in_the_file() {
        let cases: &[(SourceFormat, &str, &str)] = &[
            (SourceFormat::Markdown, "# Leave\n\nBody.\n", "# Leave"),
            (
                SourceFormat::Markdown,
                "\u{feff}---\ntitle: Leave\n---\n\n# Leave\n\nBody.\n",
                "# Leave",
            ),
            (
                SourceFormat::Markdown,
                "---\r\ngroups: [hr]\r\n---\r\n\r\n# Leave\r\n\r\nBody.\r\n",
                "# Leave",
            ),
            (
                SourceFormat::Text,
                "\u{feff}\u{feff}Plain text.\n",
                "Plain text.",
            ),
        ];
        for (format, file, first) in cases {
            let doc = parse_bytes(Path::new("doc"), *format, file.as_bytes()).unwrap();
            let offset = doc.source_offset.expect("a UTF-8 file's text is its own");
            assert!(doc.text.starts_with(first), "{file:?}: {:?}", doc.text);
            assert_eq!(
                &file.as_bytes()[offset..offset + doc.text.len()],
                doc.text.as_bytes(),
                "{file:?}"
            );
        }
    }

    #[test]
    fn converted_or_re_encoded_text_has_no_offset_in_the_file() {
        let (gbk, _, _) = encoding_rs::GBK.encode("年假规定：新员工每年十五天年假。\n");
        let html = b"<html><body><h1>Leave</h1><p>Body.</p></body></html>";
        for (format, bytes) in [
            (SourceFormat::Text, &gbk[..]),
            (SourceFormat::Html, &html[..]),
        ] {
            let doc = parse_bytes(Path::new("doc"), format, bytes).unwrap();
            assert_eq!(doc.source_offset, None, "{format}");
        }
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
    fn an_effective_date_that_is_not_an_iso_date_fails_the_file() {
        let ok = md("---\neffective_date: 2026-03-01\n---\nBody.\n").unwrap();
        assert_eq!(
            ok.front_matter.effective_date,
            NaiveDate::from_ymd_opt(2026, 3, 1)
        );

        for bad in ["2026-13-01", "01/03/2026", "2026-3-1", "soon"] {
            let err = md(&format!("---\neffective_date: {bad}\n---\nBody.\n")).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "front matter: effective_date {bad:?} is not a date; write it as YYYY-MM-DD"
                )
            );
        }
    }

    #[test]
    fn a_sidecar_gives_any_format_its_metadata_and_front_matter_wins_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("handbook.txt");
        std::fs::write(&txt, "Plain handbook text.\n").unwrap();
        std::fs::write(
            sidecar_path(&txt),
            "title: Staff Handbook\nowner: People Team\neffective_date: 2026-02-01\ntags: [handbook]\ngroups: [hr, finance]\n",
        )
        .unwrap();
        let md_path = dir.path().join("leave.md");
        std::fs::write(&md_path, "---\ntitle: Leave\ngroups: [hr]\n---\nBody.\n").unwrap();
        std::fs::write(
            sidecar_path(&md_path),
            "title: Ignored\ntags: leave\ngroups: [all]\n",
        )
        .unwrap();

        let txt = load_file(&txt, 1 << 20).unwrap();
        let md = load_file(&md_path, 1 << 20).unwrap();

        assert_eq!(txt.title, "Staff Handbook");
        assert_eq!(txt.front_matter.owner.as_deref(), Some("People Team"));
        assert_eq!(
            txt.front_matter.effective_date,
            NaiveDate::from_ymd_opt(2026, 2, 1)
        );
        assert_eq!(txt.front_matter.groups, ["hr", "finance"]);
        assert_eq!(md.title, "Leave");
        assert_eq!(md.front_matter.groups, ["hr"]);
        assert_eq!(
            md.front_matter.tags,
            ["leave"],
            "completed from the sidecar"
        );
    }

    #[test]
    fn a_sidecar_with_an_unknown_field_or_a_bad_date_fails_its_document() {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("a.txt");
        std::fs::write(&doc, "text\n").unwrap();

        std::fs::write(sidecar_path(&doc), "group: hr\n").unwrap();
        let typo = load_file(&doc, 1 << 20).unwrap_err().to_string();
        std::fs::write(sidecar_path(&doc), "effective_date: 2026-02-30\n").unwrap();
        let date = load_file(&doc, 1 << 20).unwrap_err().to_string();
        std::fs::write(sidecar_path(&doc), "- a list\n").unwrap();
        let list = load_file(&doc, 1 << 20).unwrap_err().to_string();

        assert!(
            typo.starts_with("sidecar a.txt.meta.yaml: unknown field(s) group"),
            "{typo}"
        );
        assert!(date.contains("\"2026-02-30\" is not a date"), "{date}");
        assert!(list.contains("not a YAML mapping"), "{list}");
    }

    fn failure(text: &str) -> String {
        md(text)
            .expect_err("the file must fail, not be ingested under the default groups")
            .to_string()
    }

    #[test]
    fn an_unknown_front_matter_key_fails_naming_it_and_the_keys_kb_reads() {
        let err = failure("---\ntitle: Leave\nreviewer: Sam\nstatus: final\n---\nBody.\n");

        assert!(
            err.starts_with(
                "front matter: unknown field(s) reviewer, status (kb reads title, owner, effective_date, tags, groups and ignores aliases, author,"
            ),
            "{err}"
        );
        assert!(!err.contains("did you mean"), "{err}");
    }

    #[test]
    fn a_key_that_looks_like_an_access_field_fails_asking_did_you_mean_groups() {
        for key in [
            "group",
            "Groups",
            "GROUPS",
            "Group",
            "acl",
            "ACL",
            "access",
            "audience",
            "visibility",
            "permissions",
            "roles",
            "readers",
            "allowed_groups",
            "allowed-groups",
            "allowedGroups",
            "gruops",
            "grups",
            "groupss",
            "private",
            "confidential",
        ] {
            let err = failure(&format!("---\n{key}: [finance]\n---\nSalary bands.\n"));

            assert_eq!(
                err,
                format!(
                    "front matter: unknown field(s) {key}; did you mean groups? only groups sets who may read a document (kb reads title, owner, effective_date, tags, groups)"
                ),
                "{key}"
            );
        }
    }

    #[test]
    fn keys_that_site_generators_write_are_ignored_and_groups_still_apply() {
        let ignored: String = IGNORED_FRONT_MATTER_KEYS
            .iter()
            .map(|k| format!("{k}: something\n"))
            .collect();

        let doc = md(&format!(
            "---\ntitle: Salaries\n{ignored}groups: [finance]\n---\n# Salaries\n"
        ))
        .unwrap();

        assert_eq!(doc.front_matter.groups, ["finance"]);
        assert_eq!(doc.text, "# Salaries");
    }

    #[test]
    fn no_ignored_key_looks_like_an_access_field() {
        for key in IGNORED_FRONT_MATTER_KEYS {
            assert!(!looks_like_an_access_field(key), "{key}");
        }
        for key in METADATA_FIELDS.iter().filter(|k| **k != "groups") {
            assert!(!looks_like_an_access_field(key), "{key}");
        }
    }

    #[test]
    fn a_sidecar_rejects_the_keys_front_matter_ignores_and_asks_about_access_fields() {
        let ignored = parse_sidecar("author: Sam\n").unwrap_err();
        let access = parse_sidecar("audience: [finance]\n").unwrap_err();

        assert_eq!(
            ignored,
            "unknown field(s) author (a sidecar has title, owner, effective_date, tags, groups)"
        );
        assert_eq!(
            access,
            "unknown field(s) audience; did you mean groups? only groups sets who may read a document (a sidecar has title, owner, effective_date, tags, groups)"
        );
    }

    #[test]
    fn front_matter_that_is_never_closed_fails_the_file() {
        for text in [
            "---\ntitle: Salaries\ngroups: [finance]\n\n# Salaries\n\nBands.\n",
            "---\r\ngroups: [finance]\r\n# Salaries\r\n",
            "---\ngroups: [finance]\n----\nBands.\n",
            "---\n",
        ] {
            let err = md(text).unwrap_err();

            assert!(
                matches!(err, LoadError::UnclosedFrontMatter),
                "{text:?}: {err}"
            );
            assert_eq!(
                err.to_string(),
                "front matter opened with --- on line 1 is never closed; add a line with --- after it"
            );
        }
    }

    #[test]
    fn a_byte_order_mark_before_the_front_matter_is_dropped_and_its_groups_apply() {
        let bom = b"\xef\xbb\xbf";
        let text = b"---\ntitle: Salaries\ngroups: [finance]\n---\n# Salaries\n";
        for bytes in [[&bom[..], text].concat(), [&bom[..], bom, text].concat()] {
            let doc =
                parse_bytes(Path::new("salaries.md"), SourceFormat::Markdown, &bytes).unwrap();

            assert_eq!(doc.front_matter.groups, ["finance"]);
            assert_eq!(doc.title, "Salaries");
            assert_eq!(doc.text, "# Salaries");
        }
    }

    #[test]
    fn front_matter_below_blank_lines_or_indented_fails_the_file() {
        for (text, line) in [
            ("\n---\ngroups: [finance]\n---\nBands.\n", 2),
            (
                "  \n\t\n---\ntitle: Salaries\ngroups:\n  - finance\n---\nBands.\n",
                3,
            ),
            ("\r\n---\r\ngroups: [finance]\r\n---\r\nBands.\r\n", 2),
            ("  ---\ngroups: [finance]\n---\nBands.\n", 1),
            ("\n---\ngroup: finance\n---\nBands.\n", 2),
            // never closed either
            ("\n---\ngroups: [finance]\n\n# Salaries\n", 2),
        ] {
            let err = md(text).unwrap_err();

            assert_eq!(
                err.to_string(),
                format!(
                    "front matter must start on the first line; remove the blank lines or spaces before the --- on line {line}"
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn markdown_with_rules_and_no_front_matter_loads_as_it_is() {
        for text in [
            "# Leave\n\nIntro.\n\n---\n\ntitle: not metadata here\n\n---\n\nMore.\n",
            "\n---\n\nA page that opens with a rule.\n\n---\n\nEnd.\n",
            "\n---\nNote: read this first.\n---\n\nBody.\n",
            "\n---\n# Leave\n\nThe first line after the rule is a heading.\n",
        ] {
            let doc = md(text).unwrap();

            assert_eq!(doc.text, text.trim_end(), "{text:?}");
            assert_eq!(doc.front_matter, FrontMatter::default());
        }
    }

    #[test]
    fn toml_front_matter_fails_the_file() {
        let err =
            md("+++\ntitle = \"Salaries\"\ngroups = [\"finance\"]\n+++\nBands.\n").unwrap_err();

        assert_eq!(
            err.to_string(),
            "front matter in TOML (+++) is not read; write it in YAML between --- lines"
        );
    }

    #[test]
    fn front_matter_that_is_not_a_mapping_fails_the_file() {
        let err = failure("---\nWelcome to the handbook.\n---\nBody.\n");

        assert_eq!(err, "front matter: not a YAML mapping of metadata fields");
    }

    #[test]
    fn empty_groups_fail_in_front_matter_and_in_sidecars() {
        for groups in [
            "groups: []",
            "groups:",
            "groups: ~",
            "groups: \"\"",
            "groups: [\"\", \"  \"]",
            "groups:\n  - \"\"",
        ] {
            let front = failure(&format!("---\n{groups}\n---\nBands.\n"));
            let sidecar = parse_sidecar(&format!("{groups}\n")).unwrap_err();

            let expected = r#"groups is empty; name at least one group ("all" for everyone)"#;
            assert_eq!(front, format!("front matter: {expected}"), "{groups:?}");
            assert_eq!(sidecar, expected, "{groups:?}");
        }
    }

    #[test]
    fn one_group_string_with_commas_or_spaces_fails_with_a_hint_to_write_a_list() {
        let comma = failure("---\ngroups: \"hr, finance\"\n---\nBands.\n");
        let space = parse_sidecar("groups: hr finance\n").unwrap_err();
        let item = failure("---\ngroups: [\"hr,finance\", it]\n---\nBands.\n");

        assert_eq!(
            comma,
            r#"front matter: groups "hr, finance" is one group name with a comma or space in it; write a YAML list: groups: [hr, finance]"#
        );
        assert_eq!(
            space,
            r#"groups "hr finance" is one group name with a comma or space in it; write a YAML list: groups: [hr, finance]"#
        );
        assert_eq!(
            item,
            r#"front matter: group name "hr,finance" has a comma in it; write one group per item: groups: [hr, finance, it]"#
        );
        assert_eq!(
            md("---\ngroups: \" hr \"\n---\nBands.\n")
                .unwrap()
                .front_matter
                .groups,
            ["hr"]
        );
    }

    #[test]
    fn a_tag_with_a_comma_fails_but_empty_tags_are_fine() {
        let err = failure("---\ntags: \"leave, travel\"\n---\nBody.\n");
        let empty = md("---\ntags: []\ngroups: [hr]\n---\nBody.\n").unwrap();

        assert_eq!(
            err,
            r#"front matter: tag "leave, travel" has a comma in it; write a YAML list: tags: [leave, travel]"#
        );
        assert!(empty.front_matter.tags.is_empty());
        assert_eq!(empty.front_matter.groups, ["hr"]);
    }

    #[test]
    fn a_sidecar_saved_with_a_byte_order_mark_is_read() {
        let front = parse_sidecar("\u{feff}groups: [finance]\n").unwrap();

        assert_eq!(front.groups, ["finance"]);
    }

    #[test]
    fn a_bad_sidecar_fails_its_document_even_when_front_matter_sets_groups() {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("salaries.md");
        std::fs::write(&doc, "---\ngroups: [finance]\n---\nBands.\n").unwrap();
        std::fs::write(sidecar_path(&doc), "groups: []\n").unwrap();

        let err = load_file(&doc, 1 << 20).unwrap_err().to_string();

        assert_eq!(
            err,
            r#"sidecar salaries.md.meta.yaml: groups is empty; name at least one group ("all" for everyone)"#
        );
    }

    #[test]
    fn text_and_html_files_that_start_with_front_matter_setting_groups_fail() {
        let front = "---\ntitle: Salaries\ngroups: [finance]\n---\nSalary bands.\n";
        let acl = "\n---\nacl: finance\n---\n<p>Salary bands.</p>\n";

        let text = parse_bytes(Path::new("a.txt"), SourceFormat::Text, front.as_bytes());
        let html = parse_bytes(Path::new("a.html"), SourceFormat::Html, acl.as_bytes());

        assert_eq!(
            text.unwrap_err().to_string(),
            "text files have no front matter, so these groups would be ignored; put the fields in a sidecar (the file name plus .meta.yaml) or save the file as .md"
        );
        assert!(matches!(
            html,
            Err(LoadError::FrontMatterNotRead {
                format: SourceFormat::Html
            })
        ));
    }

    #[test]
    fn text_and_html_files_with_rules_or_other_yaml_load() {
        for text in [
            "Intro.\n---\ngroups: [finance]\n---\n",
            "---\ntitle: Notes\n---\nNotes.\n",
            "---\nA rule, then text.\n",
        ] {
            let doc = parse_bytes(Path::new("a.txt"), SourceFormat::Text, text.as_bytes()).unwrap();

            assert_eq!(doc.text, text.trim_end());
        }
        let jekyll = "---\nlayout: default\n---\n<p>Welcome.</p>\n";
        let page = parse_bytes(Path::new("a.html"), SourceFormat::Html, jekyll.as_bytes());
        assert!(page.is_ok(), "{page:?}");
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
    fn empty_and_binary_files_are_rejected_with_reasons() {
        assert!(matches!(md("  \n"), Err(LoadError::Empty)));
        assert!(matches!(
            parse_bytes(Path::new("a.txt"), SourceFormat::Text, b"ab\0cd"),
            Err(LoadError::Binary)
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
    fn damaged_utf8_is_refused_with_the_offset_of_the_bad_bytes() {
        let text = "# Überstunden – Zuschläge für Nächte gelten in Köln, München und Düsseldorf\n";
        let bytes = [text.as_bytes(), b"\xff"].concat();

        let err = parse_bytes(Path::new("a.md"), SourceFormat::Markdown, &bytes).unwrap_err();

        assert_eq!(
            err.to_string(),
            format!(
                "not valid UTF-8 text (bad bytes at byte {}); fix the file or save it again as UTF-8",
                text.len()
            )
        );
    }

    #[test]
    fn files_over_the_size_cap_are_refused_before_parsing() {
        let limits = LoadLimits::for_max_file_bytes(4);

        let err =
            parse_bytes_with_limits(Path::new("a.txt"), SourceFormat::Text, b"12345", &limits)
                .unwrap_err();

        assert!(matches!(err, LoadError::TooLarge { size: 5, limit: 4 }));
    }

    #[test]
    fn every_format_has_an_extension_and_a_text_format() {
        for format in SourceFormat::ALL {
            let name = format!("x.{}", format.to_string().to_lowercase());
            let name = name
                .replace("x.markdown", "x.md")
                .replace("x.text", "x.txt");
            assert_eq!(SourceFormat::from_path(Path::new(&name)), Some(format));
        }
        assert_eq!(
            DocumentFormat::from_path(Path::new("a.PDF")),
            Some(DocumentFormat::Markdown)
        );
        assert_eq!(SourceFormat::from_path(Path::new("old.doc")), None);
    }

    /// The real files in tests/fixtures (made by tests/fixtures/make_fixtures.py).
    mod fixtures {
        use super::super::*;
        use std::path::PathBuf;

        fn fixture(name: &str) -> PathBuf {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures")
                .join(name)
        }

        fn load(name: &str) -> Result<LoadedDocument, LoadError> {
            load_file(&fixture(name), 20 * 1024 * 1024)
        }

        const FIXTURES: &[&str] = &[
            "travel-policy.pdf",
            "scanned-memo.pdf",
            "encrypted.pdf",
            "owner-locked.pdf",
            "truncated.pdf",
            "expense-policy.docx",
            "encrypted.docx",
            "zip-bomb.docx",
            "zip-bomb-lying-size.docx",
            "intranet-page.html",
            "legacy-page-windows-1252.html",
            "commute-allowance-gbk.txt",
            "utf16le-bom.txt",
            "utf16be-bom.md",
            "cafe-menu-windows-1252.txt",
            "empty.txt",
            "image-named.txt",
        ];

        fn headings(text: &str) -> Vec<&str> {
            text.lines().filter(|l| l.starts_with('#')).collect()
        }

        #[test]
        fn pdf_text_layer_has_one_heading_per_page() {
            let doc = load("travel-policy.pdf").unwrap();

            assert_eq!(doc.source_format, SourceFormat::Pdf);
            assert_eq!(doc.format, DocumentFormat::Markdown);
            assert_eq!(doc.title, "Travel Policy");
            assert_eq!(doc.encoding, None);
            assert_eq!(headings(&doc.text), ["# Page 1", "# Page 2", "# Page 3"]);
            let page2 =
                &doc.text[doc.text.find("# Page 2").unwrap()..doc.text.find("# Page 3").unwrap()];
            assert!(page2.contains("Trips longer than five days need approval from a director."));
            // Embedded TrueType subset: text comes through its ToUnicode map.
            assert!(
                page2.contains("Café receipts under 20 € need no itemised bill."),
                "{page2}"
            );
            // A line of text that starts with '#' is not a heading.
            assert!(page2.contains("\\# of nights over the cap"), "{page2}");
        }

        /// Counts whitespace-separated words as tokens.
        #[derive(Debug)]
        struct WordCounter;

        #[async_trait::async_trait]
        impl kb_core::Embedder for WordCounter {
            async fn embed(
                &self,
                _: &[String],
                _: kb_core::InputKind,
            ) -> Result<Vec<kb_core::Embedding>, kb_core::ModelError> {
                unreachable!("splitting never embeds")
            }
            fn dimensions(&self) -> usize {
                4
            }
            fn max_input_tokens(&self) -> usize {
                64
            }
            fn model_id(&self) -> String {
                "words".into()
            }
            fn count_tokens(&self, text: &str) -> usize {
                text.split_whitespace().count()
            }
        }

        #[test]
        fn every_pdf_chunk_carries_the_page_it_starts_on() {
            let doc = load("travel-policy.pdf").unwrap();
            let splitter = crate::ChunkSplitter::new(
                std::sync::Arc::new(WordCounter),
                crate::SplitOptions {
                    chunk_tokens: 16,
                    overlap_tokens: 0,
                },
            )
            .unwrap();

            let chunks = splitter.split(&doc.text, doc.format, &doc.title);

            assert!(chunks.len() >= 3);
            for c in &chunks {
                let page = c.chunk.heading_path.last().map(String::as_str);
                assert!(
                    page.is_some_and(|p| p.starts_with("Page ")),
                    "{:?}",
                    c.chunk
                );
            }
            let approval = chunks
                .iter()
                .find(|c| c.chunk.text.contains("approval from a director"))
                .unwrap();
            assert_eq!(approval.chunk.heading_path, ["Page 2"]);
        }

        #[test]
        fn pdf_with_an_owner_password_only_is_read() {
            let doc = load("owner-locked.pdf").unwrap();

            assert!(
                doc.text
                    .contains("In an emergency call the 24-hour assistance line")
            );
        }

        #[test]
        fn scanned_pdf_is_skipped_as_having_no_text_layer() {
            let err = load("scanned-memo.pdf").unwrap_err();

            assert!(matches!(err, LoadError::NoTextLayer));
            assert_eq!(
                err.to_string(),
                "PDF has no text layer (scanned?); run it through OCR first"
            );
        }

        #[test]
        fn encrypted_pdf_and_docx_are_skipped_as_encrypted() {
            let pdf = load("encrypted.pdf").unwrap_err();
            let docx = load("encrypted.docx").unwrap_err();

            assert_eq!(
                pdf.to_string(),
                "PDF is encrypted; remove the password and ingest again"
            );
            assert!(matches!(
                docx,
                LoadError::Encrypted {
                    format: SourceFormat::Docx
                }
            ));
        }

        #[test]
        fn truncated_pdf_is_corrupt() {
            let err = load("truncated.pdf").unwrap_err();

            assert!(
                matches!(
                    err,
                    LoadError::Corrupt {
                        format: SourceFormat::Pdf,
                        ..
                    }
                ),
                "{err}"
            );
        }

        #[test]
        fn docx_headings_lists_and_tables_become_markdown() {
            let doc = load("expense-policy.docx").unwrap();

            assert_eq!(doc.source_format, SourceFormat::Docx);
            assert_eq!(doc.title, "Expense Policy");
            assert_eq!(
                headings(&doc.text),
                [
                    "# Expense Policy",
                    "## What you can claim",
                    "## How to claim",
                    "## Limits"
                ]
            );
            assert!(
                doc.text
                    .contains("- Train and economy flights\n- Hotels up to the city cap\n")
            );
            assert!(doc.text.contains(
                "1. Photograph the receipt\n2. Submit it within 30 days\n3. Wait for approval"
            ));
            assert!(doc.text.contains(
                "| City | Hotel cap | Meal rate |\n| --- | --- | --- |\n| Berlin | 180 EUR | 28 EUR |\n| Toronto | 240 CAD | 60 CAD |"
            ), "{}", doc.text);
            assert!(
                doc.text
                    .ends_with("Questions go to finance@kestrelwood.example.")
            );
        }

        #[test]
        fn docx_zip_bomb_is_refused_by_the_expansion_cap() {
            // 12 MB of XML in a 13 KB file: over the cap of a 256 KiB file limit (2.5 MiB).
            let limits = LoadLimits::for_max_file_bytes(256 * 1024);

            let honest = load_file_with_limits(&fixture("zip-bomb.docx"), &limits).unwrap_err();
            let lying =
                load_file_with_limits(&fixture("zip-bomb-lying-size.docx"), &limits).unwrap_err();

            assert_eq!(
                honest.to_string(),
                "DOCX expands to more than 2621440 bytes; refusing (zip bomb?); if the file is genuine, raise ingest.max_file_bytes"
            );
            // zip itself stops at the declared size: a lie is corruption.
            assert!(
                matches!(
                    lying,
                    LoadError::Corrupt {
                        format: SourceFormat::Docx,
                        ..
                    }
                ),
                "{lying}"
            );
            assert!(
                lying
                    .to_string()
                    .contains("larger than its declared uncompressed size")
            );
        }

        #[test]
        fn docx_that_expands_within_the_cap_loads() {
            let doc = load("zip-bomb.docx").unwrap();

            assert_eq!(doc.text, "Hello from the bomb");
        }

        #[test]
        fn html_keeps_headings_lists_and_tables_and_drops_the_rest() {
            let doc = load("intranet-page.html").unwrap();

            assert_eq!(doc.source_format, SourceFormat::Html);
            assert_eq!(doc.title, "Remote Work Guide");
            assert_eq!(doc.encoding, Some("UTF-8"));
            assert_eq!(
                headings(&doc.text),
                [
                    "# Remote Work Guide",
                    "## Equipment",
                    "## Allowances",
                    "### How to apply"
                ]
            );
            assert!(
                doc.text
                    .contains("- A monitor, on request\n  - 27-inch for developers")
            );
            assert!(doc.text.contains(
                "Monthly allowance by office\n\n| Office | Internet | Furniture |\n| --- | --- | --- |\n| Berlin | 30 EUR | 300 EUR once |\n| Toronto | 45 CAD | 400 CAD \\| once |"
            ), "{}", doc.text);
            assert!(doc.text.contains("1. Ask your manager\n2. File the form"));
            assert!(doc.text.contains(
                "\\# of days is counted per calendar week.\nPublic holidays do not count."
            ));
            for dropped in [
                "Home",
                "All policies",
                "trackingId",
                "font-family",
                "injected",
                "Enable JavaScript",
            ] {
                assert!(!doc.text.contains(dropped), "{dropped} in {}", doc.text);
            }
        }

        #[test]
        fn html_declared_legacy_charset_is_decoded() {
            let doc = load("legacy-page-windows-1252.html").unwrap();

            assert_eq!(doc.encoding, Some("windows-1252"));
            assert_eq!(doc.title, "Café rules");
            assert!(
                doc.text
                    .contains("Crème brûlée costs 4 € – pay at the till.")
            );
        }

        #[test]
        fn gbk_chinese_text_is_detected_and_decoded() {
            let doc = load("commute-allowance-gbk.txt").unwrap();

            assert_eq!(doc.encoding, Some("GBK"));
            assert_eq!(doc.title, "上海办公室通勤补贴");
            assert!(doc.text.contains("每月五百元的通勤补贴"));
        }

        #[test]
        fn utf16_with_a_byte_order_mark_is_decoded() {
            let text = load("utf16le-bom.txt").unwrap();
            let markdown = load("utf16be-bom.md").unwrap();

            assert_eq!(text.encoding, Some("UTF-16LE"));
            assert!(text.text.starts_with("Parking rules\n"));
            assert!(text.text.contains("Überstunden"));
            assert_eq!(markdown.encoding, Some("UTF-16BE"));
            assert_eq!(markdown.title, "Bicycle Policy");
            assert_eq!(markdown.front_matter.groups, ["all"]);
            assert!(markdown.text.starts_with("# Bicycles"));
        }

        #[test]
        fn windows_1252_text_is_detected_and_decoded() {
            let doc = load("cafe-menu-windows-1252.txt").unwrap();

            assert_eq!(doc.encoding, Some("windows-1252"));
            assert!(doc.text.contains("Crème brûlée – 4 €"));
        }

        #[test]
        fn empty_and_binary_files_with_text_names_are_skipped() {
            assert!(matches!(load("empty.txt"), Err(LoadError::Empty)));
            assert!(matches!(load("image-named.txt"), Err(LoadError::Binary)));
        }

        #[test]
        fn every_fixture_loaded_as_every_format_gives_a_result_not_a_panic() {
            for name in FIXTURES {
                let bytes = std::fs::read(fixture(name)).unwrap();
                for format in SourceFormat::ALL {
                    let result = parse_bytes(Path::new("x"), format, &bytes);
                    assert!(
                        !matches!(result, Err(LoadError::ReaderCrashed { .. })),
                        "{format}: {result:?}"
                    );
                }
            }
        }
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
