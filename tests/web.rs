//! The controller's health endpoints.

mod support;

use support::http_get;

#[tokio::test]
async fn health_endpoints_report_readiness() {
    let ready = tmdbsync::web::Readiness::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = std::sync::Arc::new(tmdbsync::telemetry::metrics::Metrics::new());
    tokio::spawn(tmdbsync::web::serve(listener, ready.clone(), metrics));
    let get = |path: &str| {
        let url = format!("http://{addr}{path}");
        async move { http_get(&url).await }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 503, "starting");
    ready.set_role(tmdbsync::telemetry::readiness::Role::Active);
    ready.api_answered();
    let watch = ready.watch("tmdbsyncs");
    assert_eq!(get("/readyz").await.0, 503, "the watch has not synced");
    watch.synced();
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(body, "ready: reconciling; watches synced: tmdbsyncs\n");
    let (_, body) = get("/metrics").await;
    assert!(body.contains("tmdbsync_build_info{version=\""), "{body}");
}
