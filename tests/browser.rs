//! The chat page at `/`, driven in Debian's headless Chromium through chromedriver
//! (WebDriver, with fantoccini): enter a key once, ask, watch the answer stream in, click a
//! citation and read the cited passage beside the answer, highlighted among its neighbours and
//! rendered as a person reads it (headings, lists, tables; never a server path, never document
//! text as HTML); on a desktop window and on a 390×844 phone screen.
//!
//! Skipped with a printed reason when chromium or chromedriver is missing, unless
//! `KB_REQUIRE_BROWSER=1` (set by scripts/test.sh), which makes that a failure.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use fantoccini::{Client, ClientBuilder, Locator};
use kb_testkit::FakeEngine;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const QUESTION: &str = "Where is my locker?";

/// The first of `names` found on PATH.
fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// chromium and chromedriver, or why the test cannot run.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = which(&["chromium", "chromium-browser"])
        .ok_or("chromium is not installed (apt-get install chromium chromium-driver)")?;
    let driver = which(&["chromedriver"])
        .ok_or("chromedriver is not installed (apt-get install chromium-driver)")?;
    Ok((chromium, driver))
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    url: String,
    _child: tokio::process::Child,
}

async fn start_driver(driver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        let ready = reqwest::get(format!("{url}/status"))
            .await
            .ok()
            .filter(|r| r.status().is_success());
        if let Some(response) = ready {
            let status: Value = response.json().await.unwrap_or_default();
            if status["value"]["ready"] == true {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not become ready on {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { url, _child: child }
}

async fn open_browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    // Flags for this machine: no sandbox as root, and no background traffic to the closed
    // network (see the machine notes).
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": args}),
    );
    // rustls is built with two crypto back-ends here and will not pick one by itself.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::rustls()
        .expect("TLS roots")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

async fn click(client: &Client, id: &str) {
    let element = client.find(Locator::Id(id)).await;
    element
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn type_into(client: &Client, id: &str, text: &str) {
    let element = client.find(Locator::Id(id)).await;
    element
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
}

/// Ask on the page; return the partial answers seen while it streamed, and the final one.
async fn ask_and_watch(client: &Client) -> (Vec<String>, String) {
    let turns_before = client
        .find_all(Locator::Css("li.turn.assistant"))
        .await
        .unwrap()
        .len();
    type_into(client, "question", QUESTION).await;
    click(client, "ask").await;
    // Each exchange adds two items to the log: the question, then the answer.
    let turn = format!(
        "#log > li.turn.assistant:nth-child({})",
        2 * (turns_before + 1)
    );
    let mut partial = Vec::new();
    let started = Instant::now();
    loop {
        let done = !client
            .find_all(Locator::Css(&format!("{turn} .actions:not([hidden])")))
            .await
            .unwrap()
            .is_empty();
        let text = client
            .find_all(Locator::Css(&format!("{turn} .answer-text")))
            .await
            .unwrap();
        let text = match text.first() {
            Some(el) => el.text().await.unwrap(),
            None => String::new(),
        };
        if done {
            return (partial, text);
        }
        if !text.is_empty() && partial.last() != Some(&text) {
            partial.push(text);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let log = text_of(client, "#log").await;
            panic!("no finished answer after 30 s; seen: {partial:?}; the log shows: {log}");
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Click the last answer's first citation and wait until the passage panel shows the passage
/// in its context (the request for it finished).
async fn open_citation(client: &Client) {
    let cite = wait_for(
        client,
        "li.turn.assistant:last-of-type .answer-text button.cite",
    )
    .await;
    assert_eq!(cite.text().await.unwrap(), "[1]");
    cite.click().await.unwrap();
    let panel = wait_for(client, "#passage:not([hidden])").await;
    assert!(panel.is_displayed().await.unwrap());
    wait_for(client, "#passage-status[hidden]").await;
}

/// Click the last answer's first citation and check the passage panel.
async fn check_citation(client: &Client, served_from: &Path) {
    open_citation(client).await;
    let title = text_of(client, "#passage-title").await;
    let cited = text_of(client, "#passage-text .chunk.cited").await;
    assert_eq!(title, "[1] Lockers");
    assert!(cited.contains("Keys are issued by reception."), "{cited}");
    let panel = text_of(client, "#passage").await;
    let folder = served_from.file_name().unwrap().to_str().unwrap();
    assert!(
        !panel.contains(folder),
        "the panel shows a server path: {panel}"
    );
    let page = client.source().await.unwrap();
    assert!(!page.contains(folder), "the page holds a server path");
}

/// A handbook page in three sections (a chunk each): prose, a table and a list, with markup
/// planted in a table cell that must be shown as text.
const GUIDE: &str = "# Locker guide\n\n\
Every employee gets a personal locker on the second floor. Keys are issued by reception, \
which keeps a spare key for each locker in a sealed cabinet. Lockers are opened only by the \
employee they belong to or, in an emergency, by facilities staff with a witness present. \
Lockers are cleaned twice a year; the dates are announced on the notice board two weeks ahead \
so that everyone can take their belongings home in time.\n\n\
## Locker sizes\n\n\
Lockers come in three sizes. The deposit is paid back when the key is returned.\n\n\
| Size | Floor | Deposit |\n| --- | --- | --- |\n\
| Small | 2 | 10 EUR |\n| Medium | 2 | 15 EUR |\n\
| Large <img src=x onerror=alert(1)> | 3 | 20 EUR |\n\n\
## Locker rules\n\n\
- Empty your locker before a **holiday** longer than two weeks.\n\
- Report a lost key to reception at once; a new lock costs 25 EUR.\n\
- Do not store food, medicine or valuables over 500 EUR in a locker.\n";

/// The guide on a server of its own, with a source link for its folder; the page asks that
/// server, and a citation of the guide opens its three sections, the cited one highlighted.
async fn check_rendered_passage(client: &Client, engine: &FakeEngine) {
    // Arrange
    let docs = tempfile::tempdir().unwrap();
    let root = docs.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("facilities")).unwrap();
    std::fs::write(root.join("facilities/locker guide.md"), GUIDE).unwrap();
    let base_url = engine.base_url();
    let rule = json!([{ "root": root, "url": "https://wiki.example.com/{path}" }]);
    let app = helpers::spawn_app_with(move |s| {
        helpers::use_fake_chat(s, base_url);
        s.answer.source_urls = serde_json::from_value(rule).unwrap();
    })
    .await;
    app.ingest(std::slice::from_ref(&root)).await;
    let (_, document) = app
        .get(
            "/v1/documents/facilities%2Flocker%20guide.md",
            Some(helpers::ADMIN_TOKEN),
        )
        .await;
    let chunks = document["chunks"].as_array().unwrap().len();
    assert!(
        (2..=3).contains(&chunks),
        "the guide should be cut into 2 or 3 chunks (the page shows 2 on each side of the \
         cited one), not {chunks}: {document}"
    );
    // The model quotes and cites source [1] (kb checks that the passage supports it).
    engine.set_chat_reply(None);
    engine.set_cited_source(1);
    client.goto(&format!("{}/", app.address)).await.unwrap();
    let key = app.create_key("browser", "reader", "");
    type_into(client, "api-key", &key).await;
    click(client, "save-key").await;
    ask_and_watch(client).await;

    // Act
    open_citation(client).await;

    // Assert: the passage beside the answer, highlighted among its neighbours.
    assert_eq!(text_of(client, "#passage-title").await, "[1] Locker guide");
    let cited = client
        .find_all(Locator::Css("#passage-text .chunk.cited"))
        .await
        .unwrap();
    assert_eq!(cited.len(), 1, "one cited chunk");
    let context = client
        .find_all(Locator::Css("#passage-text .chunk.context"))
        .await
        .unwrap();
    assert_eq!(
        context.len() + 1,
        chunks,
        "every other chunk is shown as context"
    );
    let highlight = cited[0].css_value("background-color").await.unwrap();
    assert_ne!(
        highlight, "rgba(0, 0, 0, 0)",
        "the cited chunk is highlighted"
    );
    // Rendered as a person reads it: headings, a table with its header, a list, bold text.
    let headings = texts(client, "#passage-text .md-heading").await;
    assert_eq!(headings, ["Locker guide", "Locker sizes", "Locker rules"]);
    assert_eq!(
        texts(client, "#passage-text table th").await,
        ["Size", "Floor", "Deposit"]
    );
    let cells = texts(client, "#passage-text table td").await;
    assert_eq!(cells.len(), 9, "{cells:?}");
    assert_eq!(
        cells[6], "Large <img src=x onerror=alert(1)>",
        "markup shown as text"
    );
    let items = texts(client, "#passage-text ul > li").await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(texts(client, "#passage-text li strong").await, ["holiday"]);
    let shown = text_of(client, "#passage-text").await;
    for raw in ["##", "| ---", "**", "| Small"] {
        assert!(!shown.contains(raw), "raw Markdown {raw:?} shown: {shown}");
    }
    assert!(
        client
            .find_all(Locator::Css("#passage img, #passage script"))
            .await
            .unwrap()
            .is_empty(),
        "document text was rendered as HTML"
    );
    // A link to the source system, and no path on the server's disk.
    let link = client.find(Locator::Id("passage-link")).await.unwrap();
    assert!(link.is_displayed().await.unwrap());
    assert_eq!(
        link.attr("href").await.unwrap().as_deref(),
        Some("https://wiki.example.com/facilities/locker%20guide.md")
    );
    let folder = root.file_name().unwrap().to_str().unwrap();
    assert!(!client.source().await.unwrap().contains(folder));
    // Beside the answer: the panel and the conversation do not overlap.
    let layout = client
        .execute(
            "const p = document.getElementById('passage').getBoundingClientRect();
             const m = document.getElementById('log').getBoundingClientRect();
             return [p.left, m.right];",
            vec![],
        )
        .await
        .unwrap();
    let [panel_left, log_right] = [0, 1].map(|i| layout[i].as_f64().unwrap());
    assert!(
        log_right <= panel_left,
        "the passage covers the answer: {layout}"
    );
}

/// The text of every element `css` finds, in document order.
async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in client.find_all(Locator::Css(css)).await.unwrap() {
        out.push(element.text().await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_chat_page_streams_an_answer_whose_citation_shows_the_passage() {
    let (chromium, driver) = match browser() {
        Ok(found) => found,
        Err(reason) => {
            assert!(
                std::env::var("KB_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "KB_REQUIRE_BROWSER=1 but {reason}"
            );
            eprintln!("skipped: {reason}");
            return;
        }
    };
    // Arrange: kb with the fake chat engine, streaming one word each 120 ms.
    let engine = FakeEngine::builder().chat_model("fake-chat").start().await;
    let (app, docs) = helpers::app_with_chat(&engine).await;
    let served_from = docs.path().canonicalize().unwrap();
    engine.set_stream_chunk_delay(Duration::from_millis(120));
    let driver = start_driver(&driver).await;
    let profile = tempfile::tempdir().unwrap();
    let client = open_browser(&driver, &chromium, profile.path()).await;

    // Act: enter the key once, ask.
    client.goto(&format!("{}/", app.address)).await.unwrap();
    let key = app.create_key("browser", "reader", "");
    type_into(&client, "api-key", &key).await;
    click(&client, "save-key").await;
    let (partial, answer) = ask_and_watch(&client).await;

    // Assert: the answer arrived in pieces, ends cited, and its citation opens the passage.
    assert!(
        answer.ends_with("Every employee gets a personal locker on the second floor. [1]"),
        "{answer}"
    );
    assert!(
        partial.len() >= 3 && partial.iter().all(|p| answer.starts_with(p.trim_end())),
        "the answer did not stream: {partial:?}"
    );
    assert!(
        client
            .find(Locator::Css("li.turn.assistant .copy"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    check_citation(&client, &served_from).await;
    let sent = engine.last_request(kb_testkit::Route::Chat).unwrap();
    assert!(sent.to_string().contains("Where is my locker?"));

    // Phone-sized: the key is remembered, model output is shown as text, nothing overflows.
    engine.set_stream_chunk_delay(Duration::ZERO);
    // The server strips raw HTML from model output; the entity-escaped markup it leaves must
    // still be shown as typed, which only holds if the page inserts text, not HTML.
    // (The citation follows the sentence its source supports: kb moves or removes others.)
    engine.set_chat_reply(Some(
        "Lockers are on the <b>second</b> floor <img src=x onerror=alert(1)> [1]. \
         Door code &lt;b&gt;7&lt;/b&gt;."
            .into(),
    ));
    client.set_window_size(390, 844).await.unwrap();
    client.goto(&format!("{}/", app.address)).await.unwrap();
    assert!(
        !client
            .find(Locator::Id("api-key"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "the key was asked again"
    );
    let (_, answer) = ask_and_watch(&client).await;
    assert_eq!(
        answer,
        "Lockers are on the second floor [1]. Door code &lt;b&gt;7&lt;/b&gt;."
    );
    assert!(
        client
            .find_all(Locator::Css(".answer-text b, .answer-text img"))
            .await
            .unwrap()
            .is_empty(),
        "model output was rendered as HTML"
    );
    check_citation(&client, &served_from).await;
    let layout = client
        .execute(
            "const p = document.getElementById('passage').getBoundingClientRect();
             return [window.innerWidth, document.documentElement.scrollWidth, p.left, p.right];",
            vec![],
        )
        .await
        .unwrap();
    let [inner, scroll, left, right] = [0, 1, 2, 3].map(|i| layout[i].as_f64().unwrap());
    assert!(inner <= 400.0, "not a phone-sized window: {layout}");
    assert!(scroll <= inner, "the page scrolls sideways: {layout}");
    assert!(
        left >= 0.0 && right <= inner,
        "the passage overflows: {layout}"
    );

    // A structured document, on a desktop window: rendered, highlighted, beside the answer.
    client.set_window_size(1280, 900).await.unwrap();
    check_rendered_passage(&client, &engine).await;

    client.close().await.unwrap();
}
