//! For tests of the Postgres backend (here and in kb-usage): a fresh database per test on the
//! server `KB_TEST_POSTGRES_URL` names (`scripts/postgres-node.sh` starts one), dropped when
//! the test ends.
//!
//! Without the variable the Postgres tests are skipped with a message, unless
//! `KB_REQUIRE_POSTGRES=1`, when they fail: a run that must cover Postgres cannot pass by
//! skipping it.

use crate::DatabaseUrl;
use secrecy::SecretString;
use sqlx::{Connection, PgConnection};

/// The server the Postgres tests use (`postgres://user@host:port/db`; `db` must exist, and
/// the user may create databases).
pub const URL_VAR: &str = "KB_TEST_POSTGRES_URL";
/// `1`: a missing [`URL_VAR`] fails the Postgres tests instead of skipping them.
pub const REQUIRE_VAR: &str = "KB_REQUIRE_POSTGRES";

/// The test server's URL, or `None` (after saying so on stderr) when [`URL_VAR`] is unset.
///
/// # Panics
/// When it is unset and [`REQUIRE_VAR`] is `1`, or when it is not a Postgres URL.
pub fn server_url(test: &str) -> Option<DatabaseUrl> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(
            DatabaseUrl::parse(SecretString::from(url)).unwrap_or_else(|e| panic!("{URL_VAR} {e}")),
        ),
        _ if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") => panic!(
            "{test}: {REQUIRE_VAR}=1 but {URL_VAR} is not set; start a server with \
             scripts/postgres-node.sh and set {URL_VAR} to the URL it prints"
        ),
        _ => {
            eprintln!(
                "{test}: skipped on Postgres: {URL_VAR} is not set (scripts/postgres-node.sh \
                 starts a server and prints its URL)"
            );
            None
        }
    }
}

/// A database of one test's own, dropped (with any connections left to it) on drop.
#[derive(Debug)]
pub struct TestDatabase {
    url: DatabaseUrl,
    server: DatabaseUrl,
    name: String,
}

impl TestDatabase {
    /// A new, empty database named after `test`; `None` when [`server_url`] is.
    ///
    /// # Panics
    /// When the server cannot be reached or refuses to create the database.
    pub async fn create(test: &str) -> Option<Self> {
        let server = server_url(test)?;
        let slug: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("kbt_{slug}_{}", hex::encode(rand::random::<[u8; 4]>()));
        let mut admin = PgConnection::connect(server.expose())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {server} ({URL_VAR}): {e}"));
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name} on {server}: {e}"));
        let _ = admin.close().await;
        Some(Self {
            url: server.with_database(&name),
            server,
            name,
        })
    }

    /// The URL of the test's database.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own
        // with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(server.expose()).await?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("cannot drop test database {}: {error}", self.name),
            Err(_) => eprintln!(
                "cannot drop test database {}: the thread panicked",
                self.name
            ),
        }
    }
}
