//! The Sync Health's alerts: what is wrong or worth knowing, each with the next thing to do and,
//! where a person would act, the exact command (`kubectl tmdbsync …` for a TmdbSync, `tmdbsync …`
//! for a database run without a cluster). Pure: the thresholds are the TmdbSync's `spec.alerts`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::history::RunSummary;

/// How much an alert matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The sync does not progress or cannot work.
    Critical,
    /// Something a person should look at.
    Warning,
    /// Worth knowing; nothing may need doing.
    Info,
}

impl Severity {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// A stable name (`stalled`, `run_failed`, `high_error_rate`, `low_import_rate`,
    /// `recent_errors`, `paused`, `not_ready`, `credentials`, `no_catalog`, `not_served`,
    /// `missing_imdb_id`).
    pub id: String,
    pub severity: Severity,
    /// What is the matter.
    pub message: String,
    /// The next thing to do, in words.
    pub next_step: String,
    /// The exact command for it, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// Alert thresholds (the TmdbSync's `spec.alerts`; the defaults without a cluster).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlertThresholds {
    /// No successful bulk or delta run for this long is a stall.
    pub stall_after_hours: f64,
    /// A latest run with more errors than this (percent of what it attempted).
    pub error_rate_percent: f64,
    /// Today's imports below this fraction of the 7-day average, while bootstrapping.
    pub low_rate_fraction: f64,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        AlertThresholds {
            stall_after_hours: 36.0,
            error_rate_percent: 5.0,
            low_rate_fraction: 0.5,
        }
    }
}

/// Who acts and how: the commands an alert names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commands {
    /// A TmdbSync: `kubectl tmdbsync … NAME -n NAMESPACE`.
    Kubectl { namespace: String, name: String },
    /// A database without a cluster: `tmdbsync …` against `$DATABASE_URL`.
    Local,
}

impl Commands {
    fn ns(namespace: &str) -> String {
        if namespace.is_empty() {
            String::new()
        } else {
            format!(" -n {namespace}")
        }
    }

    /// Starts a run of `run_type` now.
    pub fn run_now(&self, run_type: &str) -> String {
        match self {
            Commands::Kubectl { namespace, name } => format!(
                "kubectl tmdbsync run-now {name} --type {run_type}{}",
                Self::ns(namespace)
            ),
            Commands::Local => format!("tmdbsync run --stages {run_type}"),
        }
    }

    /// Shows what went wrong in a run.
    pub fn describe_run(&self, run: &RunSummary) -> String {
        match (self, &run.name) {
            (Commands::Kubectl { namespace, .. }, Some(run_name)) => format!(
                "kubectl tmdbsync describe {run_name}{}",
                Self::ns(namespace)
            ),
            _ => format!(
                "psql \"$DATABASE_URL\" -c 'SELECT category, movie_id, http_status, message FROM sync_errors WHERE run_id = {}'",
                run.id
            ),
        }
    }

    /// Resumes a paused sync.
    pub fn resume(&self) -> Option<String> {
        match self {
            Commands::Kubectl { namespace, name } => Some(format!(
                "kubectl tmdbsync resume {name}{}",
                Self::ns(namespace)
            )),
            Commands::Local => None,
        }
    }

    /// Pauses the sync.
    pub fn pause(&self) -> Option<String> {
        match self {
            Commands::Kubectl { namespace, name } => Some(format!(
                "kubectl tmdbsync pause {name}{}",
                Self::ns(namespace)
            )),
            Commands::Local => None,
        }
    }

    /// Shows the resource's conditions and events.
    pub fn describe_sync(&self) -> Option<String> {
        match self {
            Commands::Kubectl { namespace, name } => Some(format!(
                "kubectl describe tmdbsync {name}{}",
                Self::ns(namespace)
            )),
            Commands::Local => None,
        }
    }
}

/// A condition of the TmdbSync that is not as it should be (from its status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionProblem {
    /// `Ready` or `CredentialsValid`.
    pub condition: String,
    pub reason: String,
    pub message: String,
}

/// What the alerts are computed from.
#[derive(Debug, Clone)]
pub struct AlertInputs<'a> {
    pub commands: &'a Commands,
    pub thresholds: AlertThresholds,
    pub problems: &'a [ConditionProblem],
    pub suspended: bool,
    pub tmdb_total: i64,
    pub not_served: i64,
    pub bulk_complete: bool,
    pub today_rate: i64,
    pub daily_rate: f64,
    /// Hours since the last successful bulk or delta run (TMDb's clock), if any.
    pub hours_since_success: Option<f64>,
    /// Hours since the first run started, if any.
    pub hours_since_first_run: Option<f64>,
    /// The latest finished run of each type.
    pub latest_finished: &'a [RunSummary],
    pub errors_24h: &'a BTreeMap<String, i64>,
    pub missing_imdb_id: i64,
}

