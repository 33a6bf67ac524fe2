use super::*;

/// A page built line by line: each line a list of `(x, text)` pieces at baseline `y`, 10 pt
/// type, lines separated as the reader separates them.
fn page(lines: &[(f32, &[(f32, &str)])]) -> PageText {
    let mut page = PageText::default();
    for (y, pieces) in lines {
        if !page.text.is_empty() {
            page.text.push('\n');
        }
        for (k, (x, text)) in pieces.iter().enumerate() {
            if k > 0 {
                page.text.push(' ');
            }
            page.begin_piece(Origin {
                x: *x,
                y: *y,
                em: 10.0,
            });
            page.text.push_str(text);
        }
    }
    page
}

/// Asserts that no table was found on `page` (`case` says which layout it is).
fn assert_no_table(page: &PageText, case: &str) {
    let blocks = page.blocks();
    assert!(
        matches!(blocks.as_slice(), [Block::Text(_)]),
        "{case}: {blocks:?}"
    );
}

fn table(rows: &[&[&str]]) -> Block {
    Block::Table(
        rows.iter()
            .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
            .collect(),
    )
}

#[test]
fn aligned_rows_between_paragraphs_become_a_table_with_its_header() {
    let page = page(&[
        (700.0, &[(72.0, "Hotel and meal allowances by grade.")]),
        (
            680.0,
            &[(72.0, "Grade"), (160.0, "Hotel cap"), (260.0, "Per diem")],
        ),
        (
            664.0,
            &[(72.0, "Staff"), (160.0, "150 EUR"), (260.0, "40 EUR")],
        ),
        (
            648.0,
            &[(72.0, "Manager"), (160.0, "200 EUR"), (260.0, "55 EUR")],
        ),
        (620.0, &[(72.0, "Book through the travel desk.")]),
    ]);

    assert_eq!(
        page.blocks(),
        [
            Block::Text("Hotel and meal allowances by grade.\n".into()),
            table(&[
                &["Grade", "Hotel cap", "Per diem"],
                &["Staff", "150 EUR", "40 EUR"],
                &["Manager", "200 EUR", "55 EUR"],
            ]),
            Block::Text("Book through the travel desk.".into()),
        ]
    );
}

#[test]
fn empty_cells_stay_in_their_column() {
    let page = page(&[
        (
            680.0,
            &[(72.0, "Grade"), (160.0, "Hotel cap"), (260.0, "Per diem")],
        ),
        (664.0, &[(72.0, "Staff"), (260.0, "40 EUR")]),
        (
            648.0,
            &[(72.0, "Manager"), (160.0, "200 EUR"), (260.0, "55 EUR")],
        ),
    ]);

    assert_eq!(
        page.blocks(),
        [table(&[
            &["Grade", "Hotel cap", "Per diem"],
            &["Staff", "", "40 EUR"],
            &["Manager", "200 EUR", "55 EUR"],
        ])]
    );
}

#[test]
fn two_rows_are_not_a_table() {
    let page = page(&[
        (680.0, &[(72.0, "Grade"), (160.0, "Hotel cap")]),
        (664.0, &[(72.0, "Staff"), (160.0, "150 EUR")]),
        (640.0, &[(72.0, "Ask the travel desk for anything else.")]),
    ]);

    assert_no_table(&page, "two rows");
}

#[test]
fn rows_off_the_header_columns_end_the_table() {
    let page = page(&[
        (680.0, &[(72.0, "Grade"), (160.0, "Hotel cap")]),
        (664.0, &[(72.0, "Staff"), (160.0, "150 EUR")]),
        (648.0, &[(72.0, "Manager"), (160.0, "200 EUR")]),
        (632.0, &[(72.0, "Note"), (190.0, "caps include tax")]),
    ]);

    let blocks = page.blocks();

    assert_eq!(
        blocks[0],
        table(&[
            &["Grade", "Hotel cap"],
            &["Staff", "150 EUR"],
            &["Manager", "200 EUR"]
        ])
    );
    assert_eq!(blocks[1], Block::Text("Note caps include tax".into()));
}

#[test]
fn two_column_prose_is_not_a_table() {
    let left = [
        "Employees who travel for work book",
        "their trains and flights through the",
        "travel desk at least two weeks before",
        "they leave, and keep every receipt",
    ];
    let right = [
        "Meals are paid at the daily rate for",
        "the city, whatever the receipts say,",
        "and hotels up to the cap for the grade",
        "of the most senior person travelling.",
    ];
    let lines: Vec<(f32, Vec<(f32, &str)>)> = (0..4)
        .map(|i| {
            (
                700.0 - 14.0 * i as f32,
                vec![(72.0, left[i]), (310.0, right[i])],
            )
        })
        .collect();
    let lines: Vec<(f32, &[(f32, &str)])> = lines.iter().map(|(y, p)| (*y, p.as_slice())).collect();

    assert_no_table(&page(&lines), "two columns");
}

