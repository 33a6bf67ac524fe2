//! Comma- and tab-separated values (CSV, TSV), read with the `csv` crate.
//!
//! The bytes are decoded as text files are (`formats/text.rs`: UTF-8, UTF-16 with a byte-order
//! mark, or a detected legacy encoding such as GBK or windows-1252). A TSV is split at tabs. A
//! CSV is split at commas, unless its first non-empty line has more semicolons (as spreadsheet
//! exports in locales with decimal commas write them) or more tabs than commas, outside
//! quotes. Quoted fields may hold separators and line breaks; rows may have any number of
//! fields. A row's number is the one a spreadsheet application shows when it opens the file:
//! a line break inside a quoted field does not start a row, an empty line is an empty row.

use super::{Book, CellBudget, DELIMITED_SHEET, Grid, MAX_COLUMNS};
use crate::formats::text;
use crate::{LoadError, SourceFormat};

pub(super) fn read(
    format: SourceFormat,
    bytes: &[u8],
    budget: &mut CellBudget,
) -> Result<Book, LoadError> {
    let decoded = text::decode(bytes, None)?;
    let text = decoded.text.trim_start_matches('\u{feff}');
    let delimiter = match format {
        SourceFormat::Tsv => b'\t',
        _ => sniff_delimiter(text),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut grid = Grid::new(DELIMITED_SHEET);
    // Rows are counted by line breaks (the reader's own line count is off after CRLF), less
    // those inside quoted fields.
    let (mut counted_to, mut breaks, mut inner_breaks) = (0usize, 0u64, 0u64);
    let mut record = csv::StringRecord::new();
    'rows: loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(LoadError::Corrupt {
                    format,
                    detail: format!("cannot split it into rows ({e})"),
                });
            }
        }
        // The reader may count the line ends before a record (empty lines skipped) as its
        // start: the record starts after them.
        let mut start = record
            .position()
            .map_or(counted_to, |p| {
                usize::try_from(p.byte()).unwrap_or(usize::MAX)
            })
            .clamp(counted_to, text.len());
        while matches!(text.as_bytes().get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        breaks += line_breaks(text.as_bytes(), counted_to..start);
        counted_to = start;
        let Ok(row) = u32::try_from(breaks.saturating_sub(inner_breaks)) else {
            break;
        };
        for (col, field) in record.iter().enumerate() {
            inner_breaks += line_breaks(field.as_bytes(), 0..field.len());
            let Ok(col) = u32::try_from(col) else {
                break;
            };
            if col >= MAX_COLUMNS {
                break;
            }
            if !grid.put(row, col, field, budget) {
                break 'rows;
            }
        }
    }
    let mut book = Book::default();
    book.push(grid, budget);
    Ok(book)
}

/// Line breaks in `bytes[range]`: CRLF, LF or a lone CR each end a line.
fn line_breaks(bytes: &[u8], range: std::ops::Range<usize>) -> u64 {
    let mut n = 0u64;
    for i in range {
        match bytes.get(i) {
            Some(b'\n') => n += 1,
            Some(b'\r') if bytes.get(i + 1) != Some(&b'\n') => n += 1,
            _ => {}
        }
    }
    n
}

/// `,` unless the first non-empty line clearly uses `;` or tabs instead (more of them than
/// commas, counted outside quotes).
fn sniff_delimiter(text: &str) -> u8 {
    let Some(line) = text.lines().find(|l| !l.trim().is_empty()) else {
        return b',';
    };
    let (mut commas, mut semicolons, mut tabs) = (0usize, 0usize, 0usize);
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => commas += 1,
            ';' if !quoted => semicolons += 1,
            '\t' if !quoted => tabs += 1,
            _ => {}
        }
    }
    if tabs > commas && tabs > semicolons {
        b'\t'
    } else if semicolons > commas {
        b';'
    } else {
        b','
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_is_a_comma_unless_the_first_line_clearly_uses_another() {
        assert_eq!(sniff_delimiter("a,b,c\n1;2"), b',');
        assert_eq!(sniff_delimiter("\n\nItem;Price;Note\n"), b';');
        assert_eq!(sniff_delimiter("Part\tStock\n"), b'\t');
        assert_eq!(sniff_delimiter("\"a;b\";\"c,d\",e\n"), b',');
        assert_eq!(sniff_delimiter("Name;Amount, EUR\n"), b',');
        assert_eq!(sniff_delimiter(""), b',');
    }
}
