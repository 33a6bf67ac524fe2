//! Sums of the ledger for `kb usage`: by model, endpoint, day or kind, since a time.

use crate::config::Price;
use crate::db::{Pool, UsageDb};
use crate::error::UsageError;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// What the rows of a report are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The model id sent to the engine.
    #[default]
    Model,
    /// The endpoint's configured name.
    Endpoint,
    /// The UTC day of the call, `YYYY-MM-DD`.
    Day,
    /// `embed` or `chat`.
    Kind,
}

impl GroupBy {
    /// The SQL expression of the row key (a fixed string: nothing from the user).
    fn column(self, pool: &Pool) -> &'static str {
        match (self, pool) {
            (Self::Model, _) => "model",
            (Self::Endpoint, _) => "endpoint",
            (Self::Day, Pool::Sqlite(_)) => "strftime('%Y-%m-%d', at_ms / 1000, 'unixepoch')",
            (Self::Day, Pool::Postgres(_)) => {
                "to_char(to_timestamp(at_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            }
            (Self::Kind, _) => "kind",
        }
    }
}

/// The key of the total row: a typed constant (Postgres refuses to group by a bare literal).
const TOTAL_KEY: &str = "CAST('total' AS TEXT)";

impl FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "model" => Ok(Self::Model),
            "endpoint" => Ok(Self::Endpoint),
            "day" => Ok(Self::Day),
            "kind" => Ok(Self::Kind),
            other => Err(format!("{other:?}: expected model, endpoint, day or kind")),
        }
    }
}

/// The start of a report's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since(pub DateTime<Utc>);

impl Since {
    /// `7d`, `24h`, `30m` (before `now`), or a day `2026-11-01` (its UTC midnight), or an
    /// RFC 3339 time.
    pub fn parse(value: &str, now: DateTime<Utc>) -> Result<Self, UsageError> {
        let problem = |problem: &str| UsageError::Since {
            value: value.to_owned(),
            problem: problem.to_owned(),
        };
        let value = value.trim();
        if let Some(unit) = value.chars().last().filter(char::is_ascii_alphabetic)
            && let Ok(n) = value[..value.len() - 1].parse::<u32>()
        {
            let span = match unit {
                'd' => chrono::Duration::days(n.into()),
                'h' => chrono::Duration::hours(n.into()),
                'm' => chrono::Duration::minutes(n.into()),
                _ => {
                    return Err(problem(
                        "the unit must be d (days), h (hours) or m (minutes)",
                    ));
                }
            };
            return now
                .checked_sub_signed(span)
                .map(Self)
                .ok_or_else(|| problem("too far back"));
        }
        if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            let midnight = day.and_hms_opt(0, 0, 0).expect("BUG: midnight exists");
            return Ok(Self(midnight.and_utc()));
        }
        DateTime::parse_from_rfc3339(value)
            .map(|t| Self(t.with_timezone(&Utc)))
            .map_err(|_| {
                problem(
                    "expected a duration (7d, 24h, 30m), a day (2026-11-01) or an RFC 3339 time",
                )
            })
    }

    fn unix_ms(self) -> i64 {
        self.0.timestamp_millis()
    }
}

impl Serialize for Since {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

/// One row of a report (or its total).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    /// The model, endpoint, day or kind; `total` for the total.
    pub key: String,
    /// Attempts sent to an engine, retries included.
    pub calls: u64,
    /// Attempts whose outcome is not `ok`.
    pub failures: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// With the price table; `None` when tokens of a model without a price are in the row.
    pub cost: Option<f64>,
    /// Latency percentiles of the successful attempts (nearest rank); `None` without any.
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
}

impl UsageRow {
    fn new(key: String) -> Self {
        Self {
            key,
            calls: 0,
            failures: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost: Some(0.0),
            latency_p50_ms: None,
            latency_p95_ms: None,
        }
    }
}

/// The ledger summed over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport {
    /// Start of the window; `None`: every record.
    pub since: Option<Since>,
    pub by: GroupBy,
    /// Sorted by key.
    pub rows: Vec<UsageRow>,
    pub total: UsageRow,
    /// Models with tokens in the window but no price (their rows and the total have no cost).
    pub unpriced_models: Vec<String>,
}

