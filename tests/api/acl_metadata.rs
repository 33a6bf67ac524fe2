//! Metadata mistakes fail closed: a Markdown file whose front matter (or a file whose sidecar)
//! is written wrong is reported and left out, never ingested under the default groups where
//! every reader would find it.
//!
//! Each bad file holds a codeword of its own; after a real ingest through
//! `POST /v1/admin/ingest`, a reader of `all` searches for every codeword and finds none, while
//! the good files beside them are ingested with their own groups.

use crate::helpers::{ADMIN_TOKEN, TestApp, model_dir, spawn_app};
use serde_json::json;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// (file, contents, a part of the reason it fails with). Every file talks about salary bands
/// and carries its own codeword.
const BAD_FILES: [(&str, &str, &str); 10] = [
    (
        "group-key.md",
        "---\ntitle: Salaries\ngroup: [finance]\n---\n# Salary bands\n\nThe salary band codeword is MARTEN.\n",
        "front matter: unknown field(s) group; did you mean groups?",
    ),
    (
        "capital-groups.md",
        "---\nGroups: [finance]\n---\n# Salary bands\n\nThe salary band codeword is BADGER.\n",
        "front matter: unknown field(s) Groups; did you mean groups?",
    ),
    (
        "unknown-key.md",
        "---\nreviewer: Sam\ngroups: [finance]\n---\n# Salary bands\n\nThe salary band codeword is OTTER.\n",
        "front matter: unknown field(s) reviewer (kb reads title, owner, effective_date, tags, groups and ignores",
    ),
    (
        "unclosed.md",
        "---\ntitle: Salaries\ngroups: [finance]\n\n# Salary bands\n\nThe salary band codeword is FERRET.\n",
        "front matter opened with --- on line 1 is never closed; add a line with --- after it",
    ),
    (
        "blank-line.md",
        "\n---\ngroups: [finance]\n---\n# Salary bands\n\nThe salary band codeword is STOAT.\n",
        "front matter must start on the first line; remove the blank lines or spaces before the --- on line 2",
    ),
    (
        "empty-groups.md",
        "---\ngroups: []\n---\n# Salary bands\n\nThe salary band codeword is MINK.\n",
        r#"front matter: groups is empty; name at least one group ("all" for everyone)"#,
    ),
    (
        "one-string.md",
        "---\ngroups: \"hr, finance\"\n---\n# Salary bands\n\nThe salary band codeword is WEASEL.\n",
        "write a YAML list: groups: [hr, finance]",
    ),
    (
        "toml.md",
        "+++\ngroups = [\"finance\"]\n+++\n# Salary bands\n\nThe salary band codeword is SABLE.\n",
        "front matter in TOML (+++) is not read",
    ),
    (
        "empty-sidecar-groups.txt",
        "Salary bands. The salary band codeword is WOLVERINE.\n",
        r#"sidecar empty-sidecar-groups.txt.meta.yaml: groups is empty; name at least one group ("all" for everyone)"#,
    ),
    (
        "sidecar-audience.txt",
        "Salary bands. The salary band codeword is POLECAT.\n",
        "sidecar sidecar-audience.txt.meta.yaml: unknown field(s) audience; did you mean groups?",
    ),
];

/// Sidecars of the bad text files.
const BAD_SIDECARS: [(&str, &str); 2] = [
    ("empty-sidecar-groups.txt.meta.yaml", "groups: []\n"),
    ("sidecar-audience.txt.meta.yaml", "audience: [finance]\n"),
];

/// (file, contents, the groups it is ingested with, its codeword).
const GOOD_FILES: [(&str, &[u8], &[&str], &str); 4] = [
    (
        "canteen.md",
        b"---\ngroups: [all]\n---\n# Canteen\n\nThe canteen codeword is PUFFIN.\n",
        &["all"],
        "PUFFIN",
    ),
    (
        "site-page.md",
        b"---\ntitle: Salaries\nauthor: Sam\ndate: 2026-01-05\ndraft: false\nlayout: page\ncategories: [pay]\ngroups: [finance]\n---\n# Salary bands\n\nThe salary band codeword is GANNET.\n",
        &["finance"],
        "GANNET",
    ),
    (
        "bom.md",
        b"\xef\xbb\xbf---\ngroups: [finance]\n---\n# Salary bands\n\nThe salary band codeword is SHAG.\n",
        &["finance"],
        "SHAG",
    ),
    (
        "rules.md",
        b"# Parking\n\nThe parking codeword is AUK.\n\n---\n\ntitle: a rule above, not metadata\n\n---\n\nPermits come from reception.\n",
        &["all"],
        "AUK",
    ),
];

