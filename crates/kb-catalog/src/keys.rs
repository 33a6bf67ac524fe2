//! API keys in the catalog database (`api_keys`): issued here, checked by the server.
//!
//! Keys live beside the documents because they belong to the same deployment and the same
//! backups, and every `kb serve` replica already opens this database; a separate store would
//! need its own pool and its own copy of the migrations.

use crate::SqliteCatalog;
use crate::sql::{db_err, now, parse_json, to_json};
use async_trait::async_trait;
use kb_core::{
    API_KEY_PREFIX, AccessRole, ApiKeyRecord, CatalogError, KeyStore, KeyStoreError, key_hash,
};
use secrecy::SecretString;
use sqlx::Row;

/// Random bytes in a key's secret part (256 bits).
const SECRET_BYTES: usize = 32;
/// Random bytes in a key's public id.
const ID_BYTES: usize = 6;

/// What `kb keys create` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub name: String,
    pub role: AccessRole,
    pub groups: Vec<String>,
}

impl SqliteCatalog {
    /// Make a key, store its hash, and return the record with the key itself, which is not
    /// kept anywhere: show it once.
    pub async fn issue_key(
        &self,
        new: &NewKey,
    ) -> Result<(ApiKeyRecord, SecretString), KeyStoreError> {
        kb_core::access::validate_name("key name", &new.name)?;
        for group in &new.groups {
            kb_core::access::validate_name("group", group)?;
        }
        let mut groups = new.groups.clone();
        groups.sort();
        groups.dedup();
        let secret = format!(
            "{API_KEY_PREFIX}{}",
            hex::encode(rand::random::<[u8; SECRET_BYTES]>())
        );
        let record = ApiKeyRecord {
            id: hex::encode(rand::random::<[u8; ID_BYTES]>()),
            name: new.name.clone(),
            role: new.role,
            groups,
            created_at: now(),
            revoked_at: None,
        };
        self.insert_key(&record, &key_hash(&secret)).await?;
        Ok((record, SecretString::from(secret)))
    }
}

fn key_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ApiKeyRecord, CatalogError> {
    let role: String = row.get("role");
    let groups: String = row.get("groups_json");
    Ok(ApiKeyRecord {
        id: row.get("id"),
        name: row.get("name"),
        role: role
            .parse()
            .map_err(|e: String| CatalogError::corrupt(format!("api key role: {e}")))?,
        groups: parse_json(&groups, "key groups")?,
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
    })
}

const KEY_COLUMNS: &str = "id, name, role, groups_json, created_at, revoked_at";

#[async_trait]
impl KeyStore for SqliteCatalog {
    async fn insert_key(&self, key: &ApiKeyRecord, key_hash: &str) -> Result<(), KeyStoreError> {
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, role, groups_json, created_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(key_hash)
        .bind(key.role.as_str())
        .bind(to_json(&key.groups))
        .bind(key.created_at)
        .bind(key.revoked_at)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e))
                if e.is_unique_violation() && e.message().contains("api_keys.name") =>
            {
                Err(KeyStoreError::NameTaken(key.name.clone()))
            }
            Err(e) => Err(db_err("insert api key")(e).into()),
        }
    }

    async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, KeyStoreError> {
        Ok(self
            .all_rows(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"),
                "list api keys",
                key_from_row,
            )
            .await?)
    }

    async fn revoke_key(&self, id_or_name: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        let row = sqlx::query(&format!(
            "UPDATE api_keys SET revoked_at = ? \
             WHERE revoked_at IS NULL AND (id = ? OR name = ?) RETURNING {KEY_COLUMNS}"
        ))
        .bind(now())
        .bind(id_or_name)
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("revoke api key"))?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    async fn find_active_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL"
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("find api key"))?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::catalog;
    use secrecy::ExposeSecret;

    fn reader(name: &str, groups: &[&str]) -> NewKey {
        NewKey {
            name: name.into(),
            role: AccessRole::Reader,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[tokio::test]
    async fn an_issued_key_is_found_by_its_hash_and_only_the_hash_is_stored() {
        let (cat, _dir) = catalog().await;

        let (record, key) = cat
            .issue_key(&reader("alice", &["hr", "finance", "hr"]))
            .await
            .unwrap();

        let key = key.expose_secret();
        assert!(
            key.starts_with(API_KEY_PREFIX) && key.len() == 4 + 64,
            "{key}"
        );
        assert_eq!(record.groups, vec!["finance", "hr"]);
        let found = cat.find_active_key(&key_hash(key)).await.unwrap();
        assert_eq!(found, Some(record));
        assert_eq!(
            cat.find_active_key(&key_hash("kbk_nope")).await.unwrap(),
            None
        );
        let stored: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
            .fetch_all(&cat.pool)
            .await
            .unwrap();
        assert_eq!(stored, vec![key_hash(key)]);
    }

    #[tokio::test]
    async fn a_revoked_key_stops_authenticating_and_frees_its_name() {
        let (cat, _dir) = catalog().await;
        let (first, key) = cat.issue_key(&reader("bot", &[])).await.unwrap();
        let taken = cat.issue_key(&reader("bot", &[])).await.unwrap_err();
        assert!(matches!(taken, KeyStoreError::NameTaken(_)), "{taken}");

        let revoked = cat.revoke_key("bot").await.unwrap().expect("revoked");

        assert_eq!(revoked.id, first.id);
        assert!(revoked.revoked_at.is_some());
        let hash = key_hash(key.expose_secret());
        assert_eq!(cat.find_active_key(&hash).await.unwrap(), None);
        assert_eq!(
            cat.revoke_key(&first.id).await.unwrap(),
            None,
            "already revoked"
        );
        let (second, _) = cat.issue_key(&reader("bot", &[])).await.unwrap();
        let listed = cat.list_keys().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(
            listed
                .iter()
                .any(|k| k.id == second.id && k.revoked_at.is_none())
        );
    }

    #[tokio::test]
    async fn bad_names_and_groups_are_refused_before_anything_is_stored() {
        let (cat, _dir) = catalog().await;

        assert!(cat.issue_key(&reader("a b", &[])).await.is_err());
        assert!(cat.issue_key(&reader("ok", &["hr,finance"])).await.is_err());

        assert!(cat.list_keys().await.unwrap().is_empty());
    }
}
