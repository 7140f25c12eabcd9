//! The SyncRuns of one TmdbSync, listed by label instead of the whole namespace. Scheduled runs carry
//! the label `tmdbsync.io/sync=<sync>` from creation; a manual run gets it when its first reconcile
//! adopts it (with the owner reference). Runs without the label — a manual run not adopted yet, or a
//! finished one from before runs were labelled — come from a second list that selects only those
//! (normally none), so a reconcile never misses a run of its sync.
//!
//! The TmdbSync reconciler reads them from the controller's SyncRun cache instead ([`RunCache`]):
//! two lists on every reconcile of every sync were most of the controller's API requests, and the
//! unlabelled one made the API server look at every SyncRun of the namespace.
//!
//! The cache is built by [`watch`], the controller's one SyncRun watch. A run that is not settled
//! (running, waiting, or finished without its conditions yet) is kept whole, in the reflector
//! store the SyncRun reconciler reads. A settled run ([`super::sync_run::is_settled`]: finished,
//! and its reconcile would change nothing) is kept only as the plan's [`RunView`]: a few hundred
//! bytes instead of about 5 KB, so 10,000 finished runs cost ~3 MiB instead of ~46 MiB. The same
//! watch also wakes the TmdbSync a run names whenever the run changes or goes (what `owns` did with
//! a second watch of every run's metadata).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event, watcher};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Api, ResourceExt};

use super::job::LABEL_SYNC;
use super::sync_run::{SCHEDULED_AT, is_settled};
use crate::api::{SyncRun, TmdbSync};
use crate::plan::RunType;
use crate::plan::sync::{self as plan, RunView};
use crate::telemetry::readiness::WatchHealth;

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

/// The controller's one SyncRun watch, reported to `health`: the [`RunCache`], the unsettled runs
/// as they change (what the SyncRun reconciler reconciles), and the TmdbSync each changed or
/// deleted run names (what the TmdbSync reconciler reconciles again). The first list wakes no
/// TmdbSync: their own watch starts once it is complete and reconciles every one; a relist wakes
/// the sync of every run it lists.
pub fn watch(
    api: Api<SyncRun>,
    health: WatchHealth,
) -> (
    RunCache,
    impl Stream<Item = watcher::Result<SyncRun>> + Send + 'static,
    impl Stream<Item = ObjectRef<TmdbSync>> + Send + 'static,
) {
    let (store, writer) = reflector::store();
    let settled = Settled::default();
    let recorder = settled.clone();
    let (owners, woken) = futures::channel::mpsc::unbounded();
    let mut listed_once = false;
    let events = watcher(api, watcher::Config::default())
        .modify(super::watches::trim)
        .inspect(move |item| super::watches::observe(&health, item))
        .filter_map(move |item| {
            let event = match item {
                Ok(event) => {
                    // A relist (after the watch lost its place) may bring changes it missed.
                    let owner = match &event {
                        Event::Apply(run) | Event::Delete(run) => Some(owner(run)),
                        Event::InitApply(run) if listed_once => Some(owner(run)),
                        Event::InitDone => {
                            listed_once = true;
                            None
                        }
                        _ => None,
                    };
                    let event = recorder.record(event);
                    // After recording: the woken reconcile reads the cache as it is now.
                    if let Some(owner) = owner {
                        let _ = owners.unbounded_send(owner);
                    }
                    event.map(Ok)
                }
                Err(e) => Some(Err(e)),
            };
            std::future::ready(event)
        });
    let unsettled = reflector(writer, events).applied_objects();
    (RunCache { store, settled }, unsettled, woken)
}

/// The TmdbSync `run` belongs to (its `spec.syncRef`, in its namespace).
fn owner(run: &SyncRun) -> ObjectRef<TmdbSync> {
    let r = ObjectRef::new(&run.spec.sync_ref.name);
    match run.namespace() {
        Some(ns) => r.within(&ns),
        None => r,
    }
}

/// How the plan sees `r`.
pub fn view(r: &SyncRun) -> RunView {
    let status = r.status.clone().unwrap_or_default();
    RunView {
        name: r.name_any(),
        run_type: Some(RunType::from(r.spec.run_type)),
        phase: status.phase,
        scheduled_at: r
            .annotations()
            .get(SCHEDULED_AT)
            .and_then(|s| plan::parse_time(s)),
        completed_at: status.completed_at,
        reason: status.reason,
        imported: status.movies_imported,
        updated: status.movies_updated,
        errors: status.errors,
    }
}

