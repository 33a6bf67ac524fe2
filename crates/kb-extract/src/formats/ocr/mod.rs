//! OCR: pictures of text (PNG, JPEG, WebP, TIFF) and PDF pages without a text layer, read by
//! the Tesseract engine.
//!
//! - Pictures are checked by their headers first ([`image`]): only real PNG, JPEG, WebP and
//!   TIFF files reach the engine, and none with more than [`image::MAX_PIXELS`] on a page.
//! - PDF pages are rendered one at a time by poppler's `pdftoppm` (300 dpi, less for pages so
//!   large that 300 dpi would exceed the same pixel limit), then read like pictures.
//! - Tesseract runs with automatic layout and orientation detection (`--psm 1`), so a page
//!   scanned sideways is turned before it is read, in the languages of
//!   [`OcrSettings::languages`] together. Each page (or each picture: a multi-page TIFF gets the
//!   page time once per page) has [`OcrSettings::page_timeout`]; a page over it is killed and
//!   left out with a note.
//! - A page whose mean word confidence is below [`OcrSettings::min_confidence`] is left out
//!   with a note ("page 3: OCR confidence 31 below 50 …"); a file with nothing left fails with
//!   [`LoadError::OcrNoText`] saying why.
//! - Results are cached by content hash in [`OcrSettings::cache_dir`] ([`cache`]).
//!
//! A single picture is one page: it is marked `Page(1)` and has no heading; the pages of a
//! multi-page TIFF get a `# Page N` heading each, like a PDF's.

mod cache;
mod engine;
mod image;
#[cfg(all(test, unix))]
mod tests;
mod tsv;

use super::{MarkdownWriter, Read};
use crate::{LoadError, LoadLimits, SourceFormat};
use cache::Cache;
use engine::{Engine, PageFailure};
use kb_core::Place;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tsv::OcrPage;

/// How pictures and scanned PDF pages are read by OCR: `[ingest.ocr]` in kb's settings,
/// handed to the readers in [`LoadLimits::ocr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrSettings {
    /// Off: pictures are skipped, and PDF pages without a text layer left out, with a reason.
    pub enabled: bool,
    /// Tesseract language codes read together (`eng`, `chi_sim`); each must be installed.
    pub languages: Vec<String>,
    /// Pages whose mean word confidence (0–100) is below this are left out with a note.
    pub min_confidence: u8,
    /// The most time one page may take to render and read; a page over it is left out.
    pub page_timeout: Duration,
    /// The most pages read by OCR in one file: further PDF pages are left out with a note,
    /// and a TIFF with more pages is skipped.
    pub max_pages: usize,
    /// Where OCR results are kept by content hash; `None`: nothing is kept and every ingest
    /// reads every scan again.
    pub cache_dir: Option<PathBuf>,
    /// The Tesseract program; `None`: `tesseract` on `PATH`.
    pub tesseract: Option<PathBuf>,
    /// The PDF page renderer; `None`: `pdftoppm` on `PATH`.
    pub pdftoppm: Option<PathBuf>,
}

impl OcrSettings {
    /// The default languages: English and Simplified Chinese.
    pub const DEFAULT_LANGUAGES: [&str; 2] = ["eng", "chi_sim"];
    /// The default confidence threshold. Measured on kb's scan fixtures: clean pages read at
    /// a mean confidence of 92–96 in English and Chinese, speckle noise at 22.
    pub const DEFAULT_MIN_CONFIDENCE: u8 = 50;
    /// The default time for one page: about ten times what a dense A4 page takes on a busy
    /// 2-core machine.
    pub const DEFAULT_PAGE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The default most pages read by OCR in one file.
    pub const DEFAULT_MAX_PAGES: usize = 500;

    /// OCR turned off (for callers that must never start a process, such as fuzzing).
    pub const DISABLED: Self = Self {
        enabled: false,
        languages: Vec::new(),
        min_confidence: Self::DEFAULT_MIN_CONFIDENCE,
        page_timeout: Self::DEFAULT_PAGE_TIMEOUT,
        max_pages: Self::DEFAULT_MAX_PAGES,
        cache_dir: None,
        tesseract: None,
        pdftoppm: None,
    };

