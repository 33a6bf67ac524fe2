//! The `kb` binary: local commands, and commands sent to a running `kb serve` that holds
//! the embedded index.

use crate::helpers::{model_dir, samples_dir};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn kb(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kb"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env("KB__EMBEDDER__LOCAL__MODEL_DIR", model_dir())
        .env_remove("KB_CONFIG")
        .stdin(Stdio::null());
    cmd
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

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ingest_and_ask_work_while_the_server_holds_the_index() {
    let data = tempfile::tempdir().unwrap();
    let server = Server(
        kb(data.path())
            .args(["serve", "--port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let info = data.path().join("server.json");
    let started = Instant::now();
    while !info.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "kb serve did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = run(kb(data.path())
        .args(["ingest"])
        .arg(samples_dir().join("zh")));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingesting through it"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("added 2"));

    let out = run(kb(data.path()).args(["docs", "list"]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("leave-policy-china.md"));

    let out = run(kb(data.path()).args(["ask", "--json", "上海员工的通勤补贴是多少？"]));
    assert!(out.status.success());
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(answer["citations"].as_array().is_some());

    drop(server);
}

#[test]
fn local_ingest_reports_broken_files_and_exits_non_zero() {
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

    let out = run(kb(data.path()).arg("ingest").arg(docs.path()));

    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("added 1"), "{stdout}");
    assert!(stdout.contains("bad.txt"), "{stdout}");

    let out = run(kb(data.path()).args(["ask", "How do I book a desk?"]));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
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
fn eval_reports_retrieval_metrics_on_a_beir_dataset() {
    let data = tempfile::tempdir().unwrap();
    let dataset = crate::helpers::workspace_root().join("tests/fixtures/eval-tiny");

    let out = run(kb(data.path())
        .args(["eval", "--json", "--dataset"])
        .arg(&dataset));

    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dense = &report["modes"][0];
    assert_eq!(dense["mode"], "dense");
    let ndcg = dense["metrics"]["ndcg_at_10"].as_f64().unwrap();
    let recall = dense["metrics"]["recall_at_10"].as_f64().unwrap();
    assert!(ndcg > 0.5 && ndcg <= 1.0, "{report}");
    assert!(recall > 0.5, "{report}");
}