fn codeword(text: &str) -> &str {
    let start = text
        .find("codeword is ")
        .expect("every file has a codeword")
        + 12;
    text[start..].trim_end().trim_end_matches('.')
}

fn write_files(dir: &Path) {
    for (file, text, _) in BAD_FILES {
        fs::write(dir.join(file), text).unwrap();
    }
    for (file, text) in BAD_SIDECARS {
        fs::write(dir.join(file), text).unwrap();
    }
    for (file, bytes, ..) in GOOD_FILES {
        fs::write(dir.join(file), bytes).unwrap();
    }
}

/// Sparse (BM25) search for an exact word as `key`: the documents and texts found.
async fn find_word(app: &TestApp, key: &str, word: &str) -> Vec<(String, String)> {
    let (status, body) = app
        .post_as(
            key,
            "/v1/search",
            &json!({"query": word, "top_k": 20, "retrieval": "sparse"}),
        )
        .await;
    assert_eq!(status, 200, "search {word}: {body}");
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results list: {body}"))
        .iter()
        .map(|r| {
            (
                r["document"].as_str().unwrap().to_owned(),
                r["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn front_matter_and_sidecar_mistakes_fail_their_files_and_no_reader_finds_them() {
    // Arrange
    let app = spawn_app().await;
    let everyone = app.create_key("everyone", "reader", "all");
    let docs = tempfile::tempdir().unwrap();
    write_files(docs.path());

    // Act
    let report = app.ingest(&[docs.path().to_path_buf()]).await;

    // Assert: every bad file is reported with its path and reason, the good ones are in.
    let failures = report["failures"]
        .as_array()
        .unwrap_or_else(|| panic!("no failures list: {report}"));
    for (file, _, reason) in BAD_FILES {
        let failure = failures
            .iter()
            .find(|f| {
                f["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/{file}")))
            })
            .unwrap_or_else(|| panic!("{file} is not reported as failed: {report}"));
        let got = failure["reason"].as_str().unwrap();
        assert!(got.contains(reason), "{file}: {got:?} lacks {reason:?}");
    }
    assert_eq!(failures.len(), BAD_FILES.len(), "{report}");
    assert_eq!(report["stats"]["failed"], BAD_FILES.len(), "{report}");
    assert_eq!(report["stats"]["added"], GOOD_FILES.len(), "{report}");

    let (_, listed) = app.get("/v1/documents", Some(ADMIN_TOKEN)).await;
    let listed = listed["documents"]
        .as_array()
        .unwrap_or_else(|| panic!("no documents list: {listed}"));
    assert_eq!(listed.len(), GOOD_FILES.len(), "{listed:?}");
    for (file, _, groups, _) in GOOD_FILES {
        let doc = listed
            .iter()
            .find(|d| d["id"] == file)
            .unwrap_or_else(|| panic!("{file} not listed: {listed:?}"));
        assert_eq!(doc["groups"], json!(groups), "{file}: {doc}");
    }

    // Assert: a reader of `all` finds the public good files, and nothing of a bad file.
    for (file, text, _) in BAD_FILES {
        let word = codeword(text);
        let found = find_word(&app, &everyone, word).await;
        assert!(
            found.iter().all(|(_, t)| !t.contains(word)),
            "{file} is readable by everyone: {found:?}"
        );
    }
    for (file, _, groups, word) in GOOD_FILES {
        let found = find_word(&app, &everyone, word).await;
        let visible = found.iter().any(|(d, t)| d == file && t.contains(word));
        assert_eq!(visible, groups == ["all"], "{file}: {found:?}");
    }
}

#[test]
fn kb_ingest_exits_3_and_names_the_file_whose_front_matter_is_wrong() {
    // Arrange
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    fs::write(
        docs.path().join("desks.md"),
        "# Desks\n\nHot desks are booked in the desk app.\n",
    )
    .unwrap();
    fs::write(
        docs.path().join("salaries.md"),
        "---\ngroup: [finance]\n---\n# Salary bands\n\nBands are reviewed in March.\n",
    )
    .unwrap();

    // Act
    let out = Command::new(env!("CARGO_BIN_EXE_kb"))
        .arg("--data-dir")
        .arg(data.path())
        .env("KB__EMBEDDER__LOCAL__MODEL_DIR", model_dir())
        .env_remove("KB_CONFIG")
        .stdin(Stdio::null())
        .arg("ingest")
        .arg(docs.path())
        .output()
        .expect("run kb ingest");

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("added 1"), "{stdout}");
    assert!(stdout.contains("salaries.md"), "{stdout}");
    assert!(stdout.contains("did you mean groups?"), "{stdout}");
}