#[test]
fn lists_with_markers_set_apart_are_not_tables() {
    for markers in [
        ["•", "•", "•"],
        ["1.", "2.", "3."],
        ["a)", "b)", "c)"],
        ["1", "2", "3"],
    ] {
        let page = page(&[
            (
                680.0,
                &[(72.0, markers[0]), (96.0, "Photograph the receipt")],
            ),
            (
                664.0,
                &[(72.0, markers[1]), (96.0, "Submit it within 30 days")],
            ),
            (648.0, &[(72.0, markers[2]), (96.0, "Wait for approval")]),
        ]);

        assert_no_table(&page, &format!("{markers:?}"));
    }
}

#[test]
fn a_numbered_column_with_a_header_is_still_a_table() {
    let page = page(&[
        (680.0, &[(72.0, "No."), (160.0, "Step")]),
        (664.0, &[(72.0, "1"), (160.0, "Photograph the receipt")]),
        (648.0, &[(72.0, "2"), (160.0, "Submit it")]),
    ]);

    assert!(matches!(page.blocks().as_slice(), [Block::Table(_)]));
}

/// A line of two cells 88 pt apart: baseline, first cell's x, the two texts.
type Pair = (f32, f32, &'static str, &'static str);

#[test]
fn forms_and_rows_far_apart_or_going_up_the_page_are_not_tables() {
    let layouts: [(&str, [Pair; 3]); 3] = [
        (
            "label-value form",
            [
                (680.0, 72.0, "Name:", "Dana Ortiz"),
                (664.0, 72.0, "Grade:", "Manager"),
                (648.0, 72.0, "Office:", "Berlin"),
            ],
        ),
        (
            "rows far apart",
            [
                (700.0, 72.0, "Grade", "Hotel cap"),
                (600.0, 72.0, "Staff", "150 EUR"),
                (500.0, 72.0, "Manager", "200 EUR"),
            ],
        ),
        (
            "rows going up the page",
            [
                (500.0, 72.0, "Grade", "Hotel cap"),
                (516.0, 72.0, "Staff", "150 EUR"),
                (532.0, 72.0, "Manager", "200 EUR"),
            ],
        ),
    ];
    for (layout, rows) in layouts {
        let pieces: Vec<(f32, [(f32, &str); 2])> = rows
            .iter()
            .map(|&(y, x, a, b)| (y, [(x, a), (x + 88.0, b)]))
            .collect();
        let lines: Vec<(f32, &[(f32, &str)])> =
            pieces.iter().map(|(y, p)| (*y, p.as_slice())).collect();

        assert_no_table(&page(&lines), layout);
    }
}

#[test]
fn pieces_close_together_are_one_cell() {
    // A bold word set with a move of its own: one cell, not two columns.
    let page = page(&[
        (680.0, &[(72.0, "Grade"), (160.0, "Hotel"), (170.0, "cap")]),
        (664.0, &[(72.0, "Staff"), (160.0, "150 EUR")]),
        (648.0, &[(72.0, "Manager"), (160.0, "200 EUR")]),
    ]);

    assert_eq!(
        page.blocks(),
        [table(&[
            &["Grade", "Hotel cap"],
            &["Staff", "150 EUR"],
            &["Manager", "200 EUR"]
        ])]
    );
}

#[test]
fn a_page_of_many_pieces_is_read_in_linear_time() {
    // 100,000 aligned two-piece lines of prose, then 100,000 pieces on one line.
    let mut lines: Vec<(f32, Vec<(f32, &str)>)> = (0..100_000)
        .map(|i| {
            (
                1_000_000.0 - 10.0 * i as f32,
                vec![
                    (72.0, "a line of prose in the left column"),
                    (310.0, "and its neighbour in the right one"),
                ],
            )
        })
        .collect();
    lines.push((0.0, (0..100_000).map(|i| (i as f32 * 20.0, "w")).collect()));
    let lines: Vec<(f32, &[(f32, &str)])> = lines.iter().map(|(y, p)| (*y, p.as_slice())).collect();
    let page = page(&lines);
    let started = std::time::Instant::now();

    let blocks = page.blocks();

    assert!(matches!(blocks.as_slice(), [Block::Text(_)]));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn list_markers_are_told_from_cell_values() {
    for marker in ["•", "-", "1.", "12)", "a)", "(iv)", "B."] {
        assert!(is_list_marker(marker), "{marker}");
    }
    for value in ["12", "Staff", "150 EUR", "Inc.", "No.", "2024."] {
        assert!(!is_list_marker(value), "{value}");
    }
}
