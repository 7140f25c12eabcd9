//! The Helm chart (`charts/tmdbsync`): its CRDs and version agree with the crate, `helm lint
//! --strict` passes, the default and all-options values render what they should, and — on the real
//! control plane — the Helm-installed operator runs a whole sync with nothing but the chart's RBAC,
//! while the same install without one verb cannot.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde::Deserialize;
use serde_json::{Value, json};
use support::cluster::*;
use support::operator::*;
use support::{TestDb, free_port, start_sim};
use tmdbsync::api::{RunPhase, SyncRun, TmdbSync};
use tmdbsync::sim::SimHandle;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/tmdbsync");
const API_KEY: &str = "chart-e2e-key-5d1c";

// ---- rendering -------------------------------------------------------------------------------

fn helm(args: &[&str]) -> Output {
    Command::new(helm_bin())
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run helm")
}

/// Every YAML document of a multi-document stream (empty documents dropped).
fn yaml_docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("helm rendered valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// `helm template rel charts/tmdbsync -n media <extra>`, parsed.
fn render(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "rel", CHART, "--namespace", "media"];
    args.extend_from_slice(extra);
    yaml_docs(&stdout_ok(helm(&args), "helm template"))
}

fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .map(|d| {
            d["kind"]
                .as_str()
                .expect("every object has a kind")
                .to_string()
        })
        .collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn rules_of(role: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert!(
            rule.get("resourceNames").is_none(),
            "reconciler rules name no objects"
        );
        for g in strs(&rule["apiGroups"]) {
            for r in strs(&rule["resources"]) {
                let verbs = strs(&rule["verbs"]).into_iter().map(String::from).collect();
                out.push((g.to_string(), r.to_string(), verbs));
            }
        }
    }
    out
}

fn assert_no_wildcards(docs: &[Value]) {
    for d in docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
    {
        for rule in d["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(
                    !strs(&rule[field]).contains(&"*"),
                    "wildcard in {field} of {}",
                    d["metadata"]["name"]
                );
            }
        }
    }
}

#[test]
fn chart_crds_are_identical_to_the_generated_crds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let top = std::fs::read_to_string(root.join("crds/tmdbsync.io.yaml")).unwrap();
    let chart = std::fs::read_to_string(root.join("charts/tmdbsync/crds/tmdbsync.io.yaml"))
        .expect("the chart ships the CRDs in crds/");
    assert!(
        top == chart,
        "charts/tmdbsync/crds/tmdbsync.io.yaml differs from crds/tmdbsync.io.yaml: \
         run `bash scripts/gen-crds.sh`"
    );
    let crds = render(&["--include-crds"]);
    let names: BTreeSet<&str> = crds
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["syncruns.tmdbsync.io", "tmdbsyncs.tmdbsync.io"])
    );
}

#[test]
fn chart_app_version_is_the_cargo_version_and_the_default_image_tag() {
    let chart: Value = serde_norway::from_str(
        &std::fs::read_to_string(Path::new(CHART).join("Chart.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    let docs = render(&[]);
    let container = &one(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        format!("ghcr.io/tmdbsync/tmdbsync:{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn helm_lint_strict_passes_with_default_and_all_options_values() {
    stdout_ok(helm(&["lint", "--strict", CHART]), "helm lint --strict");
    let ci = format!("{CHART}/ci/all-options-values.yaml");
    stdout_ok(
        helm(&["lint", "--strict", CHART, "-f", &ci]),
        "helm lint --strict -f ci/all-options-values.yaml",
    );
}

#[test]
fn default_values_render_a_leader_elected_restricted_deployment_with_cluster_rbac() {
    let docs = render(&[]);
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
        .into_iter()
        .map(String::from)
        .collect::<BTreeSet<_>>()
    );
    let deploy = one(&docs, "Deployment");
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "rel-tmdbsync");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    let args = strs(&c["args"]);
    for want in [
        "controller",
        "--leader-election",
        "--lease-name=rel-tmdbsync",
        "--metrics-addr=0.0.0.0:8080",
        &format!(
            "--worker-image=ghcr.io/tmdbsync/tmdbsync:{}",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(args.contains(&want), "{want} in {args:?}");
    }
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "all namespaces by default"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(
        c["ports"][0],
        json!({"name": "metrics", "containerPort": 8080, "protocol": "TCP"})
    );
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    let env = c["env"].as_array().unwrap();
    let field = |name: &str| {
        env.iter().find(|e| e["name"] == name).unwrap()["valueFrom"]["fieldRef"]["fieldPath"]
            .clone()
    };
    assert_eq!(field("POD_NAME"), "metadata.name");
    assert_eq!(field("POD_NAMESPACE"), "metadata.namespace");
    assert!(env.contains(&json!({"name": "TMDBSYNC_LOG_FORMAT", "value": "json"})));

    let service = one(&docs, "Service");
    assert_eq!(
        service["spec"]["ports"][0],
        json!({"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"})
    );
    assert_eq!(
        service["spec"]["selector"],
        deploy["spec"]["selector"]["matchLabels"]
    );

    // Cluster-wide rules bound to the ServiceAccount; the Lease Role in the release namespace.
    let cluster_role = one(&docs, "ClusterRole");
    let binding = one(&docs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], cluster_role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "rel-tmdbsync", "namespace": "media"}])
    );
    let lease_role = one(&docs, "Role");
    assert_eq!(lease_role["metadata"]["namespace"], "media");
    assert_eq!(
        lease_role["rules"],
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["rel-tmdbsync"], "verbs": ["get", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}
        ])
    );
    assert_eq!(
        one(&docs, "RoleBinding")["roleRef"]["name"],
        lease_role["metadata"]["name"]
    );
    assert_no_wildcards(&docs);
}

