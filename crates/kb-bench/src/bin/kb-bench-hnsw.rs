//! HNSW benchmark: build time, recall and search time of the embedded index's graph for given
//! parameters, on real embeddings and on the zero-cost embedder's random vectors.
//!
//! 1. Sentences from the corpus (6–60 words of prose, deduplicated), spread evenly over it;
//!    every `stride`-th one is a query, the rest are points.
//! 2. Vectors: the local model's (cached in `--cache`, keyed by a hash of the texts, since
//!    embedding tens of thousands of sentences takes minutes), and the zero-cost embedder's.
//! 3. For each vector set and `ef_construct`: a fresh [`EmbeddedIndex`] with those graph
//!    parameters, every point written, then [`VectorIndex::optimize`] timed (segment merge and
//!    graph build). Then every query, for each `search_ef`, against the exact top-k from a
//!    brute-force scan of the same vectors: recall@k and the search time.
//!
//! Prints a JSON result on stdout (bench/hnsw.sh stores it) and a summary on stderr.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use kb_bench::fake::{cheap_vector, lexical_vector};
use kb_bench::{MachineInfo, corpus, process_cpu_seconds};
use kb_core::{
    ChunkPayload, ChunkPoint, DocumentId, DocumentMeta, Filter, InputKind, Retrieval, SearchQuery,
    VectorIndex,
};
use kb_embed_local::{LocalEmbedder, LocalEmbedderConfig};
use kb_index::{EmbeddedIndex, HnswParams};
use ndarray::{Array2, ArrayView1, Axis};
use serde::Serialize;
use serde_json::json;
use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum Vectors {
    /// all-MiniLM-L6-v2 embeddings of the sentences.
    Model,
    /// Uniformly random unit vectors (`cheap_vector`).
    Random,
    /// Feature hashing of the words (`lexical_vector`).
    Lexical,
}

/// One vector per text.
type VectorSet = Vec<Vec<f32>>;

#[derive(Debug, Parser)]
#[command(about = "Benchmark the embedded index's HNSW graph: build time, recall, search time")]
struct Args {
    /// Folder of documents to take sentences from.
    #[arg(long)]
    corpus: PathBuf,
    /// Scratch folder for the indexes (emptied first).
    #[arg(long)]
    scratch: PathBuf,
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    model_dir: PathBuf,
    /// Points in the index.
    #[arg(long, default_value_t = 20_000)]
    points: usize,
    /// Queries (held-out sentences).
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[arg(long, default_value_t = 16)]
    m: usize,
    #[arg(long, value_delimiter = ',', default_value = "100,64,32")]
    ef_construct: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "100,64,32")]
    search_ef: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "model,random")]
    vectors: Vec<Vectors>,
    /// The model's vectors of the sentences, written on the first run and reused after.
    #[arg(long)]
    cache: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Search {
    search_ef: usize,
    recall: f64,
    mean_ms: f64,
    p99_ms: f64,
}

#[derive(Debug, Serialize)]
struct Build {
    vectors: Vectors,
    m: usize,
    ef_construct: usize,
    build_s: f64,
    build_cpu_s: f64,
    /// Dense vectors in the graph after the build (0 below Qdrant's indexing threshold, where
    /// every search is an exact scan).
    graph_points: usize,
    searches: Vec<Search>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kb_bench::init_logging("warn,qdrant_edge=error");
    let args = Args::parse();
    anyhow::ensure!(
        args.points > 0 && args.queries > 0,
        "--points and --queries must be > 0"
    );

    let sentences = sentences(&args.corpus, args.points + args.queries)?;
    let stride = sentences.len() / args.queries;
    let (mut points, mut queries) = (Vec::new(), Vec::new());
    for (i, sentence) in sentences.into_iter().enumerate() {
        if i % stride == 0 && queries.len() < args.queries {
            queries.push(sentence);
        } else {
            points.push(sentence);
        }
    }
    eprintln!("{} points, {} queries", points.len(), queries.len());

