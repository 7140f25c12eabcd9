//! The opt-in real-node tier: the operator on the test control plane with a real kubelet,
//! containerd, runc and CNI (`scripts/testenv-node.sh`) instead of the node agent. The controller's
//! Jobs run the product image (`scripts/build-image.sh`, imported from podman's store, no registry)
//! with the Jobs' own pod security settings, on the pod network, against a Postgres and the
//! simulator on the bridge's host address.
//!
//! Runs only with `TMDBSYNC_KUBELET_TESTS=1` (root, podman, containerd; the first run builds the
//! kubelet and kube-scheduler). Alone: `cargo test --test kubelet_node -- --test-threads=1`; then
//! `scripts/testenv.sh down` (which also stops the node).

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use support::cluster::{Cluster, KUBELET_NODE_NAME};
use support::operator::{
    ControllerProcess, apply, apply_secrets, install_crds, run_succeeded, sync_run, tmdb_sync,
};
use support::{TestDb, scalar, sim_config};
use tmdbsync::api::SyncRun;

/// The host side of the pods' bridge (scripts/testenv-node.sh).
const BRIDGE_HOST: &str = "10.244.0.1";

fn opted_in() -> bool {
    if std::env::var_os("TMDBSYNC_KUBELET_TESTS").is_some_and(|v| v == "1") {
        return true;
    }
    eprintln!("SKIPPED: the real-node tier runs with TMDBSYNC_KUBELET_TESTS=1 (docs/testenv.md)");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_the_image_on_a_real_kubelet_and_import_the_catalogue() {
    if !opted_in() {
        return;
    }
    let version = env!("CARGO_PKG_VERSION");
    let image = format!("ghcr.io/tmdbsync/tmdbsync:{version}");
    let cluster = Cluster::real_node();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-kubelet");
    let db = TestDb::start_tcp_on(BRIDGE_HOST);
    let sim = tmdbsync::sim::spawn(
        sim_config(400, 23),
        format!("{BRIDGE_HOST}:0").parse().unwrap(),
    )
    .await
    .expect("simulator on the bridge");
    let db_url = format!(
        "postgres://postgres@{BRIDGE_HOST}:{}/postgres",
        db.tcp_port().unwrap()
    );
    apply_secrets(cluster, &ns, "test-key", &db_url);
    let _controller = ControllerProcess::start(cluster, &ns, &[]);
    apply(
        cluster,
        &ns,
        &tmdb_sync(&sim).set("spec.jobTemplate.image", image.clone().into()),
    );

    let runs: Api<SyncRun> = Api::namespaced(cluster.client(), &ns);
    apply(cluster, &ns, &sync_run("catalog", "Catalog"));
    run_succeeded(&runs, "catalog", Duration::from_secs(180)).await;
    apply(cluster, &ns, &sync_run("bulk", "Bulk"));
    run_succeeded(&runs, "bulk", Duration::from_secs(300)).await;

    let store = db.store().await;
    assert_eq!(scalar(&store, "SELECT count(*) FROM movies").await, 400);
    let pods: Api<Pod> = Api::namespaced(cluster.client(), &ns);
    let pods = pods.list(&Default::default()).await.unwrap().items;
    assert!(!pods.is_empty(), "the Jobs made no pods");
    for pod in &pods {
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some(KUBELET_NODE_NAME));
        assert_eq!(spec.containers[0].image.as_deref(), Some(image.as_str()));
        let status = pod.status.as_ref().unwrap();
        let pod_ip = status.pod_ip.as_deref().unwrap_or_default();
        assert!(pod_ip.starts_with("10.244.0."), "pod network: {pod_ip}");
        let terminated = status.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("the worker container terminated");
        assert_eq!(terminated.exit_code, 0, "{terminated:?}");
    }
}
