//! Crash safety of `kb ingest`, end to end, against the real catalog (SQLite) and the real
//! embedded index, with the fake OpenAI-compatible engine for fast embeddings:
//!
//! - `kb ingest` killed with SIGKILL at random moments (while the corpus changes between runs,
//!   so updates and prunes are killed too), then run again to completion, always ends with
//!   catalog and index in agreement (`kb check`);
//! - Ctrl-C stops between batches, says how to resume, and leaves nothing to clean up;
//! - `kb check` finds damage, `kb check --repair` fixes it;
//! - `--dry-run` and `--json` report without embedding or writing.
//!
//! The random runs print their seed; `KB_CRASH_SEED=<seed>` replays one, and
//! `KB_CRASH_ITERATIONS` changes how many kills (default 50).
//!
//! Where a kill lands is random, and timing on a shared machine varies, so the kill delays are
//! anchored to the run's own progress rather than to its start: a kill meant for the embedding
//! and writing part of a run waits for the run's first embedding request to reach the fake
//! engine (start-up, recovery and hashing take as long as the machine's load makes them), then
//! a random delay within what that part took when measured. What must hold wherever a kill
//! lands (nothing missing from the index, leftovers named by write-ahead records, a rerun
//! settles everything) is asserted on every kill; that kills did land where it matters (in
//! runs, and mid-write) is asserted as a count with a floor far below what is observed.

use kb_core::{ChunkPayload, ChunkPoint, DocumentId, content_hash};
use kb_testkit::{FakeEngine, Fault, Route};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Files in the generated corpus.
const FILES: usize = 30;
/// Latency the fake engine adds to each embedding call.
const ENGINE_DELAY: Duration = Duration::from_millis(4);
/// The least share of the random iterations whose kill must land mid-write (leave write-ahead
/// records behind). Observed on a 2-core machine: 33 and 25 of 50 with other builds beside the
/// test (load 4 to 5), 14 of 50 when it was nearly idle (writes are quicker, so fewer kills
/// find records left). At 28%, fewer than 3 of 50 comes by chance once in 60,000 runs; at 20%
/// once in 800; while kills that miss the writes altogether (all before the first write, or
/// after the end) give none.
const MID_WRITE_PERCENT: usize = 6;

/// splitmix64: a seeded generator for delays and edits (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The fake engine, served from a runtime of its own while the test blocks on processes.
struct Engine {
    engine: FakeEngine,
    _runtime: tokio::runtime::Runtime,
}

impl Engine {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let engine = runtime.block_on(
            FakeEngine::builder()
                .embed_model("fake")
                .dimensions(384)
                .start(),
        );
        engine.set_failure_rate(Route::Embeddings, 1.0, Fault::Delay(ENGINE_DELAY));
        Self {
            engine,
            _runtime: runtime,
        }
    }

    /// `kb` over `data` with embeddings from this engine, small chunks, small batches and
    /// concurrent embedding calls, so that a run makes many calls and many writes.
    fn kb(&self, data: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kb"));
        cmd.arg("--data-dir")
            .arg(data)
            .env_remove("KB_CONFIG")
            .env_remove("RUST_LOG")
            .env("KB__EMBEDDER__PROVIDER", "engine")
            .env(
                "KB__ENGINE__ENDPOINTS",
                format!(
                    r#"[{{name="fake", base_url="{}", embed_model="fake"}}]"#,
                    self.engine.base_url()
                ),
            )
            .env("KB__INGEST__BATCH_MAX_INPUTS", "4")
            // Several batches in flight, spanning documents: a kill lands between the batches
            // of a document that other batches have already partly written.
            .env("KB__INGEST__CONCURRENCY", "3")
            .env("KB__INGEST__CHUNK_TOKENS", "64")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run to completion.
fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("start kb")
}

/// Run and expect exit 0.
fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "{what} failed:\n{}", describe(&out));
    out
}

/// How a run that was to be killed ended.
enum Ending {
    Killed,
    Finished(ExitStatus),
}

/// When to kill a run.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after the process started.
    Started(Duration),
    /// This long after the run's first embedding request reached the fake engine (it has
    /// recovered, read and split files by then: the rest of the run embeds and writes).
    Embedding(Duration),
}

