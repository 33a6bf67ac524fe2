//! Turning what an engine did (status, headers, body, transport error) into a [`ModelError`]
//! and a decision: retry elsewhere, disable the key, or give up.

use kb_core::ModelError;
use kb_core::error::BoxError;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::fmt;
use std::time::{Duration, SystemTime};

/// How one attempt ended, as logged in the `outcome` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Status(u16),
    Timeout,
    Connect,
    Transport,
    Malformed,
    /// A stream broke after its first token.
    Interrupted,
    /// Embeddings of another length than configured (the endpoint serves another model).
    WrongDimensions,
    /// The caller dropped the call (or a stream) before its end.
    Cancelled,
}

/// What an attempt says about its endpoint's health, for the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// The endpoint answered usefully.
    Up,
    /// 5xx, 408, timeout, connection or transport error, unusable answer, cut stream.
    Down,
    /// Says nothing about the endpoint: 429 (that key's quota), other 4xx, or cancelled.
    Neutral,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Status(code) => write!(f, "{code}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Connect => f.write_str("connect_error"),
            Self::Transport => f.write_str("transport_error"),
            Self::Malformed => f.write_str("malformed"),
            Self::Interrupted => f.write_str("interrupted"),
            Self::WrongDimensions => f.write_str("wrong_dimensions"),
            Self::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl Outcome {
    pub fn health(self) -> Health {
        match self {
            Self::Ok => Health::Up,
            Self::Status(408) => Health::Down,
            Self::Status(400..=499) | Self::Cancelled => Health::Neutral,
            Self::Status(_)
            | Self::Timeout
            | Self::Connect
            | Self::Transport
            | Self::Malformed
            | Self::Interrupted
            | Self::WrongDimensions => Health::Down,
        }
    }
}

/// What the retry loop does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Retry, on another route if there is one; this route rests meanwhile.
    Retry,
    /// The key was refused: disable this route for good and try another one.
    DisableRoute,
    /// This endpoint cannot serve this call (it answers with another model): try the other
    /// endpoints, never this one again within the call; with none left, return the error.
    SkipEndpoint,
    /// Retrying cannot help: return the error now.
    GiveUp,
}

/// A failed attempt.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: ModelError,
    pub outcome: Outcome,
    pub action: Action,
}

impl Failure {
    pub fn transient(outcome: Outcome, message: String) -> Self {
        Self {
            error: ModelError::transient(message, None),
            outcome,
            action: Action::Retry,
        }
    }

    /// The same failure, caused by `cause` (what the transport said).
    pub fn caused_by(self, cause: impl Into<BoxError>) -> Self {
        Self {
            error: self.error.with_source(cause),
            ..self
        }
    }

    pub fn timeout(endpoint: &str, what: &str, after: Duration) -> Self {
        Self::transient(
            Outcome::Timeout,
            format!(
                "engine endpoint {endpoint}: {what} timed out after {} ms",
                after.as_millis()
            ),
        )
    }

    /// The engine answered 2xx with something unusable; flaky gateways do that, so retry.
    /// `problem` says what is wrong with it (a parser's error, or kb's own finding).
    pub fn malformed(endpoint: &str, problem: impl Into<BoxError>) -> Self {
        Self::transient(
            Outcome::Malformed,
            format!("engine endpoint {endpoint}: unusable response"),
        )
        .caused_by(problem)
    }

    /// Embeddings of the wrong length: this endpoint serves another model than configured,
    /// which no retry on it will fix; another endpoint may serve the right one.
    pub fn wrong_dimensions(message: String) -> Self {
        Self {
            error: ModelError::permanent(message),
            outcome: Outcome::WrongDimensions,
            action: Action::SkipEndpoint,
        }
    }

    /// A transport error from reqwest (connect, timeout, broken body), kept as the cause.
    pub fn from_reqwest(endpoint: &str, error: reqwest::Error) -> Self {
        let outcome = if error.is_timeout() {
            Outcome::Timeout
        } else if error.is_connect() {
            Outcome::Connect
        } else {
            Outcome::Transport
        };
        Self::transient(outcome, format!("engine endpoint {endpoint}")).caused_by(error)
    }

    /// A non-2xx answer.
    pub fn from_status(
        endpoint: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &str,
    ) -> Self {
        let outcome = Outcome::Status(status.as_u16());
        let code = status.as_u16();
        if matches!(code, 401 | 403) {
            // The body may echo part of the key ("Incorrect API key provided: sk-ab***"): skip it.
            return Self {
                error: ModelError::permanent(format!(
                    "engine endpoint {endpoint}: api key refused (http {code})"
                )),
                outcome,
                action: Action::DisableRoute,
            };
        }
        let detail = error_detail(body);
        let message = format!("engine endpoint {endpoint}: http {code}: {detail}");
        let retry_after = parse_retry_after(headers, SystemTime::now());
        let (error, action) = match code {
            429 => (
                ModelError::rate_limited(message, retry_after),
                Action::Retry,
            ),
            408 | 500..=599 => (ModelError::transient(message, retry_after), Action::Retry),
            400..=499 if mentions_context_length(body) => {
                (ModelError::context_length_exceeded(message), Action::GiveUp)
            }
            400..=499 => (ModelError::invalid_request(message), Action::GiveUp),
            _ => (ModelError::transient(message, retry_after), Action::Retry),
        };
        Self {
            error,
            outcome,
            action,
        }
    }
}

