//! The controller's Prometheus metrics (`/metrics`). Sync gauges and counters are set from Postgres
//! totals and the resources on every TmdbSync reconcile, so they are right after a restart.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::plan::health::SyncHealth;
use crate::store::health::MetricTotals;

/// Every metric family the controller exports (the alert rules and dashboard may use only these).
pub const METRIC_NAMES: &[&str] = &[
    "tmdbsync_build_info",
    "tmdbsync_catalog_movies",
    "tmdbsync_imported_movies",
    "tmdbsync_catalog_not_served",
    "tmdbsync_coverage_ratio",
    "tmdbsync_estimated_days_remaining",
    "tmdbsync_daily_import_rate",
    "tmdbsync_runs_total",
    "tmdbsync_last_success_timestamp_seconds",
    "tmdbsync_last_run_failed",
    "tmdbsync_last_run_error_rate_percent",
    "tmdbsync_run_duration_seconds",
    "tmdbsync_movies_total",
    "tmdbsync_errors_total",
    "tmdbsync_tmdb_requests_total",
    "tmdbsync_side_job_completion_ratio",
    "tmdbsync_reconcile_total",
    "tmdbsync_reconcile_errors_total",
    "tmdbsync_reconcile_duration_seconds",
];

const SYNC: &[&str] = &["namespace", "sync"];

/// The metric families and their registry.
pub struct Metrics {
    registry: Registry,
    catalog: GaugeVec,
    imported: GaugeVec,
    not_served: GaugeVec,
    coverage: GaugeVec,
    days_remaining: GaugeVec,
    daily_rate: GaugeVec,
    runs: IntCounterVec,
    last_success: GaugeVec,
    last_failed: IntGaugeVec,
    last_error_rate: GaugeVec,
    run_duration: HistogramVec,
    movies: IntCounterVec,
    errors: IntCounterVec,
    requests: IntCounterVec,
    side_jobs: GaugeVec,
    reconciles: IntCounterVec,
    reconcile_errors: IntCounterVec,
    reconcile_duration: HistogramVec,
    observed_runs: Mutex<HashSet<(String, String, i64)>>,
}

