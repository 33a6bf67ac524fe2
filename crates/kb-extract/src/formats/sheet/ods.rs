//! OpenDocument spreadsheets (ODS), streamed from `content.xml` with `quick-xml`.
//!
//! Not `calamine`: it expands repeated rows and columns into a dense rectangle, up to 100
//! million cells, so a few hundred bytes of XML could take gigabytes. Here repeated rows and
//! cells are expanded one cell at a time against the cell budget, and only non-empty cells
//! are kept.
//!
//! A cell's value is what the application saved: for numbers, percentages and currencies
//! the text it displayed (`<text:p>`, already formatted as the user chose), else the value
//! (`office:value`); dates and times from `office:date-value` / `office:time-value` in kb's
//! form; booleans `TRUE`/`FALSE`; strings their paragraphs. Formulas (`table:formula`) are
//! never read. A cell spanning columns or rows (`number-columns-spanned`) is a merged
//! region. Tables whose style sets `table:display="false"` are hidden.
//!
//! The zip parts are read within the file's expansion budget (see [`crate::formats::package`]),
//! `content.xml` as a stream; an encrypted ODS (its manifest lists
//! `encryption-data`) is refused as encrypted; the title is `dc:title` from `meta.xml`.

use super::value::{NumberStyle, boolean, iso_datetime, iso_duration, number};
use super::{Book, CellBudget, Grid, MAX_COLUMNS, MAX_ROWS, Region, SheetKind};
use crate::formats::package::Package;
use crate::formats::push_entity;
use crate::{LoadError, LoadLimits, SourceFormat};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};

const FORMAT: SourceFormat = SourceFormat::Ods;
/// Merged regions kept per sheet (each is a few bytes of XML; the rest are not filled).
const MAX_MERGED: usize = 100_000;
/// Spaces one `<text:s text:c="N"/>` may stand for.
const MAX_SPACES: usize = 64;

pub(super) fn read(
    bytes: &[u8],
    limits: &LoadLimits,
    budget: &mut CellBudget,
) -> Result<Book, LoadError> {
    if bytes.starts_with(b"\xd0\xcf\x11\xe0") {
        return Err(corrupt(
            "it is an OLE file (an Excel 97-2003 workbook named .ods?); rename it to .xls",
        ));
    }
    let mut package = Package::open(bytes, FORMAT, limits)?;
    if let Some(manifest) = package.read_bytes("META-INF/manifest.xml")?
        && find(&manifest, b"encryption-data")
    {
        return Err(LoadError::Encrypted { format: FORMAT });
    }
    let title = package
        .read_bytes("meta.xml")?
        .and_then(|meta| meta_title(&meta));
    let mut content = package
        .part("content.xml")?
        .ok_or_else(|| corrupt("it has no content.xml, so it is not an ODS file"))?;
    let mut book = Book {
        title,
        ..Book::default()
    };
    // Streamed: the whole of content.xml is never held at once.
    let read = Content::new(BufReader::new(&mut content)).read(&mut book, budget);
    content.check(read)?;
    Ok(book)
}

fn corrupt(detail: impl Into<String>) -> LoadError {
    LoadError::Corrupt {
        format: FORMAT,
        detail: detail.into(),
    }
}

fn xml_error(e: impl std::fmt::Display) -> LoadError {
    corrupt(format!("content.xml is not well-formed XML ({e})"))
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `dc:title` in `meta.xml`.
fn meta_title(meta: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(meta);
    let mut buf = Vec::new();
    let mut title = String::new();
    let mut in_title = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.name().as_ref() == "dc:title" => in_title = true,
            Ok(Event::End(e)) if e.name().as_ref() == "dc:title" => break,
            Ok(Event::Text(t)) if in_title => title.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) if in_title => push_entity(&mut title, &r),
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    let title = super::super::collapse_whitespace(&title);
    (!title.is_empty()).then_some(title)
}

/// The value of the attribute with qualified name `name`.
fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// A count attribute (`number-rows-repeated`, …): at least 1, at most `max`.
fn count(e: &BytesStart<'_>, name: &str, max: u32) -> u32 {
    attr(e, name)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(1, |n| {
            u32::try_from(n.clamp(1, u64::from(max))).unwrap_or(max)
        })
}

/// Writes a row's cells `repeat` times from `row` on, within the budget.
fn put_rows(
    grid: &mut Grid,
    row: u32,
    repeat: u32,
    cells: &[(u32, String)],
    budget: &mut CellBudget,
) {
    if cells.is_empty() {
        return;
    }
    for r in row..row.saturating_add(repeat).min(MAX_ROWS) {
        for (col, text) in cells {
            if !grid.put(r, *col, text, budget) {
                return;
            }
        }
    }
}

