//! The SyncRuns of one TmdbSync, listed by label instead of the whole namespace. Scheduled runs carry
//! the label `tmdbsync.io/sync=<sync>` from creation; a manual run gets it when its first reconcile
//! adopts it (with the owner reference). Runs without the label — a manual run not adopted yet, or a
//! finished one from before runs were labelled — come from a second list that selects only those
//! (normally none), so a reconcile never misses a run of its sync.

use kube::Api;
use kube::api::ListParams;

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
