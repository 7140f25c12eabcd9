//! The controllers' watches, observed. They are built as kube-runtime's `Controller::new` and
//! `owns` build theirs, with one step between the watcher and the controller: each watch tells the
//! readiness state ([`crate::telemetry::readiness`]) when it has listed every object (synced), when
//! it works and when it fails, and every failure is logged at warn with the resource and the reason
//! (kube-runtime itself logs only a 403 above debug, so a missing CRD went unseen).

use std::fmt::Debug;

use futures::{Stream, StreamExt};
use kube::runtime::watcher::{self, Event, watcher};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::telemetry::readiness::WatchHealth;

/// Every object of `api`, listed once `start` resolves, kept in a reflector cache ([`trim`]med)
/// and reported to `health`: the cache and the stream of applied objects (what `Controller::new`
/// builds).
pub fn cached<K, F>(
    api: Api<K>,
    health: WatchHealth,
    start: F,
) -> (
    reflector::Store<K>,
    impl Stream<Item = watcher::Result<K>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (store, writer) = reflector::store();
    let objects = futures::stream::once(start)
        .flat_map(move |()| watcher(api.clone(), watcher::Config::default()).modify(trim));
    let applied = observed(reflector(writer, objects), health).applied_objects();
    (store, applied)
}

/// `stream` (a watcher, or a reflector over one), reporting each item to `health`.
pub fn observed<K, S>(stream: S, health: WatchHealth) -> impl Stream<Item = S::Item> + Send
where
    S: Stream<Item = watcher::Result<Event<K>>> + Send,
{
    stream.inspect(move |item| observe(&health, item))
}

/// Drops what a cached object needs no copy of: its managed fields (which manager set which field,
/// often as large as the object) and kubectl's last-applied annotation. Reconcilers never read
/// them and write with server-side apply, which needs neither; with 10,000 SyncRuns they were most
/// of the controller's memory.
pub fn trim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// The annotation `kubectl apply` (client-side) keeps the whole applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Reports one watcher item to `health` (and the log).
pub fn observe<K>(health: &WatchHealth, item: &watcher::Result<Event<K>>) {
    match item {
        Ok(Event::InitDone) => {
            if health.synced() {
                tracing::info!(resource = %health.name(), "watch works again: listed every object");
            } else {
                tracing::debug!(resource = %health.name(), "watch synced");
            }
        }
        // Sent before the list is requested: says nothing about whether it works.
        Ok(Event::Init) => {}
        Ok(Event::InitApply(_) | Event::Apply(_) | Event::Delete(_)) => {
            if health.working() {
                tracing::info!(resource = %health.name(), "watch works again");
            }
        }
        Err(e) => {
            let reason = describe(e);
            tracing::warn!(resource = %health.name(), reason = %reason, "watch failed; retrying");
            health.failed(reason);
        }
    }
}

/// One line saying what failed and why, with a hint for the usual causes (a 404 on a list is a
/// CRD that is not installed, a 403 missing RBAC).
pub fn describe(e: &watcher::Error) -> String {
    let (what, source) = match e {
        watcher::Error::InitialListFailed(k) => ("listing", k),
        watcher::Error::WatchStartFailed(k) => ("starting the watch", k),
        watcher::Error::WatchFailed(k) => ("watching", k),
        watcher::Error::WatchError(status) => {
            return format!("the watch returned {}", status_line(status));
        }
        watcher::Error::NoResourceVersion => {
            return "the watch result had no resourceVersion".into();
        }
    };
    match source {
        kube::Error::Api(status) => {
            let hint = match status.code {
                404 => {
                    " (is the CustomResourceDefinition installed? \
                     `kubectl apply --server-side -f crds/`)"
                }
                403 => " (RBAC: the controller's ServiceAccount may not list and watch it)",
                _ => "",
            };
            format!("{what} failed: {}{hint}", status_line(status))
        }
        other => format!("{what} failed: {other}"),
    }
}

fn status_line(s: &kube::core::Status) -> String {
    match (s.reason.as_str(), s.message.as_str()) {
        ("", "") => s.code.to_string(),
        (reason, "") => format!("{} {reason}", s.code),
        ("", message) => format!("{} {message}", s.code),
        (reason, message) => format!("{} {reason}: {message}", s.code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::readiness::{Readiness, Role};
    use k8s_openapi::api::batch::v1::Job;
    use kube::core::Status;

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    #[test]
    fn watch_errors_say_what_failed_why_and_what_usually_fixes_it() {
        let not_found = watcher::Error::InitialListFailed(api_error(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
        assert_eq!(
            describe(&not_found),
            "listing failed: 404 NotFound: the server could not find the requested resource \
             (is the CustomResourceDefinition installed? `kubectl apply --server-side -f crds/`)"
        );
        let forbidden = watcher::Error::WatchStartFailed(api_error(
            403,
            "Forbidden",
            "jobs.batch is forbidden: User \"x\" cannot watch resource \"jobs\"",
        ));
        let d = describe(&forbidden);
        assert!(
            d.starts_with("starting the watch failed: 403 Forbidden: jobs.batch"),
            "{d}"
        );
        assert!(d.ends_with("may not list and watch it)"), "{d}");
        let gone = watcher::Error::WatchError(
            Status::failure("too old", "Expired").with_code(410).boxed(),
        );
        assert_eq!(describe(&gone), "the watch returned 410 Expired: too old");
    }

    #[test]
    fn cached_objects_lose_managed_fields_and_the_last_applied_copy_only() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
        let mut job = Job::default();
        job.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("tmdbsync".into()),
            ..Default::default()
        }]);
        job.metadata.annotations = Some(
            [
                (LAST_APPLIED.to_string(), "{\"spec\":{}}".to_string()),
                (
                    "tmdbsync.io/reset-requested-at".to_string(),
                    "t1".to_string(),
                ),
            ]
            .into(),
        );
        trim(&mut job);
        assert_eq!(job.metadata.managed_fields, None);
        let kept: Vec<&String> = job.metadata.annotations.as_ref().unwrap().keys().collect();
        assert_eq!(kept, ["tmdbsync.io/reset-requested-at"]);
    }

    #[test]
    fn a_watch_is_synced_by_its_list_and_failing_on_errors() {
        let ready = Readiness::default();
        ready.set_role(Role::Active);
        ready.api_answered();
        let jobs = ready.watch("jobs");
        // A watcher retrying a list it may not make: `Init` comes before each try.
        let forbidden = || {
            Err(watcher::Error::InitialListFailed(api_error(
                403,
                "Forbidden",
                "no",
            )))
        };
        let events: Vec<watcher::Result<Event<Job>>> = vec![
            Ok(Event::Init),
            forbidden(),
            Ok(Event::Init),
            forbidden(),
            Ok(Event::Init),
        ];
        for e in &events {
            observe(&jobs, e);
        }
        let v = ready.verdict();
        assert!(!v.ready);
        assert!(
            v.reason
                .contains("jobs has not synced: listing failed: 403"),
            "{v:?}"
        );
        for e in [
            Event::Init,
            Event::InitApply(Job::default()),
            Event::InitDone,
        ] {
            observe(&jobs, &Ok(e));
        }
        assert!(ready.verdict().ready, "{:?}", ready.verdict());
    }
}
