//! `kubectl tmdbsync` end to end: the real kubectl finds the plugin on PATH and drives a TmdbSync
//! on the test control plane (controller process, node agent, a real Postgres, the simulator).

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};

use kube::Api;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::{Value, json};
use support::cluster::*;
use support::operator::*;
use support::{TestDb, ids, scalar, sim_get, sim_post, start_sim};
use tmdbsync::api::sync_run::Trigger;
use tmdbsync::api::{RunPhase, SyncPhase, SyncRun, TmdbSync};
use tmdbsync::plan::reset::RESET_REQUESTED_AT;
use tmdbsync::sim::SimHandle;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-tmdbsync");

/// PATH with the plugin's directory first.
fn plugin_path() -> String {
    let dir = Path::new(PLUGIN).parent().unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The command `kubectl tmdbsync ARGS` with the plugin's directory first in PATH.
fn plugin_command(cluster: &Cluster, args: &[&str]) -> Command {
    let path = plugin_path();
    let mut cmd = Command::new(cluster.kubectl_path());
    cmd.arg("tmdbsync")
        .args(args)
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("PATH", path)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    cmd
}

/// `kubectl tmdbsync ARGS`; (exit code, stdout, stderr).
fn kubectl_tmdbsync(cluster: &Cluster, args: &[&str]) -> (i32, String, String) {
    let out = plugin_command(cluster, args).output().expect("run kubectl");
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

/// A namespace with its controller, a private Postgres, a simulator of 100 movies and TmdbSync
/// [`SYNC`] (its manifest changed by `sync`).
struct Setup {
    ns: TestNamespace,
    db: TestDb,
    sim: SimHandle,
    runs: Api<SyncRun>,
    syncs: Api<TmdbSync>,
    _controller: ControllerProcess,
}

impl Setup {
    async fn start(
        cluster: &Cluster,
        prefix: &str,
        seed: u64,
        sync: impl FnOnce(Manifest) -> Manifest,
    ) -> Setup {
        install_crds(cluster);
        let ns = cluster.namespace(prefix);
        let db = TestDb::start();
        let sim = start_sim(100, seed).await;
        apply_secrets(cluster, &ns, &format!("plugin-e2e-key-{seed}"), &db.url);
        let controller = ControllerProcess::start(cluster, &ns, &[]);
        apply(cluster, &ns, &sync(tmdb_sync(&sim)));
        let client = cluster.client();
        Setup {
            runs: Api::namespaced(client.clone(), &ns),
            syncs: Api::namespaced(client, &ns),
            ns,
            db,
            sim,
            _controller: controller,
        }
    }
}

/// Merge-patches TmdbSync [`SYNC`] in `ns` (with kubectl, as a person would).
fn patch_sync(cluster: &Cluster, ns: &str, patch: &str) {
    cluster.kubectl_ok([
        "-n",
        ns,
        "patch",
        "tmdbsync",
        SYNC,
        "--type=merge",
        "-p",
        patch,
    ]);
}

/// Runs a confirmed `kubectl tmdbsync reset …` and waits until the controller acknowledges its
/// token in `status.lastHandledResetAt`.
async fn reset_acknowledged(cluster: &Cluster, syncs: &Api<TmdbSync>, args: &[&str]) {
    let out = ok(cluster, args);
    assert!(out.contains("Requested"), "{out}");
    let token = syncs.get(SYNC).await.unwrap().annotations()[RESET_REQUESTED_AT].clone();
    wait_for(syncs, SYNC, Duration::from_secs(60), |s| {
        s.status
            .as_ref()
            .and_then(|st| st.last_handled_reset_at.as_deref())
            == Some(&token)
    })
    .await;
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
    // The database and the controller stay in `setup` until the end.
    let setup = Setup::start(cluster, "e2e-plugin", 11, |m| m).await;
    let (ns, sim, runs, syncs) = (setup.ns, setup.sim, setup.runs, setup.syncs);
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
    reset_acknowledged(
        cluster,
        &syncs,
        &["reset", SYNC, "--bulk", "-n", n, "--confirm=cinegraph"],
    )
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
    patch_sync(
        cluster,
        n,
        r#"{"spec":{"bulk":{"schedule":"* * * * *"},"delta":{"schedule":"* * * * *"}}}"#,
    );
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

/// The rule that closes each frame of `status -w` when stdout is not a terminal.
fn rule() -> String {
    format!("{}\n", "─".repeat(60))
}

/// The whole frames of a watch's output (an unfinished one after the last rule is left out).
fn frames(out: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = out.split(&rule()).collect();
    parts.pop();
    parts
}

/// The status word of run `run` in a status frame's recent runs (`NAME TYPE STATUS …`).
fn run_status<'a>(frame: &'a str, run: &str) -> Option<&'a str> {
    frame.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some(run)).then(|| words.nth(1)).flatten()
    })
}

