//! Reading a dataset in the BEIR layout: `corpus.jsonl`, `queries.jsonl` and `qrels.tsv`.
//!
//! Every malformed line is an error that names the file and the line: a silently skipped
//! judgement or document would skew the numbers without anyone noticing.

use crate::error::EvalError;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

pub const CORPUS_FILE: &str = "corpus.jsonl";
pub const QUERIES_FILE: &str = "queries.jsonl";
pub const QRELS_FILE: &str = "qrels.tsv";
/// Where the original BEIR downloads keep the test judgements; read when `qrels.tsv` is absent.
pub const BEIR_TEST_QRELS_FILE: &str = "qrels/test.tsv";

/// One document of the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusDoc {
    pub id: String,
    pub title: String,
    pub text: String,
}

/// One query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub id: String,
    pub text: String,
    pub metadata: serde_json::Value,
}

/// A loaded dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The folder's name (e.g. `debian-faq-en`).
    pub name: String,
    pub dir: PathBuf,
    /// In file order.
    pub corpus: Vec<CorpusDoc>,
    /// In file order.
    pub queries: Vec<Query>,
    /// Query id → corpus id → score, as written in the qrels file (zero scores included).
    pub qrels: HashMap<String, BTreeMap<String, i64>>,
    /// Judgement lines read from the qrels file.
    pub qrels_count: usize,
}