impl std::fmt::Display for KillAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Started(delay) => write!(f, "{delay:?} after the start"),
            Self::Embedding(delay) => write!(f, "{delay:?} after the first embedding request"),
        }
    }
}

/// Start `cmd`, SIGKILL it after `delay` unless it finished before.
fn run_and_kill(cmd: &mut Command, delay: Duration) -> (Ending, Output) {
    let child: Child = cmd.spawn().expect("start kb");
    kill_after(child, Instant::now() + delay)
}

/// Start `cmd` (a `kb` talking to `engine`), SIGKILL it at `at` unless it finished before.
fn run_and_kill_at(engine: &Engine, cmd: &mut Command, at: KillAt) -> (Ending, Output) {
    let calls_before = engine.engine.calls(Route::Embeddings);
    let mut child: Child = cmd.spawn().expect("start kb");
    let delay = match at {
        KillAt::Started(delay) => delay,
        KillAt::Embedding(delay) => {
            while engine.engine.calls(Route::Embeddings) == calls_before {
                if let Some(status) = child.try_wait().unwrap() {
                    let out = child.wait_with_output().unwrap();
                    return (Ending::Finished(status), out);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            delay
        }
    };
    kill_after(child, Instant::now() + delay)
}

fn kill_after(mut child: Child, deadline: Instant) -> (Ending, Output) {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (Ending::Finished(status), out);
        }
        let now = Instant::now();
        if now >= deadline {
            child.kill().unwrap(); // SIGKILL
            let out = child.wait_with_output().unwrap();
            return (Ending::Killed, out);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(2)));
    }
}

/// Point ids named by the catalog's write-ahead records (pending points, tombstones) in the data
/// folder `data`: the only index points that may lack a catalog chunk after a kill. Read from
/// the SQLite file directly (no `kb` command lists them); call it while no `kb` runs.
fn write_ahead_records(data: &Path) -> BTreeSet<String> {
    use sqlx::{Connection, sqlite::SqliteConnectOptions};
    let options = SqliteConnectOptions::new()
        .filename(data.join("kb.db"))
        .create_if_missing(false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut db = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("open the catalog");
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT point_id FROM pending_points UNION SELECT point_id FROM tombstones",
        )
        .fetch_all(&mut db)
        .await
        .expect("read the write-ahead records");
        db.close().await.expect("close the catalog");
        ids.into_iter().collect()
    })
}

/// What a killed run may leave, and only that: no catalog chunk missing from the index, and no
/// index point that neither a catalog chunk nor a write-ahead record names. Returns whether the
/// kill left write-ahead records: it landed between a write's first record and its last
/// clearing (a group's pending points before their commit, a commit's or a prune's tombstones
/// before the index dropped them), i.e. mid-write.
fn assert_recoverable(data: &Path, report: &Value, context: &str) -> bool {
    let ids = |key: &str| -> Vec<String> {
        serde_json::from_value(report[key].clone())
            .unwrap_or_else(|e| panic!("{context}: `{key}` is not a list of ids ({e}): {report:#}"))
    };
    assert_eq!(
        ids("missing_in_index"),
        Vec::<String>::new(),
        "{context}: catalog chunks are missing from the index after the kill: {report:#}"
    );
    let records = write_ahead_records(data);
    let unexplained: Vec<String> = ids("orphaned_in_index")
        .into_iter()
        .filter(|id| !records.contains(id))
        .collect();
    assert!(
        unexplained.is_empty(),
        "{context}: index points that neither a catalog chunk nor a write-ahead record names: {unexplained:?}\n{report:#}"
    );
    !records.is_empty()
}

/// `kb check --json`: the exit code and the report.
fn check(engine: &Engine, data: &Path) -> (Option<i32>, Value, Output) {
    let out = run(engine.kb(data).args(["check", "--json"]));
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("kb check --json printed no JSON ({e}):\n{}", describe(&out)));
    (out.status.code(), report, out)
}

