//! A document's own metadata: YAML front matter at the top of a Markdown file and the
//! `<file>.meta.yaml` sidecar, and the rules that keep a mistake in them from leaving a
//! restricted document readable by everyone (the table in [`crate`]).

use super::{BOM, LoadError, SourceFormat};
use chrono::NaiveDate;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[cfg(test)]
mod tests;

/// A document's own metadata: YAML front matter at the top of a Markdown file, completed by a
/// `<file>.meta.yaml` sidecar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrontMatter {
    pub title: Option<String>,
    pub owner: Option<String>,
    /// Validated: a front matter or sidecar date that is not `YYYY-MM-DD` fails the file.
    pub effective_date: Option<NaiveDate>,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
}

impl FrontMatter {
    /// These fields, each completed from `other` where this one has nothing.
    pub(super) fn or(self, other: FrontMatter) -> FrontMatter {
        let pick = |mine: Vec<String>, theirs: Vec<String>| {
            if mine.is_empty() { theirs } else { mine }
        };
        FrontMatter {
            title: self.title.or(other.title),
            owner: self.owner.or(other.owner),
            effective_date: self.effective_date.or(other.effective_date),
            tags: pick(self.tags, other.tags),
            groups: pick(self.groups, other.groups),
        }
    }
}

/// The fields as written. Scalars are read as text whatever YAML thinks they are
/// (`tags: [holidays, 2026]`); `tags` and `groups` keep whether and how they were written, so
/// that `groups: []` and `groups: "hr, finance"` can be refused.
#[derive(Debug, Default, Deserialize)]
struct RawFrontMatter {
    #[serde(default, deserialize_with = "scalar::option")]
    title: Option<String>,
    #[serde(default, deserialize_with = "scalar::option")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "scalar::option")]
    effective_date: Option<String>,
    #[serde(default, deserialize_with = "scalar::list")]
    tags: Option<scalar::List>,
    #[serde(default, deserialize_with = "scalar::list")]
    groups: Option<scalar::List>,
}

/// The fields kb reads from front matter and sidecars.
const METADATA_FIELDS: [&str; 5] = ["title", "owner", "effective_date", "tags", "groups"];

/// Front matter keys that static-site and documentation tools write and kb ignores. Front
/// matter only: a sidecar is written for kb, so anything more in it is a typo. None of them
/// looks like an access field (a test checks), and any other key fails the file.
pub const IGNORED_FRONT_MATTER_KEYS: [&str; 20] = [
    "aliases",
    "author",
    "authors",
    "categories",
    "date",
    "description",
    "draft",
    "keywords",
    "lang",
    "language",
    "lastmod",
    "layout",
    "permalink",
    "sidebar_label",
    "sidebar_position",
    "slug",
    "summary",
    "toc",
    "type",
    "weight",
];

/// Parts of a key (lowercase, letters and digits only) that say its author meant to restrict
/// who may read the document: such a key is answered with "did you mean groups?".
const ACCESS_WORDS: [&str; 24] = [
    "group",
    "grp",
    "acl",
    "access",
    "audience",
    "visib",
    "permission",
    "role",
    "reader",
    "member",
    "allow",
    "deny",
    "restrict",
    "private",
    "public",
    "confidential",
    "secret",
    "classif",
    "sensitiv",
    "share",
    "hidden",
    "protect",
    "secur",
    "team",
];

/// Sidecars are a few lines; anything much larger is not one.
const MAX_SIDECAR_BYTES: u64 = 64 * 1024;

/// Where a document's metadata was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetadataSource {
    FrontMatter,
    Sidecar,
}

/// The metadata in a parsed YAML document: nothing, or a mapping of known keys.
fn metadata_from_yaml(
    pod: &gray_matter::Pod,
    source: MetadataSource,
) -> Result<FrontMatter, String> {
    match pod {
        gray_matter::Pod::Null => Ok(FrontMatter::default()),
        gray_matter::Pod::Hash(fields) => {
            check_keys(fields.keys().map(String::as_str), source)?;
            pod.deserialize::<RawFrontMatter>()
                .map_err(|e| format!("not valid metadata: {e}"))?
                .validate()
        }
        _ => Err("not a YAML mapping of metadata fields".into()),
    }
}

