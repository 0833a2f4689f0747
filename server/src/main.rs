//! `parley-server [--config FILE]`: runs the Parley API until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use parley_server::clock::SystemClock;
use parley_server::config::Config;
use parley_server::Server;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    parley_server::alloc::tune();
    parley_server::alloc::start_trimming();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    tracing_subscriber::registry()
        .with(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info")),
        )
        .with(
            tracing_subscriber::fmt::layer()
                // Colours only on a terminal: a log file or journal gets plain text.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_filter(parley_server::log_safety()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let mut config_file: Option<PathBuf> = std::env::var_os("PARLEY_CONFIG").map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                config_file = Some(args.next().context("--config needs a file")?.into())
            }
            "--help" | "-h" => {
                println!("usage: parley-server [--config FILE]\n\nSettings: see README.md (PARLEY_* env vars, DATABASE_URL).");
                return Ok(());
            }
            "--version" | "-V" => {
                println!("parley-server {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let config = Config::load(config_file.as_deref())?;
    tracing::info!(data_dir = %config.data_dir.display(), "starting parley-server");
    let server = Server::start(config, Arc::new(SystemClock)).await?;
    server.run_until(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
