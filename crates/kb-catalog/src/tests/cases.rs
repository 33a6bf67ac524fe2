//! The catalog conformance cases: each runs against SQLite and Postgres (see `mod.rs`).

use super::{chunks, doc, source, stored_key_hashes};
use crate::{CatalogStore, NewKey};
use kb_core::{
    API_KEY_PREFIX, AccessRole, Catalog, DocumentId, DocumentMeta, KeyStore, KeyStoreError,
    Location, MessageHeaders, RunStats, key_hash,
};
use secrecy::ExposeSecret;
use uuid::Uuid;

pub(super) async fn committing_a_document_stores_it_with_its_chunks(cat: &CatalogStore) {
    let d = doc("leave.md", "v1");
    let c = chunks(&d, 3);
    cat.record_pending_points(&c.iter().map(|c| c.point_id).collect::<Vec<_>>())
        .await
        .unwrap();

    let replaced = cat.commit_document(&d, &c).await.unwrap();

    assert!(replaced.is_empty());
    let stored = cat.get_document(&d.id).await.unwrap().unwrap();
    assert_eq!(stored.chunk_count, 3);
    assert_eq!(cat.chunks(&d.id).await.unwrap(), c);
    assert!(cat.orphan_candidates().await.unwrap().is_empty());
}

pub(super) async fn a_range_of_chunks_is_read_without_the_rest_of_the_document(cat: &CatalogStore) {
    let d = doc("leave.md", "v1");
    let c = chunks(&d, 6);
    cat.commit_document(&d, &c).await.unwrap();
    let other = doc("travel.md", "v1");
    cat.commit_document(&other, &chunks(&other, 6))
        .await
        .unwrap();

    assert_eq!(cat.chunk_range(&d.id, 2..=4).await.unwrap(), c[2..=4]);
    assert_eq!(cat.chunk_range(&d.id, 0..=0).await.unwrap(), c[..1]);
    // A range past the end is cut at the last chunk.
    assert_eq!(cat.chunk_range(&d.id, 4..=40).await.unwrap(), c[4..]);
    assert!(cat.chunk_range(&d.id, 9..=12).await.unwrap().is_empty());
    assert!(
        cat.chunk_range(&DocumentId::new("gone.md"), 0..=3)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn document_metadata_round_trips(cat: &CatalogStore) {
    let mut d = doc("handbook.pdf", "v1");
    d.meta = DocumentMeta {
        owner: Some("People Team".into()),
        effective_date: "2026-03-01".parse().ok(),
        tags: vec!["leave".into(), "policy".into()],
        message: None,
    };

    cat.commit_document(&d, &chunks(&d, 1)).await.unwrap();
    let mut changed = d.clone();
    changed.meta.owner = None;
    cat.commit_document(&changed, &chunks(&changed, 1))
        .await
        .unwrap();

    let stored = cat.get_document(&d.id).await.unwrap().unwrap();
    assert_eq!(stored.meta, changed.meta);
    assert_eq!(cat.list_documents().await.unwrap()[0].meta, changed.meta);
}

pub(super) async fn chunk_locations_and_message_headers_round_trip(cat: &CatalogStore) {
    let mut d = doc("thread.eml", "v1");
    d.meta.message = Some(MessageHeaders {
        from: Some("Ana <ana@example.com>".into()),
        to: vec!["team@example.com".into()],
        subject: Some("Budget 2027".into()),
        message_id: Some("abc@example.com".into()),
        ..MessageHeaders::default()
    });
    let mut c = chunks(&d, 2);
    c[1].chunk.location = Some(Location::Rows {
        sheet: "Budget".into(),
        first: 2,
        last: 9,
    });

    cat.commit_document(&d, &c).await.unwrap();

    assert_eq!(cat.chunks(&d.id).await.unwrap(), c);
    assert_eq!(cat.get_document(&d.id).await.unwrap().unwrap().meta, d.meta);
}

pub(super) async fn a_message_is_found_by_its_message_id_before_its_attachments(
    cat: &CatalogStore,
) {
    let headers = MessageHeaders {
        message_id: Some("abc@example.com".into()),
        ..MessageHeaders::default()
    };
    for id in ["thread.eml#attachment/budget.xlsx", "thread.eml"] {
        let mut d = doc(id, "v1");
        d.meta.message = Some(headers.clone());
        cat.commit_document(&d, &chunks(&d, 1)).await.unwrap();
    }

    let found = cat.find_message("abc@example.com").await.unwrap();

    assert_eq!(found, Some(DocumentId::new("thread.eml")));
    assert_eq!(cat.find_message("other@example.com").await.unwrap(), None);
}

pub(super) async fn a_documents_source_round_trips_and_can_be_recorded_alone(cat: &CatalogStore) {
    let mut d = doc("budget.md", "v1");
    d.source = Some(source("/handbook/finance/budget.md", Some(&["finance"])));
    let legacy = doc("old.md", "v1");
    cat.commit_document(&d, &chunks(&d, 2)).await.unwrap();
    cat.commit_document(&legacy, &chunks(&legacy, 1))
        .await
        .unwrap();

    assert_eq!(
        cat.get_document(&d.id).await.unwrap().unwrap().source,
        d.source
    );
    assert_eq!(
        cat.get_document(&legacy.id).await.unwrap().unwrap().source,
        None
    );

    let moved = source("/handbook/old.md", None);
    cat.set_document_source(&legacy.id, &moved).await.unwrap();

    let stored = cat.get_document(&legacy.id).await.unwrap().unwrap();
    assert_eq!(stored.source, Some(moved));
    assert_eq!(cat.chunks(&legacy.id).await.unwrap(), chunks(&legacy, 1));
    let missing = cat
        .set_document_source(&DocumentId::new("nope.md"), &source("/x", None))
        .await;
    assert!(missing.is_err());
}

pub(super) async fn two_documents_cannot_come_from_one_file(cat: &CatalogStore) {
    let mut first = doc("budget.md", "v1");
    first.source = Some(source("/handbook/finance/budget.md", None));
    let mut copy = doc("finance/budget.md", "v1");
    copy.source = first.source.clone();
    cat.commit_document(&first, &chunks(&first, 1))
        .await
        .unwrap();

    let refused = cat.commit_document(&copy, &chunks(&copy, 1)).await;

    assert!(refused.is_err(), "{refused:?}");
    assert!(cat.get_document(&copy.id).await.unwrap().is_none());
}

pub(super) async fn a_new_version_tombstones_the_old_points(cat: &CatalogStore) {
    let v1 = doc("leave.md", "v1");
    let old = chunks(&v1, 2);
    cat.commit_document(&v1, &old).await.unwrap();
    let v2 = doc("leave.md", "v2");
    let new = chunks(&v2, 1);

    let replaced = cat.commit_document(&v2, &new).await.unwrap();

    let mut expected: Vec<Uuid> = old.iter().map(|c| c.point_id).collect();
    expected.sort();
    let mut got = replaced.clone();
    got.sort();
    assert_eq!(got, expected);
    let mut orphans = cat.orphan_candidates().await.unwrap();
    orphans.sort();
    assert_eq!(orphans, expected);
    cat.clear_tombstones(&replaced).await.unwrap();
    assert!(cat.orphan_candidates().await.unwrap().is_empty());
    assert_eq!(cat.all_point_ids().await.unwrap(), vec![new[0].point_id]);
}

pub(super) async fn a_group_of_documents_commits_together_and_returns_every_replaced_point(
    cat: &CatalogStore,
) {
    let v1 = doc("leave.md", "v1");
    let old = chunks(&v1, 2);
    cat.commit_document(&v1, &old).await.unwrap();
    let (v2, other) = (doc("leave.md", "v2"), doc("travel.md", "v1"));
    let group = vec![
        (v2.clone(), chunks(&v2, 1)),
        (other.clone(), chunks(&other, 3)),
    ];
    let ids: Vec<Uuid> = group
        .iter()
        .flat_map(|(_, c)| c.iter().map(|c| c.point_id))
        .collect();
    cat.record_pending_points(&ids).await.unwrap();

    let mut replaced = cat.commit_documents(&group).await.unwrap();

    replaced.sort();
    let mut expected: Vec<Uuid> = old.iter().map(|c| c.point_id).collect();
    expected.sort();
    assert_eq!(replaced, expected);
    assert_eq!(cat.chunks(&v2.id).await.unwrap(), group[0].1);
    assert_eq!(cat.chunks(&other.id).await.unwrap(), group[1].1);
    assert!(cat.pending_points().await.unwrap().is_empty());
}

pub(super) async fn a_group_that_fails_commits_none_of_its_documents(cat: &CatalogStore) {
    let (good, bad) = (doc("good.md", "v1"), doc("bad.md", "v1"));
    let mut bad_chunks = chunks(&bad, 2);
    // Two chunks with one point id: the second insert violates the primary key.
    bad_chunks[1].point_id = bad_chunks[0].point_id;

    let failed = cat
        .commit_documents(&[(good.clone(), chunks(&good, 1)), (bad, bad_chunks)])
        .await;

    assert!(failed.is_err());
    assert!(cat.get_document(&good.id).await.unwrap().is_none());
    assert!(cat.all_point_ids().await.unwrap().is_empty());
}

pub(super) async fn pending_points_of_an_uncommitted_run_are_orphan_candidates(cat: &CatalogStore) {
    let d = doc("leave.md", "v1");
    let c = chunks(&d, 2);
    let ids: Vec<Uuid> = c.iter().map(|c| c.point_id).collect();

    cat.record_pending_points(&ids).await.unwrap();

    let mut orphans = cat.orphan_candidates().await.unwrap();
    orphans.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(orphans, expected);
}

pub(super) async fn write_ahead_records_are_listed_until_cleared(cat: &CatalogStore) {
    let v1 = doc("leave.md", "v1");
    let old = chunks(&v1, 2);
    cat.commit_document(&v1, &old).await.unwrap();
    let v2 = doc("leave.md", "v2");
    let new = chunks(&v2, 1);
    let new_ids: Vec<Uuid> = new.iter().map(|c| c.point_id).collect();
    cat.record_pending_points(&new_ids).await.unwrap();
    assert_eq!(cat.pending_points().await.unwrap(), new_ids);
    assert!(cat.tombstones().await.unwrap().is_empty());

    let replaced = cat.commit_document(&v2, &new).await.unwrap();

    assert!(cat.pending_points().await.unwrap().is_empty());
    let mut tombstones = cat.tombstones().await.unwrap();
    tombstones.sort();
    let mut expected = replaced.clone();
    expected.sort();
    assert_eq!(tombstones, expected);
    cat.clear_tombstones(&replaced).await.unwrap();
    assert!(cat.tombstones().await.unwrap().is_empty());
}

pub(super) async fn removing_a_document_deletes_chunks_and_returns_their_points(
    cat: &CatalogStore,
) {
    let d = doc("leave.md", "v1");
    let c = chunks(&d, 2);
    cat.commit_document(&d, &c).await.unwrap();

    let removed = cat.remove_document(&d.id).await.unwrap();

    assert_eq!(removed.len(), 2);
    assert!(cat.get_document(&d.id).await.unwrap().is_none());
    assert!(cat.all_point_ids().await.unwrap().is_empty());
}

pub(super) async fn runs_and_meta_round_trip(cat: &CatalogStore) {
    let run = cat.start_run().await.unwrap();
    let stats = RunStats {
        added: 2,
        chunks: 7,
        ..RunStats::default()
    };
    cat.finish_run(run, "completed", &stats).await.unwrap();
    cat.set_meta("embedding_model", "local:all-MiniLM-L6-v2")
        .await
        .unwrap();

    let runs = cat.list_runs(10).await.unwrap();
    assert_eq!(runs[0].stats, stats);
    assert_eq!(runs[0].status, "completed");
    assert_eq!(
        cat.get_meta("embedding_model").await.unwrap().as_deref(),
        Some("local:all-MiniLM-L6-v2")
    );
}

fn reader(name: &str, groups: &[&str]) -> NewKey {
    NewKey {
        name: name.into(),
        role: AccessRole::Reader,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

pub(super) async fn an_issued_key_is_found_by_its_hash_and_only_the_hash_is_stored(
    cat: &CatalogStore,
) {
    let (record, key) = cat
        .issue_key(&reader("alice", &["hr", "finance", "hr"]))
        .await
        .unwrap();

    let key = key.expose_secret();
    assert!(
        key.starts_with(API_KEY_PREFIX) && key.len() == 4 + 64,
        "{key}"
    );
    assert_eq!(record.groups, vec!["finance", "hr"]);
    let found = cat.find_active_key(&key_hash(key)).await.unwrap();
    assert_eq!(found, Some(record));
    assert_eq!(
        cat.find_active_key(&key_hash("kbk_nope")).await.unwrap(),
        None
    );
    assert_eq!(stored_key_hashes(cat).await, vec![key_hash(key)]);
}

pub(super) async fn a_revoked_key_stops_authenticating_and_frees_its_name(cat: &CatalogStore) {
    let (first, key) = cat.issue_key(&reader("bot", &[])).await.unwrap();
    let taken = cat.issue_key(&reader("bot", &[])).await.unwrap_err();
    assert!(matches!(taken, KeyStoreError::NameTaken(_)), "{taken}");

    let revoked = cat.revoke_key("bot").await.unwrap().expect("revoked");

    assert_eq!(revoked.id, first.id);
    assert!(revoked.revoked_at.is_some());
    let hash = key_hash(key.expose_secret());
    assert_eq!(cat.find_active_key(&hash).await.unwrap(), None);
    assert_eq!(
        cat.revoke_key(&first.id).await.unwrap(),
        None,
        "already revoked"
    );
    let (second, _) = cat.issue_key(&reader("bot", &[])).await.unwrap();
    let listed = cat.list_keys().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .any(|k| k.id == second.id && k.revoked_at.is_none())
    );
}

pub(super) async fn bad_names_and_groups_are_refused_before_anything_is_stored(cat: &CatalogStore) {
    assert!(cat.issue_key(&reader("a b", &[])).await.is_err());
    assert!(cat.issue_key(&reader("ok", &["hr,finance"])).await.is_err());

    assert!(cat.list_keys().await.unwrap().is_empty());
}

pub(super) async fn a_run_of_this_process_is_never_taken_for_a_stale_one(cat: &CatalogStore) {
    let run = cat.start_run().await.unwrap();

    let stale = cat.interrupt_stale_runs().await.unwrap();

    assert!(stale.is_empty(), "{stale:?}");
    assert_eq!(cat.list_runs(1).await.unwrap()[0].status, "running");
    cat.finish_run(run, "completed", &RunStats::default())
        .await
        .unwrap();
    let runs = cat.list_runs(1).await.unwrap();
    assert_eq!((runs[0].id, runs[0].status.as_str()), (run, "completed"));
    assert!(runs[0].finished_at.is_some());
}

pub(super) async fn runs_are_listed_newest_first_up_to_the_limit(cat: &CatalogStore) {
    let mut ids = Vec::new();
    for _ in 0..3 {
        let run = cat.start_run().await.unwrap();
        cat.finish_run(run, "completed", &RunStats::default())
            .await
            .unwrap();
        ids.push(run);
    }

    let runs = cat.list_runs(2).await.unwrap();

    let listed: Vec<i64> = runs.iter().map(|r| r.id).collect();
    assert_eq!(listed, [ids[2], ids[1]]);
}

pub(super) async fn documents_are_listed_in_id_order(cat: &CatalogStore) {
    for id in ["b.md", "a/z.md", "B.md", "a.md"] {
        let d = doc(id, "v1");
        cat.commit_document(&d, &chunks(&d, 1)).await.unwrap();
    }

    let listed: Vec<String> = cat
        .list_documents()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id.as_str().to_owned())
        .collect();

    assert_eq!(listed, ["B.md", "a.md", "a/z.md", "b.md"]);
}

pub(super) async fn set_meta_many_sets_all_keys_and_overwrites(cat: &CatalogStore) {
    cat.set_meta("b", "old").await.unwrap();

    cat.set_meta_many(&[("b", "new"), ("a", "1")])
        .await
        .unwrap();

    assert_eq!(cat.get_meta("a").await.unwrap().as_deref(), Some("1"));
    assert_eq!(cat.get_meta("b").await.unwrap().as_deref(), Some("new"));
    assert_eq!(cat.get_meta("c").await.unwrap(), None);
}
