//! The query side's pure hot paths: building the grounded prompt from retrieved chunks and
//! checking an answer's citations. `cargo bench -p kb-answer`.

use criterion::{Criterion, criterion_group, criterion_main};
use kb_answer::{citations, prompt};
use kb_core::{ChunkPayload, DocumentId, Hit};
use std::hint::black_box;

/// A retrieved chunk of about 200 tokens.
fn hit(n: usize) -> Hit {
    let text = "Employees accrue vacation days monthly and may carry over up to five unused \
                days into the next calendar year, subject to manager approval. "
        .repeat(8);
    Hit {
        id: uuid::Uuid::nil(),
        score: 0.8,
        cosine: 0.8,
        payload: ChunkPayload {
            doc_id: DocumentId::new(format!("handbook/policy-{n}.md")),
            doc_hash: "hash".into(),
            ordinal: n as u32,
            title: format!("Policy {n}"),
            path: format!("/srv/handbook/policy-{n}.md"),
            heading_path: vec!["Leave".into(), "Vacation".into(), "Carry-over".into()],
            text,
            byte_start: 0,
            byte_end: 1200,
            groups: vec!["all".into()],
            meta: kb_core::DocumentMeta::default(),
        },
    }
}

fn prompt_building(c: &mut Criterion) {
    let mut group = c.benchmark_group("prompt");
    for k in [5, 20] {
        let hits: Vec<Hit> = (1..=k).map(hit).collect();
        group.bench_function(format!("build_messages/top_{k}"), |b| {
            b.iter(|| {
                prompt::build_messages(black_box("How many vacation days carry over?"), &hits)
            })
        });
    }
    group.finish();
}

fn citation_checking(c: &mut Criterion) {
    let sentence = "Up to five unused days carry over [1]. Approval is needed [2, 3]. \
                    Some claims cite nothing real [9]. Others cite two [1][4]. ";
    let short = sentence.to_owned();
    let long = sentence.repeat(20);
    let mut group = c.benchmark_group("citations");
    group.bench_function("check/4_sentences", |b| {
        b.iter(|| citations::check(black_box(&short), 5))
    });
    group.bench_function("check/80_sentences", |b| {
        b.iter(|| citations::check(black_box(&long), 5))
    });
    group.finish();
}

criterion_group!(benches, prompt_building, citation_checking);
criterion_main!(benches);
