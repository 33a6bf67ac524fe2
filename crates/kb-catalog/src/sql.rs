//! Helpers every query shares: error context, timestamps, and the JSON and UUID columns.

use kb_core::CatalogError;
use uuid::Uuid;

pub(crate) fn db_err(context: &str) -> impl FnOnce(sqlx::Error) -> CatalogError + '_ {
    move |e| CatalogError::database(context, e)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid, CatalogError> {
    Uuid::parse_str(s).map_err(|e| CatalogError::corrupt_because(format!("bad point id {s:?}"), e))
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    s: &str,
    what: &str,
) -> Result<T, CatalogError> {
    serde_json::from_str(s)
        .map_err(|e| CatalogError::corrupt_because(format!("bad {what} {s:?}"), e))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("BUG: catalog values always serialise")
}
