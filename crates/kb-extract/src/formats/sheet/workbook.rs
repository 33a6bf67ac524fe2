//! Excel workbooks: XLSX (2007+) and XLS (97–2003), read with `calamine`.
//!
//! XLSX: before `calamine` opens the zip, every XML part is inflated once into nothing, within
//! [`LoadLimits::max_expanded_bytes`] both by the sizes the zip declares and by the bytes that
//! actually come out (a zip may lie about sizes). Sheets are then streamed cell by cell, so at
//! most the cell budget is held; each cell's number format comes from its style.
//!
//! XLS: `calamine` reads every sheet of the file into a dense rectangle when it opens it, so a
//! file with a cell at A1 and one at IV65536 would take gigabytes. Before that, the sheets'
//! cell records are scanned (the `Workbook` stream of the OLE container, read with `cfb`) and
//! a file whose sheets span more than twice the cell limit is refused.
//!
//! An encrypted XLSX is an OLE container holding an `EncryptedPackage`; an encrypted XLS has a
//! `FilePass` record: both are refused as encrypted. A workbook with the other format's
//! contents (an `.xls` that is really a zip, an `.xlsx` that is an OLE file) is read as what it
//! is.

use super::value::{NumberStyle, cell_text};
use super::{Book, CellBudget, Grid, Region, SheetKind};
use crate::formats::package::{self, Package};
use crate::{LoadError, LoadLimits, SourceFormat};
use calamine::{Reader, SheetType, SheetVisible, Xls, Xlsx, XlsxError};
use std::collections::HashMap;
use std::io::{Cursor, Read as _};

const OLE_MAGIC: &[u8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

pub(super) fn read(
    format: SourceFormat,
    bytes: &[u8],
    limits: &LoadLimits,
    budget: &mut CellBudget,
) -> Result<Book, LoadError> {
    if bytes.starts_with(OLE_MAGIC) {
        if package::has_encrypted_package(bytes) {
            return Err(LoadError::Encrypted { format });
        }
        read_xls(format, bytes, limits, budget)
    } else if bytes.starts_with(ZIP_MAGIC) {
        read_xlsx(format, bytes, limits, budget)
    } else {
        Err(corrupt(
            format,
            "it is neither an Excel workbook (.xlsx, a zip) nor an Excel 97-2003 one (.xls); \
             open it in a spreadsheet application and save it as .xlsx",
        ))
    }
}

fn corrupt(format: SourceFormat, detail: impl Into<String>) -> LoadError {
    LoadError::Corrupt {
        format,
        detail: detail.into(),
    }
}

fn kind(typ: SheetType, visible: SheetVisible) -> Option<SheetKind> {
    match (typ, visible) {
        (SheetType::ChartSheet, _) => Some(SheetKind::Chart),
        // Dialog and macro sheets and VBA modules hold no data.
        (SheetType::DialogSheet | SheetType::MacroSheet | SheetType::Vba, _) => None,
        (SheetType::WorkSheet, SheetVisible::Visible) => Some(SheetKind::Visible),
        (SheetType::WorkSheet, SheetVisible::Hidden | SheetVisible::VeryHidden) => {
            Some(SheetKind::Hidden)
        }
    }
}

/// Runs a `calamine` call, turning a panic (its parsers index into damaged records without
/// checking) into a corrupt-file error.
fn guarded<T>(format: SourceFormat, f: impl FnOnce() -> T) -> Result<T, LoadError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
        corrupt(
            format,
            "the workbook's records are damaged (its reader stopped on them); open it in a \
             spreadsheet application and save it again",
        )
    })
}

fn title(title: Option<String>) -> Option<String> {
    title
        .map(|t| super::collapse_whitespace(&t))
        .filter(|t| !t.is_empty())
}

fn region(d: &calamine::Dimensions) -> Region {
    Region {
        first: d.start,
        last: d.end,
    }
}

// --- XLSX ----------------------------------------------------------------------------------

fn read_xlsx(
    format: SourceFormat,
    bytes: &[u8],
    limits: &LoadLimits,
    budget: &mut CellBudget,
) -> Result<Book, LoadError> {
    // calamine inflates parts without a bound of its own.
    Package::open(bytes, format, limits)?.inflate_all(|name| {
        let name = name.to_ascii_lowercase();
        name.ends_with(".xml") || name.ends_with(".rels")
    })?;
    let mut xlsx =
        guarded(format, || Xlsx::new(Cursor::new(bytes)))?.map_err(|e| xlsx_error(format, &e))?;
    let mut book = Book {
        title: title(xlsx.workbook_properties().ok().and_then(|p| p.title)),
        ..Book::default()
    };
    let sheets = xlsx.sheets_metadata().to_vec();
    for sheet in sheets {
        let Some(kind) = kind(sheet.typ, sheet.visible) else {
            continue;
        };
        if !book.admits(&sheet.name, kind, budget) {
            continue;
        }
        let mut grid = Grid::new(&sheet.name);
        match guarded(format, || read_xlsx_cells(&mut xlsx, &mut grid, budget))? {
            Ok(()) => {}
            // A sheet part that is not a worksheet (a chart sheet calamine calls a worksheet).
            Err(XlsxError::NotAWorksheet(_)) => continue,
            Err(e) => return Err(xlsx_error(format, &e)),
        }
        // Merged regions only widen values already read; a sheet whose list of them cannot be
        // read is still read.
        match xlsx.merge_cells_by_sheet_name(&sheet.name) {
            Ok(merged) => grid.merged = merged.iter().map(region).collect(),
            Err(e) => tracing::debug!(sheet = %sheet.name, error = %e, "merged cells not read"),
        }
        book.push(grid, budget);
    }
    Ok(book)
}

