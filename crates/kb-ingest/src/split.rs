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
//!
//! # Tables keep their header
//!
//! Readers write tables as Markdown pipe tables. A chunk that starts among the body rows of a
//! pipe table ([`tables`]) is given the table's header and delimiter rows before its own text,
//! so that a row such as `| Berlin | 180 |` says what 180 is. Its byte range stays the part of
//! the document it covers itself (the rows). The repeated header counts toward the chunk's
//! size: pieces are sized with it ([`HeadedSizer`]), so the chunk still fits the embedder. A
//! table whose header takes more than half a chunk is not repeated (the rows would be left
//! too little room); a row too long for one chunk is cut as any text is, and the chunks after
//! the cut start mid-row, after the header. Plain-text documents (and so PDF text, which
//! keeps no table structure) have no tables.

use crate::loader::DocumentFormat;
use kb_core::{Chunk, Embedder};
use std::sync::Arc;
use tables::PipeTable;
use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};

mod tables;

/// How to size chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitOptions {
    /// Target chunk size in tokens (capped by the embedder's limit).
    pub chunk_tokens: usize,
    /// Tokens shared by neighbouring chunks.
    pub overlap_tokens: usize,
}

impl Default for SplitOptions {
    /// As `[ingest]` sets it by default.
    fn default() -> Self {
        crate::IngestConfig::default().split()
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
}

/// Byte offset of `piece` in `text`, if it is a slice of it.
fn offset_of(text: &str, piece: &str) -> Option<usize> {
    let base = text.as_ptr() as usize;
    let at = piece.as_ptr() as usize;
    (at >= base && at + piece.len() <= base + text.len()).then(|| at - base)
}

impl ChunkSizer for SpanSizer<'_> {
    fn size(&self, piece: &str) -> usize {
        let Some(start) = offset_of(self.text, piece) else {
            return self.embedder.count_tokens(piece);
        };
        let end = start + piece.len();
        // Tokens that end after the piece starts and start before it ends.
        let first = self.ends.partition_point(|&e| e <= start);
        let past = self.starts.partition_point(|&s| s < end);
        past.saturating_sub(first)
    }
}

/// The pipe tables of one document whose header a chunk starting among their rows repeats.
struct Headers<'t> {
    text: &'t str,
    /// Tables in document order, each with its header's token count.
    tables: Vec<(PipeTable, usize)>,
}

/// What a chunk starting at some offset repeats before its own text.
#[derive(Debug, Clone, Copy)]
struct Repeated<'t> {
    text: &'t str,
    /// Its tokens when it is a whole header (known in advance); `None` for the part of a
    /// header before a chunk that starts inside it.
    tokens: Option<usize>,
}

impl<'t> Headers<'t> {
    /// The tables of a Markdown document whose header (header and delimiter rows) takes at
    /// most half of `capacity` tokens.
    fn new(
        text: &'t str,
        format: DocumentFormat,
        embedder: &dyn Embedder,
        capacity: usize,
    ) -> Self {
        let tables = match format {
            DocumentFormat::Markdown => tables::pipe_tables(text)
                .into_iter()
                .map(|table| {
                    let tokens = embedder.count_tokens(&text[table.header.clone()]);
                    (table, tokens)
                })
                .filter(|(_, tokens)| tokens * 2 <= capacity)
                .collect(),
            DocumentFormat::Text => Vec::new(),
        };
        Self { text, tables }
    }

    /// What a chunk starting at `start` repeats: the header of the table whose body rows it
    /// starts among; the part of the header before it if it starts inside a table's header
    /// (after the header row's first byte); nothing anywhere else.
    fn at(&self, start: usize) -> Option<Repeated<'t>> {
        let past = self
            .tables
            .partition_point(|(table, _)| table.header.start < start);
        let (table, tokens) = self.tables[..past].last()?;
        if start >= table.body.end {
            None
        } else if start >= table.header.end {
            Some(Repeated {
                text: &self.text[table.header.clone()],
                tokens: Some(*tokens),
            })
        } else {
            Some(Repeated {
                text: &self.text[table.header.start..start],
                tokens: None,
            })
        }
    }
}

/// Sizes a piece of a document as the chunk it would become: with the table header it repeats
/// ([`Headers::at`]). Over a [`SpanSizer`] (`by_spans`), a whole header adds its token count to
/// the piece's; otherwise (and for part of a header) the header and the piece are counted
/// together by the embedder.
struct HeadedSizer<'a, S> {
    inner: S,
    headers: &'a Headers<'a>,
    embedder: &'a dyn Embedder,
    by_spans: bool,
}

impl<S: ChunkSizer> ChunkSizer for HeadedSizer<'_, S> {
    fn size(&self, piece: &str) -> usize {
        let repeated = offset_of(self.headers.text, piece).and_then(|at| self.headers.at(at));
        match repeated {
            None => self.inner.size(piece),
            Some(Repeated {
                tokens: Some(tokens),
                ..
            }) if self.by_spans => tokens + self.inner.size(piece),
            Some(Repeated { text, .. }) => self.embedder.count_tokens(&[text, piece].concat()),
        }
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
        let headers = Headers::new(text, format, embedder, self.capacity);
        let spans = embedder
            .token_spans(text)
            .and_then(|spans| SpanSizer::new(text, spans, embedder));
        match spans {
            Some(sizer) => {
                let headed = HeadedSizer {
                    inner: &sizer,
                    headers: &headers,
                    embedder,
                    by_spans: true,
                };
                let pieces = self.pieces(text, format, headed);
                let counts = embedder.counts_add_at_whitespace().then_some(&sizer);
                self.chunks(text, format, title, &headers, pieces, counts)
            }
            None => {
                let headed = HeadedSizer {
                    inner: EmbedderSizer(embedder),
                    headers: &headers,
                    embedder,
                    by_spans: false,
                };
                let pieces = self.pieces(text, format, headed);
                self.chunks(text, format, title, &headers, pieces, None)
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

    /// The chunks of `text` at these pieces, with their headings, repeated table headers and
    /// embedding texts. With `spans` (an embedder whose counts add up at whitespace), a chunk
    /// bounded by whitespace is counted from the document's tokens (plus its whole repeated
    /// header's, which ends with a line break); any other is tokenized again.
    fn chunks(
        &self,
        text: &str,
        format: DocumentFormat,
        title: &str,
        headers: &Headers<'_>,
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
                let repeated = headers.at(start);
                let mut chunk = Chunk {
                    ordinal: ordinal as u32,
                    text: match repeated {
                        Some(header) => [header.text, piece].concat(),
                        None => piece.to_owned(),
                    },
                    heading_path: heading_path_at(&headings, start),
                    byte_start: start,
                    byte_end: start + piece.len(),
                    token_count: 0,
                    location: None,
                };
                let own_tokens = spans.and_then(|s| {
                    let own = s.tokens_between_whitespace(start, piece.len())?;
                    match repeated {
                        None => Some(own),
                        Some(header) => header.tokens.map(|tokens| tokens + own),
                    }
                });
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
mod tests;
