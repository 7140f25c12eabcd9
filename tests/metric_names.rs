//! Every `tmdbsync_*` metric the chart's alert rules and Grafana dashboard read is one the controller
//! exports (`tmdbsync::telemetry::metrics::METRIC_NAMES`), so a renamed metric cannot silently
//! blind an alert or a panel.

use std::collections::BTreeSet;
use std::path::Path;

use tmdbsync::telemetry::metrics::METRIC_NAMES;

/// Series suffixes of a histogram family.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

fn chart_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/tmdbsync/files")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The `tmdbsync_[a-z_]+` words of `text`.
fn metric_words(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("tmdbsync_") {
        let start = i + at;
        let preceded_by_word =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start + "tmdbsync_".len();
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        if !preceded_by_word && end > start + "tmdbsync_".len() {
            found.insert(text[start..end].trim_end_matches('_').to_string());
        }
        i = end;
    }
    found
}

/// A series name as its family's name: histogram suffixes stripped when the family is exported.
fn family(series: &str, exported: &BTreeSet<&str>) -> String {
    HISTOGRAM_SUFFIXES
        .iter()
        .find_map(|suffix| {
            series
                .strip_suffix(suffix)
                .filter(|base| exported.contains(base))
        })
        .unwrap_or(series)
        .to_string()
}

fn unexported(file: &str) -> (BTreeSet<String>, Vec<String>) {
    let exported: BTreeSet<&str> = METRIC_NAMES.iter().copied().collect();
    let used: BTreeSet<String> = metric_words(&chart_file(file))
        .iter()
        .map(|m| family(m, &exported))
        .collect();
    let missing = used
        .iter()
        .filter(|m| !exported.contains(m.as_str()))
        .cloned()
        .collect();
    (used, missing)
}

#[test]
fn every_metric_the_alert_rules_read_is_exported() {
    let (used, missing) = unexported("alert-rules.yaml");
    assert!(used.len() >= 6, "the rules read {used:?}");
    assert!(
        missing.is_empty(),
        "alert-rules.yaml reads metrics the controller does not export: {missing:?}\nexported: {METRIC_NAMES:?}"
    );
}

#[test]
fn every_metric_the_dashboard_reads_is_exported() {
    let (used, missing) = unexported("grafana-dashboard.json");
    assert!(used.len() >= 15, "the dashboard reads {used:?}");
    assert!(
        missing.is_empty(),
        "grafana-dashboard.json reads metrics the controller does not export: {missing:?}\nexported: {METRIC_NAMES:?}"
    );
}

#[test]
fn exported_names_are_unique_and_prefixed() {
    let unique: BTreeSet<&str> = METRIC_NAMES.iter().copied().collect();
    assert_eq!(unique.len(), METRIC_NAMES.len(), "{METRIC_NAMES:?}");
    for name in METRIC_NAMES {
        assert!(name.starts_with("tmdbsync_"), "{name}");
    }
}

#[test]
fn metric_words_are_found_and_histogram_series_map_to_their_family() {
    let text = r#"rate(tmdbsync_run_duration_seconds_bucket{x="y"}[5m]) / my_tmdbsync_other + tmdbsync_up"#;
    let words = metric_words(text);
    assert_eq!(
        words.into_iter().collect::<Vec<_>>(),
        ["tmdbsync_run_duration_seconds_bucket", "tmdbsync_up"]
    );
    let exported: BTreeSet<&str> = ["tmdbsync_run_duration_seconds"].into();
    assert_eq!(
        family("tmdbsync_run_duration_seconds_bucket", &exported),
        "tmdbsync_run_duration_seconds"
    );
    // A counter whose name ends in _count stays itself when no such family is exported.
    assert_eq!(family("tmdbsync_x_count", &exported), "tmdbsync_x_count");
}
