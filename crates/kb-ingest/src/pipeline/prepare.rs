//! Preparing one file: read it, compare it with its catalogued version, split it into the
//! chunks that need embedding. Runs on its own task, a few files ahead of the run loop.

use super::inputs::Input;
use super::report::DocumentAction;
use super::{IngestError, Ingestor};
use crate::loader::{LoadError, LoadedDocument, load_file};
use crate::split::SplitChunk;
use kb_core::error::chain;
use kb_core::{
    CatalogError, ChunkPayload, ChunkPoint, DocumentMeta, DocumentRecord, DocumentSource,
    Embedding, StoredChunk, content_hash, locate, point_id,
};
use std::time::Instant;

impl Ingestor {
    /// Read a file, compare it with the catalog and split it (runs as its own task, a few
    /// files ahead of the run).
    pub(super) async fn prepare(self, input: Input) -> PreparedFile {
        let (mut read_ms, mut split_ms) = (0, 0);
        let outcome = self.prepare_file(&input, &mut read_ms, &mut split_ms).await;
        PreparedFile {
            input,
            outcome,
            read_ms,
            split_ms,
        }
    }

    async fn prepare_file(
        &self,
        input: &Input,
        read_ms: &mut u64,
        split_ms: &mut u64,
    ) -> Result<Prepared, FileError> {
        let t = Instant::now();
        // The real file, so that the sidecar read is the one beside it, not beside a link.
        let path = input.real.clone();
        let max = self.options.max_file_bytes;
        let loaded = tokio::task::spawn_blocking(move || load_file(&path, max))
            .await
            .expect("BUG: file loading panicked");
        *read_ms += t.elapsed().as_millis() as u64;
        let mut doc = match loaded {
            Ok(doc) => doc,
            Err(LoadError::Unsupported) if !input.explicit => return Ok(Prepared::Ignored),
            Err(e) => return Err(FileError::Skip(chain(&e).to_string())),
        };
        let existing = self.catalog.get_document(&input.id).await?;
        if let Some(existing) = &existing
            && self.is_unchanged(existing, &doc, input)
        {
            let source = input.source();
            return Ok(
                if self.options.dry_run || existing.source.as_ref() == Some(&source) {
                    Prepared::Done(DocumentAction::Unchanged)
                } else {
                    Prepared::Moved(source)
                },
            );
        }
        let action = if existing.is_some() {
            DocumentAction::Updated
        } else {
            DocumentAction::Added
        };
        if self.options.dry_run {
            return Ok(Prepared::Done(action));
        }

        let t = Instant::now();
        let splitter = self.splitter.clone();
        let text = std::mem::take(&mut doc.text);
        let text_bytes = text.len() as u64;
        let (format, title) = (doc.format, doc.title.clone());
        let mut pieces = tokio::task::spawn_blocking(move || splitter.split(&text, format, &title))
            .await
            .expect("BUG: splitting panicked");
        let marks = std::mem::take(&mut doc.marks);
        for piece in &mut pieces {
            let chunk = &mut piece.chunk;
            chunk.location = locate(&marks, chunk.byte_start, chunk.byte_end);
            // Byte ranges are kept in the source file's terms where the text is the file's own.
            if let Some(offset) = doc.source_offset {
                chunk.byte_start += offset;
                chunk.byte_end += offset;
            }
        }
        *split_ms += t.elapsed().as_millis() as u64;
        if pieces.is_empty() {
            return Err(FileError::Skip(LoadError::NoText.to_string()));
        }
        let (groups, meta) = self.document_meta(&doc, input);
        Ok(Prepared::Split(Box::new(OpenDocument {
            input: input.clone(),
            action,
            outstanding: pieces.len(),
            pieces,
            doc,
            text_bytes,
            groups,
            meta,
            refused: None,
        })))
    }

    /// A document's access groups and metadata: its own (front matter, then sidecar) field by
    /// field, else this run's defaults (`kb ingest --groups/--tags/--owner`; groups given on
    /// the command line by an earlier run for it; `ingest.default_groups`).
    fn document_meta(&self, doc: &LoadedDocument, input: &Input) -> (Vec<String>, DocumentMeta) {
        let own = &doc.front_matter;
        let default_groups = input
            .cli_groups
            .as_ref()
            .unwrap_or(&self.options.default_groups);
        let or_default = |own: &Vec<String>, default: &Vec<String>| {
            if own.is_empty() { default } else { own }.clone()
        };
        let meta = DocumentMeta {
            owner: own
                .owner
                .clone()
                .or_else(|| self.options.default_owner.clone()),
            effective_date: own.effective_date,
            tags: or_default(&own.tags, &self.options.default_tags),
            message: doc.message.clone(),
        };
        (or_default(&own.groups, default_groups), meta)
    }

