//! The query side's pure hot paths: building the grounded prompt from retrieved chunks,
//! checking an answer's citations, and neutralising links in an answer (whole, and streamed
//! in token-sized pieces). `cargo bench -p kb-answer`.

use criterion::{Criterion, criterion_group, criterion_main};
use kb_answer::{AllowedHosts, StreamSanitizer, citations, prompt, sanitize};
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
            location: None,
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

/// An ordinary answer of about 500 tokens (citations, numbers, no links), and the same in
/// pieces of about one token each, as a chat model streams it.
fn ordinary_answer() -> (String, Vec<String>) {
    let answer = "New employees get 25 vacation days per calendar year [1]. Up to five unused \
                  days carry over with the approval of the manager [2, 3]; the rest expire \
                  on 31 March. Part-time staff get days in proportion to their hours (see \
                  the handbook, section 4) [1]. "
        .repeat(10);
    let pieces = answer
        .split_inclusive(' ')
        .flat_map(|w| {
            // Long words arrive as two tokens.
            let cut = if w.len() > 6 { w.len() / 2 } else { w.len() };
            [w[..cut].to_owned(), w[cut..].to_owned()]
        })
        .filter(|p| !p.is_empty())
        .collect();
    (answer, pieces)
}

fn link_sanitizing(c: &mut Criterion) {
    let (answer, pieces) = ordinary_answer();
    let hosts = AllowedHosts::default();
    let mut group = c.benchmark_group("sanitize");
    group.bench_function("whole/500_tokens", |b| {
        b.iter(|| sanitize(black_box(&answer), &hosts))
    });
    group.bench_function(format!("stream/{}_pieces", pieces.len()), |b| {
        b.iter(|| {
            let mut s = StreamSanitizer::new(hosts.clone());
            let mut out = 0;
            for piece in &pieces {
                out += s.push(black_box(piece)).len();
            }
            out + s.finish().len()
        })
    });
    group.finish();
    // How much of the ordinary text is held back at all, and for how long (in pieces).
    let mut s = StreamSanitizer::new(hosts);
    let (mut held_pieces, mut sent, mut received) = (0, 0, 0);
    for piece in &pieces {
        sent += s.push(piece).len();
        received += piece.len();
        if sent < received {
            held_pieces += 1;
        }
    }
    println!(
        "sanitize: {} of {} ordinary pieces ended with bytes held until the next piece",
        held_pieces,
        pieces.len()
    );
}

criterion_group!(benches, prompt_building, citation_checking, link_sanitizing);
criterion_main!(benches);
