//! Tests against the real model are skipped, with the reason printed, when its folder is
//! missing, unless `KB_REQUIRE_MODEL=1` (set by scripts/test.sh) makes that a failure;
//! `KB_TEST_MODEL_DIR` points them at another copy.

use super::*;
use model_folder::PoolingConfig;
use passes::TOKENS_PER_PASS;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn test_model_dir() -> PathBuf {
    std::env::var_os("KB_TEST_MODEL_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"),
        PathBuf::from,
    )
}

fn test_config() -> Option<LocalEmbedderConfig> {
    let dir = test_model_dir();
    if !dir.join(WEIGHTS_FILE).is_file() {
        assert!(
            std::env::var("KB_REQUIRE_MODEL").as_deref() != Ok("1"),
            "KB_REQUIRE_MODEL=1 but there is no model at {}: run scripts/fetch-model.sh or set KB_TEST_MODEL_DIR",
            dir.display()
        );
        eprintln!(
            "skipped: no model at {}; run scripts/fetch-model.sh or set KB_TEST_MODEL_DIR",
            dir.display()
        );
        return None;
    }
    Some(LocalEmbedderConfig {
        model_dir: dir,
        ..LocalEmbedderConfig::default()
    })
}

/// The default-configured model, loaded once for all tests.
fn shared_model() -> Option<&'static LocalEmbedder> {
    static MODEL: OnceLock<Option<LocalEmbedder>> = OnceLock::new();
    MODEL
        .get_or_init(|| test_config().map(|c| LocalEmbedder::load(&c).expect("model loads")))
        .as_ref()
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| (*t).to_owned()).collect()
}