fn summary(report: &Value) -> String {
    let len = |k: &str| report[k].as_array().map_or(0, Vec::len);
    format!(
        "consistent={} docs={} chunks={} points={} missing={} orphaned={} pending={} tombstones={}",
        report["consistent"],
        report["documents"],
        report["catalog_chunks"],
        report["index_points"],
        len("missing_in_index"),
        len("orphaned_in_index"),
        report["pending"],
        report["tombstones"]
    )
}

/// A folder of generated Markdown policies that can be edited, deleted and added to.
struct Corpus {
    dir: tempfile::TempDir,
    next_file: usize,
    version: u64,
}

const WORDS: &[&str] = &[
    "employees",
    "manager",
    "approval",
    "request",
    "travel",
    "expense",
    "receipt",
    "office",
    "holiday",
    "leave",
    "salary",
    "review",
    "policy",
    "security",
    "laptop",
    "badge",
    "meeting",
    "contract",
    "deadline",
    "budget",
    "training",
    "benefit",
    "insurance",
    "parking",
    "desk",
    "remote",
    "schedule",
    "overtime",
    "report",
    "invoice",
    "customer",
    "privacy",
];

impl Corpus {
    fn new(rng: &mut Rng) -> Self {
        Self::with_files(rng, FILES)
    }

