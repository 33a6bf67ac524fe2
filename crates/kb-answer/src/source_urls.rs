//! Links from a citation to the document in the system it comes from (`answer.source_urls`):
//! a URL template per folder documents are ingested from, so that a reader can open the
//! original (a wiki page, a file share, a document system) without ever seeing where the file
//! lies on the server's disk.
//!
//! A template names the place of the document's path with `{path}`: the path of the file
//! relative to the rule's `root`, each segment percent-encoded (every byte but ASCII letters,
//! digits and `-._~`) and the segments joined with `/`. So a file name cannot add a segment,
//! a query or a fragment of its own, and the link always goes to the configured host.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};
use url::Url;

/// The placeholder a template must hold once.
const PLACEHOLDER: &str = "{path}";

/// Bytes of a path segment written as they are: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One `answer.source_urls` entry, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceUrlRule {
    /// The folder on the server the documents are ingested from (absolute).
    pub root: PathBuf,
    /// An `http` or `https` URL holding `{path}` once, after the host:
    /// `https://wiki.example.com/handbook/{path}`.
    pub url: String,
}

/// The validated `answer.source_urls`: for a document's path on the server, the link to it in
/// its source system ([`SourceUrls::url_for`]). Empty (the default): no links.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<SourceUrlRule>", into = "Vec<SourceUrlRule>")]
pub struct SourceUrls {
    /// Most specific root first.
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    configured: SourceUrlRule,
    /// The root as configured and, where it differs, its real path (documents are recorded
    /// under the real path of the folder they were ingested from).
    roots: Vec<PathBuf>,
    /// The template before and after `{path}`.
    before: String,
    after: String,
}

/// An `answer.source_urls` entry that cannot make links.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("answer.source_urls[{index}]: {problem}")]
pub struct InvalidSourceUrl {
    /// Position of the entry in the list, from 0.
    pub index: usize,
    pub problem: String,
}

impl SourceUrls {
    /// Validate the rules: each `root` an absolute folder path without `..`, listed once; each
    /// `url` an `http(s)` URL with a host, no credentials, and `{path}` once after the host.
    pub fn new(rules: Vec<SourceUrlRule>) -> Result<Self, InvalidSourceUrl> {
        let mut checked: Vec<Rule> = Vec::with_capacity(rules.len());
        for (index, rule) in rules.into_iter().enumerate() {
            let fail = |problem: String| InvalidSourceUrl { index, problem };
            let root = check_root(&rule.root).map_err(fail)?;
            if checked.iter().any(|c| c.roots[0] == root) {
                return Err(fail(format!(
                    "root {} is listed twice; keep one entry per folder",
                    rule.root.display()
                )));
            }
            let (before, after) = check_template(&rule.url).map_err(fail)?;
            let mut roots = vec![root];
            if let Ok(real) = std::fs::canonicalize(&roots[0])
                && real != roots[0]
            {
                roots.push(real);
            }
            checked.push(Rule {
                configured: rule,
                roots,
                before,
                after,
            });
        }
        // A document under nested roots takes the link of the innermost one.
        checked.sort_by_key(|rule| std::cmp::Reverse(rule.roots[0].components().count()));
        Ok(Self { rules: checked })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The link to the document whose file is `path` on the server, if a rule's root holds it.
    pub fn url_for(&self, path: &str) -> Option<String> {
        let path = Path::new(path);
        self.rules.iter().find_map(|rule| {
            rule.roots.iter().find_map(|root| {
                let relative = path.strip_prefix(root).ok()?;
                let segments = relative
                    .components()
                    .map(|c| match c {
                        Component::Normal(name) => name.to_str(),
                        _ => None,
                    })
                    .collect::<Option<Vec<&str>>>()?;
                if segments.is_empty() {
                    return None;
                }
                let encoded: Vec<String> = segments
                    .iter()
                    .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
                    .collect();
                Some(format!(
                    "{}{}{}",
                    rule.before,
                    encoded.join("/"),
                    rule.after
                ))
            })
        })
    }
}

/// The root, normalised (`.` and repeated slashes dropped), or why it cannot be one.
fn check_root(root: &Path) -> Result<PathBuf, String> {
    if !root.is_absolute() {
        return Err(format!(
            "root {} is not an absolute path; name the folder documents are ingested from \
             as an absolute path on the server",
            root.display()
        ));
    }
    if root.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "root {} contains `..`; write the folder's path without it",
            root.display()
        ));
    }
    Ok(root.components().collect())
}

