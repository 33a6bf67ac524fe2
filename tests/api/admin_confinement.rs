//! What admin ingest over HTTP may read (`ingest.roots`), and what a reader learns from the
//! numbers of a search or from the open probes.
//!
//! `POST /v1/admin/ingest` reads files on the server's machine. Without `ingest.roots` only the
//! server's own admin token (the `kb` CLI beside it) may use it; with roots, every caller is
//! confined to them, and a refusal never says whether the path exists. A reader's search hits
//! carry a rank and the cosine, never the BM25/RRF score, which depends on documents the reader
//! cannot see; `/readyz` publishes no counts.

use crate::helpers::{ADMIN_TOKEN, TestApp, catalogued_chunks, spawn_app_with};
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};

/// Forbidden: the 403 every refused path gets, whatever lies behind it.
fn assert_refused(what: &str, status: u16, body: &Value) {
    assert_eq!(status, 403, "{what}: {body}");
    assert_eq!(body["error"]["code"], "forbidden", "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ingest.roots")),
        "{what}: the message names ingest.roots: {body}"
    );
}

async fn ingest_as(app: &TestApp, credential: &str, body: &Value) -> (u16, Value) {
    app.post_as(credential, "/v1/admin/ingest", body).await
}

/// A folder of three public documents, two mentioning parking.
fn write_public(dir: &Path) {
    fs::write(
        dir.join("parking.md"),
        "# Parking\n\nParking spaces are in the basement garage. Parking permits are issued by \
         reception; parking is free for employees.\n",
    )
    .unwrap();
    fs::write(
        dir.join("bikes.md"),
        "# Bicycles\n\nBicycles go in the courtyard racks, next to the visitor parking. Showers \
         are on the ground floor, and lockers can be rented by the month.\n",
    )
    .unwrap();
    fs::write(
        dir.join("canteen.md"),
        "# Canteen\n\nThe canteen serves lunch from noon to two. Vegetarian dishes every day.\n",
    )
    .unwrap();
}

#[tokio::test]
async fn without_roots_an_admin_key_may_not_ingest_but_the_server_token_may() {
    // Arrange
    let app = spawn_app_with(|s| s.server.rate_limit_per_minute = 0).await;
    let key = app.create_key("ops", "admin", "");
    let docs = tempfile::tempdir().unwrap();
    write_public(docs.path());

    // Act
    let (listing_status, listing) = ingest_as(
        &app,
        &key,
        &json!({"paths": ["/usr/share/doc"], "dry_run": true}),
    )
    .await;
    let (key_status, key_body) = ingest_as(&app, &key, &json!({"paths": [docs.path()]})).await;
    let (token_status, report) =
        ingest_as(&app, ADMIN_TOKEN, &json!({"paths": [docs.path()]})).await;

    // Assert
    assert_refused(
        "an admin key listing /usr/share/doc",
        listing_status,
        &listing,
    );
    assert_refused("an admin key ingesting", key_status, &key_body);
    assert_eq!(listing, key_body, "one answer for every path");
    assert_eq!(token_status, 200, "{report}");
    assert_eq!(report["stats"]["added"], 3, "{report}");
}

#[tokio::test]
async fn an_empty_group_list_is_refused_never_read_as_everyone() {
    let app = spawn_app_with(|s| s.server.rate_limit_per_minute = 0).await;
    let docs = tempfile::tempdir().unwrap();
    write_public(docs.path());

    let (status, body) = ingest_as(
        &app,
        ADMIN_TOKEN,
        &json!({"paths": [docs.path()], "groups": []}),
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("groups"),
        "{body}"
    );
    let (status, body) = ingest_as(
        &app,
        ADMIN_TOKEN,
        &json!({"paths": [docs.path()], "groups": ["finance, hr"]}),
    )
    .await;
    assert_eq!(status, 400, "a group name no key could carry: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("finance, hr"),
        "{body}"
    );
    let (_, documents) = app.get("/v1/documents", Some(ADMIN_TOKEN)).await;
    assert_eq!(documents["documents"], json!([]), "nothing was ingested");
}

