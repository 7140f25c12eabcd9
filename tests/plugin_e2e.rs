//! `kubectl tmdbsync` end to end: the real kubectl finds the plugin on PATH and drives a TmdbSync
//! on the test control plane (controller process, node agent, a real Postgres, the simulator).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kube::Api;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::Value;
use support::cluster::*;
use support::operator::*;
use support::{TestDb, sim_get, sim_post, start_sim};
use tmdbsync::api::sync_run::Trigger;
use tmdbsync::api::{SyncPhase, SyncRun, TmdbSync};
use tmdbsync::plan::reset::RESET_REQUESTED_AT;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-tmdbsync");

/// `kubectl tmdbsync ARGS` with the plugin's directory first in PATH; (exit code, stdout, stderr).
fn kubectl_tmdbsync(cluster: &Cluster, args: &[&str]) -> (i32, String, String) {
    let dir = Path::new(PLUGIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(cluster.kubectl_path())
        .arg("tmdbsync")
        .args(args)
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("PATH", path)
        .env_remove("NO_COLOR")
        .output()
        .expect("run kubectl");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn ok(cluster: &Cluster, args: &[&str]) -> String {
    let (code, out, err) = kubectl_tmdbsync(cluster, args);
    assert_eq!(code, 0, "kubectl tmdbsync {args:?}: {err}\n{out}");
    println!("$ kubectl tmdbsync {}\n{out}", args.join(" "));
    out
}

/// The run name in run-now's first line `syncrun/NAME created (...)`.
fn created_run(out: &str) -> String {
    out.lines()
        .next()
        .and_then(|l| l.strip_prefix("syncrun/"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run name in {out}"))
        .to_string()
}

async fn scheduled_runs(runs: &Api<SyncRun>) -> Vec<String> {
    runs.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|r| r.spec.trigger == Trigger::Scheduled)
        .map(|r| r.metadata.name.unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_works_through_kubectl_and_pause_stops_scheduling_until_resume() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-plugin");
    let db = TestDb::start();
    let sim = start_sim(100, 11).await;
    apply_secrets(cluster, &ns, "plugin-e2e-key-91c2", &db.url);
    let _controller = ControllerProcess::start(cluster, &ns, &[]);
    apply(cluster, &ns, &tmdb_sync(&sim));
    let client = cluster.client();
    let runs: Api<SyncRun> = Api::namespaced(client.clone(), &ns);
    let syncs: Api<TmdbSync> = Api::namespaced(client.clone(), &ns);
    let n = ns.name();

    // run-now: a Manual run the controller adopts, printed with how to follow it.
    let out = ok(cluster, &["run-now", SYNC, "--type", "catalog", "-n", n]);
    assert!(
        out.contains(&format!("kubectl tmdbsync describe {}", created_run(&out))),
        "{out}"
    );
    run_succeeded(&runs, &created_run(&out), Duration::from_secs(90)).await;
    let out = ok(
        cluster,
        &["run-now", SYNC, "--type", "bulk", "--pages", "1-5", "-n", n],
    );
    let bulk = created_run(&out);
    assert!(out.contains("pages 1-5"), "{out}");
    let done = run_succeeded(&runs, &bulk, Duration::from_secs(120)).await;
    assert_eq!(done.status.as_ref().unwrap().movies_imported, 100);
    // Bad combinations are refused before anything is written (exit 2).
    let (code, _, err) = kubectl_tmdbsync(
        cluster,
        &[
            "run-now", SYNC, "--type", "delta", "--pages", "1-2", "-n", n,
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--pages applies to --type bulk only"), "{err}");
    let (code, _, err) = kubectl_tmdbsync(cluster, &["status", "nope", "-n", n]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("TmdbSync \"nope\" not found"), "{err}");

    // runs: one row per run, newest first.
    let out = ok(cluster, &["runs", SYNC, "-n", n, "--since", "1d"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("IMPORTED"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with(&bulk) && lines[1].contains("Succeeded"),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "no colour off a terminal");
    let rows: Value = serde_json::from_str(&ok(cluster, &["runs", "-n", n, "-o", "json"])).unwrap();
    assert_eq!(rows[0]["imported"], 100);
    assert_eq!(rows[0]["trigger"], "Manual");

    // status: the Sync Health sections from the cluster; -o json is the model's document.
    wait_for(&syncs, SYNC, Duration::from_secs(60), |s| {
        s.status
            .as_ref()
            .and_then(|st| st.progress.as_ref())
            .is_some_and(|p| p.imported == 100)
    })
    .await;
    let out = ok(cluster, &["status", SYNC, "-n", n]);
    for part in [
        "Phase: ",
        "SYNC HEALTH",
        "Last 7 days",
        "Alerts",
        "Conditions",
        "Next runs",
    ] {
        assert!(out.contains(part), "{part}: {out}");
    }
    let h: Value =
        serde_json::from_str(&ok(cluster, &["status", SYNC, "-n", n, "-o", "json"])).unwrap();
    assert_eq!(h["imported"], 100);
    assert_eq!(h["percent_complete"], 100.0);
    assert_eq!(h["sync"]["name"], SYNC);
    assert_eq!(h["clock"], "cluster");
    assert_eq!(h["history"].as_array().unwrap().len(), 30);
    assert_eq!(h["last_7_days"][6]["imported"], 100);
    let yaml = ok(cluster, &["status", SYNC, "-n", n, "-o", "yaml"]);
    assert!(yaml.contains("imported: 100"), "{yaml}");

    // describe: run, Job, pods, events.
    let out = ok(cluster, &["describe", &bulk, "-n", n]);
    for part in [
        "Phase: Succeeded",
        &format!("Job {bulk}:"),
        "Pods",
        "Events",
        "RunStarted",
    ] {
        assert!(out.contains(part), "{part}: {out}");
    }

    // report: the web download's CSV.
    let csv_text = ok(cluster, &["report", SYNC, "-n", n, "--days", "7"]);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, tmdbsync::web::download::CSV_COLUMNS);
    let kinds: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[0].to_string())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "day").count(), 7);
    assert_eq!(kinds.iter().filter(|k| *k == "run").count(), 2);

    // reset --bulk: the plan first, nothing done without --confirm=NAME; then the controller
    // clears the checkpoints, re-imports every page once and acknowledges the request.
    let out = ok(cluster, &["reset", SYNC, "--bulk", "-n", n]);
    assert!(
        out.contains("pages 1-5") && out.contains("Nothing done"),
        "{out}"
    );
    let sync = syncs.get(SYNC).await.unwrap();
    assert!(!sync.annotations().contains_key(RESET_REQUESTED_AT));
    sim_post(&sim, "/__sim/stats/reset", serde_json::json!({})).await;
    let out = ok(
        cluster,
        &["reset", SYNC, "--bulk", "-n", n, "--confirm=cinegraph"],
    );
    assert!(out.contains("Requested"), "{out}");
    let token = syncs.get(SYNC).await.unwrap().annotations()[RESET_REQUESTED_AT].clone();
    wait_for(&syncs, SYNC, Duration::from_secs(60), |s| {
        s.status
            .as_ref()
            .and_then(|st| st.last_handled_reset_at.as_deref())
            == Some(&token)
    })
    .await;
    let reset_run = eventually("the reset's bulk run", Duration::from_secs(30), || {
        let runs = runs.clone();
        async move {
            runs.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|r| r.metadata.name.unwrap())
                .find(|r| r.starts_with("cinegraph-bulk-r2"))
        }
    })
    .await;
    let done = run_succeeded(&runs, &reset_run, Duration::from_secs(120)).await;
    let st = done.status.unwrap();
    assert_eq!(
        (st.pages_processed, st.movies_updated, st.movies_imported),
        (5, 100, 0)
    );
    let stats = sim_get(&sim, "/__sim/stats").await;
    assert_eq!(
        stats["requests"]["details"], 100,
        "every movie fetched exactly once: {stats}"
    );
    let events = cluster.kubectl_ok([
        "-n",
        n,
        "get",
        "events",
        "--field-selector",
        "reason=ResetBulk",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "a ResetBulk event");
    let out = ok(cluster, &["describe", &reset_run, "-n", n]);
    assert!(out.contains("Phase: Succeeded"), "{out}");

    // pause: the status shows Suspended and an every-minute schedule creates nothing.
    let out = ok(cluster, &["pause", SYNC, "-n", n]);
    assert!(out.contains("paused"), "{out}");
    cluster.kubectl_ok([
        "-n",
        n,
        "patch",
        "tmdbsync",
        SYNC,
        "--type=merge",
        "-p",
        r#"{"spec":{"bulk":{"schedule":"* * * * *"},"delta":{"schedule":"* * * * *"}}}"#,
    ]);
    wait_for(&syncs, SYNC, Duration::from_secs(30), |s| {
        s.status.as_ref().and_then(|st| st.phase) == Some(SyncPhase::Suspended)
    })
    .await;
    let h: Value =
        serde_json::from_str(&ok(cluster, &["status", SYNC, "-n", n, "-o", "json"])).unwrap();
    assert_eq!(h["sync"]["phase"], "Suspended");
    assert_eq!(h["alerts"][0]["id"], "paused", "{}", h["alerts"]);
    assert!(ok(cluster, &["status", SYNC, "-n", n]).contains("Phase: Suspended"));
    // Past the next minute boundary, with margin: still no scheduled run.
    tokio::time::sleep(Duration::from_secs(75)).await;
    assert_eq!(scheduled_runs(&runs).await, Vec::<String>::new());
    let out = ok(cluster, &["pause", SYNC, "-n", n]);
    assert!(out.contains("already paused"), "{out}");

    // resume: scheduling starts again.
    ok(cluster, &["resume", SYNC, "-n", n]);
    let scheduled = eventually(
        "a scheduled run after resume",
        Duration::from_secs(90),
        || {
            let runs = runs.clone();
            async move {
                let s = scheduled_runs(&runs).await;
                (!s.is_empty()).then_some(s)
            }
        },
    )
    .await;
    println!("scheduled after resume: {scheduled:?}");
    let sync = syncs.get(SYNC).await.unwrap();
    assert!(!sync.spec.suspend);
}
