//! The fake engine as a program, for load benchmarks (bench/query.sh): serves
//! `http://127.0.0.1:PORT/v1` until Ctrl-C or SIGTERM, every answer after a fixed delay.

use clap::Parser;
use kb_testkit::{FakeEngine, Fault, Route};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(about = "Serve kb-testkit's fake OpenAI-compatible engine on loopback")]
struct Args {
    /// Loopback port (0: any free port; the base URL is printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Delay before every chat answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chat_latency_ms: u64,
    /// Delay before every embeddings answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    embed_latency_ms: u64,
    /// Length of the embeddings.
    #[arg(long, default_value_t = 384)]
    dimensions: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let engine = FakeEngine::builder()
        .port(args.port)
        .dimensions(args.dimensions)
        .start()
        .await;
    for (route, ms) in [
        (Route::Chat, args.chat_latency_ms),
        (Route::Embeddings, args.embed_latency_ms),
    ] {
        if ms > 0 {
            engine.set_failure_rate(route, 1.0, Fault::Delay(Duration::from_millis(ms)));
        }
    }
    println!("{}", engine.base_url());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("BUG: a SIGTERM handler can be installed once");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
