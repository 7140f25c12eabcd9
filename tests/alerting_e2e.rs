//! Alerting end to end: Debian's Prometheus scrapes the real controller's `/metrics` and evaluates
//! the chart's rendered alert rules; Debian's Alertmanager receives what fires and notifies a webhook
//! served by this test. A Catalog SyncRun with a refused API key makes TmdbSyncRunFailed fire (checked
//! through Prometheus's `/api/v1/alerts`, Alertmanager's `/api/v2/alerts` and the webhook); a valid
//! key and a successful run resolve it; stopping the controller fires TmdbSyncOperatorDown.
//!
//! Needs `prometheus` and `prometheus-alertmanager` (scripts/install-deps.sh), helm
//! (scripts/build-control-plane.sh) and the test control plane (tests/support/cluster.rs).
//! Scrapes and rule evaluations run every second, so the whole test takes well under a minute.

mod support;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Api;
use serde_json::Value;
use support::cluster::*;
use support::operator::*;
use support::{Daemon, TestDb, free_port, log_tail, start_sim};
use tmdbsync::api::{RunPhase, SyncRun};

/// An extra label set through `alerts.labels`, to see values reach the alerts.
const EXTRA_LABEL: (&str, &str) = ("suite", "alerting-e2e");
/// How long an alert may take to appear or clear: the controller's status refresh, one scrape, one
/// evaluation, one Alertmanager group interval.
const ALERT_DEADLINE: Duration = Duration::from_secs(90);
/// How long a Catalog run of the simulator's 100 movies may take.
const RUN_DEADLINE: Duration = Duration::from_secs(90);

/// The first of `names` on PATH, or a panic that says which package brings it.
fn binary(names: &[&str], package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "none of {names:?} on PATH: run scripts/install-deps.sh (Debian package {package})"
            )
        })
}

/// The chart's rules rendered by tests/alerts/render-rules.sh with `helm_args`, into `dir`.
fn render_rules(dir: &Path, helm_args: &[String]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("tests/alerts/render-rules.sh"))
        .args(helm_args)
        .output()
        .expect("run tests/alerts/render-rules.sh");
    assert!(
        out.status.success(),
        "rendering the alert rules failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("alert-rules.yaml");
    fs::write(&path, &out.stdout).expect("write the rendered rules");
    path
}

/// Every JSON body Alertmanager posted to the test's webhook.
#[derive(Clone, Default)]
struct Webhook(Arc<Mutex<Vec<Value>>>);

impl Webhook {
    /// Serves `POST /hook` on a free port; returns its address.
    async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the webhook");
        let addr = listener.local_addr().unwrap();
        let received = self.0.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let received = received.clone();
                async move {
                    received.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    /// The alerts of notifications with `status` ("firing" or "resolved").
    fn alerts(&self, status: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["status"] == status)
            .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["status"] == status)
            .collect()
    }
}

/// A private Prometheus and Alertmanager in a temp dir.
struct Monitoring {
    // Declared first: dropped (killed) before the temp dir goes.
    prometheus: Daemon,
    alertmanager: Daemon,
    prometheus_url: String,
    alertmanager_url: String,
    _dir: tempfile::TempDir,
}