/// Refuse keys kb does not read (front matter may also have [`IGNORED_FRONT_MATTER_KEYS`]):
/// a misspelt `groups` must never leave a document readable by everyone.
fn check_keys<'a>(
    keys: impl Iterator<Item = &'a str>,
    source: MetadataSource,
) -> Result<(), String> {
    let ignored: &[&str] = match source {
        MetadataSource::FrontMatter => &IGNORED_FRONT_MATTER_KEYS,
        MetadataSource::Sidecar => &[],
    };
    let mut unknown: Vec<&str> = keys
        .filter(|k| !METADATA_FIELDS.contains(k) && !ignored.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    let access = unknown.iter().any(|k| looks_like_an_access_field(k));
    let unknown = unknown.join(", ");
    let fields = METADATA_FIELDS.join(", ");
    let has = match source {
        MetadataSource::FrontMatter => "kb reads",
        MetadataSource::Sidecar => "a sidecar has",
    };
    if access {
        return Err(format!(
            "unknown field(s) {unknown}; did you mean groups? only groups sets who may read a document ({has} {fields})"
        ));
    }
    Err(match source {
        MetadataSource::FrontMatter => format!(
            "unknown field(s) {unknown} (kb reads {fields} and ignores {}); remove or rename them",
            IGNORED_FRONT_MATTER_KEYS.join(", ")
        ),
        MetadataSource::Sidecar => format!("unknown field(s) {unknown} ({has} {fields})"),
    })
}

/// Whether a key other than `groups` reads like an attempt to set access: `group`, `Groups`,
/// `acl`, `audience`, `allowed_groups`, `gruops`, …
fn looks_like_an_access_field(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    ACCESS_WORDS.iter().any(|word| key.contains(word)) || edit_distance(&key, "groups") <= 2
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

impl RawFrontMatter {
    /// Check the fields; the error says which one is wrong and how to write it.
    fn validate(self) -> Result<FrontMatter, String> {
        let effective_date = self
            .effective_date
            .map(|raw| {
                let raw = raw.trim().to_owned();
                match raw.parse::<NaiveDate>() {
                    Ok(date) if raw.len() == 10 => Ok(date),
                    _ => Err(format!(
                        "effective_date {raw:?} is not a date; write it as YYYY-MM-DD"
                    )),
                }
            })
            .transpose()?;
        Ok(FrontMatter {
            title: self.title,
            owner: self
                .owner
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty()),
            effective_date,
            tags: checked_tags(self.tags)?,
            groups: checked_groups(self.groups)?,
        })
    }
}

/// The items of a list, trimmed, blanks dropped.
fn clean(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// How `names` is written as a YAML list of names split at commas and spaces.
fn yaml_list(names: &[String]) -> String {
    let names: Vec<&str> = names
        .iter()
        .flat_map(|n| n.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|n| !n.is_empty())
        .collect();
    format!("[{}]", names.join(", "))
}

/// `groups` as written. Not written at all, it is not set here (the sidecar, `--groups` or
/// `ingest.default_groups` apply); written, it must name at least one group, one per item.
fn checked_groups(given: Option<scalar::List>) -> Result<Vec<String>, String> {
    let Some(given) = given else {
        return Ok(Vec::new());
    };
    let single = matches!(given, scalar::List::One(_));
    let groups = clean(given.into_vec());
    if groups.is_empty() {
        return Err(r#"groups is empty; name at least one group ("all" for everyone)"#.into());
    }
    if single && groups[0].contains(|c: char| c == ',' || c.is_whitespace()) {
        return Err(format!(
            "groups {:?} is one group name with a comma or space in it; write a YAML list: groups: {}",
            groups[0],
            yaml_list(&groups)
        ));
    }
    if let Some(name) = groups.iter().find(|g| g.contains(',')) {
        return Err(format!(
            "group name {name:?} has a comma in it; write one group per item: groups: {}",
            yaml_list(&groups)
        ));
    }
    Ok(groups)
}

/// `tags` as written: may be empty, but one tag with a comma in it is a list written wrong.
fn checked_tags(given: Option<scalar::List>) -> Result<Vec<String>, String> {
    let Some(given) = given else {
        return Ok(Vec::new());
    };
    let tags = clean(given.into_vec());
    if let Some(tag) = tags.iter().find(|t| t.contains(',')) {
        return Err(format!(
            "tag {tag:?} has a comma in it; write a YAML list: tags: {}",
            yaml_list(&tags)
        ));
    }
    Ok(tags)
}

/// What a sidecar's name adds to its document's.
pub const SIDECAR_SUFFIX: &str = ".meta.yaml";

/// The sidecar of a document: its path plus `.meta.yaml`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(SIDECAR_SUFFIX);
    PathBuf::from(name)
}

/// Read a document's sidecar, if it has one.
pub fn read_sidecar(document: &Path) -> Result<Option<FrontMatter>, LoadError> {
    let path = sidecar_path(document);
    let origin = || {
        format!(
            "sidecar {}",
            path.file_name().unwrap_or_default().to_string_lossy()
        )
    };
    let bad = |message: String| LoadError::Metadata {
        origin: origin(),
        message,
    };
    let size = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("cannot read it: {e}"))),
    };
    if size > MAX_SIDECAR_BYTES {
        return Err(bad(format!(
            "{size} bytes; a sidecar holds a few metadata fields"
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    parse_sidecar(&text).map(Some).map_err(bad)
}

fn parse_sidecar(text: &str) -> Result<FrontMatter, String> {
    use gray_matter::engine::Engine;
    let text = text.trim_start_matches(BOM);
    let pod = gray_matter::engine::YAML::parse(text).map_err(|e| format!("not valid YAML: {e}"))?;
    metadata_from_yaml(&pod, MetadataSource::Sidecar)
}

mod scalar {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }

    impl From<Scalar> for String {
        fn from(s: Scalar) -> Self {
            match s {
                Scalar::Text(t) => t,
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Bool(b) => b.to_string(),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Scalar),
        Many(Vec<Scalar>),
    }

    /// A list field as written: one scalar (`groups: hr`) or a list (`groups: [hr]`; a key
    /// with no value is an empty list).
    #[derive(Debug)]
    pub enum List {
        One(String),
        Many(Vec<String>),
    }

    impl List {
        pub fn into_vec(self) -> Vec<String> {
            match self {
                Self::One(s) => vec![s],
                Self::Many(v) => v,
            }
        }
    }

    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Scalar>::deserialize(d)?.map(String::from))
    }

    /// A list field that is present (serde gives `None` only when the key is missing).
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<List>, D::Error> {
        Ok(Some(match Option::<OneOrMany>::deserialize(d)? {
            None => List::Many(Vec::new()),
            Some(OneOrMany::One(s)) => List::One(s.into()),
            Some(OneOrMany::Many(v)) => List::Many(v.into_iter().map(String::from).collect()),
        }))
    }
}

/// Separate YAML front matter from the body of a Markdown file.
///
/// Front matter is a `---` first line, YAML, and a `---` line that closes it. What looks like
/// an attempt at front matter but would not be read as one fails the file rather than being
/// indexed as text under the default groups: an opening `---` that is never closed, metadata
/// between `---` lines below blank lines or indented, TOML (`+++`) front matter. Byte-order
/// marks before the first line are dropped.
pub(super) fn split_front_matter(raw: &str) -> Result<(FrontMatter, String), LoadError> {
    use gray_matter::engine::Engine;
    let raw = raw.trim_start_matches(BOM);
    let lines: Vec<&str> = raw.lines().collect();
    match lines.first().map(|l| l.trim_end()) {
        Some("---") => {}
        Some("+++") => return Err(LoadError::TomlFrontMatter),
        _ => {
            if let Some(line) = misplaced_front_matter(&lines) {
                return Err(LoadError::MisplacedFrontMatter { line });
            }
            return Ok((FrontMatter::default(), raw.to_owned()));
        }
    }
    let close = 1 + lines[1..]
        .iter()
        .position(|l| l.trim_end() == "---")
        .ok_or(LoadError::UnclosedFrontMatter)?;
    let yaml = lines[1..close].join("\n");
    let pod = gray_matter::engine::YAML::parse(&yaml)
        .map_err(|e| LoadError::FrontMatter(e.to_string()))?;
    let front = metadata_from_yaml(&pod, MetadataSource::FrontMatter).map_err(|message| {
        LoadError::Metadata {
            origin: "front matter".into(),
            message,
        }
    })?;
    // The body is the file's own text after the closing line (not re-joined lines), so byte
    // ranges in it stay byte ranges in the file.
    let body_start: usize = raw
        .split_inclusive('\n')
        .take(close + 1)
        .map(str::len)
        .sum();
    let body = raw[body_start..].trim_start_matches(['\n', '\r']);
    Ok((front, body.to_owned()))
}

/// The line number of a `---` that opens metadata but not at the start of the file: a
/// [`leading_yaml_block`] with a metadata key (or a key that looks like an access field) in it.
/// A `---` rule in ordinary Markdown is followed by text.
fn misplaced_front_matter(lines: &[&str]) -> Option<usize> {
    let (line, keys) = leading_yaml_block(lines)?;
    keys.iter()
        .any(|k| {
            METADATA_FIELDS.contains(k)
                || IGNORED_FRONT_MATTER_KEYS.contains(k)
                || looks_like_an_access_field(k)
        })
        .then_some(line)
}

/// The first thing in a text (after blank lines) if it is a `---` line followed by lines that
/// all look like YAML, up to a closing `---` (or, if there is none, a blank line): the line
/// number of that `---` and the top-level keys below it.
fn leading_yaml_block<'a>(lines: &[&'a str]) -> Option<(usize, Vec<&'a str>)> {
    let open = lines.iter().position(|l| !l.trim().is_empty())?;
    if lines[open].trim() != "---" {
        return None;
    }
    let after = &lines[open + 1..];
    let end = after
        .iter()
        .position(|l| l.trim() == "---")
        .or_else(|| after.iter().position(|l| l.trim().is_empty()))
        .unwrap_or(after.len());
    let block = &after[..end];
    block
        .iter()
        .all(|l| looks_like_yaml(l))
        .then(|| (open + 1, block.iter().filter_map(|l| yaml_key(l)).collect()))
}

/// Refuse a text or HTML file that starts with front matter setting access: kb reads front
/// matter in Markdown only, so its `groups` would be ignored and its YAML indexed as text.
pub(super) fn check_no_access_front_matter(
    text: &str,
    format: SourceFormat,
) -> Result<(), LoadError> {
    let lines: Vec<&str> = text.trim_start_matches(BOM).lines().collect();
    match leading_yaml_block(&lines) {
        Some((_, keys))
            if keys
                .iter()
                .any(|k| *k == "groups" || looks_like_an_access_field(k)) =>
        {
            Err(LoadError::FrontMatterNotRead { format })
        }
        _ => Ok(()),
    }
}

/// A line that could be part of a YAML mapping: blank, a comment, a list item, indented, or
/// `key: value`.
fn looks_like_yaml(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty()
        || trimmed.starts_with('#')
        || trimmed == "-"
        || trimmed.starts_with("- ")
        || line.starts_with([' ', '\t'])
        || yaml_key(line).is_some()
}

/// The key of a top-level `key: value` line (quotes removed).
fn yaml_key(line: &str) -> Option<&str> {
    let (key, rest) = line.split_once(':')?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let key = key.trim_end().trim_matches(['"', '\'']);
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-'))
    .then_some(key)
}
