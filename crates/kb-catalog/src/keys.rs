//! API keys in the catalog database (`api_keys`): issued here, checked by the server.
//!
//! Keys live beside the documents because they belong to the same deployment and the same
//! backups, and every `kb serve` replica already opens this database; a separate store would
//! need its own pool and its own copy of the migrations. Each backend implements
//! [`KeyStore`]; making a key is the same for both.

use crate::sql::now;
use kb_core::{API_KEY_PREFIX, AccessRole, ApiKeyRecord, KeyStore, KeyStoreError, key_hash};
use secrecy::SecretString;

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

/// Make a key, store its hash in `store`, and return the record with the key itself, which
/// is not kept anywhere: show it once.
pub(crate) async fn issue_key(
    store: &(impl KeyStore + ?Sized),
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
    store.insert_key(&record, &key_hash(&secret)).await?;
    Ok((record, SecretString::from(secret)))
}
