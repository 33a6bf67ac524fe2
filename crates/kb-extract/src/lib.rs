//! kb-extract: reading one file into text, metadata and source locations.
//!
//! | extensions                  | [`SourceFormat`] | text ([`DocumentFormat`]), located by |
//! |-----------------------------|------------------|---------------------------|
//! | `.md` `.markdown` `.mdown`  | `Markdown`       | Markdown, front matter read |
//! | `.txt` `.text`              | `Text`           | plain text                |
//! | `.html` `.htm`              | `Html`           | Markdown made from the page |
//! | `.pdf`                      | `Pdf`            | Markdown, one `# Page N` heading per page; pages |
//! | `.docx`                     | `Docx`           | Markdown made from the document |
//! | `.xlsx` `.xlsm` `.xls` `.ods` | `Xlsx` `Xls` `Ods` | one `# sheet` section per visible sheet, each row a record that repeats the headers; sheet and rows |
//! | `.csv` `.tsv` `.tab`        | `Csv` `Tsv`      | rows as records; rows of a sheet named after the file |
//! | `.pptx` `.odp`              | `Pptx` `Odp`     | one `# title` section per visible slide, speaker notes under `## Notes`; slides |
//! | `.odt` `.rtf`               | `Odt` `Rtf`      | Markdown made from the document |
//! | `.eml`                      | `Eml`            | headers, then the text (else the HTML) part; attachments kb reads are [`DocumentPart`]s |
//! | `.mbox`                     | `Mbox`           | an index of the messages; each message is a [`DocumentPart`] |
//! | `.png` `.jpg` `.jpeg` `.webp` `.tif` `.tiff` | `Image` | text read by OCR; pages |
//!
//! [`DocumentFormat`] is how the splitter reads the text: everything but plain text becomes
//! Markdown (`#` headings, `- ` lists, pipe tables) so its chunks get heading paths. Readers of
//! paged, slide and sheet formats leave [`Mark`]s in the text, from which each chunk's
//! [`kb_core::Location`] is read (`kb_core::locate`); e-mail gives the message's headers.
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

pub(crate) mod formats;
mod metadata;
#[cfg(test)]
mod tests;

pub use formats::ocr::OcrSettings;
pub use metadata::SIDECAR_SUFFIX;
pub use metadata::{FrontMatter, IGNORED_FRONT_MATTER_KEYS, read_sidecar, sidecar_path};

use kb_core::{Mark, MessageHeaders};
use metadata::{check_no_access_front_matter, split_front_matter};
use std::path::Path;

/// The UTF-8 byte-order mark, as a character (some editors write it, some write it twice).
const BOM: char = '\u{feff}';

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
    /// Excel 2007+ workbook.
    Xlsx,
    /// Excel 97–2003 workbook.
    Xls,
    /// OpenDocument spreadsheet.
    Ods,
    /// Comma-separated values (or `;`-separated, as some spreadsheet exports write them).
    Csv,
    /// Tab-separated values.
    Tsv,
    /// PowerPoint 2007+ deck.
    Pptx,
    /// OpenDocument text.
    Odt,
    /// OpenDocument presentation.
    Odp,
    /// Rich Text Format.
    Rtf,
    /// One e-mail message (RFC 5322), with its attachments.
    Eml,
    /// A mailbox of messages (mboxrd / mboxo), one document per message.
    Mbox,
    /// A picture of text (PNG, JPEG, WebP, TIFF), read by OCR.
    Image,
}

impl SourceFormat {
    /// Every format kb reads.
    pub const ALL: [Self; 17] = [
        Self::Markdown,
        Self::Text,
        Self::Html,
        Self::Pdf,
        Self::Docx,
        Self::Xlsx,
        Self::Xls,
        Self::Ods,
        Self::Csv,
        Self::Tsv,
        Self::Pptx,
        Self::Odt,
        Self::Odp,
        Self::Rtf,
        Self::Eml,
        Self::Mbox,
        Self::Image,
    ];