/// One cell of a row being read.
#[derive(Debug)]
struct Cell {
    text: Option<String>,
    repeat: u32,
    span: (u32, u32),
}

/// The streaming reader of `content.xml`.
struct Content<R: BufRead> {
    xml: Reader<R>,
    buf: Vec<u8>,
    hidden_styles: HashSet<String>,
}

impl<R: BufRead> Content<R> {
    fn new(reader: R) -> Self {
        Self {
            xml: Reader::from_reader(reader),
            buf: Vec::new(),
            hidden_styles: HashSet::new(),
        }
    }

    fn next(&mut self) -> Result<Event<'static>, LoadError> {
        self.buf.clear();
        self.xml
            .read_event_into(&mut self.buf)
            .map(Event::into_owned)
            .map_err(xml_error)
    }

    /// Skips to the end of the element `e` just started.
    fn skip(&mut self, e: &BytesStart<'_>) -> Result<(), LoadError> {
        let mut scratch = Vec::new();
        self.xml
            .read_to_end_into(e.name(), &mut scratch)
            .map(|_| ())
            .map_err(xml_error)
    }

    fn read(mut self, book: &mut Book, budget: &mut CellBudget) -> Result<(), LoadError> {
        let mut style: Option<String> = None;
        loop {
            match self.next()? {
                Event::Start(e) if e.name().as_ref() == "style:style" => {
                    style = (attr(&e, "style:family").as_deref() == Some("table"))
                        .then(|| attr(&e, "style:name"))
                        .flatten();
                }
                Event::End(e) if e.name().as_ref() == "style:style" => style = None,
                Event::Start(e) | Event::Empty(e)
                    if e.name().as_ref() == "style:table-properties" =>
                {
                    if let Some(name) = &style
                        && attr(&e, "table:display").as_deref() == Some("false")
                    {
                        self.hidden_styles.insert(name.clone());
                    }
                }
                Event::Start(e) if e.name().as_ref() == "table:table" => {
                    let name = attr(&e, "table:name").unwrap_or_default();
                    let hidden = attr(&e, "table:style-name")
                        .is_some_and(|s| self.hidden_styles.contains(&s));
                    let kind = if hidden {
                        SheetKind::Hidden
                    } else {
                        SheetKind::Visible
                    };
                    if book.admits(&name, kind, budget) {
                        let mut grid = Grid::new(&name);
                        self.table(&mut grid, budget)?;
                        book.push(grid, budget);
                    } else {
                        self.skip(&e)?;
                    }
                }
                Event::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    /// Reads the rows of a table up to its end.
    fn table(&mut self, grid: &mut Grid, budget: &mut CellBudget) -> Result<(), LoadError> {
        let mut row = 0u32;
        loop {
            match self.next()? {
                Event::Start(e) if e.name().as_ref() == "table:table-row" => {
                    let repeat = count(&e, "table:number-rows-repeated", MAX_ROWS);
                    let cells = self.row(row, grid)?;
                    if row < MAX_ROWS && grid.capped_at.is_none() {
                        put_rows(grid, row, repeat, &cells, budget);
                    }
                    row = row.saturating_add(repeat);
                }
                Event::Empty(e) if e.name().as_ref() == "table:table-row" => {
                    row = row.saturating_add(count(&e, "table:number-rows-repeated", MAX_ROWS));
                }
                // Shapes, forms and the like carry no cell values.
                Event::Start(e)
                    if matches!(
                        e.name().as_ref(),
                        "table:shapes" | "office:forms" | "table:named-expressions"
                    ) =>
                {
                    self.skip(&e)?;
                }
                Event::End(e) if e.name().as_ref() == "table:table" => return Ok(()),
                Event::Eof => return Err(xml_error("table:table is never closed")),
                _ => {}
            }
        }
    }

    /// Reads the cells of a row (0-based `row`) up to its end: the non-empty ones with their
    /// columns. Spans become merged regions of `grid`.
    fn row(&mut self, row: u32, grid: &mut Grid) -> Result<Vec<(u32, String)>, LoadError> {
        let mut cells = Vec::new();
        let mut col = 0u32;
        loop {
            let (e, empty) = match self.next()? {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(e) if e.name().as_ref() == "table:table-row" => return Ok(cells),
                Event::Eof => return Err(xml_error("table:table-row is never closed")),
                _ => continue,
            };
            let covered = match e.name().as_ref() {
                "table:table-cell" => false,
                "table:covered-table-cell" => true,
                _ => {
                    if !empty {
                        self.skip(&e)?;
                    }
                    continue;
                }
            };
            let cell = self.cell(&e, empty)?;
            if col >= MAX_COLUMNS {
                continue;
            }
            if cell.span != (1, 1) && !covered && grid.merged.len() < MAX_MERGED {
                grid.merged.push(Region {
                    first: (row, col),
                    last: (
                        row.saturating_add(cell.span.0 - 1),
                        col.saturating_add(cell.span.1 - 1),
                    ),
                });
            }
            let repeat = cell.repeat.min(MAX_COLUMNS - col);
            if let Some(text) = cell.text.filter(|_| !covered) {
                for c in col..col + repeat {
                    cells.push((c, text.clone()));
                }
            }
            col += repeat;
        }
    }

    /// Reads one cell (its start tag `e` just read) to its end.
    fn cell(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<Cell, LoadError> {
        let repeat = count(e, "table:number-columns-repeated", MAX_COLUMNS);
        let span = (
            count(e, "table:number-rows-spanned", MAX_ROWS),
            count(e, "table:number-columns-spanned", MAX_COLUMNS),
        );
        let shown = if empty {
            String::new()
        } else {
            self.cell_text()?
        };
        let shown = shown.trim();
        let value = |name: &str| attr(e, name).filter(|v| !v.trim().is_empty());
        let as_number = |v: String| v.trim().parse::<f64>().ok();
        let text =
            match attr(e, "office:value-type").as_deref() {
                Some("float") if !shown.is_empty() => Some(shown.to_owned()),
                Some("float") => value("office:value")
                    .and_then(as_number)
                    .map(|x| number(x, None)),
                Some("percentage") if !shown.is_empty() => Some(shown.to_owned()),
                Some("percentage") => value("office:value")
                    .and_then(as_number)
                    .map(|x| number(x, Some(&NumberStyle::percent()))),
                Some("currency") if !shown.is_empty() => Some(shown.to_owned()),
                Some("currency") => value("office:value")
                    .and_then(as_number)
                    .map(|x| match value("office:currency") {
                        Some(code) => format!("{} {code}", number(x, None)),
                        None => number(x, None),
                    }),
                Some("date") => value("office:date-value")
                    .map(|v| iso_datetime(&v))
                    .or_else(|| (!shown.is_empty()).then(|| shown.to_owned())),
                Some("time") => value("office:time-value")
                    .map(|v| iso_duration(&v))
                    .or_else(|| (!shown.is_empty()).then(|| shown.to_owned())),
                Some("boolean") => value("office:boolean-value")
                    .map(|v| boolean(v.trim() == "true").to_owned())
                    .or_else(|| (!shown.is_empty()).then(|| shown.to_owned())),
                _ => (!shown.is_empty()).then(|| shown.to_owned()),
            };
        Ok(Cell { text, repeat, span })
    }

    /// The text of a cell's paragraphs, up to the cell's end. Comments (`office:annotation`)
    /// are left out.
    fn cell_text(&mut self) -> Result<String, LoadError> {
        let mut text = String::new();
        let mut depth = 0usize;
        loop {
            match self.next()? {
                Event::Start(e) if e.name().as_ref() == "office:annotation" => self.skip(&e)?,
                Event::Start(e) => {
                    if e.name().as_ref() == "text:p" && !text.is_empty() {
                        text.push('\n');
                    }
                    depth += 1;
                }
                Event::Empty(e) => match e.name().as_ref() {
                    "text:s" => {
                        let n = attr(&e, "text:c")
                            .and_then(|c| c.trim().parse::<usize>().ok())
                            .unwrap_or(1);
                        text.extend(std::iter::repeat_n(' ', n.min(MAX_SPACES)));
                    }
                    "text:tab" => text.push('\t'),
                    "text:line-break" => text.push('\n'),
                    _ => {}
                },
                Event::Text(t) => super::super::push_clean(&mut text, &t.xml10_content()),
                Event::GeneralRef(r) => push_entity(&mut text, &r),
                Event::CData(c) => {
                    super::super::push_clean(&mut text, &c.into_inner());
                }
                Event::End(_) if depth == 0 => return Ok(text),
                Event::End(_) => depth -= 1,
                Event::Eof => return Err(xml_error("a table cell is never closed")),
                _ => {}
            }
        }
    }
}