fn read_xlsx_cells(
    xlsx: &mut Xlsx<Cursor<&[u8]>>,
    grid: &mut Grid,
    budget: &mut CellBudget,
) -> Result<(), XlsxError> {
    let mut reader = xlsx.worksheet_cells_reader(&grid.name)?;
    // Number styles by style id, worked out once per id.
    let mut styles: HashMap<usize, Option<NumberStyle>> = HashMap::new();
    while let Some((cell, style_id)) = reader.next_cell_with_style_id()? {
        let style = styles.entry(style_id).or_insert_with(|| {
            reader
                .styles()
                .get(style_id)
                .and_then(|s| s.number_format.as_ref())
                .and_then(|f| NumberStyle::parse(&f.format_code))
        });
        let (row, col) = cell.get_position();
        let Some(text) = cell_text(&cell.get_value().clone().into(), style.as_ref()) else {
            continue;
        };
        if row >= super::MAX_ROWS || col >= super::MAX_COLUMNS {
            continue;
        }
        if !grid.put(row, col, &text, budget) {
            break;
        }
    }
    Ok(())
}

fn xlsx_error(format: SourceFormat, e: &XlsxError) -> LoadError {
    match e {
        XlsxError::Password => LoadError::Encrypted { format },
        e => corrupt(format, format!("it is not a readable Excel workbook ({e})")),
    }
}

// --- XLS -----------------------------------------------------------------------------------

fn read_xls(
    format: SourceFormat,
    bytes: &[u8],
    limits: &LoadLimits,
    budget: &mut CellBudget,
) -> Result<Book, LoadError> {
    check_xls_extent(format, bytes, limits.max_sheet_cells.saturating_mul(2))?;
    let mut xls = guarded(format, || Xls::new(Cursor::new(bytes)))?.map_err(|e| match e {
        calamine::XlsError::Password => LoadError::Encrypted { format },
        e => corrupt(
            format,
            format!("it is not a readable Excel 97-2003 workbook ({e})"),
        ),
    })?;
    let mut book = Book {
        title: title(xls.workbook_properties().ok().and_then(|p| p.title)),
        ..Book::default()
    };
    let sheets = xls.sheets_metadata().to_vec();
    for sheet in sheets {
        let Some(kind) = kind(sheet.typ, sheet.visible) else {
            continue;
        };
        if !book.admits(&sheet.name, kind, budget) {
            continue;
        }
        let Ok(range) = guarded(format, || xls.worksheet_range(&sheet.name))? else {
            continue;
        };
        let mut grid = Grid::new(&sheet.name);
        let (top, left) = range.start().unwrap_or((0, 0));
        for (row, col, value) in range.used_cells() {
            let Some(text) = cell_text(value, None) else {
                continue;
            };
            let (Ok(row), Ok(col)) = (u32::try_from(row), u32::try_from(col)) else {
                continue;
            };
            if !grid.put(top + row, left + col, &text, budget) {
                break;
            }
        }
        if let Ok(merged) = xls.merge_cells_by_sheet_name(&sheet.name) {
            grid.merged = merged.iter().map(region).collect();
        }
        book.push(grid, budget);
    }
    Ok(book)
}

