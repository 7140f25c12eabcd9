//! What the cluster says, turned into the Sync Health model's inputs: a TmdbSync and its SyncRuns
//! become [`HealthInputs`] and [`ReportInputs`], so the plugin renders the same [`SyncHealth`] and
//! [`SyncReport`] as the terminal panel and the web page. Pure: no API calls.
//!
//! What the cluster cannot say is left out rather than guessed: the export date and delta
//! watermark, errors by category, movies without an imdb id; the days and runs are those of the
//! SyncRuns still kept (`spec.history` prunes older ones), while progress, rate and ETA come from
//! the controller's status, which it computes from the whole database.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use kube::ResourceExt;

use crate::api::tmdb_sync::ProgressStatus;
use crate::api::{RunPhase, SyncRun, TmdbSync};
use crate::plan::enrich::{EnrichStage, SideJobCounts};
use crate::plan::health::{
    ClockSource, DayStats, EtaState, HealthInputs, Pause, ReportInputs, RunSummary, SyncHealth,
};

/// When a run started: its Job's creation (`status.startedAt`), else the run's creation.
pub fn started_at(run: &SyncRun) -> Option<DateTime<Utc>> {
    run.status
        .as_ref()
        .and_then(|s| s.started_at.as_deref())
        .and_then(parse_time)
        .or_else(|| {
            run.creation_timestamp()
                .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
        })
}

/// An RFC 3339 time.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc())
}

/// The run's phase, `Pending` before the controller saw it.
pub fn phase(run: &SyncRun) -> RunPhase {
    run.status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(RunPhase::Pending)
}

/// A SyncRun as the panel and the report list runs. `id` is the `sync_runs.id` the controller
/// mirrors into `status.runId`, 0 before the run's Job has opened its row.
pub fn run_summary(run: &SyncRun, now: DateTime<Utc>) -> RunSummary {
    let status = run.status.clone().unwrap_or_default();
    let started = started_at(run).unwrap_or(now);
    let completed = status.completed_at.as_deref().and_then(parse_time);
    RunSummary {
        id: status.run_id.unwrap_or(0),
        name: Some(run.name_any()),
        run_type: format!("{:?}", run.spec.run_type).to_lowercase(),
        trigger: format!("{:?}", run.spec.trigger).to_lowercase(),
        status: match phase(run) {
            RunPhase::Pending => "pending",
            RunPhase::Running => "running",
            RunPhase::Succeeded => "completed",
            RunPhase::Failed => "failed",
        }
        .into(),
        day: started.date_naive(),
        started_at: started,
        completed_at: completed,
        duration_seconds: (completed.unwrap_or(now) - started).num_seconds().max(0) as f64,
        pages_processed: status.pages_processed,
        movies_imported: status.movies_imported,
        movies_updated: status.movies_updated,
        movies_skipped: status.movies_skipped,
        movies_deleted: status.movies_deleted,
        errors: status.errors,
        data_warnings: status.data_warnings,
        message: status.message,
    }
}

/// Per-day totals of the runs that started (a pending run has not, and counts nowhere).
fn day_stats(runs: &[RunSummary]) -> Vec<DayStats> {
    let mut days: BTreeMap<NaiveDate, DayStats> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.status != "pending") {
        let d = days.entry(r.day).or_insert_with(|| DayStats {
            day: r.day,
            ..Default::default()
        });
        d.imported += i64::from(r.movies_imported);
        d.updated += i64::from(r.movies_updated);
        d.skipped += i64::from(r.movies_skipped);
        d.deleted += i64::from(r.movies_deleted);
        d.errors += i64::from(r.errors);
        d.runs += 1;
        d.failed_runs += i64::from(r.status == "failed");
        d.running_runs += i64::from(r.status == "running");
    }
    days.into_values().collect()
}

/// The runs of `sync` among `runs` (by `spec.syncRef`), newest first.
pub fn runs_of<'a>(sync: &TmdbSync, runs: &'a [SyncRun]) -> Vec<&'a SyncRun> {
    let mut mine: Vec<&SyncRun> = runs
        .iter()
        .filter(|r| r.spec.sync_ref.name == sync.name_any())
        .collect();
    mine.sort_by_key(|r| std::cmp::Reverse((started_at(r), r.name_any())));
    mine
}