fn embed_one(model: &LocalEmbedder, text: &str) -> Vec<f32> {
    model
        .embed_sync(&strings(&[text]), InputKind::Passage)
        .unwrap()
        .remove(0)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn embeddings_are_384_dimensional_and_unit_length() {
    let Some(model) = shared_model() else { return };

    let vectors = model
        .embed_sync(
            &strings(&["Employees receive 25 days of paid annual leave.", ""]),
            InputKind::Passage,
        )
        .unwrap();

    assert_eq!(model.dimensions(), 384);
    assert_eq!(vectors.len(), 2);
    for v in &vectors {
        assert_eq!(v.len(), 384);
        let norm = dot(v, v).sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn a_question_is_closer_to_its_answer_than_to_an_unrelated_passage() {
    let Some(model) = shared_model() else { return };
    let question = embed_one(model, "How many vacation days do I get?");

    let answer = embed_one(model, "Employees receive 25 days of paid annual leave.");
    let unrelated = embed_one(model, "Laptops are replaced every three years.");

    let (related, unrelated) = (dot(&question, &answer), dot(&question, &unrelated));
    assert!(related > unrelated, "{related} <= {unrelated}");
}

#[test]
fn vectors_match_an_independent_numpy_implementation() {
    // testdata/reference.py: WordPiece and the BERT encoder re-implemented in numpy (float64).
    // Observed differences are around 2e-7.
    #[derive(Deserialize)]
    struct Reference {
        cases: Vec<Case>,
    }
    #[derive(Deserialize)]
    struct Case {
        text: String,
        ids: Vec<u32>,
        embedding: Vec<f32>,
    }
    let Some(model) = shared_model() else { return };
    let reference: Reference =
        serde_json::from_str(include_str!("../../testdata/minilm_reference.json")).unwrap();
    let texts: Vec<String> = reference.cases.iter().map(|c| c.text.clone()).collect();

    let vectors = model.embed_sync(&texts, InputKind::Query).unwrap();

    for (case, vector) in reference.cases.iter().zip(&vectors) {
        let ids = model
            .inner
            .embed_tokenizer
            .encode(case.text.as_str(), true)
            .unwrap();
        assert_eq!(
            ids.get_ids(),
            case.ids.as_slice(),
            "token ids of {:?}",
            case.text
        );
        let diff = max_abs_diff(vector, &case.embedding);
        assert!(diff < 1e-5, "{:?}: max difference {diff}", case.text);
    }
}

#[test]
fn a_batch_gives_the_same_vectors_in_the_same_order_as_one_input_at_a_time() {
    let Some(config) = test_config() else { return };
    // Small batches of inputs given out of length order: sorting, packing and restoring the
    // order all come into play.
    let model = LocalEmbedder::load(&LocalEmbedderConfig {
        batch_size: 3,
        ..config
    })
    .unwrap();
    let texts = strings(&[
        "Laptops are replaced every three years, or sooner if they break beyond repair.",
        "Leave.",
        "How many vacation days do I get?",
        "The office is closed on public holidays and between Christmas and New Year.",
        "Expenses over 500 euros need a manager's approval before purchase.",
        "Hi",
        "Employees receive 25 days of paid annual leave.",
    ]);

    let batched = model.embed_sync(&texts, InputKind::Passage).unwrap();

    assert_eq!(batched.len(), texts.len());
    for (text, vector) in texts.iter().zip(&batched) {
        let alone = embed_one(&model, text);
        let diff = max_abs_diff(vector, &alone);
        assert!(diff < 1e-4, "{text:?}: batched differs by {diff}");
    }
}

#[test]
fn inputs_longer_than_max_tokens_are_truncated_without_error() {
    let Some(model) = shared_model() else { return };
    let common = "The handbook explains how annual leave is requested and approved. ".repeat(40);
    let long_a = format!("{common} Laptops are replaced every three years.");
    let long_b = format!("{common} Expenses need a receipt.");

    let vectors = model
        .embed_sync(&[long_a.clone(), long_b], InputKind::Passage)
        .unwrap();

    assert!(model.count_tokens(&long_a) > 256);
    assert_eq!(vectors[0].len(), 384);
    // Both differ only after the cut, so the model saw the same tokens.
    assert!(max_abs_diff(&vectors[0], &vectors[1]) < 1e-6);
}

#[test]
fn count_tokens_counts_without_special_tokens_padding_or_truncation() {
    let Some(model) = shared_model() else { return };

    assert_eq!(model.count_tokens(""), 0);
    assert_eq!(model.count_tokens("hello world"), 2);
    assert_eq!(model.count_tokens("state-of-the-art"), 7);
    assert_eq!(model.count_tokens(&"hello ".repeat(1000)), 1000);
    let encoding = model.tokenizer().encode("hello world", true).unwrap();
    assert_eq!(encoding.len(), 4, "[CLS] hello world [SEP], no padding");
}

#[test]
fn a_text_of_max_input_tokens_is_embedded_whole_with_its_prefix() {
    let Some(config) = test_config() else { return };
    let model = LocalEmbedder::load(&LocalEmbedderConfig {
        query_prefix: "query: ".into(),
        passage_prefix: "passage: ".into(),
        ..config
    })
    .unwrap();
    let max = model.max_input_tokens();
    // Texts of `n` tokens differing in their last token only: they embed differently if and
    // only if that token was not truncated away.
    let pair = |n: usize| {
        let stem = "hello ".repeat(n - 1);
        let (a, b) = (format!("{stem}world"), format!("{stem}there"));
        assert_eq!(model.count_tokens(&a), n);
        assert_eq!(model.count_tokens(&b), n);
        let v = model.embed_sync(&[a, b], InputKind::Passage).unwrap();
        max_abs_diff(&v[0], &v[1])
    };

    // 256 - [CLS] - [SEP] - "passage" ":" (the longer prefix).
    assert_eq!(max, 252);
    assert!(
        pair(max) > 1e-4,
        "the last token of a {max}-token text was cut"
    );
    assert!(
        pair(max + 1) < 1e-6,
        "a {}-token text was not truncated",
        max + 1
    );
}

#[test]
fn a_missing_model_folder_is_named_in_the_error_with_the_fetch_hint() {
    let dir = std::env::temp_dir().join("kb-embed-local-test-no-such-model");

    let err = LocalEmbedder::load(&LocalEmbedderConfig {
        model_dir: dir.clone(),
        ..LocalEmbedderConfig::default()
    })
    .unwrap_err();

    let message = err.to_string();
    assert!(
        matches!(err, LocalEmbedError::ModelDirMissing { .. }),
        "{err:?}"
    );
    assert!(message.contains(&dir.display().to_string()), "{message}");
    assert!(message.contains("scripts/fetch-model.sh"), "{message}");
}

#[test]
fn a_model_folder_without_weights_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CONFIG_FILE), "{}").unwrap();
    std::fs::write(dir.path().join(TOKENIZER_FILE), "{}").unwrap();

    let err = LocalEmbedder::load(&LocalEmbedderConfig {
        model_dir: dir.path().to_path_buf(),
        ..LocalEmbedderConfig::default()
    })
    .unwrap_err();

    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("model.safetensors"), "{message}");
    assert!(message.contains("scripts/fetch-model.sh"), "{message}");
}

