//! The Sync Health pages served by the real controller on the test control plane: `/` lists the
//! TmdbSyncs it watches with their phase, `/syncs/{namespace}/{name}` shows a sync's panel built
//! from its database and its resource (suspended, a side job turned off), and the pause the
//! controller saw is on today's row.

mod support;

use std::time::Duration;

use kube::Api;
use serde_json::{Value, json};
use support::cluster::*;
use support::operator::*;
use support::{TestDb, http_get, output, start_sim, stderr, tmdbsync_run};
use tmdbsync::api::{SyncPhase, TmdbSync};

const API_KEY: &str = "e2e-health-key-51c2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_serves_the_sync_health_of_every_tmdbsync_it_watches() {
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-health");
    let db = TestDb::start();
    let sim = start_sim(200, 7).await;
    // Data first, from the command line: the catalog and 4 of its 10 pages.
    let mut run = tmdbsync_run(&db, &sim, API_KEY);
    run.args(["--rps", "1000", "--stages", "catalog,bulk", "--pages", "4"]);
    let out = output(run).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    apply_secrets(cluster, &ns, API_KEY, &db.url);
    let controller = ControllerProcess::start(cluster, &ns, &[]);
    apply(
        cluster,
        &ns,
        &tmdb_sync(&sim).set("spec.suspend", json!(true)).set(
            "spec.enrichment.personQualityScore",
            json!({"enabled": false}),
        ),
    );
    let syncs: Api<TmdbSync> = Api::namespaced(cluster.client(), &ns);
    wait_for(&syncs, "cinegraph", Duration::from_secs(60), |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.phase == Some(SyncPhase::Suspended))
    })
    .await;

    let base = format!("http://{}", controller.metrics_addr());

    let (status, index) = http_get(&format!("{base}/")).await;
    assert_eq!(status, 200, "{index}");
    assert!(
        index.contains(&format!("href=\"/syncs/{}/cinegraph\"", &*ns)),
        "{index}"
    );
    assert!(index.contains(">Suspended<"), "{index}");

    let (status, json) = http_get(&format!("{base}/syncs/{}/cinegraph/health.json", &*ns)).await;
    assert_eq!(status, 200, "{json}\n{}", controller.log());
    let h: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(h["sync"]["phase"], "Suspended");
    assert_eq!(h["sync"]["suspended"], true);
    assert_eq!(
        (h["tmdb_total"].as_i64(), h["imported"].as_i64()),
        (Some(200), Some(80))
    );
    assert_eq!(h["clock"], "tmdb");
    let enabled: Vec<bool> = h["side_jobs"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["enabled"].as_bool().unwrap())
        .collect();
    // OMDb is off by default, PQS turned off here.
    assert_eq!(enabled, [false, true, false]);
    assert_eq!(h["alerts"][0]["id"], "paused");
    let resume = format!("kubectl tmdbsync resume cinegraph -n {}", &*ns);
    assert_eq!(h["alerts"][0]["command"], json!(resume));
    // The controller recorded the pause: today (the simulator's day) is marked paused.
    let today = h["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(today["day"], h["today"]);
    assert_eq!(today["paused"], true, "{today}");

    let (status, page) = http_get(&format!("{base}/syncs/{}/cinegraph?refresh=0", &*ns)).await;
    assert_eq!(status, 200);
    assert!(page.contains(&resume), "{page}");
    assert_eq!(page.matches(">Disabled</div>").count(), 2, "{page}");
    assert!(page.contains("80 of 200 movies"), "{page}");
    let (status, _) = http_get(&format!("{base}/syncs/{}/nope", &*ns)).await;
    assert_eq!(status, 404);
    let (status, _) = http_get(&format!("{base}/syncs/elsewhere/cinegraph")).await;
    assert_eq!(status, 404, "a namespace the controller does not watch");
    assert_eq!(controller.http_status("/healthz").await, 200);
}
