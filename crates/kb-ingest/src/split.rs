//! Splitting text into chunks sized in the embedder's own tokens.
//!
//! Chunks never exceed the embedder's input limit: the splitter's capacity is capped by it,
//! and the context added for embedding (title and heading path) is trimmed until the whole
//! embedding text fits.
//!
//! text-splitter sizes many candidate pieces per chunk it emits. When the embedder can give
//! the byte ranges of its tokens ([`Embedder::token_spans`]), the document is tokenized once
//! and a candidate's size is the number of tokens it overlaps ([`SpanSizer`]). Each chunk's
//! embedding text (context, blank line, chunk text) is counted exactly: when the embedder's
//! counts add up at whitespace ([`Embedder::counts_add_at_whitespace`], BERT tokenizers) and
//! the chunk is bounded by whitespace, as the context's tokens plus the document's tokens in
//! the chunk's range; otherwise by tokenizing it. Together that made splitting the kernel docs
//! with the MiniLM tokenizer several times faster (docs/BENCHMARKS.md).

use crate::loader::DocumentFormat;
use kb_core::{Chunk, Embedder};
use std::sync::Arc;
use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};

/// How to size chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitOptions {
    /// Target chunk size in tokens (capped by the embedder's limit).
    pub chunk_tokens: usize,
    /// Tokens shared by neighbouring chunks.
    pub overlap_tokens: usize,
}

impl Default for SplitOptions {
    fn default() -> Self {
        Self {
            chunk_tokens: 200,
            overlap_tokens: 0,
        }
    }
}

/// Tokens kept free in each chunk for the title and heading path added before embedding.
const CONTEXT_RESERVE: usize = 24;

/// Counts tokens with the embedder's tokenizer.
struct EmbedderSizer<'a>(&'a dyn Embedder);

impl ChunkSizer for EmbedderSizer<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0.count_tokens(chunk)
    }
}

/// Sizes pieces of one document by the tokens of the whole document they overlap.
///
/// text-splitter only ever sizes slices of the text it splits, so a piece's place in the
/// document follows from its address. A token cut by a piece's edge counts as a whole one,
/// which errs on the side of smaller chunks; anything that is not a slice of the document is
/// counted by the embedder.
struct SpanSizer<'a> {
    text: &'a str,
    /// Start and end byte offsets of the document's tokens, both ascending.
    starts: Vec<usize>,
    ends: Vec<usize>,
    embedder: &'a dyn Embedder,
}

impl<'a> SpanSizer<'a> {
    /// `None` if the spans are not in order (a tokenizer this sizer cannot reason about).
    fn new(text: &'a str, spans: Vec<(usize, usize)>, embedder: &'a dyn Embedder) -> Option<Self> {
        let in_order = spans
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
            && spans.iter().all(|(s, e)| s <= e && *e <= text.len());
        in_order.then(|| Self {
            text,
            starts: spans.iter().map(|(s, _)| *s).collect(),
            ends: spans.iter().map(|(_, e)| *e).collect(),
            embedder,
        })
    }

    /// The number of tokens of `text[start..start + len]` if it starts and ends next to ASCII
    /// whitespace (or at the document's ends) and no token crosses its edges: for an embedder
    /// whose counts add up at whitespace, exactly what counting the slice would give.
    fn tokens_between_whitespace(&self, start: usize, len: usize) -> Option<usize> {
        let end = start + len;
        let space = |b: Option<&u8>| b.is_none_or(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        let bytes = self.text.as_bytes();
        let bounded =
            space(start.checked_sub(1).and_then(|i| bytes.get(i))) && space(bytes.get(end));
        if !bounded {
            return None;
        }
        let first = self.ends.partition_point(|&e| e <= start);
        let past = self.starts.partition_point(|&s| s < end);
        // Tokens are in order: only the first and the last can cross an edge.
        let inside = first >= past || (self.starts[first] >= start && self.ends[past - 1] <= end);
        inside.then(|| past - first.min(past))
    }

    /// Byte offset of `piece` in the document, if it is a slice of it.
    fn offset_of(&self, piece: &str) -> Option<usize> {
        let base = self.text.as_ptr() as usize;
        let at = piece.as_ptr() as usize;
        (at >= base && at + piece.len() <= base + self.text.len()).then(|| at - base)
    }
}

impl ChunkSizer for SpanSizer<'_> {
    fn size(&self, piece: &str) -> usize {
        let Some(start) = self.offset_of(piece) else {
            return self.embedder.count_tokens(piece);
        };
        let end = start + piece.len();
        // Tokens that end after the piece starts and start before it ends.
        let first = self.ends.partition_point(|&e| e <= start);
        let past = self.starts.partition_point(|&s| s < end);
        past.saturating_sub(first)
    }
}