    /// Whether the catalogued version is this one: same bytes, and same title, groups and
    /// metadata (a changed sidecar or `--groups` re-indexes the document).
    fn is_unchanged(&self, existing: &DocumentRecord, doc: &LoadedDocument, input: &Input) -> bool {
        let (groups, meta) = self.document_meta(doc, input);
        existing.content_hash == doc.content_hash
            && existing.title == doc.title
            && existing.groups == groups
            && existing.meta == meta
    }
}

/// Why one file was not ingested: skip it, or stop the run on an error.
pub(super) enum FileError {
    Skip(String),
    Fatal(IngestError),
}

impl From<CatalogError> for FileError {
    fn from(e: CatalogError) -> Self {
        Self::Fatal(e.into())
    }
}

/// What reading a file came to.
pub(super) enum Prepared {
    /// Not a document (an unsupported file found by walking a folder).
    Ignored,
    /// Settled without embedding: unchanged, or a dry run.
    Done(DocumentAction),
    /// Unchanged, but found at another path or under another root, or with other
    /// command-line groups: record its new source.
    Moved(DocumentSource),
    /// Split into chunks that now need embedding.
    Split(Box<OpenDocument>),
}

/// A file read and split ahead of the run, with the time it took.
pub(super) struct PreparedFile {
    pub(super) input: Input,
    pub(super) outcome: Result<Prepared, FileError>,
    pub(super) read_ms: u64,
    pub(super) split_ms: u64,
}

/// A document whose chunks are being embedded. It is committed once the last of them lands.
pub(super) struct OpenDocument {
    pub(super) input: Input,
    pub(super) action: DocumentAction,
    /// Its loaded form, without the text (the chunks hold what is needed of it).
    doc: LoadedDocument,
    text_bytes: u64,
    /// Access groups of its points.
    groups: Vec<String>,
    /// Owner, effective date and tags of its points.
    meta: DocumentMeta,
    pub(super) pieces: Vec<SplitChunk>,
    /// Chunks not embedded yet.
    pub(super) outstanding: usize,
    /// Why the model refused one of its chunks; such a document is not written.
    pub(super) refused: Option<String>,
}

impl OpenDocument {
    fn point_id(&self, piece: &SplitChunk) -> uuid::Uuid {
        point_id(&self.input.id, &self.doc.content_hash, piece.chunk.ordinal)
    }

    pub(super) fn point(&self, piece: &SplitChunk, vector: Embedding) -> ChunkPoint {
        let c = &piece.chunk;
        ChunkPoint {
            id: self.point_id(piece),
            vector,
            payload: ChunkPayload {
                doc_id: self.input.id.clone(),
                doc_hash: self.doc.content_hash.clone(),
                ordinal: c.ordinal,
                title: self.doc.title.clone(),
                path: self.input.path.display().to_string(),
                heading_path: c.heading_path.clone(),
                text: c.text.clone(),
                byte_start: c.byte_start,
                byte_end: c.byte_end,
                location: c.location.clone(),
                groups: self.groups.clone(),
                meta: self.meta.clone(),
            },
        }
    }

    pub(super) fn stored_chunks(&self) -> Vec<StoredChunk> {
        self.pieces
            .iter()
            .map(|piece| StoredChunk {
                point_id: self.point_id(piece),
                chunk_hash: content_hash(piece.chunk.text.as_bytes()),
                chunk: piece.chunk.clone(),
            })
            .collect()
    }

    pub(super) fn record(&self) -> DocumentRecord {
        DocumentRecord {
            id: self.input.id.clone(),
            path: self.input.path.display().to_string(),
            title: self.doc.title.clone(),
            content_hash: self.doc.content_hash.clone(),
            size_bytes: self.doc.size_bytes,
            text_bytes: self.text_bytes,
            chunk_count: self.pieces.len() as u32,
            groups: self.groups.clone(),
            meta: self.meta.clone(),
            created_at: 0,
            updated_at: 0,
            source: Some(self.input.source()),
        }
    }
}
