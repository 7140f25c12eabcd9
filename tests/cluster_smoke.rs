//! Smoke test of the end-to-end harness (`tests/support/cluster.rs`): the control plane, the shared
//! node agent, namespaces, kubectl and pod logs.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt as _};
use support::cluster::*;

fn job_condition(job: &Job, kind: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
}

#[tokio::test]
async fn indexed_job_runs_on_the_shared_agent() {
    let cluster = Cluster::shared();
    let ns = cluster.namespace("cluster-smoke");
    let client = cluster.client();
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);

    let job: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "indexed"},
        "spec": {
            "completions": 2,
            "parallelism": 2,
            "completionMode": "Indexed",
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "echo",
                    "image": "busybox:1.36",
                    "command": ["/bin/sh", "-c", "echo $JOB_COMPLETION_INDEX"],
                }],
            }},
        },
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();

    let done = wait_for(&jobs, "indexed", Duration::from_secs(60), |j| {
        job_condition(j, "Complete") || job_condition(j, "Failed")
    })
    .await;
    assert!(
        job_condition(&done, "Complete"),
        "job failed: {:?}",
        done.status
    );
    assert_eq!(done.status.as_ref().and_then(|s| s.succeeded), Some(2));

    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let pods = pods
        .list(&ListParams::default().labels("job-name=indexed"))
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 2, "one pod per index");
    let printed: BTreeSet<String> = pods
        .items
        .iter()
        .map(|p| {
            let name = p.name_any();
            assert!(
                cluster
                    .pod_logs_dir()
                    .join(format!("{ns}_{name}.log"))
                    .is_file(),
                "no log file for pod {name}"
            );
            cluster.pod_log(&ns, &name).trim().to_string()
        })
        .collect();
    assert_eq!(
        printed,
        BTreeSet::from(["0".to_string(), "1".to_string()]),
        "each pod printed its JOB_COMPLETION_INDEX"
    );

    let listed = cluster.kubectl_ok(["get", "jobs", "-n", &ns]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("indexed ") && l.contains("2/2")),
        "kubectl get jobs:\n{listed}"
    );

    let name = ns.name().to_string();
    ns.cleanup();
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    eventually(
        "the namespace is terminating or gone after cleanup()",
        Duration::from_secs(10),
        || async {
            match namespaces.get_opt(&name).await.unwrap() {
                None => Some(()),
                Some(n) => n.metadata.deletion_timestamp.map(|_| ()),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn the_agent_is_shared_and_alive() {
    let cluster = Cluster::shared();
    assert!(std::ptr::eq(cluster, Cluster::shared()));
    let pid = std::fs::read_to_string(cluster.state_dir().join("node-agent.pid")).unwrap();
    assert_eq!(pid.trim(), cluster.agent_pid().to_string());
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", cluster.agent_pid())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("busybox=/bin/sh"), "{cmdline}");
    let nodes = cluster.kubectl_ok(["get", "nodes", "-o", "name"]);
    assert_eq!(nodes.trim(), format!("node/{NODE_NAME}"));
}
