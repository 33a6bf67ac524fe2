//! The ledger's errors.

/// What went wrong opening, writing or reading the ledger, or in its settings.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A setting is wrong; `key` is its full name, e.g. `usage.prices."gpt-4o".input_per_million`.
    #[error("{key}: {problem}")]
    Config { key: String, problem: String },
    /// A `--since` value that is neither a duration (`7d`, `24h`, `30m`) nor a date.
    #[error("since {value:?}: {problem}")]
    Since { value: String, problem: String },
    #[error("usage database {path}")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("usage database: applying migrations")]
    Migration(#[source] sqlx::migrate::MigrateError),
    #[error("usage database: {what}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl UsageError {
    pub(crate) fn config(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn query(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Query { what, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn a_failed_query_keeps_the_database_error_as_cause() {
        // Act
        let error = UsageError::query("sum the calls")(sqlx::Error::PoolClosed);

        // Assert
        let source = error.source().expect("the sqlx error is the source");
        assert!(source.is::<sqlx::Error>(), "{source:?}");
        assert_eq!(error.to_string(), "usage database: sum the calls");
        assert!(!error.to_string().contains(&source.to_string()), "{error}");
    }
}
