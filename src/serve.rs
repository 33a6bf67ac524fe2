//! `kb serve`: start the server with a fresh admin token, advertise it in `server.json` for
//! the CLI, serve until Ctrl-C or SIGTERM.

use anyhow::{Context, bail};
use kb_app::{BuildError, ServerInfo, generate_token};
use kb_config::Settings;
use kb_core::IndexError;
use kb_server::{ServeError, Server, shutdown_signal};
use secrecy::ExposeSecret;
use std::process::ExitCode;

pub async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let admin_token = generate_token();
    let server = match Server::start(&settings, &admin_token).await {
        Err(ServeError::Open(BuildError::Index(IndexError::Locked(what)))) => bail!(
            "the embedded index ({what}) is held by another kb process; only one server can use an embedded index (point index.url at a Qdrant server to run replicas)"
        ),
        other => other?,
    };
    let url = format!("http://{}", server.local_addr());
    ServerInfo {
        url: url.clone(),
        pid: std::process::id(),
        admin_token: admin_token.expose_secret().to_owned(),
    }
    .write(&settings.data_dir)
    .with_context(|| format!("writing {}", ServerInfo::path(&settings.data_dir).display()))?;
    let points = server.indexed_chunks().await;
    tracing::info!(%url, points, "kb is serving");
    eprintln!(
        "kb: serving on {url} ({points} chunks indexed). Every /v1 call needs an API key; make one and try:\n  KB_KEY=$(kb keys create --role reader --name me)\n  curl -s {url}/v1/ask -H \"Authorization: Bearer $KB_KEY\" -H 'content-type: application/json' -d '{{\"question\": \"How many vacation days do new employees get?\"}}'"
    );
    let stopped = server.run_until(shutdown_signal()).await;
    ServerInfo::remove(&settings.data_dir);
    stopped.close().await.context("serving")?;
    Ok(ExitCode::SUCCESS)
}
