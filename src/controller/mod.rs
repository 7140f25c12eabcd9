//! The operator: a TmdbSync reconciler and a SyncRun reconciler in one process.

pub mod context;
pub mod dashboard;
pub mod job;
pub mod leader;
pub mod sync_run;
pub mod tmdb_sync;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
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

/// Errors of the controller stream itself (reconcile errors go through `error_policy`).
async fn log_loop_result<T, E: std::fmt::Display>(r: Result<T, E>) {
    if let Err(e) = r {
        tracing::debug!(error = %e, "reconcile loop");
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

/// Runs both reconcilers until SIGTERM/ctrl-c (graceful: in-flight reconciles finish).
pub async fn run(client: Client, ctx: Arc<Context>) {
    let ns = ctx.config.namespace.clone();
    let syncs = api::<TmdbSync>(&client, ns.as_deref());
    let runs = api::<SyncRun>(&client, ns.as_deref());
    let jobs = api::<Job>(&client, ns.as_deref());
    let jobs_cfg = watcher::Config::default().labels("app.kubernetes.io/managed-by=tmdbsync");

    let sync_controller = Controller::new(syncs, watcher::Config::default())
        .owns(runs.clone(), watcher::Config::default())
        .shutdown_on_signal()
        .run(
            |obj, ctx| measured("TmdbSync", obj, ctx, tmdb_sync::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(log_loop_result);
    let run_controller = Controller::new(runs, watcher::Config::default())
        .owns(jobs, jobs_cfg)
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
