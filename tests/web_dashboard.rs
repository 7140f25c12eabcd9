//! The controller's Sync Health routes, served by `web::dashboard::serve_controller` beside
//! `/metrics`, `/healthz` and `/readyz`, over a directory of syncs backed by a private Postgres:
//! `/` lists the syncs with their phase, `/syncs/{ns}/{name}` is the page, its downloads answer,
//! an unknown sync is 404 and an unusable one 503 with the reason; nothing but GET is routed.

mod support;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;
use support::{TestDb, start_sim};
use tmdbsync::plan::health::SyncFacts;
use tmdbsync::store::Store;
use tmdbsync::web::dashboard::{Opening, SyncDirectory};
use tmdbsync::web::page::SyncListing;

struct Directory {
    store: Store,
}

impl SyncDirectory for Directory {
    fn list(&self) -> BoxFuture<'_, Result<Vec<SyncListing>, String>> {
        Box::pin(async move {
            Ok(vec![
                SyncListing {
                    namespace: "media".into(),
                    name: "cinegraph".into(),
                    phase: "Bootstrapping".into(),
                    percent_complete: Some(40.0),
                    problem: None,
                },
                SyncListing {
                    namespace: "media".into(),
                    name: "broken".into(),
                    phase: "Degraded".into(),
                    percent_complete: None,
                    problem: Some("secret \"db\" not found <script>".into()),
                },
            ])
        })
    }

    fn open<'a>(&'a self, namespace: &'a str, name: &'a str) -> Opening<'a> {
        Box::pin(async move {
            match (namespace, name) {
                ("media", "cinegraph") => Ok(Some((
                    self.store.clone(),
                    SyncFacts {
                        resource: Some(("media".into(), "cinegraph".into())),
                        phase: Some("Bootstrapping".into()),
                        suspended: true,
                        ..Default::default()
                    },
                ))),
                ("media", "broken") => {
                    Err("the database URL cannot be read: secret \"db\" not found".into())
                }
                _ => Ok(None),
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_serves_every_sync_and_each_page_beside_its_endpoints() {
    let db = TestDb::start();
    let sim = start_sim(100, 5).await;
    let engine = support::engine(db.store().await, &sim, 1000);
    tmdbsync::stage::catalog::run(&engine, &Default::default())
        .await
        .unwrap();
    tmdbsync::stage::bulk::run(&engine, support::pages(2), &Default::default())
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ready = tmdbsync::web::Readiness::default();
    let metrics = Arc::new(tmdbsync::telemetry::metrics::Metrics::new());
    tokio::spawn(tmdbsync::web::dashboard::serve_controller(
        listener,
        ready,
        metrics,
        Arc::new(Directory {
            store: db.store().await,
        }),
    ));
    let http = tmdbsync::http::http_client_builder().build().unwrap();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("http://{addr}{path}");
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let kind = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, kind, r.text().await.unwrap())
        }
    };

    let (status, kind, index) = get("/").await;
    assert_eq!((status, kind.as_str()), (200, "text/html; charset=utf-8"));
    assert_eq!(index.matches("class=\"sync-row\"").count(), 2, "{index}");
    assert!(index.contains("href=\"/syncs/media/cinegraph\""), "{index}");
    assert!(index.contains(">Degraded<"), "{index}");
    assert!(!index.contains("<script>\""), "escaped: {index}");

    let (status, _, page) = get("/syncs/media/cinegraph?refresh=0").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("40 of 100 movies"), "{page}");
    assert!(
        page.contains("kubectl tmdbsync resume cinegraph -n media"),
        "{page}"
    );
    assert!(
        page.contains("href=\"/syncs/media/cinegraph/report.csv?days=30\""),
        "{page}"
    );
    assert!(page.contains("<a href=\"/\">all syncs</a>"), "{page}");

    let (status, kind, json) = get("/syncs/media/cinegraph/health.json").await;
    assert_eq!(
        (status, kind.as_str()),
        (200, "application/json; charset=utf-8")
    );
    let health: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(health["sync"]["name"], "cinegraph");
    assert_eq!(health["sync"]["suspended"], true);
    assert_eq!(health["imported"], 40);
    assert_eq!(health["alerts"][0]["id"], "paused");

    let (status, kind, csv) = get("/syncs/media/cinegraph/report.csv?days=7").await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let days = rows.iter().filter(|r| &r[0] == "day").count();
    let runs = rows.iter().filter(|r| &r[0] == "run").count();
    assert_eq!((days, runs), (7, 2));
    let (status, _, report) = get("/syncs/media/cinegraph/report.json?days=3").await;
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["day_rows"].as_array().unwrap().len(), 3);
    assert_eq!(report["totals"]["imported"], 40);

    let (status, _, bad) = get("/syncs/media/cinegraph/report.csv?days=many").await;
    assert_eq!(status, 400, "{bad}");
    let (status, _, missing) = get("/syncs/media/nope").await;
    assert_eq!(status, 404, "{missing}");
    assert!(
        missing.contains("no TmdbSync nope in namespace media"),
        "{missing}"
    );
    let (status, _, broken) = get("/syncs/media/broken").await;
    assert_eq!(status, 503);
    assert!(
        broken.contains("the database URL cannot be read"),
        "{broken}"
    );

    // The endpoints it shares the port with still answer; nothing changes state.
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/metrics").await.0, 200);
    let post = http
        .post(format!("http://{addr}/syncs/media/cinegraph"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
}
