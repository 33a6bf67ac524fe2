//! Splitting throughput: the sample handbook (docs-samples/, Markdown) cut into 200-token
//! chunks, with a word-counting sizer (the splitter's own cost) and, when the model folder is
//! there, with the MiniLM tokenizer kb really counts with: sizing every candidate piece by
//! tokenizing it (`minilm-count`) and by the document's token spans (`minilm-spans`, what the
//! local embedder does). `cargo bench -p kb-ingest`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kb_ingest::{ChunkSplitter, DocumentFormat, SplitOptions};
use kb_testkit::memory::FakeEmbedder;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Sizes pieces in whitespace words, up to kb's default 254 tokens per input.
fn word_sizer() -> FakeEmbedder {
    FakeEmbedder::named("bench-sizer").with_max_input_tokens(254)
}

/// Sizes pieces with `tokenizer`: by tokenizing each, or with `spans` by the document's
/// token spans, as the local embedder does (chunk texts are then counted from the spans when
/// the tokenizer's counts add up at whitespace, as MiniLM's do).
fn tokenizer_sizer(tokenizer: tokenizers::Tokenizer, spans: bool) -> FakeEmbedder {
    let tokenizer = Arc::new(tokenizer);
    let counting = tokenizer.clone();
    let sizer = word_sizer().with_token_count(move |text| {
        counting
            .encode_fast(text, false)
            .map_or(text.len(), |e| e.len())
    });
    if !spans {
        return sizer;
    }
    let additive = kb_embed_local::counts_add_at_whitespace(&tokenizer);
    sizer.with_token_spans(
        move |text| kb_embed_local::token_spans(&tokenizer, text),
        additive,
    )
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every Markdown file of the sample handbook, concatenated.
fn handbook() -> String {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root().join("docs-samples"))
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("docs-samples is readable"))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn minilm_tokenizer() -> Option<tokenizers::Tokenizer> {
    let path = root().join("models/all-MiniLM-L6-v2/tokenizer.json");
    let mut tokenizer = tokenizers::Tokenizer::from_file(&path).ok()?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).ok()?;
    Some(tokenizer)
}

fn split(c: &mut Criterion) {
    let text = handbook();
    let mut sizers = vec![("words", word_sizer())];
    match minilm_tokenizer() {
        Some(t) => {
            for (name, spans) in [("minilm-count", false), ("minilm-spans", true)] {
                sizers.push((name, tokenizer_sizer(t.clone(), spans)));
            }
        }
        None => {
            // scripts/test.sh runs the benchmarks once as tests and requires the model.
            assert!(
                std::env::var("KB_REQUIRE_MODEL").as_deref() != Ok("1"),
                "KB_REQUIRE_MODEL=1 but models/all-MiniLM-L6-v2 is missing: run scripts/fetch-model.sh"
            );
            eprintln!("models/all-MiniLM-L6-v2 missing: benchmarking the word sizer only")
        }
    }
    let mut group = c.benchmark_group("split");
    group.throughput(Throughput::Bytes(text.len() as u64));
    for (name, sizer) in sizers {
        let splitter = ChunkSplitter::new(Arc::new(sizer), SplitOptions::default())
            .expect("default split options are valid");
        for (format_name, format) in [
            ("markdown", DocumentFormat::Markdown),
            ("text", DocumentFormat::Text),
        ] {
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/{format_name}"), text.len()),
                &text,
                |b, text| b.iter(|| splitter.split(black_box(text), format, "Handbook")),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, split);
criterion_main!(benches);