/// The Sync Health's inputs from a TmdbSync and its runs (any order), at `now`.
pub fn health_inputs(sync: &TmdbSync, runs: &[SyncRun], now: DateTime<Utc>) -> HealthInputs {
    let status = sync.status.clone().unwrap_or_default();
    let progress = status.progress.clone().unwrap_or_default();
    let summaries: Vec<RunSummary> = runs_of(sync, runs)
        .into_iter()
        .map(|r| run_summary(r, now))
        .collect();
    let started: Vec<&RunSummary> = summaries.iter().filter(|r| r.status != "pending").collect();
    let mut latest_finished: Vec<RunSummary> = Vec::new();
    for r in &started {
        if r.completed_at.is_some() && !latest_finished.iter().any(|l| l.run_type == r.run_type) {
            latest_finished.push((*r).clone());
        }
    }
    let last_success_at = started
        .iter()
        .filter(|r| r.status == "completed" && matches!(r.run_type.as_str(), "bulk" | "delta"))
        .filter_map(|r| r.completed_at)
        .max();
    let side_job_counts = status
        .side_jobs
        .iter()
        .map(|j| SideJobCounts {
            stage: serde_json::from_value::<EnrichStage>(serde_json::json!(j.stage)).ok(),
            done: j.completed,
            total: j.total,
        })
        .collect();
    HealthInputs {
        now,
        clock: ClockSource::Cluster,
        tmdb_total: progress.tmdb_total,
        imported: progress.imported,
        not_served: progress.not_served,
        total_pages: progress.total_pages,
        last_page_processed: progress.last_page_processed,
        export_date: None,
        delta_watermark: None,
        days: day_stats(&summaries),
        // The cluster does not say since when: a paused sync marks today.
        pauses: if sync.spec.suspend {
            vec![Pause {
                from: now,
                until: None,
            }]
        } else {
            vec![]
        },
        first_run_at: started.iter().map(|r| r.started_at).min(),
        last_success_at,
        errors_24h: BTreeMap::new(),
        recent_runs: summaries.iter().take(20).cloned().collect(),
        latest_finished,
        side_job_counts,
        missing_imdb_id: 0,
        discover: None,
    }
}

/// Takes the rate and the estimate from the controller's status (computed from the whole
/// database) over the ones the kept runs allow.
pub fn apply_progress(h: &mut SyncHealth, p: &ProgressStatus) {
    if p.tmdb_total == 0 && p.imported == 0 {
        return;
    }
    h.daily_rate = p.daily_rate;
    if h.eta.state == EtaState::Complete {
        return;
    }
    if let (Some(days), Some(date)) = (
        p.estimated_days_remaining,
        p.estimated_completion
            .as_deref()
            .and_then(|d| d.parse::<NaiveDate>().ok()),
    ) {
        h.estimated_days_remaining = Some(days);
        h.estimated_completion = Some(date);
        h.eta.state = EtaState::Estimated;
        h.eta.text = format!("{} (~{days} days)", date.format("%B %-d, %Y"));
    }
}

/// The Sync Health of `sync` from what the cluster says.
pub fn health(sync: &TmdbSync, runs: &[SyncRun], now: DateTime<Utc>) -> SyncHealth {
    let inputs = health_inputs(sync, runs, now);
    let facts = crate::plan::facts::sync_facts(sync);
    let mut h = SyncHealth::build(&inputs, &facts);
    if let Some(p) = sync.status.as_ref().and_then(|s| s.progress.as_ref()) {
        apply_progress(&mut h, p);
    }
    h
}

/// The report's inputs over the runs kept in the cluster.
pub fn report_inputs(sync: &TmdbSync, runs: &[SyncRun], now: DateTime<Utc>) -> ReportInputs {
    let inputs = health_inputs(sync, runs, now);
    let all: Vec<RunSummary> = runs_of(sync, runs)
        .into_iter()
        .map(|r| run_summary(r, now))
        .filter(|r| r.status != "pending")
        .collect();
    ReportInputs {
        now,
        clock: ClockSource::Cluster,
        days: inputs.days,
        pauses: inputs.pauses,
        runs: all,
    }
}