    /// The file name extensions (lowercase) of each format, as [`Self::from_path`] reads them.
    pub const EXTENSIONS: &[(&str, Self)] = &[
        ("md", Self::Markdown),
        ("markdown", Self::Markdown),
        ("mdown", Self::Markdown),
        ("txt", Self::Text),
        ("text", Self::Text),
        ("html", Self::Html),
        ("htm", Self::Html),
        ("pdf", Self::Pdf),
        ("docx", Self::Docx),
        ("xlsx", Self::Xlsx),
        ("xlsm", Self::Xlsx),
        ("xls", Self::Xls),
        ("ods", Self::Ods),
        ("csv", Self::Csv),
        ("tsv", Self::Tsv),
        ("tab", Self::Tsv),
        ("pptx", Self::Pptx),
        ("odt", Self::Odt),
        ("odp", Self::Odp),
        ("rtf", Self::Rtf),
        ("eml", Self::Eml),
        ("mbox", Self::Mbox),
        ("png", Self::Image),
        ("jpg", Self::Image),
        ("jpeg", Self::Image),
        ("webp", Self::Image),
        ("tif", Self::Image),
        ("tiff", Self::Image),
    ];

    /// The format for a file name (by extension, any case), or `None` if kb does not read that
    /// kind of file. Legacy `.doc` and `.ppt` files are not read: save them as `.docx` and
    /// `.pptx`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Self::EXTENSIONS
            .iter()
            .find(|(e, _)| *e == ext)
            .map(|(_, format)| *format)
    }

    /// How the text read from this format is split.
    pub fn text_format(self) -> DocumentFormat {
        match self {
            Self::Text => DocumentFormat::Text,
            _ => DocumentFormat::Markdown,
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
            Self::Xlsx => "XLSX",
            Self::Xls => "XLS",
            Self::Ods => "ODS",
            Self::Csv => "CSV",
            Self::Tsv => "TSV",
            Self::Pptx => "PPTX",
            Self::Odt => "ODT",
            Self::Odp => "ODP",
            Self::Rtf => "RTF",
            Self::Eml => "e-mail",
            Self::Mbox => "mailbox",
            Self::Image => "image",
        })
    }
}

/// Bounds on the work of loading one file, and how pictures and scans are read by OCR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadLimits {
    /// Files larger than this are refused before they are read (`ingest.max_file_bytes`).
    pub max_file_bytes: u64,
    /// How many bytes a compressed container may expand to: the zip parts of a DOCX together,
    /// each stream of a PDF, and the text taken from a PDF.
    pub max_expanded_bytes: u64,
    /// How many non-empty cells are read from one spreadsheet or CSV file, all its sheets
    /// together; the rest is left out with a note (spreadsheets).
    pub max_sheet_cells: u64,
    /// OCR of images and of PDF pages without a text layer (`ingest.ocr`): on by default,
    /// in English and Simplified Chinese, without a cache.
    pub ocr: OcrSettings,
}

impl LoadLimits {
    /// How many times the file size a container may expand to, by default.
    pub const EXPANSION_FACTOR: u64 = 10;
    /// The most any container may expand to, whatever the file size limit.
    pub const MAX_EXPANDED_BYTES: u64 = 256 * 1024 * 1024;
    /// The default [`Self::max_sheet_cells`].
    pub const MAX_SHEET_CELLS: u64 = 1_000_000;

    /// Limits for a file size cap: containers may expand [`Self::EXPANSION_FACTOR`] times
    /// that, up to [`Self::MAX_EXPANDED_BYTES`].
    pub fn for_max_file_bytes(max_file_bytes: u64) -> Self {
        Self {
            max_file_bytes,
            max_expanded_bytes: max_file_bytes
                .saturating_mul(Self::EXPANSION_FACTOR)
                .min(Self::MAX_EXPANDED_BYTES),
            max_sheet_cells: Self::MAX_SHEET_CELLS,
            ocr: OcrSettings::default(),
        }
    }
}