impl Monitoring {
    /// Prometheus scraping `target` as job `tmdbsync` every second with `rules` (rendered into
    /// `dir`), sending to an Alertmanager that notifies `webhook`.
    fn start(
        dir: tempfile::TempDir,
        target: SocketAddr,
        rules: &Path,
        webhook: SocketAddr,
    ) -> Self {
        let (prom_port, am_port, am_cluster_port) = (free_port(), free_port(), free_port());
        let am_config = dir.path().join("alertmanager.yml");
        fs::write(
            &am_config,
            format!(
                "route:\n  receiver: webhook\n  group_by: [alertname, namespace, sync, type]\n  \
                 group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: webhook\n    webhook_configs:\n      \
                 - url: http://{webhook}/hook\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let alertmanager = Daemon::spawn(
            "alertmanager",
            Command::new(binary(
                &["prometheus-alertmanager", "alertmanager"],
                "prometheus-alertmanager",
            ))
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            // A single instance: gossip on a private port only (an empty value is refused by some
            // versions when no peers are given).
            .arg(format!(
                "--cluster.listen-address=127.0.0.1:{am_cluster_port}"
            )),
            dir.path().join("alertmanager.log"),
        );
        let prom_config = dir.path().join("prometheus.yml");
        fs::write(
            &prom_config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
                 scrape_configs:\n  - job_name: tmdbsync\n    honor_labels: true\n    \
                 static_configs:\n      - targets: ['{target}']\n",
                rules = rules.display()
            ),
        )
        .unwrap();
        let prometheus = Daemon::spawn(
            "prometheus",
            Command::new(binary(&["prometheus"], "prometheus"))
                .arg(format!("--config.file={}", prom_config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
            dir.path().join("prometheus.log"),
        );
        Monitoring {
            prometheus,
            alertmanager,
            prometheus_url: format!("http://127.0.0.1:{prom_port}"),
            alertmanager_url: format!("http://127.0.0.1:{am_port}"),
            _dir: dir,
        }
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.prometheus.tail(), self.alertmanager.tail())
    }

    async fn get(&self, http: &reqwest::Client, url: String) -> Result<Value, String> {
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{url}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{url}: {e}: {text}"))
    }

    /// Both servers answer `/-/ready`.
    async fn wait_ready(&self, http: &reqwest::Client) {
        for base in [&self.prometheus_url, &self.alertmanager_url] {
            let url = format!("{base}/-/ready");
            poll(&format!("{url} ready"), Duration::from_secs(30), || async {
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("{}", r.status())),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        }
    }

    /// The samples of an instant query.
    async fn query(&self, http: &reqwest::Client, promql: &str) -> Result<Vec<Value>, String> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.prometheus_url),
            [("query", promql)],
        )
        .expect("a query URL");
        let body = self.get(http, url.into()).await?;
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// `lastError` of every active scrape target (e.g. a 404 from a controller without /metrics).
    async fn scrape_errors(&self, http: &reqwest::Client) -> Result<Vec<String>, String> {
        let body = self
            .get(http, format!("{}/api/v1/targets", self.prometheus_url))
            .await?;
        Ok(body["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| format!("{}: {}", t["scrapeUrl"], t["lastError"]))
            .collect())
    }

    /// Prometheus's pending and firing alerts.
    async fn prometheus_alerts(&self, http: &reqwest::Client) -> Result<Vec<Value>, String> {
        let body = self
            .get(http, format!("{}/api/v1/alerts", self.prometheus_url))
            .await?;
        Ok(body["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Alertmanager's alerts (unresolved ones: active, silenced or inhibited).
    async fn alertmanager_alerts(&self, http: &reqwest::Client) -> Result<Vec<Value>, String> {
        let body = self
            .get(http, format!("{}/api/v2/alerts", self.alertmanager_url))
            .await?;
        Ok(body.as_array().cloned().unwrap_or_default())
    }
}

/// Whether an alert (Prometheus's, Alertmanager's or a webhook's) has all `labels`.
fn has_labels(alert: &Value, labels: &[(&str, &str)]) -> bool {
    labels.iter().all(|(k, v)| alert["labels"][*k] == *v)
}

/// The one alert among `alerts` with `labels`, or an error listing what there is.
fn find(alerts: &[Value], labels: &[(&str, &str)]) -> Result<Value, String> {
    alerts
        .iter()
        .find(|a| has_labels(a, labels))
        .cloned()
        .ok_or_else(|| format!("no alert with {labels:?} among {alerts:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_alerts_through_alertmanager_and_resolves_after_a_successful_run() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-alerts");
    let db = TestDb::start();
    let sim = start_sim(100, 5).await;
    let http = tmdbsync::http::http_client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let dir = tempfile::Builder::new()
        .prefix("tmdbsync-alerting-")
        .tempdir()
        .unwrap();
    let rules = render_rules(
        dir.path(),
        &[
            "--set".into(),
            "alerts.for.runFailed=0s".into(),
            "--set".into(),
            "alerts.for.operatorDown=2s".into(),
            "--set".into(),
            format!("alerts.labels.{}={}", EXTRA_LABEL.0, EXTRA_LABEL.1),
        ],
    );
    let mut controller = ControllerProcess::start(cluster, &ns, &[]);
    let webhook = Webhook::default();
    let webhook_addr = webhook.serve().await;
    let monitoring = Monitoring::start(dir, controller.metrics_addr(), &rules, webhook_addr);
    monitoring.wait_ready(&http).await;
    let controller_log = controller.log_path().to_path_buf();
    let context = |e: String| {
        let controller = log_tail("controller", &controller_log);
        format!("{e}\n{}\n{controller}", monitoring.logs())
    };

    // Prometheus scrapes the controller and has the chart's five alerts loaded.
    poll(
        "the controller's target up with tmdbsync_build_info",
        Duration::from_secs(30),
        || async {
            let up = monitoring
                .query(&http, r#"up{job="tmdbsync"} == 1"#)
                .await?;
            let info = monitoring.query(&http, "tmdbsync_build_info").await?;
            if !up.is_empty() && !info.is_empty() {
                return Ok(());
            }
            let errors = monitoring.scrape_errors(&http).await?;
            Err(format!(
                "up: {up:?}, build info: {info:?}, scrape errors: {errors:?}"
            ))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{}", context(e)));
    let loaded = monitoring
        .get(&http, format!("{}/api/v1/rules", monitoring.prometheus_url))
        .await
        .unwrap();
    let names: Vec<&str> = loaded["data"]["groups"][0]["rules"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        [
            "TmdbSyncStalled",
            "TmdbSyncHighErrorRate",
            "TmdbSyncLowImportRate",
            "TmdbSyncRunFailed",
            "TmdbSyncOperatorDown"
        ]
    );

    // A refused key: the Catalog run fails with AuthFailed.
    apply_secrets(cluster, &ns, "invalid", &db.url);
    apply(cluster, &ns, &tmdb_sync(&sim));
    apply(cluster, &ns, &sync_run("bad-key", "Catalog"));
    let runs: Api<SyncRun> = Api::namespaced(cluster.client(), &ns);
    let run = run_finished(&runs, "bad-key", RUN_DEADLINE).await;
    let status = run.status.unwrap();
    assert_eq!(status.phase, Some(RunPhase::Failed));
    assert_eq!(
        status.reason.as_deref(),
        Some("AuthFailed"),
        "{:?}",
        status.message
    );

    // TmdbSyncRunFailed fires in Prometheus...
    let labels = [
        ("alertname", "TmdbSyncRunFailed"),
        ("namespace", ns.name()),
        ("sync", SYNC),
        ("type", "catalog"),
        ("severity", "warning"),
        EXTRA_LABEL,
    ];
    let firing = poll(
        "TmdbSyncRunFailed firing in Prometheus",
        ALERT_DEADLINE,
        || async {
            let alert = find(&monitoring.prometheus_alerts(&http).await?, &labels)?;
            (alert["state"] == "firing")
                .then_some(alert.clone())
                .ok_or_else(|| format!("{alert:#}"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{}", context(e)));
    assert_eq!(
        firing["annotations"]["summary"],
        format!("The latest catalog run of {}/{SYNC} failed", ns.name())
    );
    assert!(
        firing["annotations"]["runbook_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("docs/runbook.md#tmdbsyncrunfailed")),
        "{firing:#}"
    );
    // ...reaches Alertmanager...
    let received = poll(
        "TmdbSyncRunFailed active in Alertmanager",
        ALERT_DEADLINE,
        || async {
            let alert = find(&monitoring.alertmanager_alerts(&http).await?, &labels)?;
            (alert["status"]["state"] == "active")
                .then_some(alert.clone())
                .ok_or_else(|| format!("{alert:#}"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{}", context(e)));
    assert_eq!(received["annotations"], firing["annotations"]);
    // ...and is sent to the receiver.
    poll(
        "a firing notification at the webhook",
        ALERT_DEADLINE,
        || async { find(&webhook.alerts("firing"), &labels).map(|_| ()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{}", context(e)));
    // Nothing else about this sync fires: no stall (a run never succeeded, but the sync is young),
    // no error rate (no movie was attempted).
    let others: Vec<Value> = monitoring
        .prometheus_alerts(&http)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| has_labels(a, &[("namespace", ns.name())]))
        .filter(|a| a["labels"]["alertname"] != "TmdbSyncRunFailed")
        .collect();
    assert!(others.is_empty(), "{others:#?}");

    // A valid key and a successful Catalog run clear it everywhere.
    apply_secrets(cluster, &ns, "e2e-valid-key", &db.url);
    apply(cluster, &ns, &sync_run("good-key", "Catalog"));
    run_succeeded(&runs, "good-key", RUN_DEADLINE).await;
    poll("TmdbSyncRunFailed resolved in Prometheus", ALERT_DEADLINE, || async {
        let failed = monitoring
            .query(
                &http,
                &format!(
                    r#"tmdbsync_last_run_failed{{namespace="{}",sync="{SYNC}",type="catalog"}} == 0"#,
                    ns.name()
                ),
            )
            .await?;
        let alerts = monitoring.prometheus_alerts(&http).await?;
        match find(&alerts, &labels) {
            Ok(still) => Err(format!("still there: {still:#}")),
            Err(_) if failed.is_empty() => Err("last_run_failed is not 0 yet".into()),
            Err(_) => Ok(()),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{}", context(e)));
    poll(
        "a resolved notification at the webhook",
        ALERT_DEADLINE,
        || async { find(&webhook.alerts("resolved"), &labels).map(|_| ()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{}", context(e)));
    poll(
        "TmdbSyncRunFailed gone from Alertmanager",
        ALERT_DEADLINE,
        || async {
            match find(&monitoring.alertmanager_alerts(&http).await?, &labels) {
                Ok(still) => Err(format!("still there: {still:#}")),
                Err(_) => Ok(()),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{}", context(e)));

    // The controller goes away: TmdbSyncOperatorDown fires and reaches Alertmanager.
    controller.stop();
    let down = [
        ("alertname", "TmdbSyncOperatorDown"),
        ("severity", "critical"),
        EXTRA_LABEL,
    ];
    poll(
        "TmdbSyncOperatorDown active in Alertmanager",
        ALERT_DEADLINE,
        || async {
            let firing = find(&monitoring.prometheus_alerts(&http).await?, &down)?;
            let active = find(&monitoring.alertmanager_alerts(&http).await?, &down)?;
            (firing["state"] == "firing" && active["status"]["state"] == "active")
                .then_some(())
                .ok_or_else(|| format!("{firing:#} / {active:#}"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{}", context(e)));
}