/// The first day `days` days back from `now` (for `--since`).
pub fn since_day(now: DateTime<Utc>, days: u64) -> NaiveDate {
    now.date_naive() - Days::new(days)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sync(status: serde_json::Value, suspend: bool) -> TmdbSync {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tmdbsync.io/v1alpha1", "kind": "TmdbSync",
            "metadata": {"name": "cinegraph", "namespace": "media"},
            "spec": {
                "tmdb": {"apiKeySecretRef": {"name": "tmdb", "key": "api-key"}},
                "database": {"urlSecretRef": {"name": "db", "key": "url"}},
                "suspend": suspend
            },
            "status": status
        }))
        .unwrap()
    }

    pub(crate) fn run(name: &str, ty: &str, phase: &str, started: &str, imported: i32) -> SyncRun {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
            "metadata": {"name": name, "namespace": "media"},
            "spec": {"syncRef": {"name": "cinegraph"}, "type": ty, "trigger": "Scheduled"},
            "status": {"phase": phase, "startedAt": started,
                       "completedAt": if phase == "Running" { serde_json::Value::Null } else { serde_json::json!(started.replace("02:00", "02:10")) },
                       "pagesProcessed": 5, "moviesImported": imported, "errors": 1}
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        parse_time("2026-03-07T12:00:00Z").unwrap()
    }

    #[test]
    fn runs_become_days_and_the_status_gives_progress_and_eta() {
        let s = sync(
            serde_json::json!({"phase": "Bootstrapping", "progress": {
                "tmdbTotal": 1000, "imported": 400, "remaining": 600, "percentComplete": 40.0,
                "totalPages": 50, "lastPageProcessed": 20, "dailyRate": 100.0,
                "estimatedDaysRemaining": 6.0, "estimatedCompletion": "2026-03-13"},
                "sideJobs": [{"stage": "pqs", "enabled": true, "completed": 5, "total": 10}]}),
            false,
        );
        let runs = [
            run(
                "cinegraph-bulk-1",
                "Bulk",
                "Succeeded",
                "2026-03-06T02:00:00Z",
                100,
            ),
            run(
                "cinegraph-bulk-2",
                "Bulk",
                "Failed",
                "2026-03-07T02:00:00Z",
                50,
            ),
            run("other", "Bulk", "Succeeded", "2026-03-07T02:00:00Z", 7),
        ];
        let mut other = runs[2].clone();
        other.spec.sync_ref.name = "else".into();
        let runs = [runs[0].clone(), runs[1].clone(), other];
        let h = health(&s, &runs, now());
        assert_eq!(
            (h.imported, h.remaining, h.percent_complete),
            (400, 600, 40.0)
        );
        assert_eq!(h.daily_rate, 100.0);
        assert_eq!(h.eta.text, "March 13, 2026 (~6 days)");
        assert_eq!(h.sync.phase.as_deref(), Some("Bootstrapping"));
        assert_eq!(h.clock, ClockSource::Cluster);
        let last2: Vec<(i64, i64)> = h.last_7_days[5..]
            .iter()
            .map(|d| (d.imported, d.failed_runs))
            .collect();
        assert_eq!(last2, [(100, 0), (50, 1)]);
        let names: Vec<_> = h.runs.iter().map(|r| r.name.clone().unwrap()).collect();
        assert_eq!(names, ["cinegraph-bulk-2", "cinegraph-bulk-1"]);
        assert_eq!(h.side_jobs.stages.len(), 1);
        assert!(
            h.alerts.iter().any(|a| a.id == "run_failed"),
            "{:?}",
            h.alerts
        );
    }

    #[test]
    fn a_paused_sync_marks_today_and_alerts_with_the_resume_command() {
        let h = health(
            &sync(serde_json::json!({"phase": "Suspended"}), true),
            &[],
            now(),
        );
        assert_eq!(h.history.last().unwrap().status.as_str(), "paused");
        let paused = h.alerts.iter().find(|a| a.id == "paused").unwrap();
        assert_eq!(
            paused.command.as_deref(),
            Some("kubectl tmdbsync resume cinegraph -n media")
        );
    }

    #[test]
    fn a_report_has_every_day_and_the_started_runs() {
        let s = sync(serde_json::json!({}), false);
        let mut runs = [
            run("a", "Delta", "Succeeded", "2026-03-05T02:00:00Z", 3),
            run("b", "Bulk", "Running", "2026-03-07T02:00:00Z", 4),
        ];
        // The controller mirrors the row's id once the Job opened it; before, the id is 0.
        runs[0].status.as_mut().unwrap().run_id = Some(41);
        let r = crate::plan::health::SyncReport::build(
            &report_inputs(&s, &runs, now()),
            &crate::plan::facts::sync_facts(&s),
            30,
        );
        assert_eq!(r.day_rows.len(), 30);
        let ids: Vec<(i64, Option<&str>)> = r
            .run_rows
            .iter()
            .map(|r| (r.id, r.name.as_deref()))
            .collect();
        assert_eq!(ids, [(41, Some("a")), (0, Some("b"))]);
        assert_eq!(r.totals.imported, 7);
        assert_eq!(r.day_rows.last().unwrap().status.as_str(), "running");
    }
}
