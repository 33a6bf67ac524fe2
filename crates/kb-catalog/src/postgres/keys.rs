//! [`KeyStore`] for [`PgCatalog`].

use super::PgCatalog;
use crate::rows::{KEY_COLUMNS, key_from_row};
use crate::sql::{db_err, now, to_json};
use async_trait::async_trait;
use kb_core::{ApiKeyRecord, KeyStore, KeyStoreError};

/// The partial unique index that keeps one active key per name (migration 3).
const ACTIVE_NAME_INDEX: &str = "api_keys_active_name";

#[async_trait]
impl KeyStore for PgCatalog {
    async fn insert_key(&self, key: &ApiKeyRecord, key_hash: &str) -> Result<(), KeyStoreError> {
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, role, groups_json, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
                if e.is_unique_violation() && e.constraint() == Some(ACTIVE_NAME_INDEX) =>
            {
                Err(KeyStoreError::NameTaken(key.name.clone()))
            }
            Err(e) => Err(db_err("insert api key")(e).into()),
        }
    }

    async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, KeyStoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id COLLATE \"C\""
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list api keys"))?;
        Ok(rows.iter().map(key_from_row).collect::<Result<_, _>>()?)
    }

    async fn revoke_key(&self, id_or_name: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        // Two processes revoking one key at once: the second waits for the first's row lock,
        // then finds the key revoked and revokes nothing.
        let row = sqlx::query(&format!(
            "UPDATE api_keys SET revoked_at = $1 \
             WHERE revoked_at IS NULL AND (id = $2 OR name = $2) RETURNING {KEY_COLUMNS}"
        ))
        .bind(now())
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("revoke api key"))?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    async fn find_active_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err("find api key"))?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }
}