fn mentions_context_length(body: &str) -> bool {
    let body = body.to_lowercase();
    [
        "context length",
        "maximum context",
        "context_length_exceeded",
    ]
    .iter()
    .any(|needle| body.contains(needle))
}

/// The `error.message` of an OpenAI-style error body, else the start of the body.
fn error_detail(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| match &v["error"] {
            serde_json::Value::String(s) => Some(s.clone()),
            e => e["message"].as_str().map(str::to_owned),
        });
    let text = message.unwrap_or_else(|| body.trim().to_owned());
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    const LIMIT: usize = 300;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// `Retry-After` (seconds or HTTP date) or the `retry-after-ms` some gateways send.
pub(crate) fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = value("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return duration_from_secs(ms / 1000.0);
    }
    let raw = value(RETRY_AFTER.as_str())?;
    if let Ok(secs) = raw.parse::<f64>() {
        return duration_from_secs(secs);
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn duration_from_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unparsable_answer_keeps_the_parser_error_as_cause() {
        // Arrange
        let parse = serde_json::from_str::<u8>("{").unwrap_err();
        let said = parse.to_string();

        // Act
        let failure = Failure::malformed("primary", parse);

        // Assert
        let source = std::error::Error::source(&failure.error).expect("a cause");
        assert!(source.is::<serde_json::Error>(), "{source:?}");
        let text = kb_core::error::chain(&failure.error).to_string();
        assert_eq!(
            text,
            format!(
                "model temporarily unavailable: engine endpoint primary: unusable response: {said}"
            )
        );
    }
    use reqwest::header::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_in_seconds_is_parsed() {
        // Act
        let after = parse_retry_after(&headers("retry-after", "3"), SystemTime::now());

        // Assert
        assert_eq!(after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn retry_after_as_http_date_is_the_time_until_that_date() {
        // Arrange
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));

        // Act
        let after = parse_retry_after(&headers("retry-after", &date), now);

        // Assert
        assert_eq!(after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_in_the_past_is_zero_and_garbage_is_ignored() {
        // Arrange
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));

        // Act
        let past_after = parse_retry_after(&headers("retry-after", &past), now);
        let garbage = parse_retry_after(&headers("retry-after", "soon"), now);

        // Assert
        assert_eq!(past_after, Some(Duration::ZERO));
        assert_eq!(garbage, None);
    }

    #[test]
    fn statuses_are_classified_by_what_the_caller_can_do() {
        // Arrange
        let none = HeaderMap::new();
        let ctx = r#"{"error": {"message": "This model's maximum context length is 512 tokens"}}"#;

        // Act
        let classify = |code: u16, body: &str| {
            Failure::from_status("e", StatusCode::from_u16(code).unwrap(), &none, body)
        };

        // Assert
        assert!(matches!(
            classify(429, "").error,
            ModelError::RateLimited { .. }
        ));
        assert!(matches!(
            classify(503, "").error,
            ModelError::Transient { .. }
        ));
        assert_eq!(classify(401, "").action, Action::DisableRoute);
        assert_eq!(classify(403, "").action, Action::DisableRoute);
        assert!(matches!(
            classify(400, ctx).error,
            ModelError::ContextLengthExceeded { .. }
        ));
        assert!(matches!(
            classify(404, "no").error,
            ModelError::InvalidRequest { .. }
        ));
        assert_eq!(classify(422, "bad").action, Action::GiveUp);
    }

    #[test]
    fn only_failures_of_the_endpoint_itself_count_against_its_health() {
        // Act + Assert
        for down in [
            Outcome::Status(500),
            Outcome::Status(502),
            Outcome::Status(408),
            Outcome::Timeout,
            Outcome::Connect,
            Outcome::Malformed,
            Outcome::Interrupted,
            Outcome::WrongDimensions,
        ] {
            assert_eq!(down.health(), Health::Down, "{down}");
        }
        for neutral in [
            Outcome::Status(429),
            Outcome::Status(401),
            Outcome::Status(400),
            Outcome::Cancelled,
        ] {
            assert_eq!(neutral.health(), Health::Neutral, "{neutral}");
        }
        assert_eq!(Outcome::Ok.health(), Health::Up);
    }

    #[test]
    fn refused_key_error_leaves_out_the_body() {
        // Act
        let failure = Failure::from_status(
            "primary",
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            "Incorrect API key provided: sk-abc***xyz",
        );

        // Assert
        let message = failure.error.to_string();
        assert!(!message.contains("sk-abc"), "{message}");
        assert!(message.contains("primary"), "{message}");
    }
}
