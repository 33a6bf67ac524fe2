//! A guard against DNS rebinding for a server on a loopback address.
//!
//! A web page on `attacker.example` can have its name re-resolved to `127.0.0.1` while it is
//! open; the browser then sends the page's requests to the local kb, as the same origin, so
//! the page can read whatever needs no key (`/metrics`, `/readyz`, `/openapi.json`). Those
//! requests still say `Host: attacker.example`. So a server bound to a loopback address
//! answers only requests whose `Host` names a loopback host — `localhost`, a loopback IP
//! (`127.0.0.1`, `[::1]`), or the configured `server.host` itself — on any port, and refuses
//! the others with 421 `misdirected_request`. A request without a `Host` (nor an authority in
//! its URI) comes from no browser and is let through.
//!
//! A server bound to another address is reachable by name from the network, under names kb
//! cannot know: it does no check (keep `/metrics` and `/readyz` off untrusted networks, and
//! put a reverse proxy in front; see the README).

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// The host names a loopback server answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    /// `server.host` as configured (lower case, without a trailing dot), when it is a name.
    configured: Option<String>,
}

impl AllowedHosts {
    /// The hosts a server listening on `bound`, configured as `configured` (`server.host`),
    /// answers to; `None` when `bound` is not a loopback address (no check).
    pub fn for_listener(bound: IpAddr, configured: &str) -> Option<Self> {
        if !is_loopback(bound) {
            return None;
        }
        let configured = normalise(configured);
        Some(Self {
            configured: (!configured.is_empty() && configured.parse::<IpAddr>().is_err())
                .then_some(configured),
        })
    }

    /// Whether a `Host` header value (`name`, `name:port`, `[v6]` or `[v6]:port`) names this
    /// server.
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        let name = normalise(name);
        if name == "localhost" || self.configured.as_deref() == Some(name.as_str()) {
            return true;
        }
        name.parse::<IpAddr>().is_ok_and(is_loopback)
    }
}

/// Middleware: refuse a request whose `Host` does not name this loopback server.
pub async fn check(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let host = match request.headers().get(HOST) {
        Some(value) => Some(value.to_str().unwrap_or("")),
        None => request.uri().authority().map(|a| a.as_str()),
    };
    match host {
        Some(host) if !allowed.allows(host) => {
            let shown: String = host.chars().take(100).collect();
            tracing::warn!(
                host = %shown,
                path = request.uri().path(),
                "refused a request whose Host header names another server (DNS rebinding?)"
            );
            ApiError::MisdirectedRequest.into_response()
        }
        _ => next.run(request).await,
    }
}

/// The name (or bracketless IPv6 address) of a `Host` value; `None` when it is malformed.
fn host_name(host: &str) -> Option<&str> {
    let valid_port = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        (v6, port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if name.is_empty() || port.is_some_and(|p| !valid_port(p)) {
        return None;
    }
    Some(name)
}

/// Lower case, without the trailing dot of a fully qualified name.
fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Loopback, including an IPv4 loopback address written as IPv6 (`::ffff:127.0.0.1`).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback(configured: &str) -> AllowedHosts {
        AllowedHosts::for_listener("127.0.0.1".parse().unwrap(), configured)
            .expect("a loopback listener is checked")
    }

    #[test]
    fn loopback_names_are_allowed_on_any_port() {
        // Arrange
        let allowed = loopback("127.0.0.1");

        // Act + Assert
        for host in [
            "localhost",
            "localhost:8080",
            "LocalHost:1",
            "localhost.:8080",
            "127.0.0.1",
            "127.0.0.1:65535",
            "127.0.0.2:80",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
    }

    #[test]
    fn other_names_and_addresses_are_refused() {
        // Arrange
        let allowed = loopback("127.0.0.1");

        // Act + Assert
        for host in [
            "attacker.example",
            "attacker.example:8080",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "192.168.1.10:8080",
            "[2001:db8::1]:8080",
            "evil.localhost.",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
    }

    #[test]
    fn malformed_host_values_are_refused() {
        // Arrange
        let allowed = loopback("127.0.0.1");

        // Act + Assert
        for host in [
            "",
            ":8080",
            "localhost:",
            "localhost:80a",
            "localhost:80:80",
            "[::1",
            "[::1]8080",
            "[localhost]:80",
        ] {
            assert!(!allowed.allows(host), "{host:?}");
        }
    }

    #[test]
    fn the_configured_host_name_is_allowed() {
        // Arrange: `server.host = "kb-box"`, which /etc/hosts maps to 127.0.1.1.
        let allowed = AllowedHosts::for_listener("127.0.1.1".parse().unwrap(), "KB-Box")
            .expect("a loopback listener is checked");

        // Act + Assert
        assert!(allowed.allows("kb-box:8080"));
        assert!(!allowed.allows("other-box:8080"));
    }

    #[test]
    fn listeners_off_loopback_are_not_checked() {
        // Act + Assert
        assert_eq!(
            AllowedHosts::for_listener("0.0.0.0".parse().unwrap(), "0.0.0.0"),
            None
        );
        assert_eq!(
            AllowedHosts::for_listener("10.0.0.5".parse().unwrap(), "10.0.0.5"),
            None
        );
        assert!(AllowedHosts::for_listener("::1".parse().unwrap(), "::1").is_some());
        assert!(
            AllowedHosts::for_listener("::ffff:127.0.0.1".parse().unwrap(), "localhost").is_some()
        );
    }
}