    fn with_files(rng: &mut Rng, files: usize) -> Self {
        let mut corpus = Self {
            dir: tempfile::tempdir().unwrap(),
            next_file: 0,
            version: 0,
        };
        for _ in 0..files {
            corpus.add(rng);
        }
        corpus
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    fn text(&mut self, rng: &mut Rng, name: &str) -> String {
        self.version += 1;
        let mut text = format!("# Policy {name} (version {})\n\n", self.version);
        for section in 0..3 + rng.below(3) {
            let _ = write!(text, "## Section {section}\n\n");
            for _ in 0..2 {
                let sentence: Vec<&str> = (0..18 + rng.below(12))
                    .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
                    .collect();
                let _ = write!(text, "{} v{}.\n\n", sentence.join(" "), self.version);
            }
        }
        text
    }

    fn add(&mut self, rng: &mut Rng) -> String {
        let name = format!("policy-{:03}.md", self.next_file);
        self.next_file += 1;
        let text = self.text(rng, &name);
        std::fs::write(self.path().join(&name), text).unwrap();
        name
    }

    /// Rewrite `n` files picked at random (perhaps some twice); returns their names.
    fn rewrite(&mut self, rng: &mut Rng, n: usize) -> Vec<String> {
        let files = self.files();
        (0..n)
            .map(|_| {
                let path = &files[rng.below(files.len() as u64) as usize];
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let text = self.text(rng, &name);
                std::fs::write(path, text).unwrap();
                name
            })
            .collect()
    }

    /// Rewrite, delete and add a few files; returns what changed and how many files a run
    /// has to embed.
    fn edit(&mut self, rng: &mut Rng) -> (String, usize) {
        let rewrite = 2 + rng.below(7) as usize;
        let mut log: Vec<String> = self
            .rewrite(rng, rewrite)
            .into_iter()
            .map(|name| format!("~{name}"))
            .collect();
        let mut files = self.files();
        for _ in 0..rng.below(3) {
            if files.len() <= FILES / 2 {
                break;
            }
            let path = files.remove(rng.below(files.len() as u64) as usize);
            std::fs::remove_file(&path).unwrap();
            log.push(format!("-{}", path.file_name().unwrap().to_string_lossy()));
        }
        let added = rng.below(3) as usize;
        for _ in 0..added {
            let name = self.add(rng);
            log.push(format!("+{name}"));
        }
        log.sort();
        log.dedup();
        let to_embed = log.iter().filter(|l| !l.starts_with('-')).count();
        (log.join(" "), to_embed)
    }

    /// Document id → SHA-256 of the file, as the catalog should record them.
    fn expected_hashes(&self) -> BTreeMap<String, String> {
        self.files()
            .into_iter()
            .map(|p| {
                let id = p.file_name().unwrap().to_string_lossy().into_owned();
                (id, content_hash(&std::fs::read(&p).unwrap()))
            })
            .collect()
    }
}

/// After a full run: catalog and index agree, nothing is left over, and the catalog holds
/// exactly the corpus's files in their current versions.
fn assert_settled(engine: &Engine, data: &Path, corpus: &Corpus, context: &str) {
    let (code, report, out) = check(engine, data);
    assert_eq!(
        code,
        Some(0),
        "{context}: kb check after a full rerun: {}\n{}",
        summary(&report),
        describe(&out)
    );
    assert_eq!(report["consistent"], true, "{context}: {report:#}");
    assert_eq!(
        report["catalog_chunks"], report["index_points"],
        "{context}: {report:#}"
    );
    let out = run_ok(
        engine.kb(data).args(["docs", "list", "--json"]),
        "kb docs list",
    );
    let docs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let catalogued: BTreeMap<String, String> = docs
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["content_hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        catalogued,
        corpus.expected_hashes(),
        "{context}: the catalog does not hold the corpus's current files"
    );
    assert_eq!(docs.len(), corpus.files().len(), "{context}");
}

/// How long runs take on this machine, to spread the kill delays over a whole run.
struct Timing {
    /// A run from scratch.
    full: Duration,
    /// A run that finds nothing changed: start-up, recovery, hashing.
    startup: Duration,
    /// What each changed file adds to a run.
    per_file: Duration,
}

impl Timing {
    /// How long a run that embeds `files` files should take.
    fn expected(&self, files: usize) -> Duration {
        if files >= FILES {
            self.full
        } else {
            self.startup + self.per_file * files as u32
        }
    }
}

fn timed(cmd: &mut Command, what: &str) -> Duration {
    let started = Instant::now();
    run_ok(cmd, what);
    started.elapsed()
}

/// Time a full, a no-op and an incremental run over a data folder of their own.
fn measure(engine: &Engine, corpus: &mut Corpus, rng: &mut Rng) -> Timing {
    const REWRITTEN: usize = 10;
    let data = tempfile::tempdir().unwrap();
    let dir = corpus.path().to_path_buf();
    let ingest = || {
        let mut cmd = engine.kb(data.path());
        cmd.arg("ingest").arg(&dir);
        cmd
    };
    let full = timed(&mut ingest(), "the measuring full run");
    let startup = timed(&mut ingest(), "the measuring no-op run");
    let rewritten = corpus.rewrite(rng, REWRITTEN);
    let changed = rewritten.len();
    let incremental = timed(&mut ingest(), "the measuring incremental run");
    assert_settled(engine, data.path(), corpus, "the measuring runs");
    let per_file = incremental.saturating_sub(startup) / changed as u32;
    eprintln!(
        "timing: full run {full:?}, no-op run {startup:?}, {changed} files changed {incremental:?} ({per_file:?} per changed file)"
    );
    Timing {
        full,
        startup,
        per_file,
    }
}

#[test]
fn ingest_killed_at_random_moments_always_recovers_to_a_consistent_state() {
    let started = Instant::now();
    let seed = env_u64("KB_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let iterations = env_u64("KB_CRASH_ITERATIONS").unwrap_or(50);
    eprintln!("seed {seed} (replay with KB_CRASH_SEED={seed}), {iterations} iterations");
    let mut rng = Rng(seed);
    let engine = Engine::start();
    let mut corpus = Corpus::new(&mut rng);
    let timing = measure(&engine, &mut corpus, &mut rng);
    let data = tempfile::tempdir().unwrap();
    let (mut killed, mut finished, mut double) = (0, 0, 0);
    let mut mid_write = 0;

    for i in 0..iterations {
        let (edits, to_embed) = if i == 0 {
            ("initial corpus".to_owned(), FILES)
        } else {
            corpus.edit(&mut rng)
        };
        // Within the part of the run that embeds and writes, up to 20% past its expected end,
        // so that kills also land in the last steps (prune, optimize) and some runs finish.
        let expected = timing.expected(to_embed);
        let working = expected.saturating_sub(timing.startup).max(ENGINE_DELAY);
        let mut kills = vec![KillAt::Embedding(Duration::from_millis(
            rng.below(working.as_millis() as u64 * 6 / 5 + 1),
        ))];
        // Sometimes kill the next run too, before or while it cleans up after the first.
        if rng.chance(25) {
            kills.push(KillAt::Started(Duration::from_millis(
                rng.below(expected.as_millis() as u64 + 1),
            )));
            double += 1;
        }
        let mut context = format!("seed {seed}, iteration {i}, edits [{edits}]");
        for at in kills {
            let (ending, out) = run_and_kill_at(
                &engine,
                engine
                    .kb(data.path())
                    .args(["ingest", "--prune"])
                    .arg(corpus.path()),
                at,
            );
            match ending {
                Ending::Killed => {
                    killed += 1;
                    let _ = write!(context, ", killed {at}");
                }
                Ending::Finished(status) => {
                    finished += 1;
                    let _ = write!(context, ", finished before {at} ({status})");
                    assert!(
                        status.success(),
                        "{context}: an unkilled run failed:\n{}",
                        describe(&out)
                    );
                }
            }
        }
        let (code, report, out) = check(&engine, data.path());
        assert!(
            matches!(code, Some(0 | 4)),
            "{context}: kb check failed after the kill:\n{}",
            describe(&out)
        );
        eprintln!("{context}: after the kill: {}", summary(&report));
        if assert_recoverable(data.path(), &report, &context) {
            mid_write += 1;
        }

        let out = run_ok(
            engine
                .kb(data.path())
                .args(["ingest", "--prune"])
                .arg(corpus.path()),
            &format!("{context}: the full rerun"),
        );
        assert_settled(
            &engine,
            data.path(),
            &corpus,
            &format!("{context}\nrerun:\n{}", describe(&out)),
        );
    }
    eprintln!(
        "{iterations} iterations in {:?}: {killed} runs killed, {finished} finished before the kill, {double} double kills, {mid_write} kills landed mid-write (left write-ahead records for the rerun)",
        started.elapsed()
    );
    // That the kills hit runs, and writes in them. Floors far below what is seen (see
    // MID_WRITE_PERCENT), since where a kill lands still depends on the machine's load.
    assert!(
        killed >= iterations as usize / 4,
        "only {killed} runs were killed: the delays do not cover the runs"
    );
    let floor = iterations as usize * MID_WRITE_PERCENT / 100;
    assert!(
        mid_write >= floor,
        "only {mid_write} of {iterations} iterations were killed mid-write (at least {floor} expected): the kills miss the writes"
    );
}

/// The first run creates the catalog and the index's shard on disk: killed while it does,
/// the next run must still open them and finish.
#[test]
fn a_first_run_killed_while_creating_the_knowledge_base_is_finished_by_the_next() {
    let seed = env_u64("KB_CRASH_SEED").unwrap_or(5);
    let mut rng = Rng(seed);
    const RUNS: u32 = 8;
    let engine = Engine::start();
    let corpus = Corpus::with_files(&mut rng, 4);
    let measured = tempfile::tempdir().unwrap();
    let first_run = timed(
        engine.kb(measured.path()).arg("ingest").arg(corpus.path()),
        "the measuring first run",
    );
    eprintln!("seed {seed}: a first run takes {first_run:?}");
    let mut killed = 0;
    for i in 0..RUNS {
        let data = tempfile::tempdir().unwrap();
        // Spread over the whole first run, evenly with some jitter.
        let slot = first_run / RUNS;
        let delay = slot * i + Duration::from_millis(rng.below(slot.as_millis() as u64 + 1));
        let (ending, out) = run_and_kill(
            engine.kb(data.path()).arg("ingest").arg(corpus.path()),
            delay,
        );
        let context = format!("seed {seed}, killed after {delay:?}:\n{}", describe(&out));
        if matches!(ending, Ending::Killed) {
            killed += 1;
        }
        let out = run_ok(
            engine.kb(data.path()).arg("ingest").arg(corpus.path()),
            &format!("{context}\nthe rerun"),
        );
        assert_settled(
            &engine,
            data.path(),
            &corpus,
            &format!("{context}\nrerun:\n{}", describe(&out)),
        );
    }
    assert!(killed >= RUNS / 2, "only {killed} runs were killed");
}

#[test]
fn ctrl_c_stops_between_batches_says_how_to_resume_and_leaves_nothing_to_clean() {
    let engine = Engine::start();
    // Slow embedding calls: the run is surely in the middle of one when Ctrl-C comes.
    engine.engine.set_failure_rate(
        Route::Embeddings,
        1.0,
        Fault::Delay(Duration::from_millis(40)),
    );
    let mut rng = Rng(7);
    let corpus = Corpus::new(&mut rng);
    let data = tempfile::tempdir().unwrap();
    let child = engine
        .kb(data.path())
        .arg("ingest")
        .arg(corpus.path())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while engine.engine.calls(Route::Embeddings) < 10 {
        assert!(started.elapsed() < Duration::from_secs(60), "no embedding");
        std::thread::sleep(Duration::from_millis(5));
    }

    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();

    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("interrupted: run the same command again to finish"),
        "{}",
        describe(&out)
    );
    assert!(
        stderr.contains("stopping after the current batch"),
        "{stderr}"
    );
    let (code, report, _) = check(&engine, data.path());
    assert_eq!(code, Some(0), "{report:#}");
    let docs = report["documents"].as_u64().unwrap();
    assert!(
        docs < FILES as u64,
        "the run was not interrupted: {report:#}"
    );

    engine
        .engine
        .set_failure_rate(Route::Embeddings, 1.0, Fault::Delay(ENGINE_DELAY));
    let out = run_ok(
        engine.kb(data.path()).arg("ingest").arg(corpus.path()),
        "the resumed run",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "added {}, updated 0, unchanged {docs}",
            FILES as u64 - docs
        )),
        "{}",
        describe(&out)
    );
    assert_settled(&engine, data.path(), &corpus, "after resuming");
}

