//! Who is asking: roles, access groups and the API keys that carry them.
//!
//! An API key is a high-entropy random string with a recognisable prefix ([`API_KEY_PREFIX`]);
//! only its SHA-256 ([`key_hash`]) is stored. A slow password hash would buy nothing here: the
//! key has 256 random bits, so the hash cannot be reversed by guessing, and a fast hash lets
//! every request be checked by one indexed lookup.

use crate::error::CatalogError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::{self, Debug};
use std::str::FromStr;

/// The access group that makes a document readable by everyone.
pub const PUBLIC_GROUP: &str = "all";

/// How every kb API key starts (so secret scanners and people can recognise one).
pub const API_KEY_PREFIX: &str = "kbk_";

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessRole {
    /// Ask and search, over the documents its groups may read.
    Reader,
    /// Everything: every document, document management, ingest, keys.
    Admin,
}

impl AccessRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for AccessRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccessRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reader" => Ok(Self::Reader),
            "admin" => Ok(Self::Admin),
            other => Err(format!("unknown role {other:?} (reader or admin)")),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: AccessRole,
    /// Access groups of a reader (an admin reads everything whatever its groups).
    pub groups: Vec<String>,
    /// Id of the API key, or `None` for the server's own admin token.
    pub key_id: Option<String>,
    /// Name of the key, for logs.
    pub name: String,
}

impl Principal {
    /// The holder of the server's admin token (the local CLI).
    pub fn local_admin() -> Self {
        Self {
            role: AccessRole::Admin,
            groups: Vec::new(),
            key_id: None,
            name: "local-admin".into(),
        }
    }

    /// The principal an API key stands for.
    pub fn from_key(key: &ApiKeyRecord) -> Self {
        Self {
            role: key.role,
            groups: key.groups.clone(),
            key_id: Some(key.id.clone()),
            name: key.name.clone(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == AccessRole::Admin
    }

    /// The groups to restrict a search to ([`crate::Filter::groups`]): `None` (everything)
    /// for an admin, the reader's own groups otherwise ([`PUBLIC_GROUP`] is always readable).
    pub fn readable_groups(&self) -> Option<Vec<String>> {
        match self.role {
            AccessRole::Admin => None,
            AccessRole::Reader => Some(self.groups.clone()),
        }
    }
}

/// A stored API key: everything but the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Short public id (shown by `kb keys list`, usable with `kb keys revoke`).
    pub id: String,
    /// Unique among active keys.
    pub name: String,
    pub role: AccessRole,
    pub groups: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; a revoked key authenticates nothing.
    pub revoked_at: Option<i64>,
}

/// Hex SHA-256 of an API key: what the key store keeps and looks keys up by.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Check a key name or access group name: non-empty, at most 64 characters of letters, digits,
/// `-`, `_` and `.` (so that comma-separated lists and logs stay unambiguous).
pub fn validate_name(what: &str, name: &str) -> Result<(), KeyStoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(KeyStoreError::Invalid(format!(
            "{what} {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("an active key is already named {0:?}; revoke it first or pick another name")]
    NameTaken(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] CatalogError),
}

/// Where API keys live (the catalog's SQLite database in this workspace).
#[async_trait]
pub trait KeyStore: Send + Sync + Debug {
    /// Store a new key under the hash of its secret.
    async fn insert_key(&self, key: &ApiKeyRecord, key_hash: &str) -> Result<(), KeyStoreError>;

    /// Every key, active and revoked, oldest first.
    async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, KeyStoreError>;

    /// Revoke the active key with this id or name; `None` if there is none.
    async fn revoke_key(&self, id_or_name: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError>;

    /// The active (not revoked) key whose secret hashes to `key_hash`.
    async fn find_active_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_read_everything_and_readers_their_groups() {
        let mut reader = Principal::local_admin();
        assert_eq!(reader.readable_groups(), None);

        reader.role = AccessRole::Reader;
        reader.groups = vec!["hr".into()];
        assert_eq!(reader.readable_groups(), Some(vec!["hr".to_owned()]));
    }

    #[test]
    fn roles_parse_and_print_in_lowercase() {
        assert_eq!("reader".parse::<AccessRole>(), Ok(AccessRole::Reader));
        assert_eq!(AccessRole::Admin.to_string(), "admin");
        assert!(
            "root"
                .parse::<AccessRole>()
                .unwrap_err()
                .contains("reader or admin")
        );
    }

    #[test]
    fn names_with_separators_or_spaces_are_refused() {
        assert!(validate_name("group", "finance-emea").is_ok());
        for bad in ["", "hr,finance", "two words", &"x".repeat(65)] {
            assert!(validate_name("group", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_hash_is_sha256_hex_of_the_whole_key() {
        assert_eq!(key_hash("abc"), crate::content_hash(b"abc"));
    }
}
