//! Documents and chunks: what ingest produces and what the index stores.

use crate::location::{Location, MessageHeaders};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;

/// A document's stable id: its path relative to the ingest root it was first ingested from,
/// with `/` separators (e.g. `policies/leave.md`), or an explicit id given at ingest. It follows
/// the file: ingesting the same file from another folder keeps it (see
/// [`crate::DocumentSource`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocumentId(String);

impl DocumentId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for DocumentId {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Hex SHA-256 of some bytes: the content hash of documents and chunks.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Namespace for chunk point ids (a random UUID fixed forever: changing it orphans every index).
const POINT_NAMESPACE: Uuid = Uuid::from_u128(0x4b42_c0de_9f1e_4d5a_8a57_1d0c_6e2b_7f31);

/// The deterministic id of a chunk's point in the vector index.
///
/// It depends on the document id, the document's content hash and the chunk ordinal, so
/// re-ingesting unchanged content writes the same points (idempotent), while a new version of
/// a document gets new points that can be written before the old ones are removed.
pub fn point_id(doc: &DocumentId, doc_hash: &str, ordinal: u32) -> Uuid {
    let name = format!("{}\u{0}{}\u{0}{}", doc.as_str(), doc_hash, ordinal);
    Uuid::new_v5(&POINT_NAMESPACE, name.as_bytes())
}

/// One chunk of a document, as produced by the splitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub ordinal: u32,
    /// The chunk's text exactly as it appears in the document (shown in citations), except
    /// that a chunk starting among the rows of a Markdown pipe table begins with a copy of the
    /// table's header and delimiter rows, so that its rows keep their column names.
    pub text: String,
    /// Headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    /// Byte range in the document's extracted text of what the chunk covers: `text` without
    /// a repeated table header.
    pub byte_start: usize,
    pub byte_end: usize,
    /// Tokens of the embedder's tokenizer in the text that was embedded.
    pub token_count: usize,
    /// The pages, slides or rows of the source file the chunk came from, where the format has
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

impl Chunk {
    /// The text given to the embedder: title and heading path as context, then the chunk.
    pub fn embedding_text(&self, title: &str) -> String {
        contextual_text(title, &self.heading_path, &self.text)
    }
}

/// Title and heading path as context, then the text: what a chunk is embedded and indexed as.
fn contextual_text(title: &str, heading_path: &[String], text: &str) -> String {
    let mut context = String::new();
    if !title.is_empty() {
        context.push_str(title);
    }
    for heading in heading_path {
        if heading != title {
            if !context.is_empty() {
                context.push_str(" > ");
            }
            context.push_str(heading);
        }
    }
    if context.is_empty() {
        text.to_owned()
    } else {
        format!("{context}\n\n{text}")
    }
}

/// What the vector index stores beside each vector: enough to cite the chunk without
/// a round-trip to the catalog (the query service stays stateless).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkPayload {
    pub doc_id: DocumentId,
    /// Content hash of the document version this chunk belongs to.
    pub doc_hash: String,
    pub ordinal: u32,
    pub title: String,
    pub path: String,
    pub heading_path: Vec<String>,
    pub text: String,
    pub byte_start: usize,
    pub byte_end: usize,
    /// Pages, slides or rows of the source the chunk came from (see [`Chunk::location`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Access groups allowed to read the document (`all` for everyone).
    pub groups: Vec<String>,
    /// Owner, effective date and tags of the document (flat keys in the index payload).
    #[serde(flatten)]
    pub meta: DocumentMeta,
}

/// What a document says about itself besides its title and access groups: from Markdown front
/// matter, a `<file>.meta.yaml` sidecar, or `kb ingest` flags. Stored in the catalog and in every
/// chunk's index payload, where `tags` and `effective_date` can be filtered on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentMeta {
    /// Who answers for the document (a person, a team, an address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The day the document takes effect (ISO 8601, `YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<NaiveDate>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The headers of the e-mail message the document is (or is an attachment of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageHeaders>,
}

impl ChunkPayload {
    /// The text the index derives the chunk's BM25 terms from: the same context and text the
    /// chunk was embedded as (see [`Chunk::embedding_text`]).
    pub fn indexed_text(&self) -> String {
        contextual_text(&self.title, &self.heading_path, &self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_are_deterministic_and_version_specific() {
        let doc = DocumentId::new("policies/leave.md");
        assert_eq!(point_id(&doc, "abc", 3), point_id(&doc, "abc", 3));
        assert_ne!(point_id(&doc, "abc", 3), point_id(&doc, "abd", 3));
        assert_ne!(point_id(&doc, "abc", 3), point_id(&doc, "abc", 4));
    }

    #[test]
    fn embedding_text_carries_title_and_headings_once() {
        let chunk = Chunk {
            ordinal: 0,
            text: "Employees get 25 days.".into(),
            heading_path: vec!["Leave Policy".into(), "Vacation".into()],
            byte_start: 0,
            byte_end: 22,
            token_count: 6,
            location: None,
        };
        assert_eq!(
            chunk.embedding_text("Leave Policy"),
            "Leave Policy > Vacation\n\nEmployees get 25 days."
        );
    }

    #[test]
    fn metadata_is_stored_as_flat_payload_keys_and_may_be_absent() {
        let json = serde_json::json!({
            "doc_id": "a.md", "doc_hash": "h", "ordinal": 0, "title": "A", "path": "a.md",
            "heading_path": [], "text": "t", "byte_start": 0, "byte_end": 1, "groups": ["all"],
        });
        let old: ChunkPayload = serde_json::from_value(json.clone()).expect("old payloads read");
        assert_eq!(old.meta, DocumentMeta::default());

        let mut new = old;
        new.meta = DocumentMeta {
            owner: Some("People Team".into()),
            effective_date: NaiveDate::from_ymd_opt(2026, 1, 15),
            tags: vec!["leave".into()],
            message: None,
        };
        let value = serde_json::to_value(&new).unwrap();
        assert_eq!(value["effective_date"], "2026-01-15");
        assert_eq!(value["tags"], serde_json::json!(["leave"]));
        assert_eq!(value["owner"], "People Team");
        assert_eq!(serde_json::from_value::<ChunkPayload>(value).unwrap(), new);
    }

    #[test]
    fn content_hash_is_sha256_hex() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