#[test]
fn check_finds_damage_and_repair_fixes_it() {
    let engine = Engine::start();
    let mut rng = Rng(11);
    let corpus = Corpus::new(&mut rng);
    let data = tempfile::tempdir().unwrap();
    run_ok(
        engine.kb(data.path()).arg("ingest").arg(corpus.path()),
        "ingest",
    );
    let out = run_ok(engine.kb(data.path()).arg("check"), "kb check");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\nconsistent\n"));

    // Damage the index behind kb's back: lose three points, add one nobody knows.
    let settings = kb_config::Settings {
        data_dir: data.path().to_path_buf(),
        ..kb_config::Settings::default()
    };
    let (lost, stray) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let index = kb_app::IndexGenerations::open(&kb_app::SettingsGenerations::new(&settings), 0)
            .unwrap();
        let mut ids = index.point_ids().await.unwrap();
        ids.sort();
        let lost = ids[..3].to_vec();
        index.delete_points(&lost).await.unwrap();
        // A v4 id, which no v5 chunk id can equal (the root package has no `uuid` of its own).
        let stray =
            serde_json::from_value(serde_json::json!("00000000-0000-4000-8000-00000000b00f"))
                .unwrap();
        index
            .upsert(vec![ChunkPoint {
                id: stray,
                vector: vec![0.05; 384],
                payload: ChunkPayload {
                    doc_id: DocumentId::new("ghost.md"),
                    doc_hash: "0".repeat(64),
                    ordinal: 0,
                    title: "Ghost".into(),
                    path: "/nowhere/ghost.md".into(),
                    heading_path: vec![],
                    text: "boo".into(),
                    byte_start: 0,
                    byte_end: 3,
                    location: None,
                    groups: vec!["all".into()],
                    meta: kb_core::DocumentMeta::default(),
                },
            }])
            .await
            .unwrap();
        (lost, stray)
    });

    let out = run(engine.kb(data.path()).arg("check"));
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("3 catalog chunks missing from the index"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 index points no catalog chunk names"),
        "{stdout}"
    );
    assert!(stdout.contains("kb check --repair"), "{stdout}");
    let (code, report, _) = check(&engine, data.path());
    assert_eq!(code, Some(4));
    let missing: Vec<String> = serde_json::from_value(report["missing_in_index"].clone()).unwrap();
    let mut expected: Vec<String> = lost.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(missing, expected);
    assert_eq!(
        report["orphaned_in_index"],
        serde_json::json!([stray.to_string()])
    );

    engine.engine.reset_counters();
    let out = run_ok(
        engine.kb(data.path()).args(["check", "--repair", "--json"]),
        "kb check --repair",
    );
    let repair: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(repair["after"]["consistent"], true, "{repair:#}");
    assert_eq!(repair["reembedded_chunks"], 3, "{repair:#}");
    assert_eq!(repair["deleted_points"], 1, "{repair:#}");
    assert_eq!(
        engine.engine.calls(Route::Embeddings) as u64,
        repair["embedding_calls"].as_u64().unwrap()
    );
    assert_settled(&engine, data.path(), &corpus, "after the repair");
}