/// `base/root` (the configured root: `docs/`, `more/` and links out of it) beside
/// `base/outside`.
struct Layout {
    _base: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn layout() -> Layout {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    let outside = base.path().join("outside");
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::create_dir_all(root.join("links")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    write_public(&root.join("docs"));
    fs::create_dir_all(root.join("more")).unwrap();
    fs::write(
        root.join("more/lockers.md"),
        "# Lockers\n\nEvery employee gets a locker on the second floor.\n",
    )
    .unwrap();
    let secret = outside.join("salaries.md");
    fs::write(
        &secret,
        "# Salaries\n\nThe salary of the CEO is SECRET-4711.\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::{PermissionsExt, symlink};
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        symlink(&secret, root.join("links/salaries.md")).unwrap();
        symlink(outside.join("missing.md"), root.join("links/missing.md")).unwrap();
        symlink(&outside, root.join("links/outside")).unwrap();
        symlink("../../outside/salaries.md", root.join("links/relative.md")).unwrap();
    }
    Layout {
        _base: base,
        root,
        outside,
    }
}

/// A server whose `ingest.roots` is the layout's root, and an admin key for it.
async fn confined_app(layout: &Layout) -> (TestApp, String) {
    let root = layout.root.clone();
    let app = spawn_app_with(move |s| {
        s.server.rate_limit_per_minute = 0;
        s.ingest.roots = vec![root];
    })
    .await;
    let key = app.create_key("ops", "admin", "");
    (app, key)
}

#[tokio::test]
async fn with_roots_paths_outside_them_get_one_answer_whether_or_not_they_exist() {
    // Arrange
    let layout = layout();
    let (app, key) = confined_app(&layout).await;
    let (root, outside) = (&layout.root, &layout.outside);
    let mut attempts: Vec<(&str, PathBuf)> = vec![
        ("an existing file outside", outside.join("salaries.md")),
        ("a missing file outside", outside.join("missing.md")),
        ("an existing folder outside", outside.clone()),
        ("a system folder", PathBuf::from("/usr/share/doc")),
        (
            "a missing system folder",
            PathBuf::from("/usr/share/no-such-kb-doc"),
        ),
        (
            "`..` to an existing file",
            root.join("../outside/salaries.md"),
        ),
        ("`..` to a missing file", root.join("../outside/missing.md")),
        (
            "`..` after a missing folder",
            root.join("nope/../../outside/salaries.md"),
        ),
        (
            "`..` from inside",
            root.join("docs/../../outside/salaries.md"),
        ),
    ];
    if cfg!(unix) {
        attempts.extend([
            (
                "a link to an existing file outside",
                root.join("links/salaries.md"),
            ),
            (
                "a link to a missing file outside",
                root.join("links/missing.md"),
            ),
            ("a relative link out", root.join("links/relative.md")),
            (
                "a file through a folder link",
                root.join("links/outside/salaries.md"),
            ),
            (
                "a missing file through a folder link",
                root.join("links/outside/missing.md"),
            ),
            ("a folder link", root.join("links/outside")),
        ]);
    }

    // Act and assert, one request at a time (a path that gets through is not ingested in
    // full before the test fails: dry runs come first).
    let mut first: Option<Value> = None;
    for dry_run in [true, false] {
        for credential in [key.as_str(), ADMIN_TOKEN] {
            for (what, path) in &attempts {
                let (status, body) = ingest_as(
                    &app,
                    credential,
                    &json!({"paths": [path], "dry_run": dry_run}),
                )
                .await;

                let what = format!("{what} ({}, dry run {dry_run})", path.display());
                assert_refused(&what, status, &body);
                let first = first.get_or_insert_with(|| body.clone());
                assert_eq!(&body, first, "{what}: the same body as every other refusal");
            }
        }
    }
    let (_, documents) = app.get("/v1/documents", Some(ADMIN_TOKEN)).await;
    assert_eq!(documents["documents"], json!([]), "nothing was ingested");
}

#[tokio::test]
async fn with_roots_everyone_may_ingest_inside_them_and_a_missing_path_there_says_so() {
    // Arrange
    let layout = layout();
    let (app, key) = confined_app(&layout).await;
    let docs = layout.root.join("docs");

    // Act
    let (file_status, file_report) = ingest_as(
        &app,
        &key,
        &json!({"paths": [docs.join("parking.md")], "groups": ["facilities"]}),
    )
    .await;
    let (folder_status, folder_report) = ingest_as(
        &app,
        ADMIN_TOKEN,
        // Spelled with `..` that stays inside the root.
        &json!({"paths": [layout.root.join("links/../more")]}),
    )
    .await;
    let (missing_status, missing) = ingest_as(
        &app,
        &key,
        &json!({"paths": [docs.join("no-such-file.md")]}),
    )
    .await;
    let (relative_status, relative) =
        ingest_as(&app, &key, &json!({"paths": ["docs/parking.md"]})).await;

    // Assert
    assert_eq!(file_status, 200, "{file_report}");
    assert_eq!(file_report["stats"]["added"], 1, "{file_report}");
    assert_eq!(folder_status, 200, "{folder_report}");
    assert_eq!(folder_report["stats"]["added"], 1, "{folder_report}");
    let (_, parking) = app.get("/v1/documents/parking.md", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        parking["document"]["groups"],
        json!(["facilities"]),
        "{parking}"
    );
    assert_eq!(missing_status, 400, "{missing}");
    assert_eq!(missing["error"]["code"], "invalid_request", "{missing}");
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such file"),
        "{missing}"
    );
    assert_eq!(relative_status, 400, "{relative}");
    assert!(
        relative["error"]["message"]
            .as_str()
            .unwrap()
            .contains("absolute"),
        "{relative}"
    );
}

#[tokio::test]
async fn with_roots_links_out_of_an_ingested_folder_are_never_followed() {
    // Arrange: the settings ask to follow links, which would lead out of the root.
    let layout = layout();
    let root = layout.root.clone();
    let app = spawn_app_with(move |s| {
        s.server.rate_limit_per_minute = 0;
        s.ingest.roots = vec![root];
        s.ingest.follow_symlinks = true;
    })
    .await;

    // Act
    let (asked_status, asked) = ingest_as(
        &app,
        ADMIN_TOKEN,
        &json!({"paths": [layout.root], "follow_symlinks": true}),
    )
    .await;
    let (status, report) = ingest_as(&app, ADMIN_TOKEN, &json!({"paths": [layout.root]})).await;

    // Assert
    assert_refused("follow_symlinks asked for", asked_status, &asked);
    assert_eq!(status, 200, "{report}");
    let (_, listing) = app.get("/v1/documents", Some(ADMIN_TOKEN)).await;
    let documents: Vec<&str> = listing["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(documents.contains(&"docs/parking.md"), "{listing}");
    assert!(
        !listing.to_string().contains("salaries"),
        "a link out of the root was followed: {listing}"
    );
}

#[tokio::test]
async fn a_root_that_does_not_exist_fails_start_up_naming_the_setting_and_the_path() {
    let data = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(data.path());
    let missing = data.path().join("no-such-root");
    settings.ingest.roots = vec![missing.clone()];
    let result =
        kb_server::Server::start(&settings, &secrecy::SecretString::from(ADMIN_TOKEN)).await;

    let error = match result {
        Ok(_) => panic!("a missing root was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("ingest.roots"), "{error}");
    assert!(error.contains(&missing.display().to_string()), "{error}");
}

/// The parts of `/v1/search` results a reader may compare across time: everything but timings.
async fn reader_results(app: &TestApp, key: &str, mode: &str) -> Vec<Value> {
    let (status, body) = app
        .post_as(
            key,
            "/v1/search",
            &json!({"query": "parking", "top_k": 10, "retrieval": mode}),
        )
        .await;
    assert_eq!(status, 200, "{mode}: {body}");
    body["results"].as_array().expect("results").clone()
}

#[tokio::test]
async fn a_readers_search_numbers_do_not_move_when_restricted_documents_are_added() {
    // Arrange: public documents, and a reader who may read only them.
    let app = spawn_app_with(|s| s.server.rate_limit_per_minute = 0).await;
    let public = tempfile::tempdir().unwrap();
    write_public(public.path());
    app.ingest(&[public.path().to_path_buf()]).await;
    let reader = app.create_key("staff", "reader", "");
    let modes = ["sparse", "hybrid", "dense"];
    let mut before = Vec::new();
    for mode in modes {
        before.push(reader_results(&app, &reader, mode).await);
    }
    let admin_before = top_raw_score(&app).await;

    // Act: restricted documents that say "parking" over and over (the word's IDF falls).
    let restricted = tempfile::tempdir().unwrap();
    for i in 0..6 {
        fs::write(
            restricted.path().join(format!("board-{i}.md")),
            format!(
                "---\ngroups: [board]\n---\n# Board minutes {i}\n\nParking parking parking: the \
                 board discussed parking fees and the parking budget.\n"
            ),
        )
        .unwrap();
    }
    app.ingest(&[restricted.path().to_path_buf()]).await;

    // Assert
    for (mode, before) in modes.iter().zip(before) {
        let after = reader_results(&app, &reader, mode).await;
        assert!(!after.is_empty(), "{mode}");
        assert_eq!(
            after, before,
            "{mode}: the reader's results changed when documents it cannot read were added"
        );
        for hit in &after {
            let fields: Vec<&str> = hit
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert!(
                !fields.contains(&"score") && !fields.contains(&"raw_score"),
                "{mode}: a reader gets no collection-wide score: {hit}"
            );
            assert!(hit["rank"].as_u64().is_some(), "{mode}: {hit}");
            assert!(hit["cosine"].as_f64().is_some(), "{mode}: {hit}");
        }
    }
    let (admin_before, admin_after) = (
        admin_before.expect("an admin gets raw_score"),
        top_raw_score(&app).await.expect("an admin gets raw_score"),
    );
    assert!(
        (admin_before - admin_after).abs() > 1e-4,
        "the restricted documents do move the collection-wide score ({admin_before} → \
         {admin_after}): without them this test would prove nothing"
    );
}

/// The BM25 score of the best public passage for "parking", as the server token sees it
/// (`None` if it is not there).
async fn top_raw_score(app: &TestApp) -> Option<f64> {
    let (status, body) = app
        .post(
            "/v1/search",
            &json!({"query": "parking", "top_k": 10, "retrieval": "sparse",
                "filter": {"documents": ["parking.md"]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["results"][0]["raw_score"].as_f64()
}

#[tokio::test]
async fn admins_see_the_raw_score_the_mode_ranked_by() {
    let app = spawn_app_with(|s| s.server.rate_limit_per_minute = 0).await;
    let public = tempfile::tempdir().unwrap();
    write_public(public.path());
    app.ingest(&[public.path().to_path_buf()]).await;
    let key = app.create_key("ops", "admin", "");

    for credential in [key.as_str(), ADMIN_TOKEN] {
        for mode in ["sparse", "hybrid", "dense"] {
            let results = reader_results(&app, credential, mode).await;
            let raw: Vec<f64> = results
                .iter()
                .map(|r| {
                    r["raw_score"]
                        .as_f64()
                        .unwrap_or_else(|| panic!("{mode}: {r}"))
                })
                .collect();
            assert!(raw.windows(2).all(|w| w[0] >= w[1]), "{mode}: {raw:?}");
            let cosine = results[0]["cosine"].as_f64().unwrap();
            match mode {
                "dense" => assert!((raw[0] - cosine).abs() < 1e-6, "{results:?}"),
                // BM25: not the cosine; RRF scores are at most 2/60.
                "sparse" => assert!(
                    raw[0] > 0.0 && (raw[0] - cosine).abs() > 1e-3,
                    "{results:?}"
                ),
                _ => assert!(raw[0] <= 2.0 / 60.0 + 1e-6, "{results:?}"),
            }
        }
    }
}

#[tokio::test]
async fn the_open_probes_publish_no_counts_which_admins_find_with_the_documents() {
    let app = spawn_app_with(|_| {}).await;
    let docs = tempfile::tempdir().unwrap();
    write_public(docs.path());
    app.ingest(&[docs.path().to_path_buf()]).await;

    for probe in ["/readyz", "/healthz"] {
        let (status, body) = app.get(probe, None).await;

        assert_eq!(status, 200, "{probe}: {body}");
        let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert!(
            fields.iter().all(|f| *f == "status" || *f == "engine"),
            "{probe}: only the status and the engine's health: {body}"
        );
        assert!(!body.to_string().contains("points"), "{probe}: {body}");
    }
    let (status, listing) = app.get("/v1/documents", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{listing}");
    let catalog_chunks = catalogued_chunks(&listing);
    assert_eq!(
        listing["index_points"].as_u64(),
        Some(catalog_chunks),
        "{listing}"
    );
    assert!(catalog_chunks >= 3, "{listing}");
}
