//! The allow-list of link hosts, and which link destinations and bare URLs it lets stay.

use serde::{Deserialize, Serialize};
use url::Url;

use super::references::{decode_destination, has_char_reference};

/// Hosts that links and images in answers may point to (`answer.allowed_link_hosts`): exact
/// names (`intranet.example.com`) or `*.example.com` for every subdomain of `example.com`
/// (not `example.com` itself). Empty: no link or image survives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct AllowedHosts {
    entries: Vec<String>,
}

/// An `answer.allowed_link_hosts` entry that is not a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{entry:?} is not a host name ({reason}); write a bare host such as \
     intranet.example.com, or *.example.com for its subdomains"
)]
pub struct InvalidHost {
    pub entry: String,
    pub reason: &'static str,
}

impl AllowedHosts {
    /// Validate and normalise (lowercase) host names.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidHost> {
        let entries = entries
            .iter()
            .map(|e| normalise_host(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `host` (lowercase ASCII, as a URL parser gives it) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        self.entries.iter().any(|e| match e.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => e == host,
        })
    }

    /// The URL to write for a link or image destination, if it may stay: an absolute `http` or
    /// `https` URL to an allowed host. `raw` is the destination as written in Markdown
    /// (backslash escapes and character references are decoded here); the result is the URL
    /// as a browser would resolve it, without credentials, and with the characters that
    /// Markdown would read specially percent-encoded.
    pub(super) fn destination(&self, raw: &str) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let decoded = decode_destination(raw)?;
        let mut url = Url::parse(decoded.trim()).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let host = url.host_str()?.to_ascii_lowercase();
        if !self.allows(&host) {
            return None;
        }
        url.set_username("").ok()?;
        url.set_password(None).ok()?;
        let mut out = String::with_capacity(url.as_str().len());
        for c in url.as_str().chars() {
            match c {
                '(' | ')' | '[' | ']' | '<' | '>' | '\\' | '"' | '\'' | '`' | ' ' => {
                    out.push_str(&format!("%{:02X}", c as u32));
                }
                _ => out.push(c),
            }
        }
        Some(out)
    }

    /// Whether a bare URL or autolink, written as-is in the answer, may stay: its authority
    /// (between `//` or the start of `www.`, and the first `/`, `?` or `#`) must be a plain
    /// host name, with an optional port, on the list. Anything a renderer might read
    /// differently (escapes, character references, `@`, brackets) is refused.
    pub(super) fn bare(&self, text: &str) -> bool {
        if self.is_empty() || text.contains('\\') || has_char_reference(text) {
            return false;
        }
        let lower = text.to_ascii_lowercase();
        let rest = if let Some(r) = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
        {
            r
        } else if lower.starts_with("www.") {
            &lower
        } else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if !authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        {
            return false;
        }
        let host = match authority.split_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return false,
            None => authority,
        };
        self.allows(host)
    }
}

impl TryFrom<Vec<String>> for AllowedHosts {
    type Error = InvalidHost;
    fn try_from(entries: Vec<String>) -> Result<Self, InvalidHost> {
        Self::new(&entries)
    }
}

impl From<AllowedHosts> for Vec<String> {
    fn from(hosts: AllowedHosts) -> Self {
        hosts.entries
    }
}

fn normalise_host(entry: &str) -> Result<String, InvalidHost> {
    let invalid = |reason| InvalidHost {
        entry: entry.to_owned(),
        reason,
    };
    let lower = entry.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return Err(invalid("empty"));
    }
    if lower.contains("://") {
        return Err(invalid("no scheme: links are allowed over http and https"));
    }
    if lower.contains(['/', '?', '#', ':', '@']) {
        return Err(invalid("no path, port or user"));
    }
    let domain = lower.strip_prefix("*.").unwrap_or(&lower);
    if domain.len() > 253 {
        return Err(invalid("longer than 253 characters"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !domain.split('.').all(label_ok) {
        return Err(invalid(
            "labels of letters, digits and hyphens separated by dots; \
             write internationalised names in their xn-- form",
        ));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_entries_are_validated_and_lowercased() {
        assert_eq!(
            AllowedHosts::new(&["Intranet.Example.COM"]).unwrap(),
            AllowedHosts::new(&["intranet.example.com"]).unwrap()
        );
        for bad in [
            "https://intranet.example.com",
            "intranet.example.com/x",
            "intranet.example.com:8443",
            "",
            "*",
            "a..b",
            "-a.example",
            "bücher.example",
        ] {
            let err = AllowedHosts::new(&[bad]).unwrap_err();
            assert_eq!(err.entry, bad);
            assert!(err.to_string().contains("is not a host name"), "{err}");
        }
    }

    #[test]
    fn the_allow_list_deserialises_from_strings_and_refuses_bad_ones() {
        let ok: AllowedHosts = serde_json::from_str(r#"["*.example.com"]"#).unwrap();
        assert!(ok.allows("a.example.com"));
        let err = serde_json::from_str::<AllowedHosts>(r#"["http://x"]"#).unwrap_err();
        assert!(
            err.to_string().contains("\"http://x\" is not a host name"),
            "{err}"
        );
    }
}
