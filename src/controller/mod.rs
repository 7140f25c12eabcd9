//! The operator: a TmdbSync reconciler and a SyncRun reconciler in one process.

pub mod apply;
pub mod context;
pub mod dashboard;
pub mod job;
pub mod leader;
pub mod process;
pub mod runs;
pub mod sync_run;
pub mod tmdb_sync;
pub mod watches;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};

pub use context::{Context, ControllerConfig};

use crate::api::{SyncRun, TmdbSync};
use crate::store::StoreError;

/// Why a reconcile failed (the variant names are also metric labels).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Store(_) => "store",
        }
    }
}

fn key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// Runs one reconcile, records its metrics and resets the object's backoff on success.
async fn measured<K, F, Fut>(
    kind: &'static str,
    obj: Arc<K>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, Error>>,
{
    let k = key(obj.as_ref());
    let started = std::time::Instant::now();
    let r = reconcile(obj, ctx.clone()).await;
    let error = r.as_ref().err().map(Error::label);
    ctx.metrics
        .reconciled(kind, started.elapsed().as_secs_f64(), error);
    if r.is_ok() {
        ctx.succeeded(&k);
    }
    r
}

/// Errors of the controller stream itself: reconcile errors went through `error_policy` and watch
/// errors through [`watches::observe`] (both logged at warn there), so only the rest is new.
async fn log_loop_result<T, R, Q>(r: Result<T, kube::runtime::controller::Error<R, Q>>)
where
    R: std::error::Error,
    Q: std::error::Error,
{
    use kube::runtime::controller::Error as Loop;
    match r {
        Ok(_) => {}
        Err(e @ (Loop::ReconcilerFailed(..) | Loop::QueueError(_) | Loop::ObjectNotFound(_))) => {
            tracing::debug!(error = %e, "reconcile loop")
        }
        Err(e) => tracing::warn!(error = %e, "reconcile loop"),
    }
}

fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let backoff = ctx.failed(&key(obj.as_ref()));
    tracing::warn!(object = %key(obj.as_ref()), error = %error, kind = error.label(), ?backoff, "reconcile failed");
    Action::requeue(backoff)
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// TmdbSync reconciles at a time: as many as a database pool has connections (each reads the Sync
/// Health). Unbounded, a controller (re)starting with 100 syncs sent all their requests at once and
/// the API server's answers, the lease renewal's among them, queued behind the burst.
const SYNC_RECONCILES: u16 = 4;
/// SyncRun reconciles at a time (a finished run's makes no request; a running one's a few).
const RUN_RECONCILES: u16 = 16;

fn concurrency(n: u16) -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(n)
}

/// Runs both reconcilers until SIGTERM/ctrl-c (graceful: in-flight reconciles finish). Their
/// three watches report to `ctx.readiness` (see [`watches`]).
pub async fn run(client: Client, ctx: Arc<Context>) {
    let ns = ctx.config.namespace.clone();
    let syncs = api::<TmdbSync>(&client, ns.as_deref());
    let runs = api::<SyncRun>(&client, ns.as_deref());
    // Owned Jobs are watched by their metadata only (what `owns` does).
    let jobs_meta = api::<PartialObjectMeta<Job>>(&client, ns.as_deref());
    let jobs_cfg = watcher::Config::default().labels("app.kubernetes.io/managed-by=tmdbsync");
    let ready = &ctx.readiness;

    // What `Controller::new(api, cfg)` and `.owns(api, cfg)` build, observed.
    // The TmdbSync reconciler reads a sync's runs from the SyncRun cache instead of listing them,
    // so the TmdbSync watch starts once that cache holds every run: a (re)start with thousands of
    // runs does not reconcile every sync at once while the runs are still being listed.
    // The one SyncRun watch also wakes a run's TmdbSync when the run changes ([`runs::watch`]).
    // (`/readyz` names the watches in the order they are registered here.)
    let syncs_health = ready.watch("tmdbsyncs");
    let runs_health = ready.watch("syncruns");
    let runs_listed = runs_health.clone();
    let (run_cache, runs, runs_changed) = runs::watch(runs, runs_health);
    let runs_store = run_cache.store.clone();
    ctx.cache_runs(run_cache);
    let (syncs_store, syncs) = watches::cached(syncs, syncs_health, async move {
        runs_listed.wait_synced().await
    });
    let jobs =
        watches::observed(watcher(jobs_meta, jobs_cfg), ready.watch("jobs")).touched_objects();

    let sync_controller = Controller::for_stream(syncs, syncs_store)
        .reconcile_on(runs_changed)
        .with_config(concurrency(SYNC_RECONCILES))
        .shutdown_on_signal()
        .run(
            |obj, ctx| measured("TmdbSync", obj, ctx, tmdb_sync::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(log_loop_result);
    let run_controller = Controller::for_stream(runs, runs_store)
        .owns_stream(jobs)
        .with_config(concurrency(RUN_RECONCILES))
        .shutdown_on_signal()
        .run(
            |obj, ctx| measured("SyncRun", obj, ctx, sync_run::reconcile),
            error_policy,
            ctx,
        )
        .for_each(log_loop_result);
    futures::future::join(sync_controller, run_controller).await;
    tracing::info!("controller stopped");
}