    let mut builds = Vec::new();
    for &kind in &args.vectors {
        let (point_vectors, query_vectors) = match kind {
            Vectors::Random => (
                points.iter().map(|t| cheap_vector(t)).collect(),
                queries.iter().map(|t| cheap_vector(t)).collect(),
            ),
            Vectors::Lexical => (
                points.iter().map(|t| lexical_vector(t)).collect(),
                queries.iter().map(|t| lexical_vector(t)).collect(),
            ),
            Vectors::Model => model_vectors(&args, &points, &queries)?,
        };
        let exact = exact_top_k(&point_vectors, &query_vectors, args.k);
        for &ef_construct in &args.ef_construct {
            let params = HnswParams {
                m: args.m,
                ef_construct,
                search_ef: 0,
            };
            let build = measure(
                &args,
                kind,
                params,
                &points,
                &point_vectors,
                &query_vectors,
                &exact,
            )
            .await?;
            for search in &build.searches {
                eprintln!(
                    "{kind:?} m={} ef_construct={ef_construct}: build {:.1} s ({:.1} CPU s); search_ef={}: recall@{} {:.4}, {:.2} ms mean, {:.2} ms p99",
                    build.m,
                    build.build_s,
                    build.build_cpu_s,
                    search.search_ef,
                    args.k,
                    search.recall,
                    search.mean_ms,
                    search.p99_ms
                );
            }
            builds.push(build);
        }
    }
    fs::remove_dir_all(&args.scratch).ok();

    let result = json!({
        "benchmark": "hnsw",
        "machine": MachineInfo::probe(),
        "points": points.len(),
        "queries": queries.len(),
        "k": args.k,
        "builds": builds,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

/// Build one index and run every query against it at each `search_ef`.
async fn measure(
    args: &Args,
    kind: Vectors,
    params: HnswParams,
    texts: &[String],
    vectors: &[Vec<f32>],
    queries: &[Vec<f32>],
    exact: &[Vec<usize>],
) -> anyhow::Result<Build> {
    let dir = args
        .scratch
        .join(format!("{kind:?}-{}", params.ef_construct));
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    let mut searches = Vec::new();
    let (mut build_s, mut build_cpu_s, mut graph_points) = (0.0, 0.0, 0);
    for (round, &search_ef) in args.search_ef.iter().enumerate() {
        let index = EmbeddedIndex::open_with(
            &dir,
            HnswParams {
                search_ef,
                ..params
            },
        )?;
        if round == 0 {
            index.ensure(vectors[0].len()).await?;
            for (batch, chunk) in vectors.chunks(1_000).enumerate() {
                let first = batch * 1_000;
                let batch_points = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, v)| point(first + i, &texts[first + i], v.clone()))
                    .collect();
                index.upsert(batch_points).await?;
            }
            let cpu = process_cpu_seconds();
            let started = Instant::now();
            index.optimize().await?;
            build_s = started.elapsed().as_secs_f64();
            build_cpu_s = process_cpu_seconds() - cpu;
            // `indexed_vectors` also counts every sparse (BM25) vector: one per point here.
            let info = index.info().await?;
            graph_points = info.indexed_vectors.saturating_sub(info.points);
            if graph_points == 0 {
                eprintln!(
                    "warning: no HNSW graph was built over {} points (below the indexing threshold); searches are exact scans",
                    vectors.len()
                );
            }
        }
        let filter = Filter::default();
        let mut times = Vec::with_capacity(queries.len());
        let mut found = 0;
        for (query, truth) in queries.iter().zip(exact) {
            let started = Instant::now();
            let hits = index
                .search(&SearchQuery {
                    vector: query,
                    text: "",
                    retrieval: Retrieval::Dense,
                    filter: &filter,
                    k: args.k,
                })
                .await?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
            let truth: HashSet<Uuid> = truth.iter().map(|&i| point_id(i)).collect();
            found += hits.iter().filter(|h| truth.contains(&h.id)).count();
        }
        times.sort_by(f64::total_cmp);
        searches.push(Search {
            search_ef,
            recall: found as f64 / (queries.len() * args.k) as f64,
            mean_ms: times.iter().sum::<f64>() / times.len() as f64,
            p99_ms: times[(times.len() * 99 / 100).min(times.len() - 1)],
        });
    }
    Ok(Build {
        vectors: kind,
        m: params.m,
        ef_construct: params.ef_construct,
        build_s,
        build_cpu_s,
        graph_points,
        searches,
    })
}

fn point_id(i: usize) -> Uuid {
    Uuid::from_u128(i as u128 + 1)
}

fn point(i: usize, text: &str, vector: Vec<f32>) -> ChunkPoint {
    ChunkPoint {
        id: point_id(i),
        vector,
        payload: ChunkPayload {
            doc_id: DocumentId::from(format!("sentence-{i}").as_str()),
            doc_hash: "bench".to_owned(),
            ordinal: 0,
            title: String::new(),
            path: String::new(),
            heading_path: Vec::new(),
            text: text.to_owned(),
            byte_start: 0,
            byte_end: text.len(),
            location: None,
            groups: vec![kb_index::PUBLIC_GROUP.to_owned()],
            meta: DocumentMeta::default(),
        },
    }
}

/// For each query, the indices of the `k` points with the highest dot product (the vectors are
/// unit length, so cosine), best first.
fn exact_top_k(points: &[Vec<f32>], queries: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
    let matrix = |rows: &[Vec<f32>]| {
        let dims = rows[0].len();
        Array2::from_shape_vec((rows.len(), dims), rows.concat()).expect("rows of equal length")
    };
    let scores = matrix(queries).dot(&matrix(points).t());
    scores
        .axis_iter(Axis(0))
        .map(|row: ArrayView1<f32>| {
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
            order.truncate(k);
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            order
        })
        .collect()
}

/// `count` sentences of prose from the corpus, spread evenly over it.
fn sentences(corpus_dir: &Path, count: usize) -> anyhow::Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    for file in corpus::files(corpus_dir)? {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for paragraph in text.split("\n\n") {
            let paragraph = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
            for sentence in paragraph.split_inclusive(". ") {
                let sentence = sentence.trim();
                let words = sentence.split(' ').count();
                let letters = sentence.chars().filter(|c| c.is_alphabetic()).count();
                if (6..=60).contains(&words)
                    && letters * 10 >= sentence.len() * 7
                    && seen.insert(sentence.to_owned())
                {
                    all.push(sentence.to_owned());
                }
            }
        }
    }
    anyhow::ensure!(
        all.len() >= count,
        "{} holds {} sentences of prose; {count} are needed",
        corpus_dir.display(),
        all.len()
    );
    let step = all.len() as f64 / count as f64;
    Ok((0..count)
        .map(|i| std::mem::take(&mut all[(i as f64 * step) as usize]))
        .collect())
}