fn labels<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str, extra: &[&str]| {
            let g =
                GaugeVec::new(Opts::new(name, help), &labels(SYNC, extra)).expect("valid gauge");
            registry.register(Box::new(g.clone())).expect("register");
            g
        };
        let counter = |name: &str, help: &str, base: &[&str], extra: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), &labels(base, extra))
                .expect("valid counter");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        let histogram =
            |name: &str, help: &str, base: &[&str], extra: &[&str], buckets: Vec<f64>| {
                let h = HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets),
                    &labels(base, extra),
                )
                .expect("valid histogram");
                registry.register(Box::new(h.clone())).expect("register");
                h
            };
        let build = IntGaugeVec::new(
            Opts::new("tmdbsync_build_info", "Build information (always 1)"),
            &["version"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(build.clone()))
            .expect("register");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let last_failed = IntGaugeVec::new(
            Opts::new(
                "tmdbsync_last_run_failed",
                "1 when the latest finished run of the type failed",
            ),
            &labels(SYNC, &["type"]),
        )
        .expect("valid gauge");
        registry
            .register(Box::new(last_failed.clone()))
            .expect("register");
        Metrics {
            catalog: gauge(
                "tmdbsync_catalog_movies",
                "Movies in TMDb's catalog (latest export)",
                &[],
            ),
            imported: gauge("tmdbsync_imported_movies", "Catalog movies stored", &[]),
            not_served: gauge(
                "tmdbsync_catalog_not_served",
                "Ids in TMDb's latest export that TMDb does not serve (404): not remaining",
                &[],
            ),
            coverage: gauge(
                "tmdbsync_coverage_ratio",
                "Imported over the catalog ids TMDb serves (0..1)",
                &[],
            ),
            days_remaining: gauge(
                "tmdbsync_estimated_days_remaining",
                "Days until the catalog is imported at the 7-day rate",
                &[],
            ),
            daily_rate: gauge(
                "tmdbsync_daily_import_rate",
                "Movies imported per day (window today or 7d average)",
                &["window"],
            ),
            runs: counter(
                "tmdbsync_runs_total",
                "Finished runs by type and result",
                SYNC,
                &["type", "result"],
            ),
            last_success: gauge(
                "tmdbsync_last_success_timestamp_seconds",
                "Unix time of the latest successful run of the type",
                &["type"],
            ),
            last_failed,
            last_error_rate: gauge(
                "tmdbsync_last_run_error_rate_percent",
                "Error rate of the latest finished run of the type",
                &["type"],
            ),
            run_duration: histogram(
                "tmdbsync_run_duration_seconds",
                "Duration of finished runs",
                SYNC,
                &["type"],
                vec![
                    10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
                ],
            ),
            movies: counter(
                "tmdbsync_movies_total",
                "Movies by outcome over all runs",
                SYNC,
                &["outcome"],
            ),
            errors: counter(
                "tmdbsync_errors_total",
                "Exhausted failures by category",
                SYNC,
                &["category"],
            ),
            requests: counter(
                "tmdbsync_tmdb_requests_total",
                "TMDb responses by status class",
                SYNC,
                &["status_class"],
            ),
            side_jobs: gauge(
                "tmdbsync_side_job_completion_ratio",
                "Share of movies a side-job stage is done for",
                &["stage"],
            ),
            reconciles: counter(
                "tmdbsync_reconcile_total",
                "Reconciles by kind",
                &[],
                &["kind"],
            ),
            reconcile_errors: counter(
                "tmdbsync_reconcile_errors_total",
                "Failed reconciles by kind and error",
                &[],
                &["kind", "error"],
            ),
            reconcile_duration: histogram(
                "tmdbsync_reconcile_duration_seconds",
                "Reconcile duration by kind",
                &[],
                &["kind"],
                // Fine below 100 ms, where a healthy reconcile lands (p50 and p99 are read from
                // these buckets: scripts/bench-controller.sh).
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            ),
            observed_runs: Mutex::new(HashSet::new()),
            registry,
        }
    }

    /// The registry (for tests).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("utf-8 metrics")
    }

    /// Records one reconcile.
    pub fn reconciled(&self, kind: &str, seconds: f64, error: Option<&str>) {
        self.reconciles.with_label_values(&[kind]).inc();
        self.reconcile_duration
            .with_label_values(&[kind])
            .observe(seconds);
        if let Some(e) = error {
            self.reconcile_errors.with_label_values(&[kind, e]).inc();
        }
    }

    /// Sets a sync's families from its health report and the Postgres totals.
    pub fn observe_sync(
        &self,
        ns: &str,
        sync: &str,
        health: &SyncHealth,
        totals: &MetricTotals,
        side_jobs: &[(String, f64)],
    ) {
        let s = [ns, sync];
        self.catalog
            .with_label_values(&s)
            .set(health.tmdb_total as f64);
        self.imported
            .with_label_values(&s)
            .set(health.imported as f64);
        self.not_served
            .with_label_values(&s)
            .set(health.not_served as f64);
        self.coverage
            .with_label_values(&s)
            .set(health.percent_complete / 100.0);
        match health.estimated_days_remaining {
            Some(d) => self.days_remaining.with_label_values(&s).set(d),
            None => {
                let _ = self.days_remaining.remove_label_values(&s);
            }
        }
        self.daily_rate
            .with_label_values(&[ns, sync, "today"])
            .set(health.today_rate as f64);
        self.daily_rate
            .with_label_values(&[ns, sync, "7d"])
            .set(health.daily_rate);
        for t in &totals.by_type {
            let l = [ns, sync, t.run_type.as_str()];
            set_counter(
                &self.runs,
                &[ns, sync, &t.run_type, "succeeded"],
                t.succeeded,
            );
            set_counter(&self.runs, &[ns, sync, &t.run_type, "failed"], t.failed);
            if let Some(ts) = t.last_success {
                self.last_success
                    .with_label_values(&l)
                    .set(ts.timestamp() as f64);
            }
            self.last_failed
                .with_label_values(&l)
                .set(i64::from(t.last_failed));
            self.last_error_rate
                .with_label_values(&l)
                .set(t.last_error_rate_percent);
        }
        for (outcome, n) in ["imported", "updated", "skipped", "deleted"]
            .iter()
            .zip(totals.movies)
        {
            set_counter(&self.movies, &[ns, sync, outcome], n);
        }
        for category in ["rate_limit", "api", "data", "network", "auth"] {
            let n = totals
                .errors
                .iter()
                .find(|(c, _)| c == category)
                .map_or(0, |(_, n)| *n);
            set_counter(&self.errors, &[ns, sync, category], n);
        }
        for (class, n) in &totals.requests {
            set_counter(&self.requests, &[ns, sync, class], *n);
        }
        for (stage, ratio) in side_jobs {
            self.side_jobs
                .with_label_values(&[ns, sync, stage])
                .set(*ratio);
        }
        let mut seen = self.observed_runs.lock().expect("observed lock");
        for (id, run_type, secs) in &totals.durations {
            if seen.insert((ns.to_string(), sync.to_string(), *id)) {
                self.run_duration
                    .with_label_values(&[ns, sync, run_type])
                    .observe(*secs);
            }
        }
    }
}