/// How long a reconcile waits for the cache's first full list before it lists from the API server.
const CACHE_READY_WAIT: Duration = Duration::from_secs(30);

/// Every SyncRun the controller watches: whole while unsettled, as a view once settled.
#[derive(Clone)]
pub struct RunCache {
    /// The unsettled runs (the SyncRun reconciler's store).
    pub store: reflector::Store<SyncRun>,
    settled: Settled,
}

impl RunCache {
    /// The runs of TmdbSync `sync` in namespace `ns`, once the cache has listed every run
    /// (`None`: not within [`CACHE_READY_WAIT`], or the cache is gone: list from the API server).
    pub async fn of_sync(&self, ns: &str, sync: &str) -> Option<Vec<RunView>> {
        tokio::time::timeout(CACHE_READY_WAIT, self.store.wait_until_ready())
            .await
            .ok()?
            .ok()?;
        // Read the store first: a run settling now is already in `settled` when the store drops
        // it, so it is seen once or twice, never missed; the settled view wins.
        let unsettled = self.store.state_filter(|r| belongs(r, ns, sync));
        let mut runs = self.settled.of_sync(ns, sync);
        for r in unsettled {
            runs.entry(r.name_any()).or_insert_with(|| view(&r));
        }
        Some(runs.into_values().collect())
    }
}

/// The settled runs' views by namespace and sync, then name. While the watch (re)lists, the
/// views listed so far are collected apart and replace the old ones when the list is complete
/// (as a reflector store does).
#[derive(Clone, Default)]
struct Settled(Arc<Mutex<SettledState>>);

type SettledRuns = HashMap<(String, String), BTreeMap<String, RunView>>;

#[derive(Default)]
struct SettledState {
    live: SettledRuns,
    listing: Option<SettledRuns>,
}

impl Settled {
    fn of_sync(&self, ns: &str, sync: &str) -> BTreeMap<String, RunView> {
        let state = self.0.lock().expect("settled runs lock");
        let key = (ns.to_string(), sync.to_string());
        state.live.get(&key).cloned().unwrap_or_default()
    }

    /// Records one watch event; returns the event the reflector store of unsettled runs gets
    /// (`None`: nothing for it).
    fn record(&self, event: Event<SyncRun>) -> Option<Event<SyncRun>> {
        let mut state = self.0.lock().expect("settled runs lock");
        match event {
            Event::Init => {
                state.listing = Some(HashMap::new());
                Some(Event::Init)
            }
            Event::InitApply(run) if is_settled(&run) => {
                let listing = state.listing.get_or_insert_with(HashMap::new);
                insert(listing, &run);
                None
            }
            Event::InitDone => {
                if let Some(listed) = state.listing.take() {
                    state.live = listed;
                }
                Some(Event::InitDone)
            }
            // Settled now: the store of unsettled runs lets it go.
            Event::Apply(run) if is_settled(&run) => {
                insert(&mut state.live, &run);
                Some(Event::Delete(run))
            }
            Event::Apply(run) => {
                remove(&mut state.live, &run);
                Some(Event::Apply(run))
            }
            Event::Delete(run) => {
                remove(&mut state.live, &run);
                Some(Event::Delete(run))
            }
            Event::InitApply(run) => Some(Event::InitApply(run)),
        }
    }
}

fn settled_key(run: &SyncRun) -> (String, String) {
    (
        run.namespace().unwrap_or_default(),
        run.spec.sync_ref.name.clone(),
    )
}

fn insert(runs: &mut SettledRuns, run: &SyncRun) {
    let of_sync = runs.entry(settled_key(run)).or_default();
    of_sync.insert(run.name_any(), view(run));
}

fn remove(runs: &mut SettledRuns, run: &SyncRun) {
    let key = settled_key(run);
    if let Some(of_sync) = runs.get_mut(&key) {
        of_sync.remove(&run.name_any());
        if of_sync.is_empty() {
            runs.remove(&key);
        }
    }
}