/// One chunk plus the exact text to embed for it.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitChunk {
    pub chunk: Chunk,
    pub embedding_text: String,
}

/// Splits documents for one embedder.
pub struct ChunkSplitter {
    embedder: Arc<dyn Embedder>,
    /// Chunk size and overlap in tokens, validated.
    capacity: usize,
    overlap: usize,
    max_input: usize,
}

impl std::fmt::Debug for ChunkSplitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSplitter")
            .field("embedder", &self.embedder)
            .field("max_input", &self.max_input)
            .finish_non_exhaustive()
    }
}

/// The splitter could not be configured.
#[derive(Debug, thiserror::Error)]
#[error("invalid chunking settings: {0}")]
pub struct SplitConfigError(String);

impl ChunkSplitter {
    pub fn new(
        embedder: Arc<dyn Embedder>,
        options: SplitOptions,
    ) -> Result<Self, SplitConfigError> {
        let max_input = embedder.max_input_tokens();
        if max_input <= CONTEXT_RESERVE + 8 {
            return Err(SplitConfigError(format!(
                "the embedder accepts only {max_input} tokens, too few to chunk"
            )));
        }
        let capacity = options.chunk_tokens.min(max_input - CONTEXT_RESERVE);
        if capacity < 16 {
            return Err(SplitConfigError(format!(
                "ingest.chunk_tokens = {} is too small (at least 16)",
                options.chunk_tokens
            )));
        }
        if options.overlap_tokens >= capacity / 2 {
            return Err(SplitConfigError(format!(
                "ingest.overlap_tokens = {} must be under half the chunk size ({capacity})",
                options.overlap_tokens
            )));
        }
        ChunkConfig::new(capacity)
            .with_overlap(options.overlap_tokens)
            .map_err(|e| SplitConfigError(e.to_string()))?;
        Ok(Self {
            embedder,
            capacity,
            overlap: options.overlap_tokens,
            max_input,
        })
    }

    /// Split a document's text. Byte ranges index into `text`.
    pub fn split(&self, text: &str, format: DocumentFormat, title: &str) -> Vec<SplitChunk> {
        let embedder = self.embedder.as_ref();
        let spans = embedder
            .token_spans(text)
            .and_then(|spans| SpanSizer::new(text, spans, embedder));
        match spans {
            Some(sizer) => {
                let pieces = self.pieces(text, format, &sizer);
                let counts = embedder.counts_add_at_whitespace().then_some(&sizer);
                self.chunks(text, format, title, pieces, counts)
            }
            None => {
                let pieces = self.pieces(text, format, EmbedderSizer(embedder));
                self.chunks(text, format, title, pieces, None)
            }
        }
    }

    /// Where text-splitter cuts `text`, sizing pieces with `sizer`.
    fn pieces<'t>(
        &self,
        text: &'t str,
        format: DocumentFormat,
        sizer: impl ChunkSizer,
    ) -> Vec<(usize, &'t str)> {
        let config = ChunkConfig::new(self.capacity)
            .with_overlap(self.overlap)
            .expect("BUG: the overlap was validated in ChunkSplitter::new")
            .with_sizer(sizer);
        match format {
            DocumentFormat::Markdown => MarkdownSplitter::new(config).chunk_indices(text).collect(),
            DocumentFormat::Text => TextSplitter::new(config).chunk_indices(text).collect(),
        }
    }

    /// The chunks of `text` at these pieces, with their headings and embedding texts. With
    /// `spans` (an embedder whose counts add up at whitespace), a chunk bounded by whitespace
    /// is counted from the document's tokens; any other is tokenized again.
    fn chunks(
        &self,
        text: &str,
        format: DocumentFormat,
        title: &str,
        pieces: Vec<(usize, &str)>,
        spans: Option<&SpanSizer<'_>>,
    ) -> Vec<SplitChunk> {
        let headings = match format {
            DocumentFormat::Markdown => markdown_headings(text),
            DocumentFormat::Text => Vec::new(),
        };
        pieces
            .into_iter()
            .filter(|(_, piece)| !piece.trim().is_empty())
            .enumerate()
            .map(|(ordinal, (start, piece))| {
                let mut chunk = Chunk {
                    ordinal: ordinal as u32,
                    text: piece.to_owned(),
                    heading_path: heading_path_at(&headings, start),
                    byte_start: start,
                    byte_end: start + piece.len(),
                    token_count: 0,
                };
                let own_tokens =
                    spans.and_then(|s| s.tokens_between_whitespace(start, piece.len()));
                let (embedding_text, tokens) =
                    self.fit_embedding_text(&mut chunk, title, own_tokens);
                chunk.token_count = tokens;
                SplitChunk {
                    chunk,
                    embedding_text,
                }
            })
            .collect()
    }

    /// The chunk with as much title/heading context as fits in the embedder's input.
    /// Drops outer headings first; trims `chunk.heading_path` to what was used. `own_tokens`,
    /// when known, is the chunk text's own token count: only the context is tokenized then
    /// (the embedding text is the context, a blank line, then the chunk text).
    fn fit_embedding_text(
        &self,
        chunk: &mut Chunk,
        title: &str,
        own_tokens: Option<usize>,
    ) -> (String, usize) {
        let mut title = title;
        loop {
            let text = chunk.embedding_text(title);
            let tokens = match own_tokens {
                Some(own) => match text.strip_suffix(chunk.text.as_str()) {
                    Some(context) => self.embedder.count_tokens(context) + own,
                    None => self.embedder.count_tokens(&text),
                },
                None => self.embedder.count_tokens(&text),
            };
            if tokens <= self.max_input {
                return (text, tokens);
            }
            if !chunk.heading_path.is_empty() {
                chunk.heading_path.remove(0);
            } else if !title.is_empty() {
                title = "";
            } else {
                // The splitter caps the chunk itself below the limit; reaching here means the
                // tokenizer disagrees with itself. Embed the bare chunk; the model truncates.
                return (text, tokens);
            }
        }
    }
}