impl Dataset {
    /// Read and check a dataset folder.
    pub fn load(dir: &Path) -> Result<Self, EvalError> {
        let corpus_path = dir.join(CORPUS_FILE);
        let corpus = parse_corpus(&corpus_path, &read(&corpus_path)?)?;
        let queries_path = dir.join(QUERIES_FILE);
        let queries = parse_queries(&queries_path, &read(&queries_path)?)?;
        let mut qrels_path = dir.join(QRELS_FILE);
        if !qrels_path.exists() && dir.join(BEIR_TEST_QRELS_FILE).exists() {
            qrels_path = dir.join(BEIR_TEST_QRELS_FILE);
        }
        let doc_ids: HashSet<&str> = corpus.iter().map(|d| d.id.as_str()).collect();
        let query_ids: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
        let (qrels, qrels_count) =
            parse_qrels(&qrels_path, &read(&qrels_path)?, &query_ids, &doc_ids)?;
        let dataset = Self {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| dir.display().to_string()),
            dir: dir.to_owned(),
            corpus,
            queries,
            qrels,
            qrels_count,
        };
        if dataset.corpus.is_empty() {
            return Err(EvalError::Dataset {
                path: corpus_path,
                message: "no documents".into(),
            });
        }
        if dataset.judged_queries().next().is_none() {
            return Err(EvalError::Dataset {
                path: qrels_path,
                message: "no query has a relevant document (score above 0)".into(),
            });
        }
        Ok(dataset)
    }

    /// Corpus ids judged relevant (score above 0) for a query.
    pub fn relevant(&self, query_id: &str) -> HashSet<String> {
        self.qrels
            .get(query_id)
            .map(|docs| {
                docs.iter()
                    .filter(|(_, score)| **score > 0)
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Queries with at least one relevant document, in file order: the ones evaluated.
    pub fn judged_queries(&self) -> impl Iterator<Item = &Query> {
        self.queries.iter().filter(|q| {
            self.qrels
                .get(&q.id)
                .is_some_and(|docs| docs.values().any(|s| *s > 0))
        })
    }
}

fn read(path: &Path) -> Result<String, EvalError> {
    let bytes = std::fs::read(path).map_err(|source| EvalError::Read {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| EvalError::Parse {
        path: path.to_owned(),
        line: e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1,
        message: "not valid UTF-8".into(),
    })
}

/// An `_id` as BEIR files write it: usually a string, sometimes a bare number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Int(i64),
}

impl From<Id> for String {
    fn from(id: Id) -> Self {
        match id {
            Id::Text(t) => t,
            Id::Int(i) => i.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct RawDoc {
    #[serde(rename = "_id")]
    id: Id,
    #[serde(default)]
    title: Option<String>,
    text: String,
}

#[derive(Deserialize)]
struct RawQuery {
    #[serde(rename = "_id")]
    id: Id,
    text: String,
    #[serde(default)]
    metadata: serde_json::Value,
}

/// Non-blank lines with their 1-based numbers.
fn lines(content: &str) -> impl Iterator<Item = (usize, &str)> {
    content
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
}

/// serde_json's message for a one-line document, with the column instead of "line 1".
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(message) => format!("{message} (column {})", e.column()),
        None => full,
    }
}

/// Checks ids: not empty, not seen before in the same file.
struct IdCheck<'a> {
    path: &'a Path,
    seen: HashMap<String, usize>,
}

impl<'a> IdCheck<'a> {
    fn new(path: &'a Path) -> Self {
        Self {
            path,
            seen: HashMap::new(),
        }
    }

    fn check(&mut self, id: &str, line: usize) -> Result<(), EvalError> {
        let message = if id.trim().is_empty() {
            "_id must not be empty".to_owned()
        } else if let Some(first) = self.seen.insert(id.to_owned(), line) {
            format!("duplicate _id {id:?} (first on line {first})")
        } else {
            return Ok(());
        };
        Err(EvalError::Parse {
            path: self.path.to_owned(),
            line,
            message,
        })
    }
}

pub(crate) fn parse_corpus(path: &Path, content: &str) -> Result<Vec<CorpusDoc>, EvalError> {
    let mut ids = IdCheck::new(path);
    let mut docs = Vec::new();
    for (line, text) in lines(content) {
        let raw: RawDoc = serde_json::from_str(text).map_err(|e| EvalError::Parse {
            path: path.to_owned(),
            line,
            message: json_message(&e),
        })?;
        let id = String::from(raw.id);
        ids.check(&id, line)?;
        docs.push(CorpusDoc {
            id,
            title: raw.title.unwrap_or_default(),
            text: raw.text,
        });
    }
    Ok(docs)
}

pub(crate) fn parse_queries(path: &Path, content: &str) -> Result<Vec<Query>, EvalError> {
    let mut ids = IdCheck::new(path);
    let mut queries = Vec::new();
    for (line, text) in lines(content) {
        let raw: RawQuery = serde_json::from_str(text).map_err(|e| EvalError::Parse {
            path: path.to_owned(),
            line,
            message: json_message(&e),
        })?;
        let id = String::from(raw.id);
        ids.check(&id, line)?;
        if raw.text.trim().is_empty() {
            return Err(EvalError::Parse {
                path: path.to_owned(),
                line,
                message: format!("query {id:?}: text must not be empty"),
            });
        }
        queries.push(Query {
            id,
            text: raw.text,
            metadata: raw.metadata,
        });
    }
    Ok(queries)
}

type Qrels = HashMap<String, BTreeMap<String, i64>>;

/// `query-id corpus-id score` per line, tab-separated (whitespace accepted), after an optional
/// header row. Every id must exist in the queries and the corpus.
pub(crate) fn parse_qrels(
    path: &Path,
    content: &str,
    query_ids: &HashSet<&str>,
    doc_ids: &HashSet<&str>,
) -> Result<(Qrels, usize), EvalError> {
    let mut qrels: Qrels = HashMap::new();
    let mut count = 0;
    let err = |line: usize, message: String| EvalError::Parse {
        path: path.to_owned(),
        line,
        message,
    };
    for (n, (line, text)) in lines(content).enumerate() {
        let fields: Vec<&str> = if text.contains('\t') {
            text.split('\t').map(str::trim).collect()
        } else {
            text.split_whitespace().collect()
        };
        if fields.len() != 3 {
            return Err(err(
                line,
                format!(
                    "expected 3 tab-separated fields (query-id, corpus-id, score), found {}",
                    fields.len()
                ),
            ));
        }
        let (query, doc, score) = (fields[0], fields[1], fields[2]);
        let Ok(score) = score.parse::<i64>() else {
            if n == 0 && score.parse::<f64>().is_err() {
                continue; // the header row
            }
            return Err(err(
                line,
                format!("score must be an integer, found {score:?}"),
            ));
        };
        if !query_ids.contains(query) {
            return Err(err(
                line,
                format!("query-id {query:?} is not in {QUERIES_FILE}"),
            ));
        }
        if !doc_ids.contains(doc) {
            return Err(err(
                line,
                format!("corpus-id {doc:?} is not in {CORPUS_FILE}"),
            ));
        }
        if qrels
            .entry(query.to_owned())
            .or_default()
            .insert(doc.to_owned(), score)
            .is_some()
        {
            return Err(err(
                line,
                format!("duplicate judgement for query-id {query:?} and corpus-id {doc:?}"),
            ));
        }
        count += 1;
    }
    Ok((qrels, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(result: Result<impl std::fmt::Debug, EvalError>) -> (usize, String) {
        match result {
            Err(EvalError::Parse { line, message, .. }) => (line, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn corpus_lines_become_documents_with_optional_titles_and_numeric_ids() {
        let content = "{\"_id\": \"a\", \"title\": \"T\", \"text\": \"x\"}\n\n{\"_id\": 7, \"text\": \"y\"}\n";

        let docs = parse_corpus(Path::new("corpus.jsonl"), content).unwrap();

        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].title, "T");
        assert_eq!(docs[1].id, "7");
        assert_eq!(docs[1].title, "");
    }

    #[test]
    fn malformed_corpus_line_is_reported_with_file_and_line() {
        let content = "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"b\"}\n";

        let err = parse_corpus(Path::new("d/corpus.jsonl"), content).unwrap_err();

        assert_eq!(
            err.to_string(),
            "d/corpus.jsonl:2: missing field `text` (column 12)"
        );
    }

    #[test]
    fn invalid_json_is_reported_with_its_line() {
        let (line, message) = parse_error(parse_queries(
            Path::new("queries.jsonl"),
            "{\"_id\": \"q1\", \"text\": \"ok\"}\n{\"_id\": \"q2\", \"text\": \n",
        ));

        assert_eq!(line, 2);
        assert!(message.contains("EOF"), "{message}");
    }

    #[test]
    fn duplicate_and_empty_ids_are_rejected() {
        let (line, message) = parse_error(parse_corpus(
            Path::new("corpus.jsonl"),
            "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"b\", \"text\": \"x\"}\n{\"_id\": \"a\", \"text\": \"y\"}\n",
        ));
        assert_eq!(line, 3);
        assert_eq!(message, "duplicate _id \"a\" (first on line 1)");

        let (line, message) = parse_error(parse_queries(
            Path::new("queries.jsonl"),
            "{\"_id\": \"\", \"text\": \"x\"}\n",
        ));
        assert_eq!(line, 1);
        assert_eq!(message, "_id must not be empty");
    }

    #[test]
    fn empty_query_text_is_rejected() {
        let (line, message) = parse_error(parse_queries(
            Path::new("queries.jsonl"),
            "{\"_id\": \"q1\", \"text\": \"  \"}\n",
        ));

        assert_eq!(line, 1);
        assert_eq!(message, "query \"q1\": text must not be empty");
    }

    fn qrels(content: &str) -> Result<(Qrels, usize), EvalError> {
        parse_qrels(
            Path::new("qrels.tsv"),
            content,
            &HashSet::from(["q1", "q2"]),
            &HashSet::from(["d1", "d2", "d3"]),
        )
    }

    #[test]
    fn qrels_skip_the_header_and_keep_every_judgement() {
        let (parsed, count) =
            qrels("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td3\t2\n").unwrap();

        assert_eq!(count, 3);
        assert_eq!(parsed["q1"]["d1"], 1);
        assert_eq!(parsed["q1"]["d2"], 0);
        assert_eq!(parsed["q2"]["d3"], 2);
    }

    #[test]
    fn qrels_errors_name_the_line_and_the_problem() {
        let cases = [
            ("q1\td1\n", 1, "expected 3 tab-separated fields"),
            ("q1\td1\t1\nq1\td2\tyes\n", 2, "score must be an integer"),
            ("q9\td1\t1\n", 1, "query-id \"q9\" is not in queries.jsonl"),
            (
                "h\th\th\nq1\td9\t1\n",
                2,
                "corpus-id \"d9\" is not in corpus.jsonl",
            ),
            ("q1\td1\t1\nq1\td1\t1\n", 2, "duplicate judgement"),
            ("h\th\th\nq1\td1\tx\n", 2, "score must be an integer"),
        ];
        for (content, want_line, want) in cases {
            let (line, message) = parse_error(qrels(content));
            assert_eq!(line, want_line, "{content:?}: {message}");
            assert!(message.contains(want), "{content:?}: {message}");
        }
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();

        let err = Dataset::load(dir.path()).unwrap_err();

        assert!(matches!(err, EvalError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("corpus.jsonl"), "{err}");
    }

    #[test]
    fn a_dataset_without_any_relevant_judgement_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CORPUS_FILE),
            "{\"_id\": \"d1\", \"text\": \"x\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(QUERIES_FILE),
            "{\"_id\": \"q1\", \"text\": \"x\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(QRELS_FILE),
            "query-id\tcorpus-id\tscore\nq1\td1\t0\n",
        )
        .unwrap();

        let err = Dataset::load(dir.path()).unwrap_err();

        assert!(
            err.to_string()
                .ends_with("qrels.tsv: no query has a relevant document (score above 0)"),
            "{err}"
        );
    }
}
