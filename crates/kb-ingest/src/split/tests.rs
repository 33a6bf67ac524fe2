use super::*;
use kb_testkit::memory::FakeEmbedder;

/// Tokens are runs of non-whitespace: a slice overlaps exactly as many of a text's tokens
/// as it has itself, so sizing by spans must cut exactly where counting does.
fn count_runs(text: &str) -> usize {
    text.split_whitespace().count()
}

fn run_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// Tokens are runs of non-whitespace, at most `max` per input; with `spans`, their byte
/// ranges are given and their counts add up at whitespace.
fn run_counter(max: usize, spans: bool) -> FakeEmbedder {
    let counter = FakeEmbedder::default()
        .with_max_input_tokens(max)
        .with_token_count(count_runs);
    if spans {
        counter.with_token_spans(|text| Some(run_spans(text)), true)
    } else {
        counter
    }
}

#[test]
fn span_sizer_counts_the_tokens_a_slice_overlaps() {
    let text = "alpha beta gamma délta 公司";
    let counter = run_counter(64, true);
    let sizer = SpanSizer::new(text, run_spans(text), &counter).unwrap();

    assert_eq!(sizer.size(&text[0..5]), 1, "alpha");
    assert_eq!(sizer.size(&text[3..8]), 2, "ha be: parts of two tokens");
    assert_eq!(sizer.size(&text[5..6]), 0, "a space");
    assert_eq!(sizer.size(text), 5);
    assert_eq!(
        sizer.size(&text[text.find('d').unwrap()..]),
        2,
        "délta 公司"
    );
    // Not a slice of the document: counted by the embedder.
    assert_eq!(sizer.size(&String::from("one two three")), 3);
}

#[test]
fn slices_between_whitespace_are_counted_from_the_spans_and_others_not() {
    let text = "alpha beta\tgamma.delta\nepsilon";
    let counter = run_counter(64, true);
    let sizer = SpanSizer::new(text, run_spans(text), &counter).unwrap();
    let at = |word: &str| text.find(word).unwrap();

    assert_eq!(
        sizer.tokens_between_whitespace(0, 10),
        Some(2),
        "alpha beta"
    );
    assert_eq!(sizer.tokens_between_whitespace(0, text.len()), Some(4));
    let (gamma, epsilon) = (at("gamma"), at("epsilon"));
    assert_eq!(
        sizer.tokens_between_whitespace(gamma, epsilon - 1 - gamma),
        Some(1),
        "gamma.delta, between a tab and a line break"
    );
    assert_eq!(
        sizer.tokens_between_whitespace(gamma, 5),
        None,
        "gamma: followed by a dot"
    );
    assert_eq!(sizer.tokens_between_whitespace(1, 4), None, "lpha");
    // Unicode whitespace is not trusted: BERT drops some of it (\x0b) as a control character.
    let text = "one\u{2028}two three";
    let sizer = SpanSizer::new(text, run_spans(text), &counter).unwrap();
    assert_eq!(
        sizer.tokens_between_whitespace(text.find("two").unwrap(), 3),
        None
    );
}

/// Counts whitespace runs, but refuses texts holding `BODY`: chunk texts must not be
/// tokenized again when the counts add up at whitespace.
fn count_runs_without_body(text: &str) -> usize {
    assert!(
        !text.contains("BODY"),
        "a chunk text was tokenized again: {text:?}"
    );
    count_runs(text)
}