    fn tesseract_program(&self) -> PathBuf {
        self.tesseract
            .clone()
            .unwrap_or_else(|| PathBuf::from("tesseract"))
    }

    fn pdftoppm_program(&self) -> PathBuf {
        self.pdftoppm
            .clone()
            .unwrap_or_else(|| PathBuf::from("pdftoppm"))
    }

    fn cache(&self) -> Option<Cache> {
        self.cache_dir.as_deref().map(Cache::new)
    }

    /// The note for a page left out for its confidence, or `None` if it is kept.
    fn doubt(&self, page: u32, confidence: f32) -> Option<String> {
        (confidence < f32::from(self.min_confidence)).then(|| {
            format!(
                "page {page}: OCR confidence {} below {} (ingest.ocr.min_confidence), skipped",
                confidence.round(),
                self.min_confidence
            )
        })
    }

    fn timed_out(&self, page: u32) -> String {
        format!(
            "page {page}: OCR took longer than {} (ingest.ocr.page_timeout_secs), skipped",
            seconds(self.page_timeout)
        )
    }
}

impl Default for OcrSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            languages: Self::DEFAULT_LANGUAGES.map(str::to_owned).to_vec(),
            ..Self::DISABLED
        }
    }
}

fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 1.0 && secs.fract() == 0.0 {
        format!("{secs} s")
    } else {
        format!("{secs:.3} s")
    }
}

/// Reads a picture file by OCR.
pub(crate) fn read_image(bytes: &[u8], limits: &LoadLimits) -> Result<Read, LoadError> {
    let settings = &limits.ocr;
    let info = image::inspect(bytes).map_err(|detail| LoadError::Corrupt {
        format: SourceFormat::Image,
        detail,
    })?;
    if let Some((width, height)) = info.oversized_page() {
        return Err(LoadError::ImageTooLarge {
            width,
            height,
            limit: image::MAX_PIXELS,
        });
    }
    if !settings.enabled {
        return Err(LoadError::OcrDisabled {
            format: SourceFormat::Image,
        });
    }
    let page_count = info.pages.len();
    if page_count > settings.max_pages {
        return Err(LoadError::OcrTooManyPages {
            pages: page_count,
            limit: settings.max_pages,
        });
    }
    let engine = Engine::probe(settings)?;
    let cache = settings.cache();
    let key = Cache::key(
        &kb_core::content_hash(bytes),
        "image",
        &settings.languages,
        &engine.version,
    );
    let cached = cache.as_ref().and_then(|c| c.get(&key));
    let pages = match cached {
        Some(pages) => pages,
        None => {
            let dir = engine::scratch()?;
            let path = dir.path().join("image");
            std::fs::write(&path, bytes)?;
            let timeout = settings
                .page_timeout
                .saturating_mul(u32::try_from(page_count).unwrap_or(u32::MAX));
            match engine.recognize(&path, &settings.languages, None, timeout) {
                Ok(pages) => {
                    if let Some(cache) = &cache {
                        cache.put(&key, &pages);
                    }
                    pages
                }
                Err(PageFailure::TimedOut) => {
                    return Err(LoadError::OcrNoText {
                        reasons: if page_count == 1 {
                            settings.timed_out(1)
                        } else {
                            format!(
                                "OCR of the {page_count} pages took longer than {} (ingest.ocr.page_timeout_secs for each page), skipped",
                                seconds(timeout)
                            )
                        },
                    });
                }
                Err(PageFailure::Failed(detail)) => return Err(LoadError::OcrFailed { detail }),
            }
        }
    };

    let mut out = MarkdownWriter::default();
    let mut notes = Vec::new();
    for page in &pages {
        if page.text.trim().is_empty() {
            continue;
        }
        if let Some(note) = settings.doubt(page.number, page.confidence) {
            notes.push(note);
            continue;
        }
        out.mark(Place::Page(page.number));
        if page_count > 1 {
            out.heading(1, &format!("Page {}", page.number));
        }
        write_paragraphs(&mut out, &page.text);
    }
    let (markdown, marks) = out.finish_marked();
    if markdown.is_empty() {
        return Err(LoadError::OcrNoText {
            reasons: nothing_read(&notes),
        });
    }
    Ok(Read {
        markdown,
        marks,
        notes,
        ..Read::default()
    })
}

