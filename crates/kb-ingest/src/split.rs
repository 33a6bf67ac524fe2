//! Splitting text into chunks sized in the embedder's own tokens.
//!
//! Chunks never exceed the embedder's input limit: the splitter's capacity is capped by it,
//! and the context added for embedding (title and heading path) is trimmed until the whole
//! embedding text fits.

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
struct EmbedderSizer(Arc<dyn Embedder>);

impl ChunkSizer for EmbedderSizer {
    fn size(&self, chunk: &str) -> usize {
        self.0.count_tokens(chunk)
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
    markdown: MarkdownSplitter<EmbedderSizer>,
    text: TextSplitter<EmbedderSizer>,
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
        let config = || {
            ChunkConfig::new(capacity)
                .with_overlap(options.overlap_tokens)
                .map(|c| c.with_sizer(EmbedderSizer(embedder.clone())))
                .map_err(|e| SplitConfigError(e.to_string()))
        };
        Ok(Self {
            markdown: MarkdownSplitter::new(config()?),
            text: TextSplitter::new(config()?),
            embedder: embedder.clone(),
            max_input,
        })
    }

    /// Split a document's text. Byte ranges index into `text`.
    pub fn split(&self, text: &str, format: DocumentFormat, title: &str) -> Vec<SplitChunk> {
        let pieces: Vec<(usize, &str)> = match format {
            DocumentFormat::Markdown => self.markdown.chunk_indices(text).collect(),
            DocumentFormat::Text => self.text.chunk_indices(text).collect(),
        };
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
                let (embedding_text, tokens) = self.fit_embedding_text(&mut chunk, title);
                chunk.token_count = tokens;
                SplitChunk {
                    chunk,
                    embedding_text,
                }
            })
            .collect()
    }

    /// The chunk with as much title/heading context as fits in the embedder's input.
    /// Drops outer headings first; trims `chunk.heading_path` to what was used.
    fn fit_embedding_text(&self, chunk: &mut Chunk, title: &str) -> (String, usize) {
        let mut title = title;
        loop {
            let text = chunk.embedding_text(title);
            let tokens = self.embedder.count_tokens(&text);
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

    /// Counts whitespace words as tokens (CJK characters count one each).
    #[derive(Debug)]
    struct WordCounter {
        max: usize,
    }

    #[async_trait]
    impl Embedder for WordCounter {
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
            "words".into()
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace()
                .map(|w| w.chars().filter(|c| *c as u32 >= 0x3000).count().max(1))
                .sum()
        }
    }

    fn splitter(max: usize, chunk: usize) -> ChunkSplitter {
        ChunkSplitter::new(
            Arc::new(WordCounter { max }),
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
                WordCounter { max: 48 }.count_tokens(&c.embedding_text)
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
            Arc::new(WordCounter { max: 256 }),
            SplitOptions {
                chunk_tokens: 100,
                overlap_tokens: 60,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("ingest.overlap_tokens"));
    }
}