/// The model's vectors of the points and queries, from the cache when it holds these texts.
fn model_vectors(
    args: &Args,
    points: &[String],
    queries: &[String],
) -> anyhow::Result<(VectorSet, VectorSet)> {
    let key = texts_hash(points.iter().chain(queries));
    if let Some(cached) = args.cache.as_deref().and_then(|path| read_cache(path, key)) {
        eprintln!("model vectors from the cache");
        let (p, q) = cached.split_at(points.len());
        return Ok((p.to_vec(), q.to_vec()));
    }
    let model = LocalEmbedder::load(&LocalEmbedderConfig {
        model_dir: args.model_dir.clone(),
        ..LocalEmbedderConfig::default()
    })?;
    let started = Instant::now();
    let mut vectors = Vec::with_capacity(points.len() + queries.len());
    for (texts, kind) in [(points, InputKind::Passage), (queries, InputKind::Query)] {
        for batch in texts.chunks(1_024) {
            vectors.extend(model.embed_sync(batch, kind)?);
            eprintln!(
                "embedded {} sentences in {:.0} s",
                vectors.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(path) = &args.cache {
        write_cache(path, key, &vectors)
            .with_context(|| format!("writing the vector cache {}", path.display()))?;
    }
    let queries = vectors.split_off(points.len());
    Ok((vectors, queries))
}

/// FNV-1a over the texts, each followed by a zero byte.
fn texts_hash<'a>(texts: impl Iterator<Item = &'a String>) -> u64 {
    texts
        .flat_map(|t| t.bytes().chain([0]))
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Cache layout: the texts' hash, the vector count and length (u64 LE each), then the vectors
/// as f32 LE.
fn write_cache(path: &Path, key: u64, vectors: &[Vec<f32>]) -> std::io::Result<()> {
    let dims = vectors.first().map_or(0, Vec::len);
    let mut out = std::io::BufWriter::new(fs::File::create(path)?);
    for n in [key, vectors.len() as u64, dims as u64] {
        out.write_all(&n.to_le_bytes())?;
    }
    for value in vectors.iter().flatten() {
        out.write_all(&value.to_le_bytes())?;
    }
    out.flush()
}

fn read_cache(path: &Path, key: u64) -> Option<Vec<Vec<f32>>> {
    let mut bytes = Vec::new();
    fs::File::open(path).ok()?.read_to_end(&mut bytes).ok()?;
    let word = |i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    let (found, count, dims) = (word(0)?, word(1)? as usize, word(2)? as usize);
    let body = bytes.get(24..)?;
    if found != key || dims == 0 || body.len() != count * dims * 4 {
        return None;
    }
    let values: Vec<f32> = body
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Some(values.chunks(dims).map(<[f32]>::to_vec).collect())
}
