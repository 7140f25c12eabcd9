//! `kubectl tmdbsync`: the plugin's commands over the Kubernetes API, with the user's own
//! credentials (RBAC decides who may act). Read-only commands (`status`, `runs`, `describe`,
//! `report`) only read; `pause`, `resume` and `run-now` make one write each.
//!
//! `status` and `report` build the one Sync Health model (`crate::plan::health`) from the TmdbSync
//! and its SyncRuns ([`model`]): no database access and no port to the controller needed.

/// The command line.
pub mod args;
/// `describe RUN`: SyncRun → Job → pods, events, failures, next steps.
pub mod describe;
/// The cluster's objects as the Sync Health model's inputs (pure).
pub mod model;
/// Text output and colours.
pub mod render;

mod commands;

pub use args::Cli;
pub use commands::run;

/// What stops a command.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The kubeconfig cannot be read or names no usable context (retrying cannot fix it).
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// The API server answered with an error or could not be reached.
    #[error("{0}")]
    Api(#[source] kube::Error),
    /// The object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The arguments cannot work together (e.g. `--pages` on a delta run).
    #[error("{0}")]
    Usage(String),
    /// The output could not be written or encoded.
    #[error("output: {0}")]
    Output(String),
}

impl PluginError {
    /// The process exit code: 1 for what may pass (API errors, not found), 2 for usage, 4 for a
    /// kubeconfig that cannot work.
    pub fn exit_code(&self) -> u8 {
        match self {
            PluginError::Kubeconfig(_) => 4,
            PluginError::Usage(_) => 2,
            PluginError::Api(_) | PluginError::NotFound(_) | PluginError::Output(_) => 1,
        }
    }
}

impl From<kube::Error> for PluginError {
    fn from(e: kube::Error) -> Self {
        PluginError::Api(e)
    }
}
