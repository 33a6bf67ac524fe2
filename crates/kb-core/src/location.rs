//! Where a chunk sits in its source file, in the terms a reader uses to find it: pages of a PDF,
//! slides of a deck, rows of a sheet; and the headers of an e-mail message.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The place in the source file a chunk's text came from. Pages, slides and rows are numbered
/// from 1 as the application that shows the file numbers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// Pages `first..=last` of a paged document (PDF, scanned image pages).
    Pages { first: u32, last: u32 },
    /// Slides `first..=last` of a presentation.
    Slides { first: u32, last: u32 },
    /// Rows `first..=last` of the sheet named `sheet` (row numbers as the spreadsheet shows
    /// them, the header row included in the count).
    Rows {
        sheet: String,
        first: u32,
        last: u32,
    },
}

impl fmt::Display for Location {
    /// How a citation names the place: "p. 3", "pp. 3–4", "Slide 7", "Sheet Budget, rows 2–40".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pages { first, last } if first == last => write!(f, "p. {first}"),
            Self::Pages { first, last } => write!(f, "pp. {first}–{last}"),
            Self::Slides { first, last } if first == last => write!(f, "Slide {first}"),
            Self::Slides { first, last } => write!(f, "Slides {first}–{last}"),
            Self::Rows { sheet, first, last } if first == last => {
                write!(f, "Sheet {sheet}, row {first}")
            }
            Self::Rows { sheet, first, last } => write!(f, "Sheet {sheet}, rows {first}–{last}"),
        }
    }
}

/// A mark in a document's extracted text: from byte `at` on, the text comes from `place`.
/// Readers of paged, slide and sheet formats write these as they write the text; a chunk's
/// [`Location`] is read off the marks that cover it ([`locate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub at: usize,
    pub place: Place,
}

/// What a [`Mark`] says starts at its offset. A document's readers use one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Page(u32),
    Slide(u32),
    /// Row `row` of the sheet named `sheet` (the sheet's heading and header row are marked
    /// with the header's row number).
    Row {
        sheet: Arc<str>,
        row: u32,
    },
}

/// The location of the text `start..end` of a document whose readers left `marks` (sorted by
/// offset): the pages, slides or rows that text spans. `None` when no mark covers it (the
/// format has no such places, or the text comes before the first mark). A chunk that runs
/// from one sheet into the next is located in the first.
pub fn locate(marks: &[Mark], start: usize, end: usize) -> Option<Location> {
    let before = marks.partition_point(|m| m.at <= start);
    let after = marks.partition_point(|m| m.at < end.max(start + 1));
    let in_force = before.checked_sub(1).map(|i| &marks[i]);
    let mut covering = in_force
        .into_iter()
        .chain(&marks[before..after.max(before)]);
    let first = covering.next()?;
    let widen = |(a, b): (u32, u32), n: u32| (a.min(n), b.max(n));
    match &first.place {
        Place::Page(n) => {
            let (first, last) = covering.fold((*n, *n), |range, m| match m.place {
                Place::Page(p) => widen(range, p),
                _ => range,
            });
            Some(Location::Pages { first, last })
        }
        Place::Slide(n) => {
            let (first, last) = covering.fold((*n, *n), |range, m| match m.place {
                Place::Slide(s) => widen(range, s),
                _ => range,
            });
            Some(Location::Slides { first, last })
        }
        Place::Row { sheet, row } => {
            let (first, last) = covering
                .take_while(|m| matches!(&m.place, Place::Row { sheet: s, .. } if s == sheet))
                .fold((*row, *row), |range, m| match m.place {
                    Place::Row { row, .. } => widen(range, row),
                    _ => range,
                });
            Some(Location::Rows {
                sheet: sheet.to_string(),
                first,
                last,
            })
        }
    }
}

/// The headers of an e-mail message, kept with the message's document (and the documents made
/// from its attachments) and shown in its citations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageHeaders {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// The Date header, as RFC 3339 when it could be read, else as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(at: usize, place: Place) -> Mark {
        Mark { at, place }
    }

    #[test]
    fn pages_spanned_by_a_chunk_are_its_location() {
        let marks = [
            mark(0, Place::Page(1)),
            mark(100, Place::Page(2)),
            mark(200, Place::Page(3)),
        ];
        assert_eq!(
            locate(&marks, 10, 50),
            Some(Location::Pages { first: 1, last: 1 })
        );
        assert_eq!(
            locate(&marks, 150, 250),
            Some(Location::Pages { first: 2, last: 3 })
        );
        // A chunk that ends exactly where page 3 starts is on page 2 only.
        assert_eq!(
            locate(&marks, 100, 200),
            Some(Location::Pages { first: 2, last: 2 })
        );
        assert_eq!(locate(&[], 0, 10), None);
        assert_eq!(locate(&marks[1..], 0, 50), None);
    }

    #[test]
    fn rows_are_located_in_their_sheet() {
        let (budget, staff): (Arc<str>, Arc<str>) = ("Budget".into(), "Staff".into());
        let row = |at, sheet: &Arc<str>, row| {
            mark(
                at,
                Place::Row {
                    sheet: sheet.clone(),
                    row,
                },
            )
        };
        let marks = [
            row(0, &budget, 1),
            row(10, &budget, 2),
            row(20, &budget, 3),
            row(30, &budget, 4),
            row(40, &staff, 1),
            row(50, &staff, 2),
        ];
        let rows = |sheet: &str, first, last| {
            Some(Location::Rows {
                sheet: sheet.into(),
                first,
                last,
            })
        };
        assert_eq!(locate(&marks, 12, 35), rows("Budget", 2, 4));
        assert_eq!(locate(&marks, 0, 25), rows("Budget", 1, 3));
        // Running into the next sheet keeps the first sheet's rows.
        assert_eq!(locate(&marks, 25, 60), rows("Budget", 3, 4));
        assert_eq!(locate(&marks, 45, 60), rows("Staff", 1, 2));
    }

    #[test]
    fn slides_and_labels() {
        let marks = [mark(0, Place::Slide(1)), mark(30, Place::Slide(2))];
        let loc = locate(&marks, 5, 40).unwrap();
        assert_eq!(loc, Location::Slides { first: 1, last: 2 });
        assert_eq!(loc.to_string(), "Slides 1–2");
        assert_eq!(
            Location::Slides { first: 7, last: 7 }.to_string(),
            "Slide 7"
        );
        assert_eq!(Location::Pages { first: 3, last: 3 }.to_string(), "p. 3");
        assert_eq!(
            Location::Rows {
                sheet: "Q3".into(),
                first: 2,
                last: 9
            }
            .to_string(),
            "Sheet Q3, rows 2–9"
        );
    }

    #[test]
    fn locations_serialize_with_a_kind_tag() {
        let json = serde_json::to_value(Location::Rows {
            sheet: "Budget".into(),
            first: 2,
            last: 4,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "rows", "sheet": "Budget", "first": 2, "last": 4})
        );
    }
}
