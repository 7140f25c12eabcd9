//! The controller's health endpoints.

#[tokio::test]
async fn health_endpoints_report_readiness() {
    let ready = tmdbsync::web::Readiness::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = std::sync::Arc::new(tmdbsync::telemetry::metrics::Metrics::new());
    tokio::spawn(tmdbsync::web::serve(listener, ready.clone(), metrics));
    let http = tmdbsync::http::http_client_builder().build().unwrap();
    let get = |path: &'static str| {
        let http = http.clone();
        async move {
            http.get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get("/healthz").await, 200);
    assert_eq!(get("/readyz").await, 503, "starting");
    ready.set_role(tmdbsync::telemetry::readiness::Role::Active);
    ready.api_answered();
    let watch = ready.watch("tmdbsyncs");
    assert_eq!(get("/readyz").await, 503, "the watch has not synced");
    watch.synced();
    assert_eq!(get("/readyz").await, 200);
    let body = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ready: reconciling; watches synced: tmdbsyncs\n");
    let body = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("tmdbsync_build_info{version=\""), "{body}");
}