/// The reasons of an [`LoadError::OcrNoText`].
pub(crate) fn nothing_read(notes: &[String]) -> String {
    if notes.is_empty() {
        "it found no text on the page".to_owned()
    } else {
        notes.join("; ")
    }
}

fn write_paragraphs(out: &mut MarkdownWriter, text: &str) {
    for paragraph in text.split("\n\n") {
        out.paragraph(paragraph);
    }
}

/// A PDF page without a text layer, for [`read_pdf_pages`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ScanPage {
    /// The page number, from 1.
    pub(crate) number: u32,
    /// The page's size in points (1/72 inch).
    pub(crate) width_pt: f64,
    pub(crate) height_pt: f64,
}

/// What OCR made of a PDF's pages without a text layer.
#[derive(Debug, Default)]
pub(crate) struct PdfOcr {
    /// The text of each page read, by page number.
    pub(crate) pages: BTreeMap<u32, String>,
    /// Pages left out and why.
    pub(crate) notes: Vec<String>,
}

/// The resolution pages are rendered at for OCR, unless the page is too large for it.
const RENDER_DPI: u32 = 300;

/// Reads `pages` of the PDF `pdf` (all of them without a text layer) by OCR; a page that
/// fails is left out with a note. When OCR cannot run at all (not installed, a language
/// missing), the pages not yet read are left out with a note saying why, unless nothing would
/// be left of the file (`has_text`: it has text pages of its own): then that is the error.
pub(crate) fn read_pdf_pages(
    pdf: &[u8],
    pages: &[ScanPage],
    settings: &OcrSettings,
    has_text: bool,
) -> Result<PdfOcr, LoadError> {
    let mut result = PdfOcr::default();
    if pages.is_empty() {
        return Ok(result);
    }
    if !settings.enabled {
        result.notes.push(format!(
            "{}, not read: OCR is turned off (ingest.ocr.enabled)",
            no_text_layer(pages)
        ));
        return Ok(result);
    }
    let (pages, over) = pages.split_at(pages.len().min(settings.max_pages));
    if !over.is_empty() {
        result.notes.push(format!(
            "{}, not read: OCR reads at most {} pages of a file (ingest.ocr.max_pages)",
            no_text_layer(over),
            settings.max_pages
        ));
    }
    // Leaves out `rest` with `error` as the reason, unless nothing would be left.
    let cannot_run = |mut result: PdfOcr, rest: &[ScanPage], error: LoadError| {
        if !has_text && result.pages.is_empty() {
            return Err(error);
        }
        result
            .notes
            .push(format!("{}, not read: {error}", no_text_layer(rest)));
        Ok(result)
    };
    let engine = match Engine::probe(settings) {
        Ok(engine) => engine,
        Err(error) => return cannot_run(result, pages, error),
    };
    let cache = settings.cache();
    let hash = kb_core::content_hash(pdf);
    // Made on the first page not in the cache: the PDF written out for the renderer.
    let mut scratch: Option<(tempfile::TempDir, PathBuf)> = None;
    for (i, page) in pages.iter().enumerate() {
        let key = Cache::key(
            &hash,
            &format!("pdf page {}", page.number),
            &settings.languages,
            &engine.version,
        );
        let read = match cache.as_ref().and_then(|c| c.get(&key)) {
            Some(read) => Ok(read),
            None => {
                if scratch.is_none() {
                    match write_for_renderer(settings, pdf) {
                        Ok(written) => scratch = Some(written),
                        Err(error) => return cannot_run(result, &pages[i..], error),
                    }
                }
                let (dir, path) = scratch
                    .as_ref()
                    .expect("BUG: the scratch PDF was just written");
                let read = ocr_pdf_page(&engine, settings, path, dir.path(), page);
                if let (Ok(read), Some(cache)) = (&read, &cache) {
                    cache.put(&key, read);
                }
                read
            }
        };
        let number = page.number;
        match read {
            Ok(read) => {
                let text = read
                    .iter()
                    .map(|p| p.text.as_str())
                    .filter(|t| !t.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join("\n\n");
                if text.is_empty() {
                    continue;
                }
                let sum: f32 = read.iter().map(|p| p.confidence).sum();
                let confidence = sum / read.len().max(1) as f32;
                match settings.doubt(number, confidence) {
                    Some(note) => result.notes.push(note),
                    None => {
                        result.pages.insert(number, text);
                    }
                }
            }
            Err(PdfPageFailure::TooLarge) => result.notes.push(format!(
                "page {number}: the page is too large to render for OCR, skipped"
            )),
            Err(PdfPageFailure::Page(PageFailure::TimedOut)) => {
                result.notes.push(settings.timed_out(number));
            }
            Err(PdfPageFailure::Page(PageFailure::Failed(detail))) => {
                result
                    .notes
                    .push(format!("page {number}: OCR failed ({detail}), skipped"));
            }
        }
    }
    Ok(result)
}

/// Checks that the renderer is installed and writes the PDF where it can read it.
fn write_for_renderer(
    settings: &OcrSettings,
    pdf: &[u8],
) -> Result<(tempfile::TempDir, PathBuf), LoadError> {
    engine::check_renderer(settings)?;
    let dir = engine::scratch()?;
    let path = dir.path().join("document.pdf");
    std::fs::write(&path, pdf)?;
    Ok((dir, path))
}

enum PdfPageFailure {
    TooLarge,
    Page(PageFailure),
}

/// Renders and reads one page, within the page time.
fn ocr_pdf_page(
    engine: &Engine,
    settings: &OcrSettings,
    pdf: &Path,
    dir: &Path,
    page: &ScanPage,
) -> Result<Vec<OcrPage>, PdfPageFailure> {
    let dpi = render_dpi(page.width_pt, page.height_pt).ok_or(PdfPageFailure::TooLarge)?;
    let started = Instant::now();
    let png = engine::render_pdf_page(settings, pdf, page.number, dpi, dir, settings.page_timeout)
        .map_err(PdfPageFailure::Page)?;
    let left = settings.page_timeout.saturating_sub(started.elapsed());
    let read = engine.recognize(&png, &settings.languages, Some(dpi), left);
    // Pages are not kept once read: a long scan must not fill the temporary folder.
    let _ = std::fs::remove_file(&png);
    read.map_err(PdfPageFailure::Page)
}

/// The resolution a page of this size (in points) is rendered at: [`RENDER_DPI`], or less so
/// that the picture stays within [`image::MAX_PIXELS`]; `None` if even 1 dpi is too much.
fn render_dpi(width_pt: f64, height_pt: f64) -> Option<u32> {
    let area_in2 = (width_pt.abs() / 72.0) * (height_pt.abs() / 72.0);
    if !area_in2.is_finite() || area_in2 <= 0.0 {
        return Some(RENDER_DPI);
    }
    let fits = (image::MAX_PIXELS as f64 / area_in2).sqrt().floor();
    (fits >= 1.0).then(|| (fits as u32).min(RENDER_DPI))
}

/// "page 3 has no text layer" / "pages 3, 5–9 have no text layer", for notes.
fn no_text_layer(pages: &[ScanPage]) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for page in pages {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == page.number => *last = page.number,
            _ => ranges.push((page.number, page.number)),
        }
    }
    let listed = ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}–{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    if pages.len() == 1 {
        format!("page {listed} has no text layer")
    } else {
        format!("pages {listed} have no text layer")
    }
}
