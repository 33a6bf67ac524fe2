//! The `kb` binary: local commands, and commands sent to a running `kb serve` that holds
//! the embedded index.

use crate::helpers::samples_dir;
use crate::served::{KbServe, kb_command};
use std::path::Path;
use std::process::{Command, Output};

fn kb(data_dir: &Path) -> Command {
    kb_command(data_dir, None)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run kb");
    eprintln!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn ingest_and_ask_work_while_the_server_holds_the_index() {
    let data = tempfile::tempdir().unwrap();
    let server = KbServe::start(data.path(), None).await;

    // The two Chinese policies (the folder's scanned notice needs OCR, tested elsewhere).
    let zh = samples_dir().join("zh");
    let out = run(kb(data.path())
        .args(["ingest"])
        .arg(zh.join("leave-policy-china.md"))
        .arg(zh.join("shanghai-office-guide.md")));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingesting through it"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("added 2, updated 0, unchanged 0, removed 0, failed 0"),
        "{stdout}"
    );

    let out = run(kb(data.path()).args(["docs", "list"]));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for id in ["leave-policy-china.md", "shanghai-office-guide.md"] {
        assert!(stdout.contains(id), "{id} listed: {stdout}");
    }
    assert!(stdout.contains("2 documents"), "{stdout}");

    // The Shanghai office guide: "公司为上海员工发放每月 500 元的通勤补贴" (a 500 yuan monthly
    // commute allowance).
    let out = run(kb(data.path()).args(["ask", "--json", "公司每月发放多少通勤补贴？"]));
    assert!(out.status.success());
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &answer["citations"][0];
    assert_eq!(
        (&first["n"], &first["document"]),
        (
            &serde_json::json!(1),
            &serde_json::json!("shanghai-office-guide.md")
        ),
        "the best source is the office guide: {answer}"
    );
    assert_eq!(
        first["heading_path"],
        serde_json::json!(["上海办公室指南", "通勤补贴"]),
        "{answer}"
    );
    assert!(
        first["snippet"].as_str().unwrap().contains("每月 500 元"),
        "{answer}"
    );
    let text = answer["answer"].as_str().unwrap();
    assert!(
        text.contains("每月 500 元的通勤补贴") && text.contains("[1]"),
        "the answer states the amount and cites it: {answer}"
    );

    drop(server);
}

#[test]
fn local_ingest_reports_broken_and_unread_files_and_exits_non_zero() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("ok.md"),
        "# Desks\n\nHot desks are booked in the desk app.\n",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("bad.txt"),
        b"\x7fELF\x02\x01\x00\x00bin\x00",
    )
    .unwrap();
    std::fs::write(docs.path().join("archive.zip"), b"PK\x03\x04").unwrap();

    let out = run(kb(data.path()).arg("ingest").arg(docs.path()));

    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("added 1, updated 0, unchanged 0, removed 0, failed 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "passed over 1 files of a type kb does not read (not ingested):\n  {}",
            docs.path().join("archive.zip").display()
        )),
        "a file of a type kb does not read is listed too: {stdout}"
    );
    assert!(
        stdout.contains("bad.txt: looks like a binary file, not text"),
        "the failed file is listed with its reason: {stdout}"
    );

    let out = run(kb(data.path()).args(["ask", "How do I book a desk?"]));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Hot desks are booked in the desk app. [1]"),
        "{stdout}"
    );
    assert!(stdout.contains("[1] Desks (ok.md)"), "{stdout}");
}

#[test]
fn a_missing_path_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let out = run(kb(data.path()).args(["ingest", "/no/such/folder"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/no/such/folder: no such file or folder")
    );
}

#[test]
fn serve_without_the_model_names_the_missing_folder_once() {
    // Arrange
    let data = tempfile::tempdir().unwrap();
    let missing = data.path().join("no-such-model");

    // Act
    let out = run(kb(data.path())
        .env("KB__EMBEDDER__LOCAL__MODEL_DIR", &missing)
        .args(["serve", "--port", "0"]));

    // Assert
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let folder = missing.display().to_string();
    assert_eq!(stderr.matches(&folder).count(), 1, "{stderr}");
}

#[test]
fn eval_reports_retrieval_metrics_on_a_beir_dataset() {
    let data = tempfile::tempdir().unwrap();
    let dataset = crate::helpers::workspace_root().join("tests/fixtures/eval-tiny");

    let out = run(kb(data.path())
        .args(["eval", "--json", "--dataset"])
        .arg(&dataset));

    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let modes: Vec<&str> = report["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["dense", "sparse", "hybrid"], "{report}");
    let dense = &report["modes"][0]["metrics"];
    // Six queries, five of them judged (the sixth has no relevant document).
    assert_eq!(dense["queries"], 5, "{report}");
    // Eight documents: recall@10 is 1 by construction, so judge the ranking instead.
    let ndcg = dense["ndcg_at_10"].as_f64().unwrap();
    let mrr = dense["mrr_at_10"].as_f64().unwrap();
    let recall_at_1 = dense["recall_at_1"].as_f64().unwrap();
    assert!((0.9..=1.0).contains(&ndcg), "{report}");
    assert!((0.9..=1.0).contains(&mrr), "{report}");
    assert!((0.8..=1.0).contains(&recall_at_1), "{report}");
}
