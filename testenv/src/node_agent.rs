//! A stand-in kubelet for tests and the demo: registers a Node, binds unscheduled pods to it and runs
//! each pod's first container as a local process (the image is mapped to a local binary), reporting pod
//! status like a kubelet so the Job, ReplicaSet and Deployment controllers work against a control
//! plane that has no real nodes. See `docs/testenv.md`.
//!
//! Limits: only the first container runs (init containers, sidecars and volumes are ignored, except
//! that an automounted service-account token becomes a `KUBECONFIG`); every pod gets IP 127.0.0.1;
//! readiness is reported as soon as the process starts; an agent restart re-runs pods that were
//! running.

mod env;
mod image;
mod kubeconfig;
mod node;
mod pods;
mod process;
mod status;
mod supervisor;

use std::path::PathBuf;
use std::sync::Arc;

use kube::Client;
use tokio_util::sync::CancellationToken;

pub use env::{EnvSources, resolve_env};
pub use image::{CommandLine, ImageMap};
pub use kubeconfig::ApiServer;
pub use status::FIELD_MANAGER;

/// Errors of the node agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Invalid agent configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A container's environment cannot be built (the kubelet's `CreateContainerConfigError`).
    #[error("{0}")]
    ContainerConfig(String),
    /// No `--image-map` entry or default binary for an image.
    #[error("no --image-map entry matches image {0:?} and no --default-binary is set")]
    UnmappedImage(String),
    /// A process could not be started.
    #[error("starting {0}: {1}")]
    Spawn(String, #[source] std::io::Error),
    /// A file operation failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// An API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// What the agent is told on its command line.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The Node it registers and runs pods for.
    pub node_name: String,
    /// Image → binary mappings.
    pub image_map: ImageMap,
    /// Where each pod's output goes (`<namespace>_<pod>.log`).
    pub log_dir: PathBuf,
    /// Where per-pod kubeconfigs and tokens are written.
    pub work_dir: PathBuf,
}

/// State shared by the agent's tasks.
pub struct Shared {
    /// The API client (the agent's own credentials).
    pub client: Client,
    /// The API server pods are pointed at.
    pub api_server: ApiServer,
    /// The agent's configuration.
    pub config: AgentConfig,
}

/// Runs the agent until `shutdown` is cancelled; child processes are killed before it returns.
pub async fn run(
    client: Client,
    api_server: ApiServer,
    config: AgentConfig,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    for dir in [&config.log_dir, &config.work_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| AgentError::Io(format!("create {}", dir.display()), e))?;
    }
    node::register(&client, &config.node_name).await?;
    tracing::info!(node = %config.node_name, log_dir = %config.log_dir.display(), "node registered");
    let shared = Arc::new(Shared {
        client: client.clone(),
        api_server,
        config,
    });
    let heartbeat = tokio::spawn(node::heartbeat_loop(
        client,
        shared.config.node_name.clone(),
        shutdown.clone(),
    ));
    pods::run(shared, shutdown.clone()).await;
    shutdown.cancel();
    let _ = heartbeat.await;
    Ok(())
}