/// The template's text before and after `{path}`, or why it cannot make links.
fn check_template(template: &str) -> Result<(String, String), String> {
    let hint = "write an http(s) URL with {path} where the document's path relative to \
                root goes, e.g. https://wiki.example.com/handbook/{path}";
    let Some((before, after)) = template.split_once(PLACEHOLDER) else {
        return Err(format!("url {template:?} has no {PLACEHOLDER}; {hint}"));
    };
    if after.contains(PLACEHOLDER) {
        return Err(format!(
            "url {template:?} has {PLACEHOLDER} more than once; {hint}"
        ));
    }
    if before.contains(['{', '}']) || after.contains(['{', '}']) {
        return Err(format!(
            "url {template:?} has a placeholder other than {PLACEHOLDER}; {hint}"
        ));
    }
    let sample = format!("{before}a/b.md{after}");
    let url =
        Url::parse(&sample).map_err(|e| format!("url {template:?} is not a URL ({e}); {hint}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("url {template:?} is not http or https; {hint}"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("url {template:?} names no host; {hint}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "url {template:?} carries credentials, which every reader would see; remove them"
        ));
    }
    // {path} must come after the host: the authority ends at the first `/`, `?` or `#` after
    // `scheme://`, and that must lie in the text before the placeholder.
    let authority_ends = before
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains(['/', '?', '#']));
    if !authority_ends {
        return Err(format!(
            "url {template:?} puts {PLACEHOLDER} in the host; put it in the path, after the \
             host and a `/`; {hint}"
        ));
    }
    Ok((before.to_owned(), after.to_owned()))
}

impl TryFrom<Vec<SourceUrlRule>> for SourceUrls {
    type Error = InvalidSourceUrl;
    fn try_from(rules: Vec<SourceUrlRule>) -> Result<Self, InvalidSourceUrl> {
        Self::new(rules)
    }
}

