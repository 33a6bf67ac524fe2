//! Preparing one file: read it, compare it with its catalogued version, split it into the
//! chunks that need embedding. Runs on its own task, a few files ahead of the run loop.

use super::inputs::Input;
use super::report::DocumentAction;
use super::{IngestError, Ingestor};
use crate::loader::{LoadError, LoadedDocument, Quoted, load_file_with_limits};
use crate::split::SplitChunk;
use kb_core::error::chain;
use kb_core::{
    CatalogError, ChunkPayload, ChunkPoint, DocumentMeta, DocumentRecord, DocumentSource,
    Embedding, Mark, StoredChunk, content_hash, locate, point_id,
};
use std::time::Instant;

impl Ingestor {
    /// Read a file, compare it with the catalog and split it (runs as its own task, a few
    /// files ahead of the run). The documents inside it (a mailbox's messages, a message's
    /// attachments) are prepared the same way, each as a document of its own.
    pub(super) async fn prepare(self, input: Input) -> PreparedFile {
        let (mut read_ms, mut split_ms) = (0, 0);
        let t = Instant::now();
        // The real file, so that the sidecar read is the one beside it, not beside a link.
        let path = input.real.clone();
        let limits = self.options.load_limits.clone();
        let loaded = tokio::task::spawn_blocking(move || load_file_with_limits(&path, &limits))
            .await
            .expect("BUG: file loading panicked");
        read_ms += t.elapsed().as_millis() as u64;
        let mut file = PreparedFile {
            input,
            outcome: Ok(Prepared::Ignored),
            parts: Vec::new(),
            notes: Vec::new(),
            read_ms,
            split_ms,
        };
        let mut doc = match loaded {
            Ok(doc) => doc,
            Err(LoadError::Unsupported) if !file.input.explicit => return file,
            Err(e) => {
                file.outcome = Err(FileError::Skip(chain(&e).to_string()));
                return file;
            }
        };
        let parts = std::mem::take(&mut doc.parts);
        file.notes = std::mem::take(&mut doc.notes);
        let parent = doc.front_matter.clone();
        file.outcome = self.prepare_loaded(&file.input, doc, &mut split_ms).await;
        for part in parts {
            let input = file.input.part(&part.fragment);
            let mut doc = part.document;
            // A part is readable by whoever may read the file it came in, never by more: an
            // attachment's own front matter cannot widen that (nor narrow it).
            doc.front_matter.groups.clone_from(&parent.groups);
            doc.front_matter.owner = doc.front_matter.owner.or_else(|| parent.owner.clone());
            if doc.front_matter.tags.is_empty() {
                doc.front_matter.tags.clone_from(&parent.tags);
            }
            file.notes.extend(
                std::mem::take(&mut doc.notes)
                    .into_iter()
                    .map(|note| format!("{}: {note}", part.fragment)),
            );
            let outcome = self.prepare_loaded(&input, doc, &mut split_ms).await;
            file.parts.push((input, outcome));
        }
        file.split_ms = split_ms;
        file
    }

    /// Compare a loaded document with the catalog and split it.
    async fn prepare_loaded(
        &self,
        input: &Input,
        mut doc: LoadedDocument,
        split_ms: &mut u64,
    ) -> Result<Prepared, FileError> {
        let quoted = self.quotation_to_decide(&mut doc).await?;
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
        let text = std::mem::take(&mut doc.text);
        let marks = std::mem::take(&mut doc.marks);
        let unquoted = match quoted {
            Some(quoted) => {
                let own = text[..quoted.start].trim_end().to_owned();
                let pieces = self.split(own.clone(), &doc, &marks).await;
                Some(Unquoted {
                    message_id: quoted.message_id,
                    text_bytes: own.len() as u64,
                    pieces,
                })
                .filter(|u| !u.pieces.is_empty())
            }
            None => None,
        };
        let text_bytes = text.len() as u64;
        let pieces = self.split(text, &doc, &marks).await;
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
            unquoted,
        })))
    }

    /// Split a document's text into chunks located in its source.
    async fn split(&self, text: String, doc: &LoadedDocument, marks: &[Mark]) -> Vec<SplitChunk> {
        let splitter = self.splitter.clone();
        let (format, title) = (doc.format, doc.title.clone());
        let mut pieces = tokio::task::spawn_blocking(move || splitter.split(&text, format, &title))
            .await
            .expect("BUG: splitting panicked");
        for piece in &mut pieces {
            let chunk = &mut piece.chunk;
            chunk.location = locate(marks, chunk.byte_start, chunk.byte_end);
            // Byte ranges are kept in the source file's terms where the text is the file's own.
            if let Some(offset) = doc.source_offset {
                chunk.byte_start += offset;
                chunk.byte_end += offset;
            }
        }
        pieces
    }

    /// A reply's quotation of an earlier message is not indexed when that message is
    /// catalogued itself, so the same words are not indexed (and cited) twice: dropped here if
    /// it is catalogued already; else returned, for the run to decide once the documents
    /// before this one are taken (see [`OpenDocument::unquoted`]).
    async fn quotation_to_decide(
        &self,
        doc: &mut LoadedDocument,
    ) -> Result<Option<Quoted>, FileError> {
        let Some(quoted) = doc.quoted.take().filter(|q| {
            q.start < doc.text.len()
                && doc.text.is_char_boundary(q.start)
                && !doc.text[..q.start].trim().is_empty()
        }) else {
            return Ok(None);
        };
        if self
            .catalog
            .find_message(&quoted.message_id)
            .await?
            .is_some()
        {
            doc.text.truncate(quoted.start);
            doc.text.truncate(doc.text.trim_end().len());
            return Ok(None);
        }
        Ok(Some(quoted))
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
    /// The documents inside the file, each with its own input (see [`Input::part`]).
    pub(super) parts: Vec<(Input, Result<Prepared, FileError>)>,
    /// What the readers said they left out (hidden sheets, unread attachments, …).
    pub(super) notes: Vec<String>,
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
    /// For a reply that quotes a message not catalogued when it was read: its chunks without
    /// the quotation, taken instead if that message is among the documents of the run taken
    /// before it.
    pub(super) unquoted: Option<Unquoted>,
}

/// A reply's chunks without the quotation of an earlier message.
pub(super) struct Unquoted {
    /// The quoted message's Message-ID.
    pub(super) message_id: String,
    pub(super) text_bytes: u64,
    pub(super) pieces: Vec<SplitChunk>,
}

impl OpenDocument {
    /// Take the chunks without the quotation.
    pub(super) fn drop_quotation(&mut self) {
        if let Some(unquoted) = self.unquoted.take() {
            self.text_bytes = unquoted.text_bytes;
            self.outstanding = unquoted.pieces.len();
            self.pieces = unquoted.pieces;
        }
    }

    /// The Message-ID of the e-mail message this document is.
    pub(super) fn message_id(&self) -> Option<&str> {
        self.meta.message.as_ref()?.message_id.as_deref()
    }
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