/// `kubectl tmdbsync ARGS` left running (a watch), its stdout collected as it comes; killed on
/// drop if still running.
struct Background {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Background {
    fn start(cluster: &Cluster, args: &[&str]) -> Background {
        let mut child = plugin_command(cluster, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubectl tmdbsync");
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Background { child, out }
    }

    fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Waits until the output so far satisfies `check`.
    async fn wait_until(&self, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while !check(&self.text()) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; output so far:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit: (exit code, stdout, stderr).
    async fn interrupt(mut self, timeout: Duration) -> (i32, String, String) {
        // SAFETY: kill(2) on a child this test spawned and has not reaped (kubectl execs the
        // plugin, so the pid is the plugin's).
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        assert_eq!(rc, 0, "SIGINT");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "no exit {timeout:?} after SIGINT"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        // The reader thread sees end of file once the process is gone.
        tokio::time::sleep(Duration::from_millis(300)).await;
        (status.code().unwrap_or(-1), self.text(), err)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Ids the simulator touched (changed, deleted or added) in an `/__sim/advance` report.
fn touched(report: &Value) -> BTreeSet<i64> {
    ["changed", "deleted", "added"]
        .iter()
        .flat_map(|k| ids(&report[*k]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_reset_all_namespaces_watch_and_a_failed_run_work_through_kubectl() {
    let cluster = Cluster::shared();
    // No stale refetches: a delta run fetches exactly what the changes feed lists.
    let Setup {
        ns,
        db,
        sim,
        runs,
        syncs,
        _controller,
    } = Setup::start(cluster, "e2e-plugin-more", 23, |m| {
        m.set("spec.refresh.staleMoviesPerDay", json!(0))
    })
    .await;
    let other = cluster.namespace("e2e-plugin-other");
    let n = ns.name();

    // The catalog, every page, then 20 simulated days of changes (3, then 17) and a delta run
    // that reads them all.
    let out = ok(cluster, &["run-now", SYNC, "--type", "catalog", "-n", n]);
    run_succeeded(&runs, &created_run(&out), Duration::from_secs(90)).await;
    let out = ok(cluster, &["run-now", SYNC, "--type", "bulk", "-n", n]);
    run_succeeded(&runs, &created_run(&out), Duration::from_secs(120)).await;
    let early = touched(&sim_post(&sim, "/__sim/advance?days=3", json!({})).await);
    let late = touched(&sim_post(&sim, "/__sim/advance?days=17", json!({})).await);
    let early_only: BTreeSet<i64> = early.difference(&late).copied().collect();
    assert!(
        !early_only.is_empty() && !late.is_empty(),
        "the seed must touch ids in both spans: {early:?} {late:?}"
    );
    let clock = sim_get(&sim, "/__sim/clock").await;
    let start: NaiveDate = clock["start_date"].as_str().unwrap().parse().unwrap();
    let today = start + Days::new(20);
    assert_eq!(clock["date"], today.to_string());
    let since = start + Days::new(4);
    let out = ok(cluster, &["run-now", SYNC, "--type", "delta", "-n", n]);
    run_succeeded(&runs, &created_run(&out), Duration::from_secs(120)).await;

    // reset --delta-since: the plan first, nothing done without --confirm=NAME.
    let day = since.to_string();
    let out = ok(cluster, &["reset", SYNC, "--delta-since", &day, "-n", n]);
    for part in [
        format!("forget the delta days from {day} on"),
        "in windows of at most 14 days".to_string(),
        "Nothing done".to_string(),
        format!("kubectl tmdbsync reset {SYNC} --delta-since {day} --confirm={SYNC} -n {n}"),
    ] {
        assert!(out.contains(&part), "{part}: {out}");
    }
    let sync = syncs.get(SYNC).await.unwrap();
    assert!(!sync.annotations().contains_key(RESET_REQUESTED_AT));
    let (code, _, err) = kubectl_tmdbsync(
        cluster,
        &[
            "reset",
            SYNC,
            "--delta-since",
            &day,
            "-n",
            n,
            "--confirm=someone-else",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        !syncs
            .get(SYNC)
            .await
            .unwrap()
            .annotations()
            .contains_key(RESET_REQUESTED_AT),
        "a wrong --confirm does nothing"
    );
    let confirm = format!("--confirm={SYNC}");
    reset_acknowledged(
        cluster,
        &syncs,
        &["reset", SYNC, "--delta-since", &day, "-n", n, &confirm],
    )
    .await;
    // The first delta recorded days start..today-1; the reset forgot those from `since` on.
    let messages = cluster.kubectl_ok([
        "-n",
        n,
        "get",
        "events",
        "--field-selector",
        "reason=ResetDelta",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        messages.contains(&format!("forgot 16 delta days from {day} on")),
        "{messages}"
    );

    // The next delta run replays the feed from `since`, in two windows (17 days > 14), and
    // fetches only ids touched from that day on.
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;
    let out = ok(cluster, &["run-now", SYNC, "--type", "delta", "-n", n]);
    let replay = created_run(&out);
    let done = run_succeeded(&runs, &replay, Duration::from_secs(120)).await;
    let message = done.status.unwrap().message.unwrap_or_default();
    assert!(
        message.starts_with(&format!("changes {day} to {today}:")),
        "{message}"
    );
    let stats = sim_get(&sim, "/__sim/stats?ids=true").await;
    assert!(
        stats["requests"]["changes"].as_u64().unwrap() >= 2,
        "one changes request per window at least: {stats}"
    );
    let fetched = ids(&stats["details_ids"]);
    assert!(!fetched.is_empty(), "{stats}");
    assert!(
        fetched.is_subset(&late) && fetched.is_disjoint(&early_only),
        "fetched {fetched:?}; touched from {day} on: {late:?}; only before: {early_only:?}"
    );

    // run-now --window: a delta over the days asked for only (the first three), leaving the
    // watermark where it is.
    sim_post(&sim, "/__sim/stats/reset", json!({})).await;
    let (from, to) = (start + Days::new(1), start + Days::new(3));
    let window = format!("{from}..{to}");
    let out = ok(
        cluster,
        &[
            "run-now", SYNC, "--type", "delta", "--window", &window, "-n", n,
        ],
    );
    assert!(out.contains(&format!("days {from}..{to}")), "{out}");
    let done = run_succeeded(&runs, &created_run(&out), Duration::from_secs(120)).await;
    let message = done.status.unwrap().message.unwrap_or_default();
    assert!(
        message.starts_with(&format!("changes {from} to {to}:")),
        "{message}"
    );
    let fetched = ids(&sim_get(&sim, "/__sim/stats?ids=true").await["details_ids"]);
    assert!(
        !fetched.is_empty() && fetched.is_subset(&early),
        "fetched {fetched:?}; touched in the window: {early:?}"
    );

    // -A: every namespace, with a NAMESPACE column; a sync there that no controller watches
    // shows as not reconciled.
    apply(cluster, &other, &tmdb_sync(&sim));
    apply(cluster, &other, &sync_run("waiting", "Catalog"));
    let o = other.name();
    let out = ok(cluster, &["status", "-A"]);
    for part in [
        format!("SYNC HEALTH  {n}/{SYNC}"),
        format!("SYNC HEALTH  {o}/{SYNC}"),
        "Phase: Pending (not reconciled yet)".to_string(),
    ] {
        assert!(out.contains(&part), "{part}: {out}");
    }
    let all: Value = serde_json::from_str(&ok(cluster, &["status", "-A", "-o", "json"])).unwrap();
    let of = |namespace: &str| -> Vec<Value> {
        all.as_array()
            .unwrap()
            .iter()
            .filter(|h| h["sync"]["namespace"] == namespace)
            .cloned()
            .collect()
    };
    assert_eq!(of(n).len(), 1);
    assert_eq!(of(n)[0]["imported"], 100);
    assert_eq!(of(o).len(), 1);
    assert_eq!(of(o)[0]["imported"], 0);
    let out = ok(cluster, &["runs", "-A"]);
    assert!(out.starts_with("NAMESPACE"), "{out}");
    let row = |namespace: &str, run: &str| {
        out.lines().find(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() > 2 && w[0] == namespace && w[1] == run
        })
    };
    assert!(
        row(o, "waiting").is_some_and(|l| l.contains("Pending")),
        "{out}"
    );
    assert!(
        row(n, &replay).is_some_and(|l| l.contains("Succeeded")),
        "{out}"
    );
    for bad in [
        vec!["status", SYNC, "-A"],
        vec!["runs", SYNC, "-A"],
        vec!["describe", replay.as_str(), "-A"],
    ] {
        let (code, _, err) = kubectl_tmdbsync(cluster, &bad);
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(
            err.contains("-A") || err.contains("all namespaces"),
            "{err}"
        );
    }
    other.cleanup();

    // --context picks the kubeconfig's context; one it does not have is a kubeconfig error
    // (exit 4). -h is kubectl's help.
    let context = cluster.kubectl_ok(["config", "current-context"]);
    let out = ok(
        cluster,
        &["status", SYNC, "-n", n, "--context", context.trim()],
    );
    assert!(out.contains(&format!("SYNC HEALTH  {n}/{SYNC}")), "{out}");
    let (code, _, err) = kubectl_tmdbsync(cluster, &["status", "-n", n, "--context", "nowhere"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("kubeconfig"), "{err}");
    let help = ok(cluster, &["-h"]);
    for part in [
        "status",
        "runs",
        "describe",
        "pause",
        "resume",
        "run-now",
        "reset",
        "report",
        "--all-namespaces",
        "--context",
        "--kubeconfig",
    ] {
        assert!(help.contains(part), "{part}: {help}");
    }

    // A run that fails after recording errors: a day later the changed ids fail at TMDb (500
    // on every try), and the run is stopped (its pod deleted, no retry) while it refetches the
    // stalest movies at 4 requests/s.
    let next_day = sim_post(&sim, "/__sim/advance?days=1", json!({})).await;
    let failing: Vec<i64> = ids(&next_day["changed"]).into_iter().take(3).collect();
    assert!(!failing.is_empty(), "{next_day}");
    sim_post(&sim, "/__sim/faults", json!({"fail_ids": failing})).await;
    patch_sync(
        cluster,
        n,
        r#"{"spec":{"tmdb":{"requestsPerSecond":4},"refresh":{"staleMoviesPerDay":100},"jobTemplate":{"backoffLimitPerIndex":0}}}"#,
    );
    let generation = syncs.get(SYNC).await.unwrap().metadata.generation;
    wait_for(&syncs, SYNC, Duration::from_secs(60), |s| {
        s.status.as_ref().and_then(|st| st.observed_generation) == generation
    })
    .await;

    // status -w follows it: a frame now, then one whenever the run changes.
    let watch = Background::start(cluster, &["status", SYNC, "-n", n, "-w"]);
    watch
        .wait_until("the first frame", Duration::from_secs(60), |o| {
            !frames(o).is_empty()
        })
        .await;
    let out = ok(cluster, &["run-now", SYNC, "--type", "delta", "-n", n]);
    let failed = created_run(&out);
    let run = wait_for(&runs, &failed, Duration::from_secs(240), |r| {
        r.status
            .as_ref()
            .is_some_and(|st| st.errors > 0 || st.phase.is_some_and(RunPhase::is_finished))
    })
    .await;
    assert_eq!(
        run_phase(&run),
        Some(RunPhase::Running),
        "still running once its errors are recorded: {:?}",
        run.status
    );
    cluster.kubectl_ok([
        "-n",
        n,
        "delete",
        "pods",
        "-l",
        format!("job-name={failed}").as_str(),
        "--wait=false",
    ]);
    let done = run_finished(&runs, &failed, Duration::from_secs(120)).await;
    let st = done.status.clone().unwrap();
    assert_eq!(st.phase, Some(RunPhase::Failed), "{st:?}");
    assert_eq!(st.reason.as_deref(), Some("RetriesExhausted"), "{st:?}");
    assert!(
        st.errors > 0 && st.error_sample.len() == st.errors.min(10) as usize,
        "{st:?}"
    );
    for e in &st.error_sample {
        assert!(failing.contains(&e.movie_id.unwrap()), "{e:?}");
        assert_eq!(e.http_status, Some(500), "{e:?}");
    }

    // describe: the failure, its sampled errors and the command to run next.
    let out = ok(cluster, &["describe", &failed, "-n", n]);
    let first = &st.error_sample[0];
    for part in [
        "Phase: Failed (RetriesExhausted: ".to_string(),
        format!(
            "Failures (sample of {} of {})",
            st.error_sample.len(),
            st.errors
        ),
        format!(
            "  {:<10} {:<14} {:<6} ",
            first.movie_id.unwrap(),
            first.category,
            500
        ),
        "RunFailed".to_string(),
        "Next".to_string(),
        format!("$ kubectl tmdbsync run-now {SYNC} --type delta -n {n}"),
    ] {
        assert!(out.contains(&part), "{part}: {out}");
    }
    let d: Value =
        serde_json::from_str(&ok(cluster, &["describe", &failed, "-n", n, "-o", "json"])).unwrap();
    assert_eq!(
        d["run"]["status"]["errorSample"].as_array().unwrap().len(),
        st.error_sample.len()
    );
    assert!(
        d["nextSteps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["command"] == format!("kubectl tmdbsync run-now {SYNC} --type delta -n {n}")),
        "{}",
        d["nextSteps"]
    );

    // The watch showed the run running, then failed; Ctrl-C ends it cleanly after a whole frame.
    watch
        .wait_until(
            "a frame with the failed run",
            Duration::from_secs(60),
            |o| {
                frames(o)
                    .iter()
                    .any(|f| run_status(f, &failed) == Some("failed"))
            },
        )
        .await;
    let (code, out, err) = watch.interrupt(Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with(&rule()), "a whole last frame: {out}");
    let shown: Vec<Option<&str>> = frames(&out)
        .iter()
        .map(|f| run_status(f, &failed))
        .collect();
    let running = shown.iter().position(|s| *s == Some("running"));
    let failed_at = shown.iter().position(|s| *s == Some("failed"));
    assert!(
        shown[0].is_none() && running.is_some() && running < failed_at,
        "frames: {shown:?}"
    );
    // A watch with a bound ends on its own, with exit 0.
    let began = Instant::now();
    let (code, out, err) =
        kubectl_tmdbsync(cluster, &["status", SYNC, "-n", n, "-w", "--timeout", "3s"]);
    assert_eq!(code, 0, "{err}");
    assert!(began.elapsed() >= Duration::from_secs(3));
    assert!(!frames(&out).is_empty() && out.ends_with(&rule()), "{out}");

    // Colours only on a terminal (script(1) gives the command one), and never with NO_COLOR.
    let on_terminal = |no_color: bool| {
        let line = format!(
            "{} tmdbsync runs {SYNC} -n {n}",
            cluster.kubectl_path().display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("PATH", plugin_path())
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().expect("script(1)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_terminal(false);
    assert!(
        coloured.contains("\x1b[31mFailed\x1b[0m") && coloured.contains("\x1b[32mSucceeded"),
        "{coloured:?}"
    );
    let plain = on_terminal(true);
    assert!(
        plain.contains("Failed") && !plain.contains('\x1b'),
        "{plain:?}"
    );

    // RBAC decides who may act: a ServiceAccount that may only read, through its own token.
    cluster.kubectl_ok(["-n", n, "create", "serviceaccount", "viewer"]);
    cluster.kubectl_ok([
        "-n",
        n,
        "create",
        "role",
        "tmdbsync-viewer",
        "--verb=get,list,watch",
        "--resource=tmdbsyncs.tmdbsync.io,syncruns.tmdbsync.io,jobs.batch,pods,events",
    ]);
    cluster.kubectl_ok([
        "-n",
        n,
        "create",
        "rolebinding",
        "tmdbsync-viewer",
        "--role=tmdbsync-viewer",
        format!("--serviceaccount={n}:viewer").as_str(),
    ]);
    let token = cluster.kubectl_ok(["-n", n, "create", "token", "viewer"]);
    let mut kubeconfig: Value = serde_json::from_str(&cluster.kubectl_ok([
        "config",
        "view",
        "--raw",
        "--minify",
        "--flatten",
        "-o",
        "json",
    ]))
    .unwrap();
    kubeconfig["users"][0]["user"] = json!({"token": token.trim()});
    let viewer = std::env::temp_dir().join(format!("plugin-viewer-{n}.kubeconfig"));
    std::fs::write(&viewer, kubeconfig.to_string()).unwrap();
    let viewer = viewer.to_str().unwrap();
    let out = ok(cluster, &["status", SYNC, "-n", n, "--kubeconfig", viewer]);
    assert!(out.contains("SYNC HEALTH"), "{out}");
    ok(
        cluster,
        &["describe", &failed, "-n", n, "--kubeconfig", viewer],
    );
    for act in [
        vec!["pause", SYNC],
        vec!["run-now", SYNC, "--type", "delta"],
        vec!["reset", SYNC, "--bulk", "--confirm=cinegraph"],
    ] {
        let mut args = act.clone();
        args.extend(["-n", n, "--kubeconfig", viewer]);
        let (code, _, err) = kubectl_tmdbsync(cluster, &args);
        assert_eq!(code, 1, "{act:?}: {err}");
        assert!(err.contains("forbidden"), "{act:?}: {err}");
    }
    let _ = std::fs::remove_file(viewer);
    assert!(!syncs.get(SYNC).await.unwrap().spec.suspend);

    // report: run rows carry the database's run id (status.runId).
    let report: Value =
        serde_json::from_str(&ok(cluster, &["report", SYNC, "-n", n, "-o", "json"])).unwrap();
    let store = db.store().await;
    let rows = report["run_rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    for r in rows {
        let name = r["name"].as_str().unwrap();
        let id = scalar(
            &store,
            &format!("SELECT id FROM sync_runs WHERE name = '{name}'"),
        )
        .await;
        assert_eq!(r["id"], id, "{name}");
    }
}