/// Refuses an XLS whose sheets together span more than `limit` cells (rows × columns of the
/// rectangle around each sheet's cells), before `calamine` allocates them.
fn check_xls_extent(format: SourceFormat, bytes: &[u8], limit: u64) -> Result<(), LoadError> {
    let not_xls = |e: std::io::Error| {
        corrupt(
            format,
            format!("it is not a readable Excel 97-2003 workbook ({e})"),
        )
    };
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes)).map_err(not_xls)?;
    let name = ["/Workbook", "/Book"]
        .into_iter()
        .find(|n| file.is_stream(n))
        .ok_or_else(|| {
            corrupt(
                format,
                "it has no Workbook stream, so it is not an Excel 97-2003 workbook (a Word or \
                 PowerPoint file renamed?)",
            )
        })?;
    let mut stream = Vec::new();
    file.open_stream(name)
        .and_then(|mut s| s.read_to_end(&mut stream))
        .map_err(not_xls)?;
    let extents = sheet_extents(&stream).map_err(|detail| corrupt(format, detail))?;
    let total = extents
        .iter()
        .map(|e| e.cells)
        .fold(0u64, u64::saturating_add);
    if total > limit {
        let largest = extents
            .iter()
            .max_by_key(|e| e.cells)
            .expect("BUG: a total over the limit has a sheet");
        return Err(LoadError::TooManyCells {
            format,
            sheet: largest.name.clone(),
            cells: largest.cells,
            limit,
        });
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Extent {
    pub(super) name: String,
    /// Rows × columns of the rectangle around the sheet's cell records.
    pub(super) cells: u64,
}

/// First row, last row, first column, last column.
type Bounds = (u16, u16, u16, u16);

/// The extent of each sheet substream of an XLS `Workbook` stream (BIFF8 records: type and
/// length as u16, then the data). Sheet names come from the `BoundSheet8` records that point
/// at each substream; unreadable ones are named by their position. A `BoundSheet8` that points
/// past the end of the stream is an error (it would crash `calamine`).
pub(super) fn sheet_extents(stream: &[u8]) -> Result<Vec<Extent>, String> {
    const BOF: u16 = 0x0809;
    const EOF: u16 = 0x000A;
    const BOUNDSHEET: u16 = 0x0085;
    const MULRK: u16 = 0x00BD;
    const MULBLANK: u16 = 0x00BE;
    // FORMULA, BLANK, NUMBER, LABEL, BOOLERR, RK, LABELSST, RSTRING: row and column first.
    const CELLS: [u16; 8] = [
        0x0006, 0x0201, 0x0203, 0x0204, 0x0205, 0x027E, 0x00FD, 0x00D6,
    ];
    let u16_at = |data: &[u8], at: usize| {
        data.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };

    let mut names: HashMap<usize, String> = HashMap::new();
    let mut extents = Vec::new();
    // The name and the bounds of the sheet substream being read.
    let mut current: Option<(String, Option<Bounds>)> = None;
    let mut depth = 0usize;
    let mut at = 0usize;
    while let (Some(typ), Some(len)) = (u16_at(stream, at), u16_at(stream, at + 2)) {
        let start = at;
        let data_start = at + 4;
        let data = stream
            .get(data_start..data_start + usize::from(len))
            .unwrap_or(&stream[data_start.min(stream.len())..]);
        at = data_start + usize::from(len);
        match typ {
            BOUNDSHEET => {
                if let (Some(pos), Some(name)) = (data.get(0..4), bound_sheet_name(data)) {
                    let pos = u32::from_le_bytes([pos[0], pos[1], pos[2], pos[3]]) as usize;
                    if pos >= stream.len() {
                        return Err(format!(
                            "sheet {name} starts at byte {pos}, past the end of the {}-byte workbook stream",
                            stream.len()
                        ));
                    }
                    names.insert(pos, name);
                }
            }
            BOF => {
                depth += 1;
                // Substreams after the workbook globals (the first) are sheets.
                if depth == 1 && start > 0 {
                    let name = names
                        .get(&start)
                        .cloned()
                        .unwrap_or_else(|| format!("#{}", extents.len() + 1));
                    current = Some((name, None));
                }
            }
            EOF => {
                depth = depth.saturating_sub(1);
                if depth == 0
                    && let Some((name, bounds)) = current.take()
                {
                    let cells = bounds.map_or(0, |(r0, r1, c0, c1)| {
                        (u64::from(r1 - r0) + 1) * (u64::from(c1 - c0) + 1)
                    });
                    extents.push(Extent { name, cells });
                }
            }
            _ => {
                let Some((_, bounds)) = current.as_mut() else {
                    continue;
                };
                let cols = if CELLS.contains(&typ) {
                    u16_at(data, 2).map(|c| (c, c))
                } else if matches!(typ, MULRK | MULBLANK) && data.len() >= 6 {
                    u16_at(data, 2).zip(u16_at(data, data.len() - 2))
                } else {
                    None
                };
                if let (Some(row), Some((c0, c1))) = (u16_at(data, 0), cols) {
                    let (c0, c1) = (c0.min(c1), c0.max(c1));
                    *bounds = Some(match *bounds {
                        None => (row, row, c0, c1),
                        Some((r0, r1, a, b)) => (r0.min(row), r1.max(row), a.min(c0), b.max(c1)),
                    });
                }
            }
        }
    }
    Ok(extents)
}

/// The name in a `BoundSheet8` record: after the stream position (4 bytes) and the state and
/// type bytes, a length byte, a flag byte (1: UTF-16LE, 0: one byte per character).
fn bound_sheet_name(data: &[u8]) -> Option<String> {
    let len = usize::from(*data.get(6)?);
    let wide = data.get(7)? & 1 == 1;
    let chars = data.get(8..)?;
    let name = if wide {
        let units: Vec<u16> = chars
            .chunks_exact(2)
            .take(len)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        chars.iter().take(len).map(|&b| char::from(b)).collect()
    };
    Some(name)
}
