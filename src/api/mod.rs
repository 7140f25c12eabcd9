//! The custom resources: `TmdbSync` (what to sync, when) and `SyncRun` (one run, executed as a Job).

pub mod conditions;
pub mod sync_run;
pub mod tmdb_sync;

pub use sync_run::{RunPhase, SyncRun, SyncRunSpec, SyncRunStatus};
pub use tmdb_sync::{SyncPhase, TmdbSync, TmdbSyncSpec, TmdbSyncStatus};

use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of both kinds.
pub const GROUP: &str = "tmdbsync.io";

/// The single field manager of every server-side apply the controller does.
pub const FIELD_MANAGER: &str = "tmdbsync";

/// A key of a Secret in the resource's namespace. Secrets are only referenced, never copied.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Both CRDs as one multi-document YAML stream (what `tmdbsync crd` prints and `crds/` holds).
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in [TmdbSync::crd(), SyncRun::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd).expect("CRDs serialize"));
    }
    out
}
