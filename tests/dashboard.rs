//! The chart's Grafana dashboard (`charts/tmdbsync/files/grafana-dashboard.json`): valid JSON, a
//! `${datasource}` variable used by every query, `namespace`/`sync` variables, the Sync Health panels,
//! and PromQL that Prometheus parses (checked by loading every query into `promtool check rules`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn dashboard() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/tmdbsync/files/grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("read the dashboard");
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

/// Every panel, rows' nested panels included.
fn panels(dash: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        all.push(p);
        if let Some(nested) = p["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

/// `(panel title, expr)` of every query.
fn queries(dash: &Value) -> Vec<(String, String)> {
    panels(dash)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |t| Some((title.clone(), t["expr"].as_str()?.to_string())))
        })
        .collect()
}

#[test]
fn every_query_uses_the_datasource_variable() {
    let dash = dashboard();
    let vars = dash["templating"]["list"].as_array().expect("templating");
    let ds = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for p in panels(&dash) {
        if p["type"] == "row" || p["type"] == "alertlist" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {}",
            p["title"]
        );
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "a query of {}",
                p["title"]
            );
        }
    }
}

#[test]
fn namespace_and_sync_variables_filter_the_sync_queries() {
    let dash = dashboard();
    let vars = dash["templating"]["list"].as_array().expect("templating");
    for name in ["namespace", "sync"] {
        let v = vars
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("a {name} variable"));
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
    }
    for (title, expr) in queries(&dash) {
        let per_sync = !expr.contains("tmdbsync_reconcile")
            && !expr.contains("tmdbsync_build_info")
            && !expr.contains("up{");
        if per_sync {
            assert!(
                expr.contains(r#"namespace=~"$namespace""#) && expr.contains(r#"sync=~"$sync""#),
                "{title}: {expr}"
            );
        }
    }
}

#[test]
fn the_sync_health_panels_are_there() {
    let dash = dashboard();
    let all = queries(&dash);
    let has = |needle: &str| all.iter().any(|(_, e)| e.contains(needle));
    for metric in [
        "tmdbsync_coverage_ratio",
        "tmdbsync_imported_movies",
        "tmdbsync_catalog_movies",
        "tmdbsync_estimated_days_remaining",
        r#"tmdbsync_daily_import_rate{namespace=~"$namespace", sync=~"$sync", window="today"}"#,
        r#"tmdbsync_daily_import_rate{namespace=~"$namespace", sync=~"$sync", window="7d"}"#,
        "tmdbsync_errors_total",
        "tmdbsync_side_job_completion_ratio",
        "tmdbsync_runs_total",
        "tmdbsync_run_duration_seconds_bucket",
    ] {
        assert!(has(metric), "no panel queries {metric}");
    }
    let titles: Vec<&str> = panels(&dash)
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for title in [
        "Coverage",
        "Errors by category",
        "Run outcomes",
        "Run durations",
    ] {
        assert!(titles.contains(&title), "no panel {title:?}: {titles:?}");
    }
    let ids: Vec<i64> = panels(&dash)
        .iter()
        .filter_map(|p| p["id"].as_i64())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "panel ids are unique");
}

#[test]
fn every_query_is_valid_promql() {
    let dash = dashboard();
    let queries = queries(&dash);
    assert!(queries.len() >= 15, "{} queries", queries.len());
    // Grafana's variables replaced by what they expand to, each query a recording rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        let expr = expr
            .replace("$namespace", ".*")
            .replace("$sync", ".*")
            .replace("$__rate_interval", "5m");
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.yaml");
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect(
            "promtool is not installed: run scripts/install-deps.sh (Debian package `prometheus`)",
        );
    assert!(
        out.status.success(),
        "promtool rejects a dashboard query:\n{}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
