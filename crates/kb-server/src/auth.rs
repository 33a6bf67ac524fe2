//! Who is calling: `Authorization: Bearer <credential>` becomes a [`Caller`] (role and access
//! groups) for the handler, after the per-key rate limit.
//!
//! Two credentials are accepted:
//!
//! - an API key (`kb keys create`), looked up by its SHA-256 in the shared [`KeyStore`];
//! - the admin token `kb serve` makes at start and writes to `{data_dir}/server.json`, through
//!   which the local CLI sends commands to the server (an admin, never rate limited).
//!
//! Lookups are cached for `server.key_cache_secs`, hits and misses alike, so a busy key costs
//! one SQLite read per interval per process and a flood of bad keys cannot hammer the database.
//! Replicas keep no state of their own beyond that cache: a key created on any of them (or with
//! `kb keys create`) works everywhere at once, a revoked one stops working everywhere within
//! `key_cache_secs`. Rate limits are counted per process, so N replicas behind a load balancer
//! let a key make up to N times `server.rate_limit_per_minute`.
//!
//! Handlers take [`Caller`] (any valid credential) or [`Admin`] (admins only: a reader gets 403;
//! it also says whether the server token or an API key was used, see [`Credential`]).
//! A reader's searches are restricted to its groups inside the index query filter
//! ([`Principal::readable_groups`]).

use crate::error::ApiError;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use kb_config::ServerSettings;
use kb_core::{KeyStore, Principal, key_hash};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most credentials remembered at once; beyond it, unknown credentials are not cached.
const CACHE_CAPACITY: usize = 10_000;

/// Any authenticated caller: a reader or an admin.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// An authenticated admin; a reader is refused with 403.
#[derive(Debug, Clone)]
pub struct Admin {
    pub principal: Principal,
    /// What the admin authenticated with: some admin routes treat the server's own token,
    /// which only the server's machine can read, differently from an admin API key.
    pub credential: Credential,
}

/// The kind of credential a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The admin token of this server process (`{data_dir}/server.json`).
    ServerToken,
    /// An API key from the key store.
    ApiKey,
}

/// The principal and credential kind of the request, after the rate limit.
async fn authenticated(
    parts: &Parts,
    auth: &Authenticator,
) -> Result<(Principal, Credential), ApiError> {
    let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
    let (principal, credential) = auth.identify(token).await?;
    // The request span (see `crate::router`) names the key in every log line of the request.
    tracing::Span::current().record("key", principal.name.as_str());
    auth.check_rate(&principal)?;
    Ok((principal, credential))
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Arc::<Authenticator>::from_ref(state);
        let (principal, _) = authenticated(parts, &auth).await?;
        Ok(Caller(principal))
    }
}

impl<S> FromRequestParts<S> for Admin
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Arc::<Authenticator>::from_ref(state);
        let (principal, credential) = authenticated(parts, &auth).await?;
        if principal.is_admin() {
            Ok(Admin {
                principal,
                credential,
            })
        } else {
            tracing::info!(key = %principal.name, "reader key refused on an admin route");
            Err(ApiError::Forbidden)
        }
    }
}

/// The credential of `Authorization: Bearer <credential>` (scheme in any case).
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

/// Checks credentials and rate limits; shared by every handler of a server.
pub struct Authenticator {
    keys: Arc<dyn KeyStore>,
    /// SHA-256 of the admin token (the token itself is not kept).
    admin_token_hash: [u8; 32],
    ttl: Duration,
    /// Key hash → what the store said about it, and when.
    cache: Mutex<HashMap<String, Cached>>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

#[derive(Clone)]
struct Cached {
    at: Instant,
    /// `None`: no active key has this hash.
    principal: Option<Principal>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("ttl", &self.ttl)
            .field("rate_limited", &self.limiter.is_some())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(
        keys: Arc<dyn KeyStore>,
        admin_token: &SecretString,
        settings: &ServerSettings,
    ) -> Self {
        let limiter = NonZeroU32::new(settings.rate_limit_per_minute).map(|per_minute| {
            let burst = NonZeroU32::new(settings.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
        });
        Self {
            keys,
            admin_token_hash: Sha256::digest(admin_token.expose_secret().as_bytes()).into(),
            ttl: Duration::from_secs(settings.key_cache_secs),
            cache: Mutex::new(HashMap::new()),
            limiter,
        }
    }

    /// Who `credential` belongs to, or [`ApiError::Unauthorized`].
    pub async fn authenticate(&self, credential: &str) -> Result<Principal, ApiError> {
        Ok(self.identify(credential).await?.0)
    }

    /// Who `credential` belongs to and what kind of credential it is, or
    /// [`ApiError::Unauthorized`].
    pub async fn identify(&self, credential: &str) -> Result<(Principal, Credential), ApiError> {
        // Compared by digest, so the comparison's timing says nothing about the token.
        let digest: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        if digest == self.admin_token_hash {
            return Ok((Principal::local_admin(), Credential::ServerToken));
        }
        let hash = key_hash(credential);
        let principal = match self.cached(&hash) {
            Some(principal) => principal,
            None => {
                let found = self.keys.find_active_key(&hash).await?;
                let principal = found.as_ref().map(Principal::from_key);
                self.remember(hash, principal.clone());
                principal
            }
        };
        principal
            .map(|p| (p, Credential::ApiKey))
            .ok_or(ApiError::Unauthorized)
    }

    /// Count one request of `principal` against its key's limit.
    pub fn check_rate(&self, principal: &Principal) -> Result<(), ApiError> {
        let (Some(limiter), Some(key)) = (&self.limiter, &principal.key_id) else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            tracing::info!(key = %principal.name, ?wait, "rate limited");
            ApiError::RateLimited { retry_after: wait }
        })
    }