/// The alerts, most severe first (in a fixed order within a severity).
pub fn alerts(i: &AlertInputs<'_>) -> Vec<Alert> {
    let c = i.commands;
    let mut out = Vec::new();
    let mut push = |id: &str, severity, message: String, next: String, command| {
        out.push(Alert {
            id: id.into(),
            severity,
            message,
            next_step: next,
            command,
        })
    };
    for p in i.problems {
        let (id, next) = if p.condition == "CredentialsValid" {
            (
                "credentials",
                "put a valid TMDb API key in the Secret the TmdbSync names (spec.tmdb.apiKeySecretRef); the next run uses it",
            )
        } else {
            (
                "not_ready",
                "fix what the message says; the conditions and events have the details",
            )
        };
        push(
            id,
            Severity::Critical,
            format!("{} is false ({}): {}", p.condition, p.reason, p.message),
            next.into(),
            c.describe_sync(),
        );
    }
    if i.suspended {
        push(
            "paused",
            Severity::Warning,
            "the sync is paused (spec.suspend): no new run starts".into(),
            "resume it when it should run again".into(),
            c.resume(),
        );
    }
    let stalled = match (i.hours_since_success, i.hours_since_first_run) {
        (Some(h), _) => h > i.thresholds.stall_after_hours,
        (None, Some(age)) => age > i.thresholds.stall_after_hours,
        (None, None) => false,
    };
    if stalled && !i.suspended {
        let since = i
            .hours_since_success
            .map_or_else(|| "ever".to_string(), |h| format!("for {h:.0} hours"));
        push(
            "stalled",
            Severity::Critical,
            format!(
                "no bulk or delta run succeeded {since} (threshold {} hours)",
                i.thresholds.stall_after_hours
            ),
            "look at the latest failed run, then start a delta run".into(),
            Some(c.run_now("delta")),
        );
    }
    for run in i.latest_finished.iter().filter(|r| r.failed()) {
        let what = run.message.as_deref().unwrap_or("no message");
        push(
            "run_failed",
            Severity::Warning,
            format!(
                "the latest {} run (#{}{}) failed: {what}",
                run.run_type,
                run.id,
                run.name
                    .as_deref()
                    .map(|n| format!(", {n}"))
                    .unwrap_or_default()
            ),
            "see why it failed; the next scheduled run retries what is left".into(),
            Some(c.describe_run(run)),
        );
    }
    let latest_tmdb = i
        .latest_finished
        .iter()
        .filter(|r| r.run_type != "enrich")
        .max_by_key(|r| r.completed_at);
    if let Some(run) = latest_tmdb {
        let rate = super::status::error_rate_percent(
            run.movies_imported.into(),
            run.movies_updated.into(),
            run.errors.into(),
        );
        if rate > i.thresholds.error_rate_percent {
            push(
                "high_error_rate",
                Severity::Warning,
                format!(
                    "the latest {} run (#{}) failed on {rate:.1}% of its movies (threshold {}%)",
                    run.run_type, run.id, i.thresholds.error_rate_percent
                ),
                "see which movies failed and why; they are retried by the next run".into(),
                Some(c.describe_run(run)),
            );
        }
    }
    if !i.bulk_complete
        && !i.suspended
        && super::status::low_rate(i.today_rate, i.daily_rate, i.thresholds.low_rate_fraction)
    {
        push(
            "low_import_rate",
            Severity::Warning,
            format!(
                "{} movies imported today, under {:.0}% of the 7-day average ({:.0} a day)",
                i.today_rate,
                i.thresholds.low_rate_fraction * 100.0,
                i.daily_rate
            ),
            "check that today's bulk run started and is not waiting on rate limits".into(),
            Some(c.run_now("bulk")),
        );
    }
    if i.tmdb_total == 0 {
        push(
            "no_catalog",
            Severity::Info,
            "no catalog loaded yet: progress and the ETA start after the first catalog run".into(),
            "wait for the scheduled catalog run, or start one".into(),
            Some(c.run_now("catalog")),
        );
    }
    let total_errors: i64 = i.errors_24h.values().sum();
    if total_errors > 0 {
        let by: Vec<String> = i
            .errors_24h
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let auth = i.errors_24h.get("auth").copied().unwrap_or(0) > 0;
        let next = if auth {
            "TMDb or OMDb refused a key: check the API key Secrets"
        } else if i.errors_24h.contains_key("rate_limit") {
            "failed movies are retried by the next run; lower tmdb.requestsPerSecond if rate limits keep coming"
        } else {
            "failed movies are retried by the next run; see the failures of the latest run"
        };
        let latest = i
            .latest_finished
            .iter()
            .filter(|r| r.errors > 0)
            .max_by_key(|r| r.completed_at);
        push(
            "recent_errors",
            if auth {
                Severity::Warning
            } else {
                Severity::Info
            },
            format!(
                "{total_errors} movie {} in the last 24 h ({})",
                if total_errors == 1 { "error" } else { "errors" },
                by.join(", ")
            ),
            next.into(),
            latest.map(|r| c.describe_run(r)),
        );
    }
    if i.not_served > 0 {
        push(
            "not_served",
            Severity::Info,
            format!(
                "{} ids in TMDb's export are not served (404): not counted as remaining",
                i.not_served
            ),
            "nothing to do: they are rechecked weekly".into(),
            None,
        );
    }
    if i.missing_imdb_id > 0 {
        push(
            "missing_imdb_id",
            Severity::Info,
            format!(
                "{} movies missing OMDb data (no IMDb ID)",
                i.missing_imdb_id
            ),
            "nothing to do: OMDb needs an IMDb id; a movie is asked again when TMDb adds one"
                .into(),
            None,
        );
    }
    out.sort_by_key(|a| a.severity);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: i64, run_type: &str, status: &str, imported: i32, errors: i32) -> RunSummary {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-07T10:00:00Z")
            .unwrap()
            .to_utc()
            + chrono::TimeDelta::seconds(id);
        RunSummary {
            id,
            name: Some(format!("cinegraph-{run_type}-{id}")),
            run_type: run_type.into(),
            trigger: "scheduled".into(),
            status: status.into(),
            day: t.date_naive(),
            started_at: t,
            completed_at: Some(t),
            duration_seconds: 0.0,
            pages_processed: 0,
            movies_imported: imported,
            movies_updated: 0,
            movies_skipped: 0,
            movies_deleted: 0,
            errors,
            data_warnings: 0,
            message: Some("boom".into()),
        }
    }

    fn base<'a>(
        commands: &'a Commands,
        runs: &'a [RunSummary],
        errors: &'a BTreeMap<String, i64>,
    ) -> AlertInputs<'a> {
        AlertInputs {
            commands,
            thresholds: AlertThresholds::default(),
            problems: &[],
            suspended: false,
            tmdb_total: 100,
            not_served: 0,
            bulk_complete: false,
            today_rate: 100,
            daily_rate: 100.0,
            hours_since_success: Some(1.0),
            hours_since_first_run: Some(100.0),
            latest_finished: runs,
            errors_24h: errors,
            missing_imdb_id: 0,
        }
    }

    #[test]
    fn a_healthy_sync_has_no_alert() {
        let k = Commands::Local;
        let runs = [run(1, "bulk", "completed", 100, 0)];
        let errors = BTreeMap::new();
        assert_eq!(alerts(&base(&k, &runs, &errors)), vec![]);
    }

    #[test]
    fn each_alert_names_the_next_command() {
        let k = Commands::Kubectl {
            namespace: "media".into(),
            name: "cinegraph".into(),
        };
        let runs = [
            run(1, "bulk", "failed", 10, 5),
            run(2, "delta", "completed", 100, 0),
        ];
        let errors = BTreeMap::from([("rate_limit".to_string(), 3)]);
        let problems = [ConditionProblem {
            condition: "CredentialsValid".into(),
            reason: "AuthFailed".into(),
            message: "TMDb refused the API key".into(),
        }];
        let i = AlertInputs {
            problems: &problems,
            suspended: true,
            hours_since_success: Some(40.0),
            today_rate: 10,
            missing_imdb_id: 4,
            ..base(&k, &runs, &errors)
        };
        let got: Vec<(String, Severity, Option<String>)> = alerts(&i)
            .into_iter()
            .map(|a| (a.id, a.severity, a.command))
            .collect();
        let kubectl = |s: &str| Some(format!("kubectl {s}"));
        assert_eq!(
            got,
            vec![
                (
                    "credentials".into(),
                    Severity::Critical,
                    kubectl("describe tmdbsync cinegraph -n media")
                ),
                (
                    "paused".into(),
                    Severity::Warning,
                    kubectl("tmdbsync resume cinegraph -n media")
                ),
                (
                    "run_failed".into(),
                    Severity::Warning,
                    kubectl("tmdbsync describe cinegraph-bulk-1 -n media")
                ),
                (
                    "recent_errors".into(),
                    Severity::Info,
                    kubectl("tmdbsync describe cinegraph-bulk-1 -n media")
                ),
                ("missing_imdb_id".into(), Severity::Info, None),
            ],
            "a paused sync is neither stalled nor slow; the latest TMDb run (delta) had no errors"
        );
    }

    #[test]
    fn stall_slow_rate_and_error_rate_without_a_cluster() {
        let k = Commands::Local;
        let runs = [run(3, "bulk", "completed", 90, 10)];
        let errors = BTreeMap::new();
        let i = AlertInputs {
            hours_since_success: Some(37.0),
            today_rate: 40,
            ..base(&k, &runs, &errors)
        };
        let got: Vec<(String, Option<String>)> =
            alerts(&i).into_iter().map(|a| (a.id, a.command)).collect();
        assert_eq!(
            got,
            vec![
                (
                    "stalled".into(),
                    Some("tmdbsync run --stages delta".into())
                ),
                (
                    "high_error_rate".into(),
                    Some(
                        "psql \"$DATABASE_URL\" -c 'SELECT category, movie_id, http_status, message FROM sync_errors WHERE run_id = 3'"
                            .into()
                    )
                ),
                (
                    "low_import_rate".into(),
                    Some("tmdbsync run --stages bulk".into())
                ),
            ]
        );
        // A young sync with no success yet is not stalled.
        let young = AlertInputs {
            hours_since_success: None,
            hours_since_first_run: Some(2.0),
            ..base(&k, &runs, &errors)
        };
        assert!(alerts(&young).iter().all(|a| a.id != "stalled"));
    }
}