impl From<SourceUrls> for Vec<SourceUrlRule> {
    fn from(urls: SourceUrls) -> Self {
        let mut rules: Vec<Rule> = urls.rules;
        rules.sort_by(|a, b| a.configured.root.cmp(&b.configured.root));
        rules.into_iter().map(|rule| rule.configured).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(root: &str, url: &str) -> SourceUrlRule {
        SourceUrlRule {
            root: root.into(),
            url: url.into(),
        }
    }

    fn urls(rules: &[(&str, &str)]) -> SourceUrls {
        SourceUrls::new(rules.iter().map(|(r, u)| rule(r, u)).collect()).expect("valid rules")
    }

    fn problem(root: &str, url: &str) -> String {
        SourceUrls::new(vec![rule(root, url)])
            .expect_err("an invalid rule")
            .to_string()
    }

    #[test]
    fn a_path_under_the_root_becomes_the_link_with_each_segment_encoded() {
        // Arrange
        let links = urls(&[("/srv/handbook", "https://wiki.example.com/handbook/{path}")]);

        // Act
        let link = links.url_for("/srv/handbook/HR team/leave & pay#2?.md");

        // Assert
        assert_eq!(
            link.as_deref(),
            Some("https://wiki.example.com/handbook/HR%20team/leave%20%26%20pay%232%3F.md")
        );
    }

    #[test]
    fn non_ascii_names_are_percent_encoded_as_utf8() {
        let links = urls(&[(
            "/srv/docs",
            "https://files.example.com/open?file={path}&v=1",
        )]);

        let link = links.url_for("/srv/docs/zh/假期.md");

        assert_eq!(
            link.as_deref(),
            Some("https://files.example.com/open?file=zh/%E5%81%87%E6%9C%9F.md&v=1")
        );
    }

    #[test]
    fn paths_outside_every_root_get_no_link() {
        let links = urls(&[("/srv/handbook", "https://wiki.example.com/{path}")]);

        assert_eq!(links.url_for("/srv/handbook-old/a.md"), None);
        assert_eq!(links.url_for("/srv/handbook"), None, "the root itself");
        assert_eq!(links.url_for("/etc/passwd"), None);
        assert_eq!(links.url_for("relative/a.md"), None);
        assert_eq!(SourceUrls::default().url_for("/srv/handbook/a.md"), None);
    }

    #[test]
    fn the_innermost_root_wins_whatever_the_order() {
        let links = urls(&[
            ("/srv", "https://share.example.com/{path}"),
            ("/srv/handbook/", "https://wiki.example.com/hb/{path}"),
        ]);

        assert_eq!(
            links.url_for("/srv/handbook/a.md").as_deref(),
            Some("https://wiki.example.com/hb/a.md")
        );
        assert_eq!(
            links.url_for("/srv/other/a.md").as_deref(),
            Some("https://share.example.com/other/a.md")
        );
    }

    #[test]
    fn a_root_is_also_matched_by_its_real_path() {
        // Arrange: the configured root is a link to the folder documents are recorded under.
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let links = urls(&[(link.to_str().unwrap(), "https://wiki.example.com/{path}")]);
        let recorded = real.canonicalize().unwrap().join("a.md");

        // Act
        let url = links.url_for(recorded.to_str().unwrap());

        // Assert
        assert_eq!(url.as_deref(), Some("https://wiki.example.com/a.md"));
    }

    #[test]
    fn templates_that_could_not_make_a_safe_link_are_refused_saying_why() {
        let cases = [
            (
                "srv/handbook",
                "https://w.example.com/{path}",
                "not an absolute path",
            ),
            (
                "/srv/../etc",
                "https://w.example.com/{path}",
                "contains `..`",
            ),
            ("/srv", "https://w.example.com/handbook", "has no {path}"),
            (
                "/srv",
                "https://w.example.com/{path}/{path}",
                "more than once",
            ),
            (
                "/srv",
                "https://w.example.com/{id}/{path}",
                "other than {path}",
            ),
            ("/srv", "javascript:alert(1)//{path}", "not http or https"),
            ("/srv", "file:///share/{path}", "not http or https"),
            ("/srv", "https://{path}.example.com/", "in the host"),
            ("/srv", "https://w.example.com{path}", "in the host"),
            (
                "/srv",
                "https://user:pw@w.example.com/{path}",
                "credentials",
            ),
            ("/srv", "not a url {path}", "not a URL"),
        ];
        for (root, url, expected) in cases {
            let message = problem(root, url);
            assert!(
                message.starts_with("answer.source_urls[0]: ") && message.contains(expected),
                "{root} {url}: {message}"
            );
        }
    }

    #[test]
    fn a_root_listed_twice_is_refused() {
        let error = SourceUrls::new(vec![
            rule("/srv/a", "https://x.example.com/{path}"),
            rule("/srv/a/", "https://y.example.com/{path}"),
        ])
        .unwrap_err();

        assert_eq!(error.index, 1);
        assert!(error.problem.contains("listed twice"), "{error}");
    }

    #[test]
    fn rules_round_trip_through_serde() {
        let json = serde_json::json!([{"root": "/srv/a", "url": "https://x.example.com/{path}"}]);

        let parsed: SourceUrls = serde_json::from_value(json.clone()).unwrap();

        assert_eq!(serde_json::to_value(&parsed).unwrap(), json);
        let bad = serde_json::json!([{"root": "/srv/a", "url": "https://x.example.com/"}]);
        let error = serde_json::from_value::<SourceUrls>(bad).unwrap_err();
        assert!(error.to_string().contains("has no {path}"), "{error}");
    }
}