#[test]
fn check_says_when_a_running_server_holds_the_index() {
    let engine = Engine::start();
    let data = tempfile::tempdir().unwrap();
    let mut server = engine
        .kb(data.path())
        .args(["serve", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !data.path().join("server.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "kb serve did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = run(engine.kb(data.path()).arg("check"));

    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("held by the kb server at http://"),
        "{stderr}"
    );
    assert!(stderr.contains("stop the server"), "{stderr}");
}

#[test]
fn dry_run_and_json_report_changes_without_embedding_or_writing() {
    let engine = Engine::start();
    let mut rng = Rng(3);
    let mut corpus = Corpus::new(&mut rng);
    let data = tempfile::tempdir().unwrap();

    let out = run_ok(
        engine
            .kb(data.path())
            .args(["ingest", "--dry-run", "--json"])
            .arg(corpus.path()),
        "the first dry run",
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["stats"]["added"], FILES, "{report:#}");
    assert_eq!(engine.engine.calls(Route::Embeddings), 0);

    let out = run_ok(
        engine
            .kb(data.path())
            .args(["ingest", "--json"])
            .arg(corpus.path()),
        "ingest --json",
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stats = &report["stats"];
    assert_eq!(stats["added"], FILES, "{report:#}");
    assert_eq!(report["failures"], serde_json::json!([]));
    assert!(stats["chunks"].as_u64().unwrap() > FILES as u64);
    assert!(stats["tokens"].as_u64().unwrap() > 0);
    let calls = stats["embedding_calls"].as_u64().unwrap();
    assert_eq!(calls as usize, engine.engine.calls(Route::Embeddings));
    for stage in [
        "read_ms",
        "split_ms",
        "embed_ms",
        "upsert_ms",
        "catalog_ms",
        "total_ms",
    ] {
        assert!(report["timings"][stage].is_u64(), "{stage}: {report:#}");
    }

    corpus.edit(&mut rng);
    engine.engine.reset_counters();
    let out = run_ok(
        engine
            .kb(data.path())
            .args(["ingest", "--dry-run", "--prune"])
            .arg(corpus.path()),
        "the second dry run",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("dry run: would have added"), "{stdout}");
    assert_eq!(engine.engine.calls(Route::Embeddings), 0);
    let (code, report, _) = check(&engine, data.path());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(
        report["documents"], FILES,
        "the dry run changed the catalog"
    );
}

#[test]
fn a_killed_run_is_marked_interrupted_by_the_next_check() {
    let engine = Engine::start();
    // Slow embedding calls: the run is surely still going when it is killed.
    engine.engine.set_failure_rate(
        Route::Embeddings,
        1.0,
        Fault::Delay(Duration::from_millis(300)),
    );
    let mut rng = Rng(11);
    let corpus = Corpus::with_files(&mut rng, 10);
    let data = tempfile::tempdir().unwrap();
    let (ending, out) = run_and_kill(
        engine.kb(data.path()).arg("ingest").arg(corpus.path()),
        Duration::from_millis(1500),
    );
    assert!(matches!(ending, Ending::Killed), "{}", describe(&out));

    let (_, first, out) = check(&engine, data.path());
    let (_, second, _) = check(&engine, data.path());

    let runs = |report: &Value| report["interrupted_runs"].as_array().cloned().unwrap();
    assert_eq!(runs(&first).len(), 1, "{}", describe(&out));
    assert!(runs(&second).is_empty(), "marked once: {second}");
}

/// Folders of the data directory holding an embedded index (one per generation).
fn index_folders(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("index"))
        .collect();
    names.sort();
    names
}

#[test]
fn reindex_switches_the_model_and_a_kill_mid_reindex_leaves_a_complete_index() {
    let seed = env_u64("KB_CRASH_SEED").unwrap_or(9);
    let mut rng = Rng(seed);
    let engine = Engine::start();
    let corpus = Corpus::with_files(&mut rng, 12);
    let data = tempfile::tempdir().unwrap();
    let kb = |dims: usize| {
        let mut cmd = engine.kb(data.path());
        cmd.env("KB__EMBEDDER__ENGINE__DIMENSIONS", dims.to_string())
            .env("KB__ANSWER__MIN_SCORE", "-1");
        cmd
    };
    engine.engine.set_dimensions(16);
    run_ok(
        kb(16).arg("ingest").arg(corpus.path()),
        "ingest, 16 dimensions",
    );

    // The engine's model changes: ingest refuses and says what to do.
    engine.engine.set_dimensions(32);
    let refused = run(kb(32).arg("ingest").arg(corpus.path()));
    assert!(!refused.status.success(), "{}", describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("kb reindex"), "{}", describe(&refused));

    // Reindex killed twice just after the rebuild's first embedding request, when the new
    // generation is open beside the old one and being filled, then at moments spread over a
    // run: the catalog always names a complete index. The rebuild makes some 50 calls of at
    // least ENGINE_DELAY each, three at a time, so it goes on for 70 ms or more after its first
    // request, however loaded the machine: a kill that follows the request by at most 8 ms
    // (and a poll of 1 ms) lands inside it.
    let mut kills: Vec<KillAt> = (0..2)
        .map(|_| KillAt::Embedding(Duration::from_millis(rng.below(9))))
        .collect();
    kills.extend(
        (0..10u64).map(|i| KillAt::Started(Duration::from_millis(150 * i + rng.below(150)))),
    );
    let started = Instant::now();
    let (mut killed, mut killed_with_two_generations) = (0, 0);
    for at in kills {
        let (ending, out) = run_and_kill_at(&engine, kb(32).arg("reindex"), at);
        let folders = index_folders(data.path());
        let context = format!(
            "seed {seed}, reindex killed {at} (index folders {folders:?}):\n{}",
            describe(&out)
        );
        if matches!(ending, Ending::Killed) && folders.len() == 2 {
            killed_with_two_generations += 1;
        }
        let (code, report, check_out) = check(&engine, data.path());
        assert_eq!(code, Some(0), "{context}\n{}", describe(&check_out));
        assert_eq!(report["consistent"], true, "{context}: {report:#}");
        assert_eq!(report["documents"], 12, "{context}: {report:#}");
        match ending {
            Ending::Killed => killed += 1,
            Ending::Finished(status) => {
                assert!(status.success(), "{context}");
                break;
            }
        }
    }
    eprintln!(
        "seed {seed}: {killed} reindex runs killed in {:?}, {killed_with_two_generations} while a new generation existed",
        started.elapsed()
    );
    assert!(killed >= 2, "only {killed} reindex runs were killed");
    assert!(
        killed_with_two_generations >= 1,
        "no reindex run was killed while the new generation was being built beside the old"
    );

    // The next reindex finishes (or finds the job done), and leaves one index behind.
    run_ok(kb(32).arg("reindex"), "the reindex after the kills");
    let (code, report, out) = check(&engine, data.path());
    assert_eq!(code, Some(0), "{}", describe(&out));
    assert_eq!(
        report["catalog_chunks"], report["index_points"],
        "{report:#}"
    );
    assert_eq!(
        index_folders(data.path()).len(),
        1,
        "{:?}",
        index_folders(data.path())
    );

    // Search works with the new model, and ingest accepts it and finds nothing changed.
    let out = run_ok(
        kb(32).args([
            "ask",
            "--json",
            "Which manager approval does a travel expense request need?",
        ]),
        "ask after the reindex",
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !answer["citations"].as_array().unwrap().is_empty(),
        "{answer:#}"
    );
    let out = run_ok(
        kb(32).args(["ingest", "--json"]).arg(corpus.path()),
        "ingest after the reindex",
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stats"]["unchanged"], 12, "{report:#}");
    assert_eq!(report["stats"]["embedding_calls"], 0, "{report:#}");
}