/// (byte offset, level, text) of each ATX heading outside fenced code blocks.
fn markdown_headings(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut fence: Option<&str> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(f) = fence {
            if trimmed.starts_with(f) {
                fence = None;
            }
        } else if trimmed.starts_with("```") {
            fence = Some("```");
        } else if trimmed.starts_with("~~~") {
            fence = Some("~~~");
        } else if line.starts_with('#') {
            let level = line.chars().take_while(|c| *c == '#').count();
            let rest = &line[level..];
            if level <= 6 && (rest.starts_with(' ') || rest.trim().is_empty()) {
                let title = rest.trim().trim_end_matches('#').trim();
                if !title.is_empty() {
                    out.push((offset, level, title.to_owned()));
                }
            }
        }
        offset += line.len();
    }
    out
}

/// The headings in force at `offset`, outermost first.
fn heading_path_at(headings: &[(usize, usize, String)], offset: usize) -> Vec<String> {
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for (at, level, title) in headings {
        if *at > offset {
            break;
        }
        while stack.last().is_some_and(|(l, _)| *l >= *level) {
            stack.pop();
        }
        stack.push((*level, title));
    }
    stack.into_iter().map(|(_, t)| t.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use kb_core::{Embedding, InputKind, ModelError};

    /// An embedder that only counts tokens, with `count`, and gives their spans with `spans`.
    #[derive(Debug)]
    struct Counter {
        max: usize,
        count: fn(&str) -> usize,
        spans: Option<SpansFn>,
        /// Whether `count` adds up at whitespace (see `Embedder::counts_add_at_whitespace`).
        additive: bool,
    }

    type SpansFn = fn(&str) -> Vec<(usize, usize)>;

    #[async_trait]
    impl Embedder for Counter {
        async fn embed(&self, _: &[String], _: InputKind) -> Result<Vec<Embedding>, ModelError> {
            unreachable!()
        }
        fn dimensions(&self) -> usize {
            4
        }
        fn max_input_tokens(&self) -> usize {
            self.max
        }
        fn model_id(&self) -> String {
            "counter".into()
        }
        fn count_tokens(&self, text: &str) -> usize {
            (self.count)(text)
        }
        fn token_spans(&self, text: &str) -> Option<Vec<(usize, usize)>> {
            self.spans.map(|spans| spans(text))
        }
        fn counts_add_at_whitespace(&self) -> bool {
            self.additive
        }
    }

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

    fn run_counter(max: usize, spans: bool) -> Counter {
        Counter {
            max,
            count: count_runs,
            spans: spans.then_some(run_spans as SpansFn),
            additive: spans,
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
        let counter = Counter {
            max: 128,
            count: count_runs_without_body,
            spans: Some(run_spans),
            additive: true,
        };
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

    fn word_counter(max: usize) -> Counter {
        Counter {
            max,
            count: count_words,
            spans: None,
            additive: false,
        }
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

    /// The splitter against the engine's token estimate (the count the engine embedder uses)
    /// over random documents: English, Chinese, Markdown, very long words, no whitespace.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// The engine embedder's count.
        fn estimator(max: usize) -> Counter {
            Counter {
                max,
                count: kb_engine::estimate_tokens,
                spans: None,
                additive: false,
            }
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
                    prop_assert_eq!(&text[c.chunk.byte_start..c.chunk.byte_end], c.chunk.text.as_str());
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
            ]
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
                    prop_assert_eq!(&text[c.chunk.byte_start..c.chunk.byte_end], c.chunk.text.as_str());
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
}
