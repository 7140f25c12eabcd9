//! Registers the agent's Node and keeps its Ready heartbeat and its Lease fresh.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::AgentError;
use super::env::LOCAL_IP;
use super::status::FIELD_MANAGER;

/// How often the node status and lease are renewed.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// The node object the agent applies.
pub fn node_apply(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": std::env::consts::OS,
                "kubernetes.io/arch": arch(),
                "tmdbsync.dev/node-agent": "true",
            },
        },
    })
}

/// The node status (Ready heartbeat, capacity) the agent applies to `nodes/status`.
pub fn node_status_apply(name: &str, now: Timestamp) -> Value {
    let t = serde_json::to_value(Time(now)).unwrap_or(Value::Null);
    let cond = |type_: &str, status: &str, reason: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": reason,
               "lastHeartbeatTime": t, "lastTransitionTime": t})
    };
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let resources = json!({"cpu": cpus.to_string(), "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": LOCAL_IP},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [
                cond("Ready", "True", "KubeletReady"),
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID"),
            ],
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                "osImage": "tmdbsync-node-agent", "containerRuntimeVersion": "local-process://0",
                "kubeletVersion": "v0.0.0-tmdbsync-node-agent", "kubeProxyVersion": "",
                "operatingSystem": std::env::consts::OS, "architecture": arch(),
            },
        },
    })
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Creates/updates the Node and its status.
pub async fn register(client: &Client, name: &str) -> Result<(), AgentError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    nodes
        .patch(name, &pp, &Patch::Apply(node_apply(name)))
        .await?;
    heartbeat(client, name).await
}

async fn heartbeat(client: &Client, name: &str) -> Result<(), AgentError> {
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let now = Timestamp::now();
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch_status(name, &pp, &Patch::Apply(node_status_apply(name, now)))
        .await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": 40,
            "renewTime": serde_json::to_value(MicroTime(now)).unwrap_or(Value::Null),
        },
    });
    leases.patch(name, &pp, &Patch::Apply(lease)).await?;
    Ok(())
}

/// Renews the heartbeat every [`HEARTBEAT`] until `stop` (errors are logged and retried).
pub async fn heartbeat_loop(client: Client, name: String, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
        if let Err(e) = heartbeat(&client, &name).await {
            tracing::warn!(error = %e, node = %name, "node heartbeat failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_status_is_ready_with_capacity() {
        let v = node_status_apply("n", Timestamp::UNIX_EPOCH);
        assert_eq!(v["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(v["status"]["conditions"][0]["status"], "True");
        assert_eq!(v["status"]["allocatable"]["pods"], "110");
        assert_eq!(
            node_apply("n")["metadata"]["labels"]["kubernetes.io/hostname"],
            "n"
        );
    }
}
