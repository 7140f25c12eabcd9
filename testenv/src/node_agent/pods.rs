//! Watches all pods: binds unscheduled ones to the agent's node and hands pods bound to it to a
//! supervisor task each.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::supervisor::{PodView, force_delete, supervise};

/// Whether the agent should bind `pod` (unscheduled, default scheduler, no gates, not terminating).
pub fn wants_binding(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.node_name.is_none()
        && matches!(
            spec.scheduler_name.as_deref(),
            None | Some("default-scheduler")
        )
        && spec.scheduling_gates.as_ref().is_none_or(|g| g.is_empty())
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminal(pod)
}

/// Whether the pod is `Succeeded` or `Failed`.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The `pods/binding` body that binds a pod to `node`.
pub fn binding(pod: &Pod, node: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod.name_any(), "namespace": pod.namespace(), "uid": pod.uid()},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    })
}

async fn bind(shared: Arc<Shared>, pod: Pod) {
    let api: Api<Pod> =
        Api::namespaced(shared.client.clone(), &pod.namespace().unwrap_or_default());
    let body = binding(&pod, &shared.config.node_name);
    match api
        .create_subresource::<Value, Value>(
            "binding",
            &pod.name_any(),
            &PostParams::default(),
            &body,
        )
        .await
    {
        Ok(_) => {
            tracing::info!(pod = %pod.name_any(), namespace = %pod.namespace().unwrap_or_default(), "bound pod")
        }
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
        Err(e) => tracing::warn!(pod = %pod.name_any(), error = %e, "binding failed"),
    }
}

/// The watch loop; returns when `shutdown` is cancelled, after the supervisors have stopped.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut running: HashMap<String, watch::Sender<PodView>> = HashMap::new();
    let mut deleted: HashSet<String> = HashSet::new();
    let mut tasks = JoinSet::new();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = events.next() => e,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let event = match event {
            None => break,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "pod watch error");
                continue;
            }
            Some(Ok(ev)) => ev,
        };
        match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                let uid = pod.uid().unwrap_or_default();
                if wants_binding(&pod) {
                    tasks.spawn(bind(shared.clone(), pod));
                    continue;
                }
                let ours = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                    == Some(&shared.config.node_name);
                if !ours {
                    continue;
                }
                let deleting = pod.metadata.deletion_timestamp.is_some();
                if let Some(tx) = running.get(&uid)
                    && !tx.is_closed()
                {
                    tx.send_replace(PodView { pod, gone: false });
                    continue;
                }
                if deleting {
                    // Nothing runs for it (terminal, never started, or its supervisor finished).
                    if deleted.insert(uid) {
                        let shared = shared.clone();
                        tasks.spawn(async move { force_delete(&shared, &pod).await });
                    }
                    continue;
                }
                if is_terminal(&pod) || running.contains_key(&uid) {
                    continue;
                }
                tracing::info!(pod = %pod.name_any(), namespace = %pod.namespace().unwrap_or_default(), "starting pod");
                let (tx, rx) = watch::channel(PodView { pod, gone: false });
                running.insert(uid, tx);
                tasks.spawn(supervise(shared.clone(), rx, shutdown.child_token()));
            }
            watcher::Event::Delete(pod) => {
                let uid = pod.uid().unwrap_or_default();
                deleted.remove(&uid);
                if let Some(tx) = running.remove(&uid) {
                    tx.send_replace(PodView { pod, gone: true });
                }
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
    shutdown.cancel();
    drop(running);
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};

    #[test]
    fn binding_rules() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("p".into());
        pod.metadata.namespace = Some("ns".into());
        pod.spec = Some(PodSpec::default());
        assert!(wants_binding(&pod));
        pod.spec.as_mut().unwrap().scheduler_name = Some("other".into());
        assert!(!wants_binding(&pod));
        pod.spec.as_mut().unwrap().scheduler_name = Some("default-scheduler".into());
        pod.status = Some(PodStatus {
            phase: Some("Failed".into()),
            ..Default::default()
        });
        assert!(is_terminal(&pod));
        assert!(!wants_binding(&pod));
        pod.status = None;
        pod.spec.as_mut().unwrap().node_name = Some("n".into());
        assert!(!wants_binding(&pod));
        let b = binding(&pod, "n1");
        assert_eq!(b["target"]["name"], "n1");
        assert_eq!(b["metadata"]["name"], "p");
    }
}
