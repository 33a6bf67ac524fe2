//! A Postgres connection URL, whose password never reaches a log line or an error message.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// `postgres://user:password@host:port/database`: kept secret; [`Display`](fmt::Display) and
/// [`Debug`](fmt::Debug) show it with the password replaced by `***`.
#[derive(Clone)]
pub struct DatabaseUrl {
    secret: SecretString,
    /// The URL without its password, for messages.
    shown: String,
}

/// Why a catalog URL was refused. The messages never repeat the URL's password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error("must start with postgres:// or postgresql://")]
    Scheme,
    #[error("is not a URL ({0}); write it as postgres://user:password@host:port/database")]
    Malformed(String),
    #[error("names no host; write it as postgres://user:password@host:port/database")]
    NoHost,
}

impl DatabaseUrl {
    /// Check the shape of `url` (a `postgres://` or `postgresql://` URL with a host).
    pub fn parse(url: SecretString) -> Result<Self, DatabaseUrlError> {
        let text = url.expose_secret();
        let scheme_ok = ["postgres://", "postgresql://"]
            .iter()
            .any(|s| text.len() >= s.len() && text[..s.len()].eq_ignore_ascii_case(s));
        if !scheme_ok {
            return Err(DatabaseUrlError::Scheme);
        }
        // url's errors name the problem, never the input.
        let mut parsed =
            url::Url::parse(text).map_err(|e| DatabaseUrlError::Malformed(e.to_string()))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(DatabaseUrlError::NoHost);
        }
        if parsed.password().is_some() {
            parsed
                .set_password(Some("***"))
                .map_err(|()| DatabaseUrlError::NoHost)?;
        }
        Ok(Self {
            shown: parsed.to_string(),
            secret: url,
        })
    }

    /// The URL itself, password included: only for connecting.
    pub(crate) fn expose(&self) -> &str {
        self.secret.expose_secret()
    }

    /// This URL with another database name (the path), e.g. a test's own database.
    pub fn with_database(&self, database: &str) -> Self {
        let mut url = url::Url::parse(self.expose()).expect("BUG: a DatabaseUrl parses");
        url.set_path(&format!("/{database}"));
        Self::parse(SecretString::from(url.to_string()))
            .expect("BUG: a DatabaseUrl with another path is still one")
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.shown).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        DatabaseUrl::parse(SecretString::from(url.to_owned()))
    }

    #[test]
    fn the_password_is_shown_as_stars_and_kept_for_connecting() {
        // Act
        let url = parse("postgres://kb:s3cret-pw@db.internal:5433/kb?sslmode=require").unwrap();

        // Assert
        let shown = url.to_string();
        assert_eq!(
            shown,
            "postgres://kb:***@db.internal:5433/kb?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cret"), "{url:?}");
        assert!(url.expose().contains("s3cret-pw"));
    }

    #[test]
    fn both_schemes_are_taken_and_others_refused() {
        // Act + Assert
        assert!(parse("postgresql://kb@127.0.0.1/kb").is_ok());
        assert!(parse("POSTGRES://kb@127.0.0.1/kb").is_ok());
        assert_eq!(
            parse("mysql://kb:pw@127.0.0.1/kb").unwrap_err(),
            DatabaseUrlError::Scheme
        );
        assert_eq!(
            parse("/var/lib/kb.db").unwrap_err(),
            DatabaseUrlError::Scheme
        );
    }

    #[test]
    fn a_malformed_url_is_refused_without_repeating_it() {
        // Act
        let error = parse("postgres://kb:pw-123@[::1/kb")
            .unwrap_err()
            .to_string();

        // Assert
        assert!(error.starts_with("is not a URL"), "{error}");
        assert!(!error.contains("pw-123"), "{error}");
        assert_eq!(
            parse("postgres:///kb").unwrap_err(),
            DatabaseUrlError::NoHost
        );
    }

    #[test]
    fn another_database_keeps_the_rest_of_the_url() {
        // Act
        let url = parse("postgres://kb:pw@127.0.0.1:5432/kb?sslmode=disable")
            .unwrap()
            .with_database("kb_test_1");

        // Assert
        assert_eq!(
            url.expose(),
            "postgres://kb:pw@127.0.0.1:5432/kb_test_1?sslmode=disable"
        );
    }
}