#[test]
fn two_replicas_get_a_disruption_budget_and_spread_over_nodes_unless_told_otherwise() {
    let docs = render(&[]);
    let deploy = one(&docs, "Deployment");
    let selector = &deploy["spec"]["selector"]["matchLabels"];
    let pdb = one(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["metadata"]["namespace"], "media");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], selector);
    assert_eq!(
        pdb["spec"]["maxUnavailable"], 1,
        "a drain leaves one of two"
    );
    assert_eq!(pdb["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow");
    let spread = &deploy["spec"]["template"]["spec"]["topologySpreadConstraints"];
    assert_eq!(
        spread,
        &json!([{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
            "matchLabelKeys": ["pod-template-hash"]
        }]),
        "a soft preference for one replica per node"
    );
    // The selector picks the replicas: every selector label is on the pod template.
    let pod_labels = &deploy["spec"]["template"]["metadata"]["labels"];
    for (k, v) in selector.as_object().unwrap() {
        assert_eq!(&pod_labels[k], v, "{k}");
    }

    // One replica: nothing to keep or spread.
    let docs = render(&["--set", "replicaCount=1"]);
    assert!(!kinds(&docs).contains("PodDisruptionBudget"));
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    assert!(pod.get("topologySpreadConstraints").is_none());

    // Turned off.
    let docs = render(&[
        "--set",
        "podDisruptionBudget.enabled=false,spreadAcrossNodes=false",
    ]);
    assert!(!kinds(&docs).contains("PodDisruptionBudget"));
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    assert!(pod.get("topologySpreadConstraints").is_none());

    // Own constraints replace the default; the budget takes a percentage.
    let ci = format!("{CHART}/ci/all-options-values.yaml");
    let docs = render(&["-f", &ci]);
    let pdb = one(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], "50%");
    assert_eq!(pdb["spec"]["unhealthyPodEvictionPolicy"], "IfHealthyBudget");
    let spread = one(&docs, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(spread.len(), 1);
    assert_eq!(spread[0]["topologyKey"], "topology.kubernetes.io/zone");
    let docs = render(&[
        "--set",
        "spreadAcrossNodes=true,topologySpreadConstraints[0].maxSkew=2,\
         topologySpreadConstraints[0].topologyKey=zone,\
         topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
    ]);
    let spread = &one(&docs, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"];
    assert_eq!(spread.as_array().unwrap().len(), 1, "{spread}");
    assert_eq!(spread[0]["topologyKey"], "zone");
}

#[test]
fn rbac_rules_are_exactly_the_verbs_the_controller_uses() {
    let docs = render(&[]);
    let got = rules_of(one(&docs, "ClusterRole"));
    let want: Vec<(String, String, Vec<String>)> = CONTROLLER_RULES
        .iter()
        .map(|(g, r, v)| {
            (
                g.to_string(),
                r.to_string(),
                v.iter().map(|v| v.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // Namespaced mode renders the very same rules.
    let docs = render(&["--set", "watchNamespaces={films}"]);
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "films")
        .expect("a Role in the watched namespace");
    assert_eq!(rules_of(role), want);
}

#[test]
fn all_options_values_render_namespaced_rbac_monitoring_and_the_dashboard() {
    let ci = format!("{CHART}/ci/all-options-values.yaml");
    let docs = render(&["-f", &ci]);
    let k = kinds(&docs);
    for want in [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ] {
        assert!(k.contains(want), "{want} in {k:?}");
    }
    assert!(!k.contains("ClusterRole") && !k.contains("ClusterRoleBinding"));

    let roles: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Role").collect();
    let ns_of = |v: &Value| v["metadata"]["namespace"].as_str().unwrap().to_string();
    assert_eq!(
        roles.iter().map(|r| ns_of(r)).collect::<BTreeSet<_>>(),
        BTreeSet::from(["media".to_string()]),
        "the reconciler Role in the watched namespace, the Lease Role in the release's"
    );
    let deploy = one(&docs, "Deployment");
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    let args = strs(&c["args"]);
    for want in [
        "--namespace=media",
        "--metrics-addr=0.0.0.0:9090",
        "--lease-name=cinegraph-operator-leader",
        "--worker-image=registry.example.com/media/tmdbsync:0.1.0-rc.1",
    ] {
        assert!(args.contains(&want), "{want} in {args:?}");
    }
    assert_eq!(deploy["spec"]["strategy"], json!({"type": "Recreate"}));

    let monitor = one(&docs, "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");

    let rule = one(&docs, "PrometheusRule");
    let groups = rule["spec"]["groups"].as_array().expect("rule groups");
    assert!(!groups.is_empty());
    for g in groups {
        assert!(g["name"].is_string());
        for r in g["rules"].as_array().unwrap() {
            assert!(r["alert"].is_string() || r["record"].is_string());
            assert!(r["expr"].is_string());
        }
    }
    let rendered = serde_json::to_string(&rule["spec"]).unwrap();
    assert!(
        !rendered.contains(".Values"),
        "thresholds are filled in: {rendered}"
    );
    assert!(
        rendered.contains("{{ $labels."),
        "Prometheus templates survive tpl"
    );

    let dashboard = one(&docs, "ConfigMap");
    assert_eq!(dashboard["metadata"]["namespace"], "monitoring");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json_text = dashboard["data"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    let board: Value = serde_json::from_str(json_text.as_str().unwrap()).unwrap();
    assert!(!board["panels"].as_array().unwrap().is_empty());
    assert_no_wildcards(&docs);
}

#[test]
fn the_values_schema_and_guards_refuse_bad_values() {
    for (set, why) in [
        ("replicas=2", "additional properties"),
        ("image.tagg=x", "additional properties"),
        ("logFormat=xml", "logFormat"),
        ("watchNamespaces={a,b}", "watchNamespaces"),
        ("alerts.errorRatePercent=120", "errorRatePercent"),
        ("metrics.port=0", "port"),
        ("podDisruptionBudget.maxUnavailable=0", "maxUnavailable"),
        ("podDisruptionBudget.maxUnavailable=half", "maxUnavailable"),
        (
            "podDisruptionBudget.unhealthyPodEvictionPolicy=Never",
            "unhealthyPodEvictionPolicy",
        ),
        ("spreadAcrossNodes=maybe", "spreadAcrossNodes"),
        (
            "replicaCount=2,leaderElection.enabled=false",
            "leaderElection",
        ),
    ] {
        let out = helm(&["template", "rel", CHART, "--set", set]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {set} rendered");
        assert!(err.contains(why), "--set {set}: {err}");
    }
    // One replica needs no election.
    let docs = render(&["--set", "replicaCount=1,leaderElection.enabled=false"]);
    assert!(
        !kinds(&docs).contains("Role"),
        "no Lease Role without election"
    );
}

// ---- on the control plane --------------------------------------------------------------------

/// A Helm release, uninstalled on drop (cluster-scoped objects outlive the test namespace).
struct Release {
    cluster: &'static Cluster,
    name: String,
    namespace: String,
}

impl Release {
    fn install(cluster: &'static Cluster, ns: &str, name: &str, sets: &[String]) -> Release {
        let mut args: Vec<String> = ["install", name, CHART, "--namespace", ns]
            .map(String::from)
            .to_vec();
        for s in sets {
            args.push("--set".into());
            args.push(s.clone());
        }
        let out = cluster.helm(&args);
        let release = Release {
            cluster,
            name: name.into(),
            namespace: ns.into(),
        };
        stdout_ok(out, "helm install");
        release
    }

    /// The chart's full name for this release (no overrides).
    fn fullname(&self) -> String {
        format!("{}-tmdbsync", self.name)
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if std::env::var_os("TMDBSYNC_KEEP_NAMESPACES").is_some_and(|v| v == "1") {
            return;
        }
        let out = self
            .cluster
            .helm(["uninstall", &self.name, "--namespace", &self.namespace]);
        if !out.status.success() {
            eprintln!(
                "helm uninstall {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// `--set` values for an operator the node agent can run: image `tmdbsync` (mapped to the test
/// binary), one replica, a free metrics port (all pods share the host network), one namespace.
fn agent_values(ns: &str) -> Vec<String> {
    let port = free_port();
    vec![
        "image.repository=tmdbsync".into(),
        "image.tag=chart-e2e".into(),
        "replicaCount=1".into(),
        format!("metrics.port={port}"),
        format!("watchNamespaces={{{ns}}}"),
        "mirrorIntervalSeconds=1".into(),
        "logLevel=info\\,tmdbsync=debug".into(),
    ]
}

/// The operator pod once the agent runs it.
async fn running_operator(pods: &Api<Pod>, release: &Release) -> Pod {
    let selector = format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/component=controller",
        release.name
    );
    eventually("the operator pod runs", Duration::from_secs(60), || async {
        pods.list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await
}

/// Secrets, then a TmdbSync whose schedules are not due during the test (runs are started by
/// hand) and that keeps one run of each outcome.
fn apply_sync(cluster: &Cluster, ns: &str, sim: &SimHandle, db: &TestDb) {
    apply_secrets(cluster, ns, API_KEY, &db.url);
    let history = json!({"successfulRunsLimit": 1, "failedRunsLimit": 1});
    apply(cluster, ns, &tmdb_sync(sim).set("spec.history", history));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_install_grants_exactly_the_rules_in_any_namespace_and_the_examples_fit() {
    let cluster = Cluster::shared();
    let ns = cluster.namespace("chart-cluster");
    let other = cluster.namespace("chart-cluster-other");
    // No replica: an operator watching every namespace would act on other tests' objects.
    let release = Release::install(
        cluster,
        &ns,
        "wide",
        &["replicaCount=0".into(), "image.repository=tmdbsync".into()],
    );
    let sa = format!("system:serviceaccount:{ns}:{}", release.fullname());
    // `kubectl auth can-i <args> -n <namespace>` as the chart's ServiceAccount.
    let can = |args: &[&str], namespace: &str| {
        let mut full = vec!["auth", "can-i"];
        full.extend_from_slice(args);
        full.extend(["--namespace", namespace, "--as", &sa]);
        let out = cluster.kubectl(&full);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    for (group, resource, verbs) in CONTROLLER_RULES {
        let (resource, sub) = match resource.split_once('/') {
            Some((r, s)) => (r, Some(format!("--subresource={s}"))),
            None => (resource, None),
        };
        let qualified = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        for verb in [
            "get", "list", "watch", "create", "update", "patch", "delete",
        ] {
            let mut args = vec![verb, qualified.as_str()];
            args.extend(sub.as_deref());
            assert_eq!(
                can(&args, &other),
                verbs.contains(&verb),
                "can-i {args:?} in another namespace"
            );
        }
    }
    assert!(
        !can(&["list", "secrets"], &other),
        "secrets are read by name"
    );
    assert!(!can(&["get", "configmaps"], &other));
    assert!(!can(&["create", "pods"], &other));
    // The Lease only in the release namespace, get/update only by name.
    let lease = format!("leases.coordination.k8s.io/{}", release.fullname());
    assert!(can(&["create", "leases.coordination.k8s.io"], &ns));
    assert!(can(&["get", &lease], &ns));
    assert!(can(&["update", &lease], &ns));
    assert!(!can(
        &["update", "leases.coordination.k8s.io/someone-else"],
        &ns
    ));
    assert!(!can(&["delete", &lease], &ns));
    assert!(!can(&["create", "leases.coordination.k8s.io"], &other));

    // The examples the README and NOTES.txt point to fit the installed CRDs.
    install_crds(cluster);
    for example in ["secrets.yaml", "tmdbsync.yaml", "syncrun-manual.yaml"] {
        let path = format!("{}/examples/{example}", env!("CARGO_MANIFEST_DIR"));
        cluster.kubectl_ok([
            "apply",
            "--dry-run=server",
            "--namespace",
            other.name(),
            "-f",
            &path,
        ]);
    }
    drop(release);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installed_operator_syncs_the_catalog_with_only_the_charts_rbac() {
    let t0 = std::time::Instant::now();
    let cluster = Cluster::shared();
    let ns = cluster.namespace("chart-sync");
    let db = TestDb::start();
    let sim = start_sim(300, 11).await;
    let release = Release::install(cluster, &ns, "op", &agent_values(&ns));
    install_crds(cluster);
    let client = cluster.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let operator = running_operator(&pods, &release).await;
    let pod_name = operator.name_any();
    assert_eq!(
        operator
            .spec
            .as_ref()
            .unwrap()
            .service_account_name
            .as_deref(),
        Some(release.fullname().as_str())
    );
    // It leads through the chart's Lease (create/get/update in the release namespace).
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    wait_for(&leases, &release.fullname(), Duration::from_secs(30), |l| {
        l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(pod_name.as_str())
    })
    .await;

    apply_sync(cluster, &ns, &sim, &db);
    let runs: Api<SyncRun> = Api::namespaced(client.clone(), &ns);
    apply(cluster, &ns, &sync_run("load-catalog", "Catalog"));
    run_succeeded(&runs, "load-catalog", Duration::from_secs(90)).await;
    apply(cluster, &ns, &sync_run("import", "Bulk"));
    let bulk = run_succeeded(&runs, "import", Duration::from_secs(120)).await;
    assert_eq!(bulk.status.as_ref().unwrap().movies_imported, 300);
    assert!(
        bulk.owner_references().iter().any(|o| o.kind == "TmdbSync"),
        "the manual run is adopted (syncruns patch)"
    );
    let store = db.store().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM movies")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 300);

    // The Job ran the chart's image (the worker image is the operator's).
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let job = jobs.get("import").await.unwrap();
    let image = job.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("tmdbsync:chart-e2e"));

    // Scheduling creates runs (syncruns create): a delta every minute from now on.
    cluster.kubectl_ok([
        "-n",
        ns.name(),
        "patch",
        "tmdbsync",
        "cinegraph",
        "--type=merge",
        "-p",
        r#"{"spec":{"delta":{"schedule":"* * * * *"}}}"#,
    ]);

    // A second Catalog run makes the first one excess history: pruned (delete).
    apply(cluster, &ns, &sync_run("reload-catalog", "Catalog"));
    run_succeeded(&runs, "reload-catalog", Duration::from_secs(90)).await;
    eventually(
        "the older Catalog run is pruned",
        Duration::from_secs(60),
        || async {
            runs.get_opt("load-catalog")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    eventually(
        "the controller schedules a Delta run at the next minute and it succeeds",
        Duration::from_secs(150),
        || async {
            runs.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|r| {
                    r.name_any().starts_with("cinegraph-delta-")
                        && r.status.as_ref().and_then(|s| s.phase) == Some(RunPhase::Succeeded)
                })
                .then_some(())
        },
    )
    .await;
    // The TmdbSync's status is written (tmdbsyncs/status).
    let syncs: Api<TmdbSync> = Api::namespaced(client.clone(), &ns);
    wait_for(&syncs, "cinegraph", Duration::from_secs(60), |s| {
        s.status
            .as_ref()
            .and_then(|st| st.progress.as_ref())
            .is_some_and(|p| p.imported == 300)
    })
    .await;
    // Events come from this replica (events.k8s.io create).
    let events = cluster.kubectl_ok(["-n", ns.name(), "get", "events.events.k8s.io", "-o", "json"]);
    let events: Value = serde_json::from_str(&events).unwrap();
    assert!(
        events["items"].as_array().unwrap().iter().any(|e| {
            e["reason"] == "RunSucceeded"
                && e["reportingController"] == "tmdbsync-controller"
                && e["reportingInstance"] == pod_name.as_str()
        }),
        "a RunSucceeded event from {pod_name}: {events}"
    );

    let log = cluster.pod_log(&ns, &pod_name);
    assert!(log.contains("became the leader"), "{log}");
    assert!(log.contains("renewed the lease"), "leases update: {log}");
    assert!(
        !log.contains("forbidden") && !log.contains("Forbidden"),
        "the chart's RBAC refused something:\n{log}"
    );
    assert!(!log.contains(API_KEY), "the API key leaked into the log");
    eprintln!(
        "helm-installed sync done in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    drop(release);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_create_on_jobs_a_run_gets_no_job_until_the_verb_is_back() {
    let cluster = Cluster::shared();
    let ns = cluster.namespace("chart-no-jobs");
    let db = TestDb::start();
    let sim = start_sim(100, 11).await;
    let release = Release::install(cluster, &ns, "op", &agent_values(&ns));
    install_crds(cluster);
    let client = cluster.client();

    // Take `create` away from the jobs rule of the chart's Role.
    let roles: Api<Role> = Api::namespaced(client.clone(), &ns);
    let chart_role = roles.get(&release.fullname()).await.unwrap();
    let mut crippled = chart_role.clone();
    for rule in crippled.rules.iter_mut().flatten() {
        if rule
            .resources
            .as_ref()
            .is_some_and(|r| r.contains(&"jobs".to_string()))
        {
            rule.verbs.retain(|v| v != "create");
        }
    }
    assert_ne!(crippled.rules, chart_role.rules, "the Role has a jobs rule");
    roles
        .replace(&release.fullname(), &PostParams::default(), &crippled)
        .await
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let operator = running_operator(&pods, &release).await;
    apply_sync(cluster, &ns, &sim, &db);
    apply(cluster, &ns, &sync_run("blocked", "Catalog"));

    let pod_name = operator.name_any();
    let denial = format!(
        "cannot create resource \\\"jobs\\\" in API group \\\"batch\\\" in the namespace \\\"{ns}\\\""
    );
    eventually(
        "the controller logs the 403 on creating the Job",
        Duration::from_secs(60),
        || async {
            let log = cluster.pod_log(&ns, &pod_name);
            (log.matches(&denial).count() >= 2).then_some(())
        },
    )
    .await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    assert!(jobs.get_opt("blocked").await.unwrap().is_none(), "no Job");
    let runs: Api<SyncRun> = Api::namespaced(client.clone(), &ns);
    let run = runs.get("blocked").await.unwrap();
    assert_ne!(
        run.status.as_ref().and_then(|s| s.phase),
        Some(RunPhase::Running),
        "the run does not proceed"
    );

    // The chart's rule back: the next retry creates the Job and the run finishes.
    let mut restored = roles.get(&release.fullname()).await.unwrap();
    restored.rules = chart_role.rules.clone();
    roles
        .replace(&release.fullname(), &PostParams::default(), &restored)
        .await
        .unwrap();
    run_succeeded(&runs, "blocked", Duration::from_secs(120)).await;
    drop(release);
}

#[test]
fn job_resources_reach_the_controller_as_json_and_can_be_changed_or_dropped() {
    let job_resources = |docs: &[Value]| -> Option<serde_json::Value> {
        let deploy = one(docs, "Deployment");
        strs(&deploy["spec"]["template"]["spec"]["containers"][0]["args"])
            .iter()
            .find_map(|a| a.strip_prefix("--job-resources="))
            .map(|j| serde_json::from_str(j).expect("--job-resources is JSON"))
    };
    let default = job_resources(&render(&[])).expect("a default for worker pods");
    assert_eq!(default["requests"]["memory"], "128Mi");
    assert_eq!(default["limits"]["memory"], "256Mi");
    let raised =
        job_resources(&render(&["--set", "jobResources.limits.memory=512Mi"])).expect("changed");
    assert_eq!(raised["limits"]["memory"], "512Mi");
    assert_eq!(raised["requests"]["memory"], "128Mi");
    assert_eq!(
        job_resources(&render(&["--set", "jobResources=null"])),
        None,
        "null leaves the controller's built-in default"
    );
}