/// Moves a counter up to a total read from the database (counters never go down; a restart starts
/// from the total, which Prometheus treats as a counter reset).
fn set_counter(c: &IntCounterVec, labels: &[&str], total: i64) {
    let counter = c.with_label_values(labels);
    let delta = total.max(0) as u64;
    if delta > counter.get() {
        counter.inc_by(delta - counter.get());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::health::HealthInputs;
    use crate::store::health::RunTypeTotals;

    #[test]
    fn every_family_is_named_and_exported() {
        let m = Metrics::new();
        let health = SyncHealth::compute(
            &HealthInputs {
                tmdb_total: 120,
                imported: 40,
                not_served: 20,
                ..Default::default()
            },
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        );
        let totals = MetricTotals {
            by_type: vec![RunTypeTotals {
                run_type: "bulk".into(),
                succeeded: 2,
                failed: 1,
                last_failed: true,
                last_success: chrono::DateTime::from_timestamp(1_700_000_000, 0),
                ..Default::default()
            }],
            movies: [40, 0, 5, 0],
            errors: vec![("network".into(), 3)],
            requests: vec![("2xx".into(), 45)],
            durations: vec![(1, "bulk".into(), 12.0)],
        };
        m.observe_sync(
            "media",
            "cinegraph",
            &health,
            &totals,
            &[("omdb".into(), 0.5)],
        );
        m.reconciled("TmdbSync", 0.02, Some("kube"));
        let text = m.render();
        let mut exported: Vec<String> = m
            .registry()
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        exported.sort();
        let mut named: Vec<String> = METRIC_NAMES.iter().map(|s| s.to_string()).collect();
        named.sort();
        // days_remaining is absent without a rate; every other family is exported.
        named.retain(|n| n != "tmdbsync_estimated_days_remaining");
        assert_eq!(exported, named);
        assert!(
            text.contains(r#"tmdbsync_coverage_ratio{namespace="media",sync="cinegraph"} 0.4"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tmdbsync_catalog_not_served{namespace="media",sync="cinegraph"} 20"#),
            "{text}"
        );
        assert!(text.contains(r#"tmdbsync_runs_total{namespace="media",result="failed",sync="cinegraph",type="bulk"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"tmdbsync_last_run_failed{namespace="media",sync="cinegraph",type="bulk"} 1"#
            ),
            "{text}"
        );

        // Counters follow the database totals up, never down, and durations are observed once.
        m.observe_sync("media", "cinegraph", &health, &totals, &[]);
        assert!(m.render().contains(r#"tmdbsync_run_duration_seconds_count{namespace="media",sync="cinegraph",type="bulk"} 1"#));
    }
}
