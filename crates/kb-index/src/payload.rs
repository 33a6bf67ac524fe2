//! The stored layout shared by both backends: vector name, payload keys, and the conversion
//! between [`ChunkPayload`] and the JSON object Qdrant stores.

use chrono::NaiveDate;
use kb_core::{ChunkPayload, Filter, IndexError};
use serde_json::{Map, Value};

/// Name of the dense embedding vector in the collection.
pub const DENSE_VECTOR: &str = "dense";

/// Name of the sparse BM25 vector in the collection (IDF modifier): BM25 terms of the chunk's text.
pub const SPARSE_VECTOR: &str = "bm25";

/// The group that makes a document readable by everyone.
pub const PUBLIC_GROUP: &str = kb_core::PUBLIC_GROUP;

/// Payload key of the document id (keyword-indexed).
pub(crate) const DOC_ID_KEY: &str = "doc_id";

/// Payload key of the access groups (keyword-indexed).
pub(crate) const GROUPS_KEY: &str = "groups";

/// Payload key of the document's tags (keyword-indexed).
pub(crate) const TAGS_KEY: &str = "tags";

/// Payload key of the document's effective date, `YYYY-MM-DD` (datetime-indexed; Qdrant reads a
/// bare date as midnight UTC).
pub(crate) const EFFECTIVE_DATE_KEY: &str = "effective_date";

/// How a filtered payload key is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexKind {
    Keyword,
    Datetime,
}

/// Payload keys that carry an index, so filters on them stay fast on large indexes.
pub(crate) const INDEXED_KEYS: [(&str, IndexKind); 4] = [
    (DOC_ID_KEY, IndexKind::Keyword),
    (GROUPS_KEY, IndexKind::Keyword),
    (TAGS_KEY, IndexKind::Keyword),
    (EFFECTIVE_DATE_KEY, IndexKind::Datetime),
];

/// The JSON object stored as a point's payload.
pub(crate) fn to_json(payload: &ChunkPayload) -> Result<Map<String, Value>, IndexError> {
    match serde_json::to_value(payload) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(IndexError::other(format!(
            "payload of chunk {} #{} is not a JSON object: {other}",
            payload.doc_id, payload.ordinal
        ))),
        Err(err) => Err(IndexError::other_because(
            format!(
                "payload of chunk {} #{} cannot be serialized",
                payload.doc_id, payload.ordinal
            ),
            err,
        )),
    }
}

/// A stored payload back as a [`ChunkPayload`]; `point` names the point in the error.
pub(crate) fn from_json(
    map: Map<String, Value>,
    point: impl std::fmt::Display,
) -> Result<ChunkPayload, IndexError> {
    serde_json::from_value(Value::Object(map)).map_err(|err| {
        IndexError::other_because(
            format!(
                "point {point}: stored payload is not a kb chunk payload; was the index written by another tool?"
            ),
            err,
        )
    })
}

/// The payload conditions of a [`Filter`], independent of the backend's filter type.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Conditions {
    /// `doc_id` must be one of these (no restriction when `None`).
    pub doc_ids: Option<Vec<String>>,
    /// `groups` must contain one of these (no restriction when `None`).
    pub groups: Option<Vec<String>>,
    /// `tags` must contain one of these (no restriction when `None`).
    pub tags: Option<Vec<String>>,
    /// `effective_date` must lie in this inclusive range (no restriction when `None`).
    pub effective: Option<DateRange>,
}

/// An inclusive range of days; an open end is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DateRange {
    /// Seconds since the Unix epoch of midnight UTC of each end: the instants Qdrant compares
    /// stored dates with.
    pub fn unix_seconds(self) -> (Option<i64>, Option<i64>) {
        let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
        (self.from.map(midnight), self.to.map(midnight))
    }
}