    /// The cached answer for `hash` (`Some(None)`: known to be no key), if still fresh.
    fn cached(&self, hash: &str) -> Option<Option<Principal>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(hash)
            .filter(|c| c.at.elapsed() < self.ttl)
            .map(|c| c.principal.clone())
    }

    fn remember(&self, hash: String, principal: Option<Principal>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, c| c.at.elapsed() < self.ttl);
            if cache.len() >= CACHE_CAPACITY && principal.is_none() {
                return;
            }
        }
        cache.insert(
            hash,
            Cached {
                at: Instant::now(),
                principal,
            },
        );
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use kb_core::{AccessRole, ApiKeyRecord, KeyStoreError};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// One reader key, `kbk_reader`, that can be revoked; counts lookups.
    #[derive(Debug, Default)]
    struct OneKey {
        revoked: std::sync::atomic::AtomicBool,
        lookups: AtomicUsize,
    }

    #[async_trait]
    impl KeyStore for OneKey {
        async fn insert_key(&self, _: &ApiKeyRecord, _: &str) -> Result<(), KeyStoreError> {
            unreachable!("not used by the server")
        }
        async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, KeyStoreError> {
            unreachable!("not used by the server")
        }
        async fn revoke_key(&self, _: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
            unreachable!("not used by the server")
        }
        async fn find_active_key(&self, hash: &str) -> Result<Option<ApiKeyRecord>, KeyStoreError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            let active = hash == key_hash("kbk_reader") && !self.revoked.load(Ordering::SeqCst);
            Ok(active.then(|| ApiKeyRecord {
                id: "k1".into(),
                name: "reader".into(),
                role: AccessRole::Reader,
                groups: vec!["hr".into()],
                created_at: 0,
                revoked_at: None,
            }))
        }
    }

    fn authenticator(store: Arc<OneKey>, cache_secs: u64, per_minute: u32) -> Authenticator {
        let settings = ServerSettings {
            key_cache_secs: cache_secs,
            rate_limit_per_minute: per_minute,
            rate_limit_burst: 2,
            ..ServerSettings::default()
        };
        Authenticator::new(store, &SecretString::from("admin-token"), &settings)
    }

    #[tokio::test]
    async fn api_keys_and_the_admin_token_authenticate_and_anything_else_does_not() {
        let auth = authenticator(Arc::default(), 30, 0);

        let reader = auth.authenticate("kbk_reader").await.unwrap();
        let admin = auth.authenticate("admin-token").await.unwrap();

        assert_eq!(reader.role, AccessRole::Reader);
        assert_eq!(reader.readable_groups(), Some(vec!["hr".to_owned()]));
        assert_eq!(admin, Principal::local_admin());
        for bad in ["kbk_other", "admin-token ", ""] {
            assert!(matches!(
                auth.authenticate(bad).await,
                Err(ApiError::Unauthorized)
            ));
        }
    }

    #[tokio::test]
    async fn the_server_token_and_an_api_key_are_told_apart() {
        let auth = authenticator(Arc::default(), 30, 0);

        let (_, token) = auth.identify("admin-token").await.unwrap();
        let (_, key) = auth.identify("kbk_reader").await.unwrap();

        assert_eq!(token, Credential::ServerToken);
        assert_eq!(key, Credential::ApiKey);
    }

    #[tokio::test]
    async fn lookups_are_cached_for_the_ttl_so_a_revocation_lands_within_it() {
        let store = Arc::new(OneKey::default());
        let cached = authenticator(store.clone(), 30, 0);
        let uncached = authenticator(store.clone(), 0, 0);
        cached.authenticate("kbk_reader").await.unwrap();
        let _ = cached.authenticate("kbk_bad").await;
        let _ = cached.authenticate("kbk_bad").await;

        store.revoked.store(true, Ordering::SeqCst);

        assert!(cached.authenticate("kbk_reader").await.is_ok(), "cached");
        assert_eq!(
            store.lookups.load(Ordering::SeqCst),
            2,
            "misses are cached too"
        );
        assert!(matches!(
            uncached.authenticate("kbk_reader").await,
            Err(ApiError::Unauthorized)
        ));
    }

    #[tokio::test]
    async fn each_key_gets_its_own_burst_then_429_with_a_wait() {
        let auth = authenticator(Arc::default(), 30, 1);
        let reader = auth.authenticate("kbk_reader").await.unwrap();
        let mut other = reader.clone();
        other.key_id = Some("k2".into());

        assert!(auth.check_rate(&reader).is_ok());
        assert!(auth.check_rate(&reader).is_ok());
        let limited = auth.check_rate(&reader);

        match limited {
            Err(ApiError::RateLimited { retry_after }) => {
                assert!(retry_after > Duration::from_secs(1), "{retry_after:?}");
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(
            auth.check_rate(&other).is_ok(),
            "another key is not affected"
        );
        for _ in 0..5 {
            assert!(auth.check_rate(&Principal::local_admin()).is_ok());
        }
    }
}