impl Default for LoadLimits {
    /// The limits for kb's default `ingest.max_file_bytes` (20 MiB): 200 MiB expanded.
    fn default() -> Self {
        Self::for_max_file_bytes(20 * 1024 * 1024)
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
    /// The version of the document: sha256 of the source bytes, and of the text read too when
    /// the reader left part of the file out (see [`version_hash`]).
    pub content_hash: String,
    /// Where the pages, slides or sheet rows of the source start in [`Self::text`], in
    /// order; empty for formats without such places. Chunks are located by them.
    pub marks: Vec<Mark>,
    /// What a person should know about how the file was read, for the ingest report: parts
    /// left out and why ("hidden sheet Archive skipped", "attachment logo.gif is not a type kb
    /// reads", "sheet Log capped at 50,000 rows", "page 4: OCR confidence 31 < 60, skipped").
    pub notes: Vec<String>,
    /// The headers of the e-mail message this document is (for its attachments: the message
    /// they came with).
    pub message: Option<MessageHeaders>,
    /// Documents inside this file, each ingested as a document of its own whose id is this
    /// one's plus `#` and the part's [`DocumentPart::fragment`]: the messages of a mailbox, the
    /// attachments of a message.
    pub parts: Vec<DocumentPart>,
    /// For a reply: the text it quotes from an earlier message. Ingest drops it when that
    /// message is catalogued too, so the same words are not indexed twice.
    pub quoted: Option<Quoted>,
}

/// Quoted text at the end of a message (see [`LoadedDocument::quoted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted {
    /// The Message-ID of the quoted message (from In-Reply-To), without angle brackets.
    pub message_id: String,
    /// Where the quotation (its "On … wrote:" line or first `>` line) starts in the text; it
    /// runs to the end.
    pub start: usize,
}

/// A document found inside another file (see [`LoadedDocument::parts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentPart {
    /// Names the part within its file, e.g. `attachment/budget.xlsx` or `message/3`: unique
    /// within the file and stable from one ingest to the next.
    pub fragment: String,
    pub document: LoadedDocument,
}

/// Why a file was skipped. Messages are lowercase and say what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read file")]
    Io(#[from] std::io::Error),
    #[error(
        "unsupported file type (kb reads Markdown, text, HTML, PDF, DOCX, XLSX/XLS/ODS, CSV/TSV, PPTX, ODT/ODP, RTF, e-mail (.eml, .mbox) and images by OCR)"
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
    /// (spreadsheets) An Excel 97-2003 file whose sheets span more cells than kb reads.
    #[error(
        "{format} sheet {sheet} spans {cells} cells (rows × columns), more than the {limit} kb reads from an Excel 97-2003 file; save it as .xlsx (kb then reads what fits) or split it"
    )]
    TooManyCells {
        format: SourceFormat,
        sheet: String,
        cells: u64,
        limit: u64,
    },

    // OCR (issue 16, the ocr piece): formats/ocr/.
    #[error(
        "OCR is not installed (apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-osd poppler-utils)"
    )]
    OcrNotInstalled,
    #[error(
        "OCR language {language} is not installed (apt-get install {package}); install it or remove it from ingest.ocr.languages"
    )]
    OcrLanguageMissing { language: String, package: String },
    #[error("{format} needs OCR, which is turned off; set ingest.ocr.enabled = true to read it")]
    OcrDisabled { format: SourceFormat },
    #[error("OCR failed: {detail}")]
    OcrFailed { detail: String },
    #[error("OCR found no text to keep: {reasons}")]
    OcrNoText { reasons: String },
    #[error(
        "image is {width}×{height} pixels, over the {limit}-pixel limit for OCR; scale it down and ingest again"
    )]
    ImageTooLarge { width: u32, height: u32, limit: u64 },
    #[error(
        "image has {pages} pages, more than OCR reads from one file (ingest.ocr.max_pages = {limit}); split it or raise the setting"
    )]
    OcrTooManyPages { pages: usize, limit: usize },
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
    let mut extracted = std::panic::catch_unwind(|| extract(format, bytes, limits))
        .unwrap_or(Err(LoadError::ReaderCrashed { format }))?;
    if matches!(format, SourceFormat::Csv | SourceFormat::Tsv) {
        // A spreadsheet program names the one sheet of a CSV file after the file.
        name_delimited_sheet(&mut extracted.marks, path);
    }
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
        // A PDF's (or multi-page TIFF's) first heading is "Page 1", a workbook's its first
        // sheet's name: the file name says more.
        .or_else(|| {
            (!matches!(
                format,
                SourceFormat::Pdf
                    | SourceFormat::Image
                    | SourceFormat::Xlsx
                    | SourceFormat::Xls
                    | SourceFormat::Ods
            ))
            .then(|| first_heading(&text, text_format))?
        })
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().replace(['-', '_'], " "))
                .unwrap_or_default()
        });
    let content_hash = version_hash(bytes, &text, &extracted.notes);
    Ok(LoadedDocument {
        format: text_format,
        source_format: format,
        text,
        title: title.trim().to_owned(),
        front_matter,
        encoding: extracted.encoding,
        source_offset,
        size_bytes: size,
        content_hash,
        marks: extracted.marks,
        notes: extracted.notes,
        message: extracted.message,
        parts: extracted.parts,
        quoted: extracted.quoted,
    })
}