impl Conditions {
    pub fn from_filter(filter: &Filter) -> Self {
        let doc_ids = (!filter.doc_ids.is_empty()).then(|| {
            filter
                .doc_ids
                .iter()
                .map(|id| id.as_str().to_owned())
                .collect()
        });
        let groups = filter.groups.as_deref().map(readable_groups);
        let tags = (!filter.tags.is_empty()).then(|| filter.tags.clone());
        let effective = (filter.effective_from.is_some() || filter.effective_to.is_some())
            .then_some(DateRange {
                from: filter.effective_from,
                to: filter.effective_to,
            });
        Self {
            doc_ids,
            groups,
            tags,
            effective,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.doc_ids.is_none()
            && self.groups.is_none()
            && self.tags.is_none()
            && self.effective.is_none()
    }

    /// The match-any conditions: payload key and the values one of which it must hold.
    pub fn keyword_matches(&self) -> impl Iterator<Item = (&'static str, &Vec<String>)> {
        [
            (DOC_ID_KEY, &self.doc_ids),
            (GROUPS_KEY, &self.groups),
            (TAGS_KEY, &self.tags),
        ]
        .into_iter()
        .filter_map(|(key, values)| Some((key, values.as_ref()?)))
    }
}

/// The `groups` values a reader in `groups` may see: theirs plus [`PUBLIC_GROUP`].
fn readable_groups(groups: &[String]) -> Vec<String> {
    let mut readable = Vec::with_capacity(groups.len() + 1);
    for group in groups.iter().map(String::as_str).chain([PUBLIC_GROUP]) {
        if !readable.iter().any(|g: &String| g == group) {
            readable.push(group.to_owned());
        }
    }
    readable
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_core::DocumentId;

    fn sample() -> ChunkPayload {
        ChunkPayload {
            doc_id: DocumentId::new("policies/leave.md"),
            doc_hash: "abc".into(),
            ordinal: 3,
            title: "Leave".into(),
            path: "policies/leave.md".into(),
            heading_path: vec!["Leave".into(), "Vacation".into()],
            text: "Employees get 25 days.".into(),
            byte_start: 10,
            byte_end: 32,
            location: Some(kb_core::Location::Pages { first: 2, last: 3 }),
            groups: vec!["hr".into()],
            meta: kb_core::DocumentMeta {
                owner: Some("People Team".into()),
                effective_date: NaiveDate::from_ymd_opt(2026, 1, 15),
                tags: vec!["leave".into()],
                message: Some(kb_core::MessageHeaders {
                    subject: Some("Leave 2026".into()),
                    ..Default::default()
                }),
            },
        }
    }

    #[test]
    fn payload_is_stored_as_flat_keys_and_reads_back_unchanged() {
        let map = to_json(&sample()).expect("serializes");

        assert_eq!(map[DOC_ID_KEY], "policies/leave.md");
        assert_eq!(map[GROUPS_KEY], serde_json::json!(["hr"]));
        assert_eq!(map[TAGS_KEY], serde_json::json!(["leave"]));
        assert_eq!(map[EFFECTIVE_DATE_KEY], "2026-01-15");
        assert_eq!(map["byte_end"], 32);
        assert_eq!(
            map["location"],
            serde_json::json!({"kind": "pages", "first": 2, "last": 3})
        );
        assert_eq!(map["message"]["subject"], "Leave 2026");
        assert_eq!(from_json(map, "p").expect("deserializes"), sample());
    }

    #[test]
    fn a_foreign_payload_keeps_the_parser_error_as_cause() {
        // Act
        let err = from_json(Map::new(), "42").expect_err("missing fields");

        // Assert
        let source = std::error::Error::source(&err).expect("the parse error is the source");
        assert!(source.is::<serde_json::Error>(), "{source:?}");
        let text = kb_core::error::chain(&err).to_string();
        assert_eq!(text.matches(&source.to_string()).count(), 1, "{text}");
    }

    #[test]
    fn a_foreign_payload_is_an_error_naming_the_point() {
        let err = from_json(Map::new(), "42").expect_err("missing fields");

        assert!(err.to_string().contains("point 42"), "{err}");
    }

    #[test]
    fn group_readers_also_see_public_documents() {
        let filter = Filter {
            groups: Some(vec!["hr".into(), "all".into(), "hr".into()]),
            ..Filter::default()
        };

        let conditions = Conditions::from_filter(&filter);

        assert_eq!(conditions.groups, Some(vec!["hr".into(), "all".into()]));
        assert_eq!(conditions.doc_ids, None);
    }

    #[test]
    fn readers_without_groups_see_only_public_documents_and_admins_see_everything() {
        let none = Conditions::from_filter(&Filter {
            groups: Some(vec![]),
            ..Filter::default()
        });
        let admin = Conditions::from_filter(&Filter::default());

        assert_eq!(none.groups, Some(vec![PUBLIC_GROUP.to_owned()]));
        assert!(admin.is_empty());
    }

    #[test]
    fn tags_and_date_ends_become_conditions_and_dates_compare_at_midnight_utc() {
        let filter = Filter {
            tags: vec!["leave".into()],
            effective_to: NaiveDate::from_ymd_opt(1970, 1, 2),
            ..Filter::default()
        };

        let conditions = Conditions::from_filter(&filter);

        let keys: Vec<_> = conditions.keyword_matches().map(|(k, _)| k).collect();
        assert_eq!(keys, [TAGS_KEY]);
        let range = conditions.effective.expect("a date range");
        assert_eq!(range.unix_seconds(), (None, Some(86_400)));
    }
}