#[test]
fn a_max_tokens_too_small_for_the_prefix_is_rejected() {
    let Some(config) = test_config() else { return };

    let err = LocalEmbedder::load(&LocalEmbedderConfig {
        max_tokens: 4,
        passage_prefix: "passage: ".into(),
        ..config
    })
    .unwrap_err();

    assert!(
        matches!(
            err,
            LocalEmbedError::InvalidConfig {
                key: "max_tokens",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn max_tokens_is_capped_at_the_models_position_limit() {
    let Some(config) = test_config() else { return };

    let model = LocalEmbedder::load(&LocalEmbedderConfig {
        max_tokens: 100_000,
        ..config
    })
    .unwrap();

    assert_eq!(model.max_input_tokens(), 512 - 2);
    let long = "hello ".repeat(2000);
    assert_eq!(
        model.embed_sync(&[long], InputKind::Passage).unwrap()[0].len(),
        384
    );
}

#[test]
fn pooling_defaults_to_what_the_model_folder_declares() {
    let Some(model) = shared_model() else { return };

    assert_eq!(model.inner.pooling, Pooling::Mean);
    assert_eq!(model.model_id(), "local:all-MiniLM-L6-v2");
}

#[test]
fn cls_pooling_gives_unit_vectors_unlike_mean_pooling() {
    let Some(config) = test_config() else { return };
    let cls = LocalEmbedder::load(&LocalEmbedderConfig {
        pooling: Some(Pooling::Cls),
        ..config
    })
    .unwrap();
    let text = "Employees receive 25 days of paid annual leave.";

    let v = embed_one(&cls, text);

    assert!((dot(&v, &v).sqrt() - 1.0).abs() < 1e-5);
    assert!(max_abs_diff(&v, &embed_one(shared_model().unwrap(), text)) > 1e-3);
}

#[test]
fn pooling_config_flags_select_the_mode() {
    let parse = |json: &str| {
        serde_json::from_str::<PoolingConfig>(json)
            .unwrap()
            .pooling()
    };

    assert_eq!(
        parse(r#"{"pooling_mode_mean_tokens": true}"#),
        Ok(Pooling::Mean)
    );
    assert_eq!(
        parse(
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false, "word_embedding_dimension": 384}"#
        ),
        Ok(Pooling::Cls)
    );
    assert_eq!(parse("{}"), Ok(Pooling::Mean));
    assert_eq!(
        parse(r#"{"pooling_mode_max_tokens": true}"#),
        Err("max_tokens")
    );
}

#[test]
fn model_id_is_the_folder_name() {
    assert_eq!(
        model_id(Path::new("models/e5-small-v2/")),
        "local:e5-small-v2"
    );
    assert_eq!(
        model_id(Path::new("/srv/models/all-MiniLM-L6-v2")),
        "local:all-MiniLM-L6-v2"
    );
}

#[tokio::test]
async fn the_embedder_trait_runs_off_the_async_runtime_with_the_same_results() {
    let Some(model) = shared_model() else { return };
    let embedder: Arc<dyn Embedder> = Arc::new(model.clone());
    let texts = strings(&["How many vacation days do I get?", "Hi"]);

    let vectors = embedder.embed(&texts, InputKind::Query).await.unwrap();
    let empty = embedder.embed(&[], InputKind::Query).await.unwrap();

    assert_eq!(vectors, model.embed_sync(&texts, InputKind::Query).unwrap());
    assert!(empty.is_empty());
    assert_eq!(embedder.dimensions(), 384);
    assert_eq!(embedder.max_input_tokens(), 254);
}

/// `cargo test -p kb-embed-local --release -- --ignored --nocapture throughput`
#[test]
#[ignore = "timing, not a check"]
fn throughput_of_256_short_sentences() {
    let Some(model) = shared_model() else { return };
    let subjects = ["Employees", "Managers", "Contractors", "Interns"];
    let verbs = ["receive", "request", "lose", "carry over"];
    let objects = [
        "25 days of paid leave",
        "a new laptop",
        "travel refunds",
        "a parking space",
    ];
    let texts: Vec<String> = (0..256)
        .map(|i| {
            format!(
                "{} {} {} after {} months.",
                subjects[i % 4],
                verbs[(i / 4) % 4],
                objects[(i / 16) % 4],
                i
            )
        })
        .collect();
    model.embed_sync(&texts[..8], InputKind::Passage).unwrap();

    let started = Instant::now();
    model.embed_sync(&texts, InputKind::Passage).unwrap();
    let elapsed = started.elapsed();

    let long = "The handbook explains how annual leave is requested and approved. ".repeat(30);
    let longs = vec![long; 32];
    let started_long = Instant::now();
    model.embed_sync(&longs, InputKind::Passage).unwrap();
    let elapsed_long = started_long.elapsed();
    eprintln!(
        "256 short sentences in {elapsed:?} = {:.0}/s; 32 inputs of 256 tokens in {elapsed_long:?} = {:.1}/s ({} rayon threads)",
        256.0 / elapsed.as_secs_f64(),
        32.0 / elapsed_long.as_secs_f64(),
        rayon::current_num_threads(),
    );
}

#[test]
#[allow(clippy::single_range_in_vec_init)] // a list of passes that holds one pass
fn passes_are_capped_by_input_count_and_by_tokens() {
    let short = vec![15; 70];
    let long = vec![253; 3];
    let many_long = vec![200; 30];
    let mixed = [vec![10; 40], vec![200; 2]].concat();

    assert_eq!(plan_batches(&short, 32), [0..32, 32..64, 64..70]);
    assert_eq!(plan_batches(&long, 32), [0..3]);
    assert_eq!(plan_batches(&long, 2), [0..2, 2..3]);
    assert_eq!(
        plan_batches(&many_long, 32),
        [0..10, 10..20, 20..30],
        "ten inputs of 200 tokens fit in {TOKENS_PER_PASS}, eleven do not"
    );
    assert_eq!(plan_batches(&mixed, 32), [0..32, 32..42]);
    assert!(plan_batches(&[], 32).is_empty());
    assert_eq!(
        plan_batches(&[3_000, 3_000], 32),
        [0..1, 1..2],
        "an input over the budget still gets its own pass"
    );
}

#[test]
#[allow(clippy::single_range_in_vec_init)] // a list of passes that holds one pass
fn passes_are_halved_until_every_thread_has_one() {
    let even = vec![10; 40];
    assert_eq!(spread(vec![0..32], &even, 2), [0..16, 16..32]);
    assert_eq!(
        spread(vec![0..32, 32..40], &even, 4),
        [0..16, 16..24, 24..32, 32..40]
    );
    assert_eq!(
        spread(vec![0..1], &even, 4),
        [0..1],
        "one input is one pass"
    );
    assert_eq!(
        spread(vec![0..3, 3..4], &even, 1),
        [0..3, 3..4],
        "one thread: as planned"
    );
    assert!(spread(Vec::new(), &even, 2).is_empty());
}

#[test]
#[allow(clippy::single_range_in_vec_init)] // a list of passes that holds one pass
fn passes_are_halved_at_their_middle_token_not_their_middle_input() {
    // Sorted by length: 16 short inputs, then 16 long ones (3,360 tokens).
    let skewed = [vec![10; 16], vec![200; 16]].concat();
    assert_eq!(
        spread(vec![0..32], &skewed, 2),
        [0..24, 24..32],
        "1,760 and 1,600 tokens, not 160 and 3,200"
    );
    // The heaviest pass is split, not the one with the most inputs.
    let lengths = [vec![5; 20], vec![250; 4]].concat();
    assert_eq!(
        spread(vec![0..20, 20..24], &lengths, 3),
        [0..20, 20..22, 22..24]
    );
    assert_eq!(
        spread(vec![0..2], &[1, 1000], 2),
        [0..1, 1..2],
        "both halves keep an input"
    );
}

#[test]
fn token_spans_are_byte_ranges_that_size_slices_like_count_tokens() {
    let Some(model) = shared_model() else { return };
    let handbook = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs-samples/leave-policy.md"),
    )
    .unwrap();
    let text = format!("{handbook}\nCafé naïve résumé — 公司为上海员工发放补贴。 state-of-the-art");

    let spans = model.token_spans(&text).unwrap();

    assert_eq!(spans.len(), model.count_tokens(&text));
    assert!(
        spans.windows(2).all(|w| w[0].1 <= w[1].0),
        "in order, apart"
    );
    for &(start, end) in &spans {
        assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
        assert!(!text[start..end].trim().is_empty(), "{start}..{end}");
    }
    // A slice cut at whitespace holds exactly the tokens it overlaps.
    let cuts: Vec<usize> = text
        .char_indices()
        .filter(|(_, c)| c.is_whitespace())
        .map(|(i, _)| i)
        .step_by(7)
        .collect();
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let overlapping = spans.iter().filter(|(s, e)| *e > start && *s < end).count();
        assert_eq!(
            overlapping,
            model.count_tokens(&text[start..end]),
            "{:?}",
            &text[start..end]
        );
    }
}

#[test]
fn minilm_counts_add_up_at_ascii_whitespace() {
    // What the splitter relies on when it counts a chunk's embedding text from the document's
    // spans (`Embedder::counts_add_at_whitespace`): over the whole handbook and awkward text,
    // every slice between ASCII whitespace has the tokens the document has in that range, and
    // a context joined by a blank line adds its own count.
    let Some(model) = shared_model() else { return };
    assert!(model.counts_add_at_whitespace());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs-samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    let mut text: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    text.push_str(
        "\nCafé naïve résumé — 公司为上海员工发放补贴。 state-of-the-art x86_64 don't e.g. \
         vertical\u{b}tab form\u{c}feed line\u{2028}separator no\u{a0}break 🚀rocket \
         ÅÄÖ-ÿ ﬁ\tTAB\r\nCRLF [SEP] [CLS]word ##hash",
    );
    let spans = model.token_spans(&text).unwrap();
    let ascii_space = |i: usize| matches!(text.as_bytes()[i], b' ' | b'\t' | b'\n' | b'\r');
    let starts: Vec<usize> = (1..text.len()).filter(|&i| ascii_space(i - 1)).collect();
    let ends: Vec<usize> = (0..text.len()).filter(|&i| ascii_space(i)).collect();
    let context = "Leave Policy > Vacation\n\n";
    let context_tokens = model.count_tokens(context);

    let mut checked = 0;
    for (n, &start) in starts.iter().enumerate().step_by(8) {
        // Slices of a few words up to a few hundred.
        for &end in ends.iter().skip(n).step_by(97).take(4) {
            if end <= start || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                continue;
            }
            let slice = &text[start..end];
            let inside = spans
                .iter()
                .filter(|(s, e)| *s >= start && *e <= end)
                .count();
            assert_eq!(model.count_tokens(slice), inside, "{slice:?}");
            let joined = format!("{context}{slice}");
            assert_eq!(
                model.count_tokens(&joined),
                context_tokens + inside,
                "{joined:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 1_000, "only {checked} slices checked");
}

#[test]
fn only_bert_style_tokenizers_are_said_to_add_up_at_whitespace() {
    let Some(model) = shared_model() else { return };
    let mut tokenizer = model.inner.count_tokenizer.clone();
    assert!(counts_add_at_whitespace(&tokenizer));

    tokenizer.with_pre_tokenizer(Some(
        tokenizers::pre_tokenizers::metaspace::Metaspace::default(),
    ));

    assert!(!counts_add_at_whitespace(&tokenizer));
}

#[test]
fn a_model_error_keeps_the_local_error_as_cause() {
    // Arrange
    let missing = LocalEmbedError::ModelDirMissing {
        dir: PathBuf::from("models/none"),
    };

    // Act
    let error = to_model_error(missing);

    // Assert
    let source = std::error::Error::source(&error).expect("the local error is the source");
    assert!(source.is::<LocalEmbedError>(), "{source:?}");
    assert!(!error.is_retryable());
    let text = kb_core::error::chain(&error).to_string();
    assert!(
        text.starts_with("model error: local embedding model: model folder models/none: not found"),
        "{text}"
    );
    assert_eq!(text.matches("models/none").count(), 1, "{text}");
}
