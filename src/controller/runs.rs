//! The SyncRuns of one TmdbSync, listed by label instead of the whole namespace. Scheduled runs carry
//! the label `tmdbsync.io/sync=<sync>` from creation; a manual run gets it when its first reconcile
//! adopts it (with the owner reference). Runs without the label — a manual run not adopted yet, or a
//! finished one from before runs were labelled — come from a second list that selects only those
//! (normally none), so a reconcile never misses a run of its sync.
//!
//! The TmdbSync reconciler reads them from the SyncRun controller's cache instead ([`cached`]):
//! two lists on every reconcile of every sync were most of the controller's API requests, and the
//! unlabelled one made the API server look at every SyncRun of the namespace.

use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use kube::runtime::reflector;
use kube::{Api, ResourceExt};

use super::job::LABEL_SYNC;
use crate::api::SyncRun;

/// The label selector of the runs labelled for `sync`.
pub fn labelled(sync: &str) -> String {
    format!("{LABEL_SYNC}={sync}")
}

/// The label selector of runs without a sync label.
pub fn unlabelled() -> String {
    format!("!{LABEL_SYNC}")
}

/// Whether `run` carries the label of the sync it names in `spec.syncRef`.
pub fn is_labelled(run: &SyncRun) -> bool {
    run.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SYNC))
        .is_some_and(|v| *v == run.spec.sync_ref.name)
}

/// The runs of TmdbSync `sync` in `api`'s namespace (those whose `spec.syncRef` names it).
pub async fn of_sync(api: &Api<SyncRun>, sync: &str) -> Result<Vec<SyncRun>, kube::Error> {
    let labelled = api
        .list(&ListParams::default().labels(&labelled(sync)))
        .await?;
    let unlabelled = api
        .list(&ListParams::default().labels(&unlabelled()))
        .await?;
    Ok(labelled
        .items
        .into_iter()
        .chain(unlabelled.items)
        .filter(|r| r.spec.sync_ref.name == sync)
        .collect())
}

/// How long a reconcile waits for the cache's first full list before it lists from the API server.
const CACHE_READY_WAIT: Duration = Duration::from_secs(30);

/// The runs of TmdbSync `sync` in namespace `ns` from `cache`, once it has listed every run
/// (`None`: not within [`CACHE_READY_WAIT`], or the cache is gone: list from the API server).
pub async fn cached(
    cache: &reflector::Store<SyncRun>,
    ns: &str,
    sync: &str,
) -> Option<Vec<Arc<SyncRun>>> {
    tokio::time::timeout(CACHE_READY_WAIT, cache.wait_until_ready())
        .await
        .ok()?
        .ok()?;
    Some(cache.state_filter(|r| belongs(r, ns, sync)))
}

/// Whether `run` is a run of TmdbSync `sync` in namespace `ns`.
pub fn belongs(run: &SyncRun, ns: &str, sync: &str) -> bool {
    run.namespace().as_deref() == Some(ns) && run.spec.sync_ref.name == sync
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sync_ref: &str, label: Option<&str>) -> SyncRun {
        let mut v = serde_json::json!({
            "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
            "metadata": {"name": "r"},
            "spec": {"syncRef": {"name": sync_ref}, "type": "Catalog"}
        });
        if let Some(l) = label {
            v["metadata"]["labels"] = serde_json::json!({ LABEL_SYNC: l });
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_run_belongs_to_the_sync_it_names_in_its_own_namespace() {
        let mut r = run("cine", None);
        r.metadata.namespace = Some("media".into());
        assert!(belongs(&r, "media", "cine"), "labelled or not");
        assert!(!belongs(&r, "media", "other"));
        assert!(
            !belongs(&r, "staging", "cine"),
            "a sync of the same name elsewhere"
        );
    }

    #[test]
    fn selectors_pick_a_syncs_runs_and_the_unlabelled_ones() {
        assert_eq!(labelled("cinegraph"), "tmdbsync.io/sync=cinegraph");
        assert_eq!(unlabelled(), "!tmdbsync.io/sync");
        assert!(is_labelled(&run("cine", Some("cine"))));
        assert!(
            !is_labelled(&run("cine", None)),
            "a manual run before adoption"
        );
        assert!(
            !is_labelled(&run("cine", Some("other"))),
            "a wrong label is corrected on adoption"
        );
    }
}