/// Whether `run` is a run of TmdbSync `sync` in namespace `ns`.
pub fn belongs(run: &SyncRun, ns: &str, sync: &str) -> bool {
    run.namespace().as_deref() == Some(ns) && run.spec.sync_ref.name == sync
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RunPhase, SyncRunStatus};

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

    /// Run `name` of sync `sync` in namespace `media`: running, finished without conditions (as
    /// an older controller left it) or finished with them (settled).
    fn in_phase(name: &str, sync: &str, phase: Option<RunPhase>, conditions: bool) -> SyncRun {
        let mut r = run(sync, Some(sync));
        r.metadata.name = Some(name.into());
        r.metadata.namespace = Some("media".into());
        r.metadata.generation = Some(1);
        let mut status = SyncRunStatus {
            observed_generation: Some(1),
            phase,
            completed_at: Some("2026-12-01T02:42:00Z".into()),
            reason: Some("Completed".into()),
            message: Some("completed".into()),
            movies_imported: 7,
            ..Default::default()
        };
        if conditions {
            let desired = crate::plan::run::run_conditions(
                phase,
                status.reason.as_deref(),
                status.message.as_deref(),
            );
            let at = plan::parse_time("2026-12-01T02:42:00Z").unwrap();
            status.conditions = crate::api::conditions::merge(&[], &desired, Some(1), at);
        }
        r.status = Some(status);
        r
    }

    fn names(runs: BTreeMap<String, RunView>) -> Vec<String> {
        runs.into_keys().collect()
    }

    fn kind(e: &Option<Event<SyncRun>>) -> &'static str {
        match e {
            None => "none",
            Some(Event::Init) => "init",
            Some(Event::InitApply(_)) => "init-apply",
            Some(Event::InitDone) => "init-done",
            Some(Event::Apply(_)) => "apply",
            Some(Event::Delete(_)) => "delete",
        }
    }

    #[test]
    fn settled_runs_leave_the_store_for_views_and_only_they_do() {
        let done = Some(RunPhase::Succeeded);
        let settled = in_phase("a", "cine", done, true);
        assert!(super::super::sync_run::is_settled(&settled));
        let running = in_phase("b", "cine", Some(RunPhase::Running), false);
        let legacy = in_phase("c", "cine", done, false);
        assert!(
            !super::super::sync_run::is_settled(&legacy),
            "finished without conditions: its reconcile writes them"
        );
        let other = in_phase("d", "other", done, true);

        let cache = Settled::default();
        let listed = [Event::Init]
            .into_iter()
            .chain([&settled, &running, &legacy, &other].map(|r| Event::InitApply(r.clone())))
            .map(|e| kind(&cache.record(e)))
            .collect::<Vec<_>>();
        assert_eq!(
            listed,
            ["init", "none", "init-apply", "init-apply", "none"],
            "settled runs never reach the store"
        );
        assert!(
            cache.of_sync("media", "cine").is_empty(),
            "views are served once the list is complete"
        );
        assert_eq!(kind(&cache.record(Event::InitDone)), "init-done");
        assert_eq!(names(cache.of_sync("media", "cine")), ["a"]);
        assert_eq!(names(cache.of_sync("media", "other")), ["d"]);
        assert!(cache.of_sync("staging", "cine").is_empty());
        assert_eq!(cache.of_sync("media", "cine")["a"].imported, 7);

        // The legacy run gets its conditions: it settles and the store lets it go.
        let e = cache.record(Event::Apply(in_phase("c", "cine", done, true)));
        assert_eq!(kind(&e), "delete");
        assert_eq!(names(cache.of_sync("media", "cine")), ["a", "c"]);
        // A running run stays whole; a deleted settled run goes.
        assert_eq!(kind(&cache.record(Event::Apply(running.clone()))), "apply");
        assert_eq!(
            kind(&cache.record(Event::Delete(settled.clone()))),
            "delete"
        );
        assert_eq!(names(cache.of_sync("media", "cine")), ["c"]);

        // A relist replaces the views only when it is complete.
        cache.record(Event::Init);
        cache.record(Event::InitApply(other.clone()));
        assert_eq!(names(cache.of_sync("media", "cine")), ["c"]);
        cache.record(Event::InitDone);
        assert!(cache.of_sync("media", "cine").is_empty());
        assert_eq!(names(cache.of_sync("media", "other")), ["d"]);
    }
}
