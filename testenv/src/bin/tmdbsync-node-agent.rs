//! `tmdbsync-node-agent`: a stand-in kubelet that runs pods as local processes (tests and the demo).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tmdbsync_testenv::node_agent::{self, AgentConfig, ApiServer, ImageMap};
use tokio_util::sync::CancellationToken;

/// Registers a Node and runs the pods bound to it as local processes.
#[derive(Debug, Parser)]
#[command(name = "tmdbsync-node-agent", version)]
struct Args {
    /// Kubeconfig of the agent (else KUBECONFIG / in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The Node name to register.
    #[arg(long, env = "TMDBSYNC_NODE_NAME", default_value = "tmdbsync-local")]
    node_name: String,
    /// Image mapping KEY=PATH (repeatable): images whose repository equals/starts with KEY, or whose
    /// name contains KEY, run PATH.
    #[arg(long = "image-map", value_name = "KEY=PATH")]
    image_map: Vec<String>,
    /// Binary for images no --image-map matches.
    #[arg(long, env = "TMDBSYNC_NODE_DEFAULT_BINARY")]
    default_binary: Option<PathBuf>,
    /// Directory for per-pod log files (default: a new temp dir).
    #[arg(long, env = "TMDBSYNC_NODE_LOG_DIR")]
    log_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    let mut image_map = ImageMap::new(args.default_binary);
    for spec in &args.image_map {
        image_map.add_spec(spec)?;
    }
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    let api_server = ApiServer {
        url: config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string(),
        root_certs: config.root_cert.clone(),
    };
    let client = kube::Client::try_from(config)?;
    let run_dir = std::env::temp_dir().join(format!("tmdbsync-node-agent-{}", std::process::id()));
    let log_dir = args.log_dir.unwrap_or_else(|| run_dir.join("logs"));
    let agent = AgentConfig {
        node_name: args.node_name,
        image_map,
        log_dir,
        work_dir: run_dir.join("pods"),
    };

    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("shutting down: killing child processes");
        trigger.cancel();
    });
    node_agent::run(client, api_server, agent, shutdown).await?;
    let _ = std::fs::remove_dir_all(run_dir.join("pods"));
    Ok(())
}
