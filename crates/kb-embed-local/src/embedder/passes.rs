//! Planning the forward passes of one call: inputs packed by token count, spread over the
//! threads.

/// Most tokens one forward pass packs together: it bounds a pass's scratch memory (ten
/// hidden-size rows per token, 15 KiB for MiniLM: 30 MiB per pass).
///
/// Speed does not depend on it: caps of 512, 1,024, 2,048, 4,096 and none gave the same
/// throughput within noise (20.4–22.5 chunks/s on one thread, 41–45 on two; bench/embed.sh
/// inputs, batches of 32 and 128; docs/BENCHMARKS.md).
pub(super) const TOKENS_PER_PASS: usize = 2048;

/// Split the passes with the most tokens in two, at their middle token, until there are at
/// least `threads` of them (or every pass is one input), so that a call that would be one or
/// two passes still uses every core. `lengths` are the inputs' token counts; order is kept.
pub(super) fn spread(
    mut passes: Vec<std::ops::Range<usize>>,
    lengths: &[usize],
    threads: usize,
) -> Vec<std::ops::Range<usize>> {
    let tokens = |range: &std::ops::Range<usize>| lengths[range.clone()].iter().sum::<usize>();
    while passes.len() < threads {
        let Some((at, heaviest)) = passes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.len() > 1)
            .max_by_key(|(_, r)| tokens(r))
            .map(|(at, r)| (at, r.clone()))
        else {
            break;
        };
        let half = tokens(&heaviest) / 2;
        let mut sum = 0;
        let middle = heaviest
            .clone()
            .find(|&i| {
                sum += lengths[i];
                sum >= half
            })
            .map_or(heaviest.end - 1, |i| i + 1)
            .clamp(heaviest.start + 1, heaviest.end - 1);
        passes.splice(at..=at, [heaviest.start..middle, middle..heaviest.end]);
    }
    passes
}

/// Split inputs sorted by ascending token count into forward passes: each of at most
/// `batch_size` inputs and [`TOKENS_PER_PASS`] tokens, yet at least one input.
pub(super) fn plan_batches(
    sorted_lengths: &[usize],
    batch_size: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut tokens = 0;
    for (i, &length) in sorted_lengths.iter().enumerate() {
        let rows = i - start;
        if rows > 0 && (rows == batch_size || tokens + length > TOKENS_PER_PASS) {
            batches.push(start..i);
            start = i;
            tokens = 0;
        }
        tokens += length;
    }
    if start < sorted_lengths.len() {
        batches.push(start..sorted_lengths.len());
    }
    batches
}