/// The version of a document read from `bytes`: their sha256 when the whole file was read.
/// When the reader left something out (`notes`: pages OCR could not read because it is not
/// installed or timed out, pages past `ingest.ocr.max_pages`, …), the text read is hashed with
/// the bytes, so that a later run that reads more of the same file (OCR installed since, a
/// higher limit) sees a new version instead of an unchanged file, while a run that reads the
/// same text again still sees the file unchanged.
fn version_hash(bytes: &[u8], text: &str, notes: &[String]) -> String {
    if notes.is_empty() {
        return kb_core::content_hash(bytes);
    }
    let file = kb_core::content_hash(bytes);
    let read = kb_core::content_hash(text.as_bytes());
    kb_core::content_hash(format!("{file}\nread {read}").as_bytes())
}

/// Rows of a CSV or TSV file are located in a sheet named after the file's stem, as a
/// spreadsheet program shows it.
fn name_delimited_sheet(marks: &mut [Mark], path: &Path) {
    let Some(stem) = path.file_stem().map(|s| s.to_string_lossy()) else {
        return;
    };
    let sheet: std::sync::Arc<str> = stem.into();
    for mark in marks {
        if let kb_core::Place::Row { sheet: name, .. } = &mut mark.place {
            *name = sheet.clone();
        }
    }
}

/// What a format's reader made of the bytes.
struct Extracted {
    text: String,
    title: Option<String>,
    front_matter: FrontMatter,
    encoding: Option<&'static str>,
    /// The file decoded to nothing but whitespace (e.g. a UTF-16 byte-order mark alone).
    decoded_empty: bool,
    marks: Vec<Mark>,
    notes: Vec<String>,
    message: Option<MessageHeaders>,
    parts: Vec<DocumentPart>,
    quoted: Option<Quoted>,
}

impl Extracted {
    /// Takes what a reader of the newer formats made.
    fn take(&mut self, read: formats::Read) {
        self.title = read.title;
        self.text = read.markdown;
        self.marks = read.marks;
        self.notes = read.notes;
        self.message = read.message;
        self.parts = read.parts;
        self.quoted = read.quoted;
    }
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
        marks: Vec::new(),
        notes: Vec::new(),
        message: None,
        parts: Vec::new(),
        quoted: None,
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
        SourceFormat::Pdf => out.take(formats::pdf::to_markdown(bytes, limits)?),
        SourceFormat::Docx => {
            let docx = formats::docx::to_markdown(bytes, limits)?;
            (out.title, out.text) = (docx.title, docx.markdown);
        }
        SourceFormat::Xlsx
        | SourceFormat::Xls
        | SourceFormat::Ods
        | SourceFormat::Csv
        | SourceFormat::Tsv => out.take(formats::sheet::read(format, bytes, limits)?),
        SourceFormat::Pptx | SourceFormat::Odt | SourceFormat::Odp | SourceFormat::Rtf => {
            out.take(formats::office::read(format, bytes, limits)?);
        }
        SourceFormat::Eml | SourceFormat::Mbox => {
            out.take(formats::mail::read(format, bytes, limits)?);
        }
        SourceFormat::Image => out.take(formats::ocr::read_image(bytes, limits)?),
    }
    Ok(out)
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