#[test]
fn chunk_texts_are_not_tokenized_again_when_counts_add_up_at_whitespace() {
    let text = (0..300)
        .map(|i| {
            if i % 7 == 0 {
                "BODY".to_owned()
            } else {
                format!("w{i}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let counter = FakeEmbedder::default()
        .with_max_input_tokens(128)
        .with_token_count(count_runs_without_body)
        .with_token_spans(|text| Some(run_spans(text)), true);
    let splitter = ChunkSplitter::new(
        Arc::new(counter),
        SplitOptions {
            chunk_tokens: 40,
            overlap_tokens: 0,
        },
    )
    .unwrap();

    let chunks = splitter.split(
        &format!("# Leave\n\n{text}"),
        DocumentFormat::Markdown,
        "Handbook",
    );

    assert!(chunks.len() > 5, "{}", chunks.len());
    for c in &chunks {
        assert_eq!(c.chunk.token_count, count_runs(&c.embedding_text), "{c:?}");
        assert!(
            c.embedding_text.starts_with("Handbook > Leave\n\n"),
            "{c:?}"
        );
    }
}

#[test]
fn spans_out_of_order_are_not_used() {
    let counter = run_counter(64, true);
    assert!(SpanSizer::new("a b", vec![(2, 3), (0, 1)], &counter).is_none());
    assert!(SpanSizer::new("a b", vec![(0, 9)], &counter).is_none());
}

/// Whitespace words are tokens (CJK characters count one each).
fn count_words(text: &str) -> usize {
    text.split_whitespace()
        .map(|w| w.chars().filter(|c| *c as u32 >= 0x3000).count().max(1))
        .sum()
}

fn word_counter(max: usize) -> FakeEmbedder {
    FakeEmbedder::default()
        .with_max_input_tokens(max)
        .with_token_count(count_words)
}

fn splitter(max: usize, chunk: usize) -> ChunkSplitter {
    ChunkSplitter::new(
        Arc::new(word_counter(max)),
        SplitOptions {
            chunk_tokens: chunk,
            overlap_tokens: 0,
        },
    )
    .unwrap()
}

#[test]
fn chunks_carry_heading_paths_and_exact_byte_ranges() {
    let text = "# Leave\n\nIntro words here.\n\n## Vacation\n\nYou get 25 days.\n\n### Carry over\n\nFive days carry over.\n\n## Sick leave\n\nNote from day four.\n";
    let s = splitter(64, 16);

    let chunks = s.split(text, DocumentFormat::Markdown, "Leave Policy");

    assert!(!chunks.is_empty());
    for c in &chunks {
        assert_eq!(&text[c.chunk.byte_start..c.chunk.byte_end], c.chunk.text);
    }
    let sick = chunks
        .iter()
        .find(|c| c.chunk.text.contains("day four"))
        .unwrap();
    assert_eq!(sick.chunk.heading_path.last().unwrap(), "Sick leave");
}

#[test]
fn heading_path_follows_nesting() {
    let text = "# A\n## B\n### C\ntext\n## D\nmore\n";
    let h = markdown_headings(text);
    assert_eq!(
        heading_path_at(&h, text.find("text").unwrap()),
        ["A", "B", "C"]
    );
    assert_eq!(heading_path_at(&h, text.find("more").unwrap()), ["A", "D"]);
}

#[test]
fn headings_inside_code_fences_are_ignored() {
    let text = "# Real\n```\n# not a heading\n```\nbody\n";
    let h = markdown_headings(text);
    assert_eq!(h.len(), 1);
}

#[test]
fn no_chunk_exceeds_the_embedder_limit_even_with_long_context() {
    let long_heading = "word ".repeat(50);
    let text = format!(
        "# {long_heading}\n\n{}",
        "alpha beta gamma delta. ".repeat(200)
    );
    let s = splitter(48, 1000);

    let chunks = s.split(&text, DocumentFormat::Markdown, &"title ".repeat(30));

    assert!(chunks.len() > 5);
    for c in chunks {
        assert!(c.chunk.token_count <= 48, "{} tokens", c.chunk.token_count);
        assert_eq!(
            c.chunk.token_count,
            word_counter(48).count_tokens(&c.embedding_text)
        );
    }
}

#[test]
fn chinese_text_is_split_on_character_boundaries() {
    let text = "公司为上海员工发放每月五百元的通勤补贴。随当月工资一起发放。".repeat(20);
    let s = splitter(64, 40);

    let chunks = s.split(&text, DocumentFormat::Text, "");

    assert!(chunks.len() > 1);
    for c in chunks {
        assert!(text.is_char_boundary(c.chunk.byte_start));
        assert!(text.is_char_boundary(c.chunk.byte_end));
    }
}

#[test]
fn overlap_must_be_smaller_than_half_the_chunk() {
    let err = ChunkSplitter::new(
        Arc::new(word_counter(256)),
        SplitOptions {
            chunk_tokens: 100,
            overlap_tokens: 60,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("ingest.overlap_tokens"));
}

/// `chunk.text` is the document text of the chunk's byte range, preceded by what it repeats;
/// that prefix.
fn repeated<'c>(text: &str, chunk: &'c Chunk) -> &'c str {
    let own = &text[chunk.byte_start..chunk.byte_end];
    chunk.text.strip_suffix(own).unwrap_or_else(|| {
        panic!(
            "chunk text {:?} does not end with its byte range's text {own:?}",
            chunk.text
        )
    })
}

const CAPS_HEADER: &str = "| City | Daily cap (EUR) | Approver |\n| --- | ---: | --- |\n";

/// A travel policy: a heading path, a paragraph, then a table of `rows` cities.
fn caps_policy(rows: usize) -> String {
    let rows = (0..rows)
        .map(|i| format!("| City{i} | {} | Manager {i} |", 100 + i))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "# Travel\n\n## Caps per city\n\nDaily caps for hotel and meals.\n\n{CAPS_HEADER}{rows}\n\nAsk finance for anything else.\n"
    )
}

#[test]
fn chunks_starting_among_a_long_tables_rows_start_with_its_header() {
    let text = caps_policy(40);
    let body = text.find("| City0 ").unwrap();
    let s = splitter(128, 48);

    let chunks = s.split(&text, DocumentFormat::Markdown, "Travel Policy");

    let in_body: Vec<_> = chunks
        .iter()
        .filter(|c| c.chunk.byte_start >= body && text[c.chunk.byte_start..].starts_with("| City"))
        .collect();
    assert!(in_body.len() >= 3, "{chunks:#?}");
    for c in &chunks {
        let header = repeated(&text, &c.chunk);
        if c.chunk.byte_start >= body && c.chunk.byte_start < text.find("\n\nAsk").unwrap() {
            assert_eq!(header, CAPS_HEADER, "{c:?}");
            assert!(
                c.embedding_text.ends_with(&format!(
                    "\n\n{CAPS_HEADER}{}",
                    &text[c.chunk.byte_start..c.chunk.byte_end]
                )),
                "the header is embedded too: {c:?}"
            );
        } else {
            assert_eq!(header, "", "{c:?}");
        }
    }
}

#[test]
fn a_repeated_header_counts_toward_the_chunk_size() {
    let text = caps_policy(60);
    let (max, chunk) = (128, 48);
    let s = splitter(max, chunk);

    let chunks = s.split(&text, DocumentFormat::Markdown, "Travel Policy");

    assert!(chunks.iter().any(|c| c.chunk.text.starts_with(CAPS_HEADER)));
    for c in &chunks {
        let own = count_words(&c.chunk.text);
        assert!(
            own <= chunk,
            "{own} tokens in a chunk of at most {chunk}: {c:?}"
        );
        assert_eq!(c.chunk.token_count, count_words(&c.embedding_text), "{c:?}");
        assert!(c.chunk.token_count <= max, "{c:?}");
    }
}

#[test]
fn a_chunk_starting_at_the_tables_own_header_does_not_repeat_it() {
    // The paragraph fills the first chunk; the whole table fits the second.
    let table = format!("{CAPS_HEADER}| Berlin | 180 | Anna |\n| Paris | 150 | Luc |");
    let text = format!(
        "{}\n\n{table}\n",
        "Words of the introduction here. ".repeat(8)
    );
    let s = splitter(128, 40);

    let chunks = s.split(&text, DocumentFormat::Markdown, "");

    let at_table = chunks
        .iter()
        .find(|c| c.chunk.text.contains("Berlin"))
        .unwrap();
    assert_eq!(at_table.chunk.byte_start, text.find(CAPS_HEADER).unwrap());
    assert_eq!(at_table.chunk.text, table);
    assert_eq!(at_table.chunk.text.matches("| City |").count(), 1);
}

#[test]
fn two_tables_in_a_row_each_repeat_their_own_header() {
    let table = |header: &str, key: &str, rows: usize| {
        let rows = (0..rows)
            .map(|i| format!("| {key}{i} | {i} |"))
            .collect::<Vec<_>>()
            .join("\n");
        format!("| {header} | Amount |\n| --- | --- |\n{rows}")
    };
    let text = format!(
        "{}\n\n{}\n",
        table("City", "city", 30),
        table("Product", "product", 30)
    );
    let s = splitter(128, 32);

    let chunks = s.split(&text, DocumentFormat::Markdown, "");

    let (mut cities, mut products) = (0, 0);
    for c in &chunks {
        let own = &text[c.chunk.byte_start..c.chunk.byte_end];
        let header = repeated(&text, &c.chunk);
        match own.split_whitespace().nth(1) {
            Some(cell) if cell.starts_with("city") && cell != "city0" => {
                assert_eq!(header, "| City | Amount |\n| --- | --- |\n", "{c:?}");
                cities += 1;
            }
            Some(cell) if cell.starts_with("product") && cell != "product0" => {
                assert_eq!(header, "| Product | Amount |\n| --- | --- |\n", "{c:?}");
                products += 1;
            }
            _ => assert_eq!(header, "", "{c:?}"),
        }
    }
    assert!(cities >= 2 && products >= 2, "{chunks:#?}");
}

#[test]
fn a_table_inside_a_section_keeps_the_sections_heading_path() {
    let text = caps_policy(40);
    let s = splitter(128, 48);

    let chunks = s.split(&text, DocumentFormat::Markdown, "Travel Policy");

    let headed: Vec<_> = chunks
        .iter()
        .filter(|c| c.chunk.text.starts_with(CAPS_HEADER))
        .collect();
    assert!(headed.len() >= 3);
    for c in headed {
        assert_eq!(c.chunk.heading_path, ["Travel", "Caps per city"]);
        assert!(
            c.embedding_text.starts_with(&format!(
                "Travel Policy > Travel > Caps per city\n\n{CAPS_HEADER}"
            )),
            "{c:?}"
        );
    }
}

#[test]
fn a_header_wider_than_half_a_chunk_is_not_repeated() {
    let columns = 12;
    let header = format!(
        "|{}\n|{}\n",
        (0..columns)
            .map(|i| format!(" column{i} |"))
            .collect::<String>(),
        " --- |".repeat(columns)
    );
    let rows = (0..20)
        .map(|r| {
            format!(
                "|{}",
                (0..columns)
                    .map(|i| format!(" {r}.{i} |"))
                    .collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!("{header}{rows}\n");
    // The header is 50 words: more than half of a 64-token chunk.
    assert_eq!(count_words(&header), 50);
    let s = splitter(128, 64);

    let chunks = s.split(&text, DocumentFormat::Markdown, "");

    assert!(chunks.len() > 3);
    for c in &chunks {
        assert_eq!(repeated(&text, &c.chunk), "", "{c:?}");
        assert!(count_words(&c.chunk.text) <= 64);
    }
}

#[test]
fn a_row_too_long_for_one_chunk_is_cut_and_its_rest_follows_the_header() {
    let long_cell = (0..80)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let text = format!(
        "| Clause | Text |\n| --- | --- |\n| 1 | short |\n| 2 | {long_cell} |\n| 3 | end |\n"
    );
    let s = splitter(128, 32);

    let chunks = s.split(&text, DocumentFormat::Markdown, "");

    let mid_row: Vec<_> = chunks
        .iter()
        .filter(|c| text[c.chunk.byte_start..].starts_with('w'))
        .collect();
    assert!(!mid_row.is_empty(), "{chunks:#?}");
    for c in chunks
        .iter()
        .filter(|c| c.chunk.byte_start > text.find("| 1 |").unwrap())
    {
        assert_eq!(
            repeated(&text, &c.chunk),
            "| Clause | Text |\n| --- | --- |\n",
            "{c:?}"
        );
        assert!(count_words(&c.chunk.text) <= 32, "{c:?}");
    }
}

#[test]
fn plain_text_documents_have_no_tables() {
    let text = caps_policy(40);
    let s = splitter(128, 48);

    let chunks = s.split(&text, DocumentFormat::Text, "");

    assert!(chunks.len() > 3);
    for c in &chunks {
        assert_eq!(repeated(&text, &c.chunk), "");
    }
}

#[test]
fn headers_are_counted_from_the_documents_tokens_when_counts_add_up_at_whitespace() {
    let text = caps_policy(60);
    let counter = FakeEmbedder::default()
        .with_max_input_tokens(128)
        .with_token_count(count_runs_without_body)
        .with_token_spans(|text| Some(run_spans(text)), true);
    let splitter = ChunkSplitter::new(
        Arc::new(counter),
        SplitOptions {
            chunk_tokens: 40,
            overlap_tokens: 0,
        },
    )
    .unwrap();
    // Rows hold no BODY: a chunk's rows are never tokenized again, the header only once.
    let text = text.replace("Daily caps for hotel", "BODY caps for hotel");

    let chunks = splitter.split(&text, DocumentFormat::Markdown, "Handbook");

    let headed = chunks
        .iter()
        .filter(|c| c.chunk.text.starts_with(CAPS_HEADER))
        .count();
    assert!(headed >= 3, "{chunks:#?}");
    for c in &chunks {
        assert_eq!(c.chunk.token_count, count_runs(&c.embedding_text), "{c:?}");
        assert!(count_runs(&c.chunk.text) <= 40, "{c:?}");
    }
}

/// The splitter against the engine's token estimate (the count the engine embedder uses)
/// over random documents: English, Chinese, Markdown, very long words, no whitespace.
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// The engine embedder's count.
    fn estimator(max: usize) -> FakeEmbedder {
        FakeEmbedder::default()
            .with_max_input_tokens(max)
            .with_token_count(kb_engine::estimate_tokens)
    }

    const HAN: &str = "公司为上海员工发放每月五百元的通勤补贴随当月工资一起年假病假审批经理报销差旅费用安全规定办公室";
    const ENDS: [char; 3] = ['。', '！', '？'];

    fn han_sentence() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(0..HAN.chars().count(), 3..30),
            0..3usize,
        )
            .prop_map(|(chars, end)| {
                let han: Vec<char> = HAN.chars().collect();
                let mut s: String = chars.into_iter().map(|i| han[i]).collect();
                s.push(ENDS[end]);
                s
            })
    }

    fn block() -> impl Strategy<Value = String> {
        prop_oneof![
            // English sentences.
            proptest::collection::vec("[a-z]{1,10}", 3..40)
                .prop_map(|w| format!("{}.", w.join(" "))),
            // Chinese paragraphs, no whitespace at all.
            proptest::collection::vec(han_sentence(), 1..12).prop_map(|s| s.concat()),
            // Markdown headings.
            ("#{1,3}", proptest::collection::vec("[A-Za-z]{1,8}", 1..6))
                .prop_map(|(h, w)| format!("{h} {}", w.join(" "))),
            // A very long word, and a run of letters, digits and Han with no whitespace.
            "[a-z]{60,400}",
            "[a-zA-Z0-9公司员工补贴]{50,300}",
            table(),
        ]
    }

    fn document() -> impl Strategy<Value = String> {
        proptest::collection::vec((block(), prop_oneof!["\n\n", "\n", " ", ""]), 1..25)
            .prop_map(|parts| parts.into_iter().map(|(b, sep)| b + &sep).collect())
    }

    fn splitter(max: usize, chunk: usize, overlap: usize) -> ChunkSplitter {
        ChunkSplitter::new(
            Arc::new(estimator(max)),
            SplitOptions {
                chunk_tokens: chunk,
                overlap_tokens: overlap,
            },
        )
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn no_embedding_text_exceeds_the_limit_and_chunks_cut_on_characters(
            text in document(),
            title in "[A-Za-z ]{0,80}",
            max in 64usize..160,
            markdown in any::<bool>(),
        ) {
            let s = splitter(max, 1000, 0);
            let format = if markdown { DocumentFormat::Markdown } else { DocumentFormat::Text };
            let estimator = estimator(max);

            let chunks = s.split(&text, format, &title);

            prop_assert!(!text.trim().is_empty() || chunks.is_empty());
            for c in &chunks {
                let tokens = estimator.count_tokens(&c.embedding_text);
                prop_assert!(tokens <= max, "{tokens} > {max} tokens: {:?}", c.embedding_text);
                prop_assert_eq!(tokens, c.chunk.token_count);
                prop_assert!(text.is_char_boundary(c.chunk.byte_start));
                prop_assert!(text.is_char_boundary(c.chunk.byte_end));
                let own = &text[c.chunk.byte_start..c.chunk.byte_end];
                prop_assert!(c.chunk.text.ends_with(own), "{:?} is not {own:?}", c.chunk.text);
            }
        }

        #[test]
        fn neighbouring_chunks_share_at_most_the_configured_overlap(
            text in document(),
            overlap in 1usize..16,
        ) {
            let s = splitter(256, 48, overlap);
            let estimator = estimator(256);

            let chunks = s.split(&text, DocumentFormat::Text, "");

            for pair in chunks.windows(2) {
                let (a, b) = (&pair[0].chunk, &pair[1].chunk);
                prop_assert!(b.byte_start >= a.byte_start, "chunks in order");
                if b.byte_start < a.byte_end {
                    let shared = &text[b.byte_start..a.byte_end.min(b.byte_end)];
                    let tokens = estimator.count_tokens(shared);
                    prop_assert!(tokens <= overlap, "{tokens} tokens shared, overlap {overlap}: {shared:?}");
                }
            }
        }

        #[test]
        fn chinese_chunks_end_at_sentence_ends_when_sentences_fit(
            sentences in proptest::collection::vec(han_sentence(), 10..60),
        ) {
            // Every sentence (at most 30 characters + its mark, about 34 tokens) fits a chunk.
            let text = sentences.concat();
            let s = splitter(256, 40, 0);

            let chunks = s.split(&text, DocumentFormat::Text, "");

            let whole = estimator(256).count_tokens(&text);
            prop_assert!(chunks.len() > 1 || whole <= 40, "{whole} tokens in one chunk");
            for c in &chunks {
                let last = c.chunk.text.trim_end().chars().last();
                prop_assert!(
                    last.is_some_and(|l| ENDS.contains(&l)),
                    "chunk does not end a sentence: {:?}",
                    c.chunk.text
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn sizing_by_token_spans_cuts_where_counting_does(
            text in document(),
            title in "[A-Za-z ]{0,40}",
            chunk in 16usize..80,
            overlap in 0usize..8,
            markdown in any::<bool>(),
        ) {
            let format = if markdown { DocumentFormat::Markdown } else { DocumentFormat::Text };
            let options = SplitOptions { chunk_tokens: chunk, overlap_tokens: overlap };
            let by_count = ChunkSplitter::new(Arc::new(run_counter(128, false)), options).unwrap();
            let by_spans = ChunkSplitter::new(Arc::new(run_counter(128, true)), options).unwrap();

            prop_assert_eq!(
                by_spans.split(&text, format, &title),
                by_count.split(&text, format, &title)
            );
        }
    }

    /// Markdown-ish blocks for the coverage property: everything [`block`] makes, plus list
    /// items, block quotes, fenced code, a table row and runs of spaces, tabs and line breaks.
    fn markdown_block() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => block(),
            1 => proptest::collection::vec("[a-z]{1,12}( [a-z]{1,12}){0,6}", 1..6)
                .prop_map(|items| items.iter().map(|i| format!("- {i}\n")).collect()),
            1 => proptest::collection::vec("[a-z公司]{1,12}", 1..6).prop_map(|items| {
                items
                    .iter()
                    .enumerate()
                    .map(|(n, i)| format!("{}. {i}\n", n + 1))
                    .collect()
            }),
            1 => "> [a-z ]{1,60}",
            1 => "```\n[a-z =;(){}\n]{0,80}\n```",
            1 => "\\| [a-z]{1,8} \\| [0-9]{1,4} \\|",
            1 => "[ \t\n]{1,40}",
            1 => table(),
        ]
    }

    /// A pipe table: header and delimiter rows, then 1 to 60 rows of words, numbers and Han
    /// characters, some of them long.
    fn table() -> impl Strategy<Value = String> {
        (1usize..6).prop_flat_map(|columns| {
            let cell = prop_oneof![
                4 => "[A-Za-z]{1,10}( [a-z]{1,8}){0,2}",
                2 => "[0-9]{1,7}",
                1 => "[公司员工补贴]{1,8}",
                1 => "[a-z]{1,6}( [a-z]{1,6}){10,40}",
            ];
            (
                proptest::collection::vec("[A-Z][a-z]{0,10}", columns),
                proptest::collection::vec(proptest::collection::vec(cell, columns), 1..60),
            )
                .prop_map(|(header, rows)| {
                    let row = |cells: &[String]| format!("| {} |", cells.join(" | "));
                    let mut out = row(&header);
                    out.push('\n');
                    out.push_str(&format!("|{}", " --- |".repeat(header.len())));
                    for cells in &rows {
                        out.push('\n');
                        out.push_str(&row(cells));
                    }
                    out
                })
        })
    }

    /// Documents of [`markdown_block`]s with any separator, possibly starting and ending
    /// with whitespace.
    fn markdown_document() -> impl Strategy<Value = String> {
        (
            "[ \n]{0,3}",
            proptest::collection::vec(
                (
                    markdown_block(),
                    prop_oneof!["\n\n", "\n", " ", "", "\t\t\n   \n"],
                ),
                1..25,
            ),
        )
            .prop_map(|(lead, parts)| {
                lead + &parts
                    .into_iter()
                    .map(|(b, sep)| b + &sep)
                    .collect::<String>()
            })
    }

    /// The bytes of `text` that are not whitespace and that no chunk's byte range covers,
    /// as (offset, character) pairs.
    fn uncovered(text: &str, chunks: &[SplitChunk]) -> Vec<(usize, char)> {
        text.char_indices()
            .filter(|(_, c)| !c.is_whitespace())
            .filter(|(i, _)| {
                !chunks
                    .iter()
                    .any(|c| c.chunk.byte_start <= *i && *i < c.chunk.byte_end)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn chunks_cover_every_non_whitespace_byte_of_the_document(
            text in markdown_document(),
            title in "[A-Za-z ]{0,40}",
            chunk in 16usize..120,
            overlap in 0usize..8,
            markdown in any::<bool>(),
            by_spans in any::<bool>(),
        ) {
            let format = if markdown { DocumentFormat::Markdown } else { DocumentFormat::Text };
            let options = SplitOptions { chunk_tokens: chunk, overlap_tokens: overlap };
            // Both ways of sizing: the engine's estimate (counted) and whitespace-run tokens
            // with spans (the document tokenized once).
            let embedder: Arc<dyn Embedder> = if by_spans {
                Arc::new(run_counter(160, true))
            } else {
                Arc::new(estimator(160))
            };
            let s = ChunkSplitter::new(embedder, options).unwrap();

            let chunks = s.split(&text, format, &title);

            let missing = uncovered(&text, &chunks);
            prop_assert!(
                missing.is_empty(),
                "{} non-whitespace characters in no chunk, first {:?}; chunks {:?}",
                missing.len(),
                &missing[..missing.len().min(10)],
                chunks.iter().map(|c| (c.chunk.byte_start, c.chunk.byte_end)).collect::<Vec<_>>()
            );
            for c in &chunks {
                prop_assert!(c.chunk.byte_start < c.chunk.byte_end, "empty chunk {:?}", c.chunk);
                let own = &text[c.chunk.byte_start..c.chunk.byte_end];
                prop_assert!(c.chunk.text.ends_with(own), "{:?} is not {own:?}", c.chunk.text);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn chunks_among_table_rows_repeat_the_header_and_still_fit(
            before in "([A-Za-z]{1,8}[ .]){0,60}",
            table in table(),
            after in "([A-Za-z]{1,8}[ .]){0,20}",
            heading in "[A-Z][a-z]{1,10}",
            // Title and heading always fit the context reserve: the heading path stays.
            title in "([A-Z][a-z]{0,10}( [a-z]{1,8}){0,2})?",
            max in 64usize..200,
            chunk in 16usize..120,
            overlap in 0usize..8,
            by_spans in any::<bool>(),
        ) {
            let text = format!("# {heading}\n\n{before}\n\n{table}\n\n{after}");
            let header_start = text.find(&table).unwrap();
            let body_start = header_start + table.match_indices('\n').nth(1).unwrap().0 + 1;
            let body_end = header_start + table.len();
            let header = &text[header_start..body_start];
            let embedder: Arc<dyn Embedder> = if by_spans {
                Arc::new(run_counter(max, true))
            } else {
                Arc::new(estimator(max))
            };
            let options = SplitOptions { chunk_tokens: chunk, overlap_tokens: overlap };
            let s = ChunkSplitter::new(embedder.clone(), options).unwrap();
            let capacity = chunk.min(max - CONTEXT_RESERVE);
            let repeats = embedder.count_tokens(header) * 2 <= capacity;

            let chunks = s.split(&text, DocumentFormat::Markdown, &title);

            for c in &chunks {
                let tokens = embedder.count_tokens(&c.embedding_text);
                prop_assert!(tokens <= max, "{tokens} > {max} tokens: {:?}", c.embedding_text);
                prop_assert_eq!(tokens, c.chunk.token_count);
                let own = &text[c.chunk.byte_start..c.chunk.byte_end];
                let prefix = c.chunk.text.strip_suffix(own);
                prop_assert!(prefix.is_some(), "{:?} is not {own:?}", c.chunk.text);
                let prefix = prefix.unwrap_or_default();
                let start = c.chunk.byte_start;
                if repeats && (body_start..body_end).contains(&start) {
                    prop_assert_eq!(prefix, header, "chunk {:?}", c.chunk);
                } else if repeats && header_start < start && start < body_start {
                    prop_assert_eq!(prefix, &text[header_start..start]);
                } else {
                    prop_assert_eq!(prefix, "", "chunk {:?}", c.chunk);
                }
                if !prefix.is_empty() {
                    let own_size = embedder.count_tokens(&c.chunk.text);
                    prop_assert!(
                        own_size <= capacity,
                        "{own_size} tokens with the header, capacity {capacity}: {:?}",
                        c.chunk.text
                    );
                    prop_assert_eq!(&c.chunk.heading_path, std::slice::from_ref(&heading));
                }
            }
        }
    }

    #[test]
    fn the_coverage_check_finds_a_character_no_chunk_holds() {
        let text = "alpha beta 公司";
        let chunk = |start: usize, end: usize| SplitChunk {
            chunk: Chunk {
                ordinal: 0,
                text: text[start..end].to_owned(),
                heading_path: Vec::new(),
                byte_start: start,
                byte_end: end,
                token_count: 0,
                location: None,
            },
            embedding_text: String::new(),
        };

        assert!(uncovered(text, &[chunk(0, 5), chunk(6, text.len())]).is_empty());
        assert_eq!(
            uncovered(text, &[chunk(0, 5), chunk(6, 14)]),
            [(14, '司')],
            "the last character is outside both ranges"
        );
    }

    #[test]
    fn overlap_is_used_when_configured() {
        let text = (0..400)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let s = splitter(256, 48, 8);

        let chunks = s.split(&text, DocumentFormat::Text, "");

        assert!(chunks.len() > 3);
        assert!(
            chunks
                .windows(2)
                .all(|p| p[1].chunk.byte_start < p[0].chunk.byte_end)
        );
    }
}