/// Sum the ledger's calls since `since` by `by`, priced with `prices` (by model id).
pub async fn report(
    db: &UsageDb,
    since: Option<Since>,
    by: GroupBy,
    prices: &BTreeMap<String, Price>,
) -> Result<UsageReport, UsageError> {
    let since_ms = since.map_or(i64::MIN, Since::unix_ms);
    let mut rows: BTreeMap<String, UsageRow> = BTreeMap::new();
    let mut total = UsageRow::new("total".to_owned());
    let mut unpriced = BTreeSet::new();

    // Sums are cast to BIGINT: Postgres' SUM of BIGINT is NUMERIC.
    let sums: Vec<(String, String, i64, i64, i64, i64)> = fetch(
        db,
        &format!(
            "SELECT {key} AS k, model, COUNT(*) AS calls, \
                    CAST(SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END) AS BIGINT) AS failures, \
                    CAST(SUM(prompt_tokens) AS BIGINT) AS prompt, \
                    CAST(SUM(completion_tokens) AS BIGINT) AS completion \
             FROM engine_calls WHERE at_ms >= {since} GROUP BY k, model",
            key = by.column(&db.pool),
            since = placeholder(&db.pool),
        ),
        since_ms,
    )
    .await
    .map_err(UsageError::query("summing calls"))?;
    for (key, model, calls, failures, prompt, completion) in sums {
        let (prompt, completion) = (unsigned(prompt), unsigned(completion));
        let cost = match prices.get(&model) {
            Some(price) => Some(price.cost(prompt, completion)),
            None if prompt + completion == 0 => Some(0.0),
            None => {
                unpriced.insert(model);
                None
            }
        };
        for row in [
            rows.entry(key.clone())
                .or_insert_with(|| UsageRow::new(key)),
            &mut total,
        ] {
            row.calls += unsigned(calls);
            row.failures += unsigned(failures);
            row.prompt_tokens += prompt;
            row.completion_tokens += completion;
            row.cost = row.cost.zip(cost).map(|(a, b)| a + b);
        }
    }

    for (key, p50, p95) in percentiles(db, by.column(&db.pool), since_ms).await? {
        if let Some(row) = rows.get_mut(&key) {
            (row.latency_p50_ms, row.latency_p95_ms) = (Some(p50), Some(p95));
        }
    }
    if let Some((_, p50, p95)) = percentiles(db, TOTAL_KEY, since_ms).await?.pop() {
        (total.latency_p50_ms, total.latency_p95_ms) = (Some(p50), Some(p95));
    }
    Ok(UsageReport {
        since,
        by,
        rows: rows.into_values().collect(),
        total,
        unpriced_models: unpriced.into_iter().collect(),
    })
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// The one parameter of a report query, in the backend's dialect.
fn placeholder(pool: &Pool) -> &'static str {
    match pool {
        Pool::Sqlite(_) => "?",
        Pool::Postgres(_) => "$1",
    }
}

/// The rows of `sql`, whose one parameter is `since_ms`.
async fn fetch<T>(db: &UsageDb, sql: &str, since_ms: i64) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    match &db.pool {
        Pool::Sqlite(pool) => sqlx::query_as(sql).bind(since_ms).fetch_all(pool).await,
        Pool::Postgres(pool) => sqlx::query_as(sql).bind(since_ms).fetch_all(pool).await,
    }
}

/// p50 and p95 (nearest rank) of the successful calls' latency per `key`, computed by the
/// database with window functions so that no row leaves it.
async fn percentiles(
    db: &UsageDb,
    key: &str,
    since_ms: i64,
) -> Result<Vec<(String, u64, u64)>, UsageError> {
    let rows: Vec<(String, Option<i64>, Option<i64>)> = fetch(
        db,
        &format!(
            "SELECT k, \
                    MIN(CASE WHEN rn = (n * 50 + 99) / 100 THEN latency_ms END) AS p50, \
                    MIN(CASE WHEN rn = (n * 95 + 99) / 100 THEN latency_ms END) AS p95 \
             FROM (SELECT {key} AS k, latency_ms, \
                          ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY latency_ms) AS rn, \
                          COUNT(*) OVER (PARTITION BY {key}) AS n \
                   FROM engine_calls WHERE at_ms >= {since} AND outcome = 'ok') AS ok_calls \
             GROUP BY k",
            since = placeholder(&db.pool),
        ),
        since_ms,
    )
    .await
    .map_err(UsageError::query("latency percentiles"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, p50, p95)| Some((key, unsigned(p50?), unsigned(p95?))))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    #[test]
    fn since_takes_days_hours_and_minutes_before_now() {
        // Act
        let week = Since::parse("7d", now()).unwrap();
        let day = Since::parse("24h", now()).unwrap();
        let half_hour = Since::parse("30m", now()).unwrap();

        // Assert
        assert_eq!(
            week.0,
            Utc.with_ymd_and_hms(2026, 11, 19, 12, 0, 0).unwrap()
        );
        assert_eq!(day.0, Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap());
        assert_eq!(
            half_hour.0,
            Utc.with_ymd_and_hms(2026, 11, 26, 11, 30, 0).unwrap()
        );
    }

    #[test]
    fn since_takes_a_day_as_its_utc_midnight_and_rfc3339_times() {
        // Act
        let day = Since::parse("2026-11-01", now()).unwrap();
        let time = Since::parse("2026-11-01T08:00:00+01:00", now()).unwrap();

        // Assert
        assert_eq!(day.0, Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
        assert_eq!(time.0, Utc.with_ymd_and_hms(2026, 11, 1, 7, 0, 0).unwrap());
        assert_eq!(serde_json::to_value(day).unwrap(), "2026-11-01T00:00:00Z");
    }

    #[test]
    fn since_refuses_other_units_and_shapes_naming_the_value() {
        // Act
        let unit = Since::parse("3w", now()).unwrap_err().to_string();
        let shape = Since::parse("last week", now()).unwrap_err().to_string();

        // Assert
        assert!(
            unit.starts_with("since \"3w\": the unit must be d"),
            "{unit}"
        );
        assert!(
            shape.starts_with("since \"last week\": expected a duration"),
            "{shape}"
        );
    }

    #[test]
    fn group_by_parses_its_four_names_only() {
        // Act + Assert
        assert_eq!("model".parse::<GroupBy>(), Ok(GroupBy::Model));
        assert_eq!("endpoint".parse::<GroupBy>(), Ok(GroupBy::Endpoint));
        assert_eq!("day".parse::<GroupBy>(), Ok(GroupBy::Day));
        assert_eq!("kind".parse::<GroupBy>(), Ok(GroupBy::Kind));
        assert!("key".parse::<GroupBy>().is_err());
    }
}
