//! The TmdbSync's decisions, pure: is the spec usable, which scheduled runs are due (catalog before
//! bulk, each schedule caught up at most once), which finished runs to prune, what the status and
//! its conditions say, and when to look again. The reconciler gathers the inputs (the spec, its
//! secrets, the runs, the Sync Health read from Postgres) and applies what these functions return.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::RunType;
use super::health::SyncHealth;
use super::schedule::Schedule;
use super::status::{self, Phase, PhaseInputs};
use crate::api::conditions::{DesiredCondition, find, merge};
use crate::api::tmdb_sync::{
    DeltaStart, DiscoverStatus, HistorySpec, LastRun, LastRuns, NextRuns, ProgressStatus,
    SideJobStatus, TmdbSyncSpec,
};
use crate::api::{RunPhase, SyncPhase, TmdbSyncStatus};

/// Longest name a TmdbSync may have: run and Job names (`<sync>-catalog-<minute>`) must fit 63.
pub const MAX_NAME: usize = 42;

/// Why a spec cannot be used: the Ready condition's reason and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    /// A problem with `reason` (`InvalidSpec`, `SecretNotFound`).
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Problem {
            reason,
            message: message.into(),
        }
    }
}

/// The schedules of a usable spec.
#[derive(Debug, Clone)]
pub struct Schedules {
    pub bulk: Schedule,
    pub delta: Schedule,
    pub enrich: Schedule,
}

/// Checks what the schema cannot say: the cron schedules in the time zone, the name's length.
pub fn validate(spec: &TmdbSyncSpec, name: &str) -> Result<Schedules, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut parse = |expr: &str| {
        Schedule::parse(expr, &spec.time_zone)
            .map_err(|e| problems.push(Problem::new("InvalidSpec", e.to_string())))
            .ok()
    };
    let bulk = parse(&spec.bulk.schedule);
    let delta = parse(&spec.delta.schedule);
    let enrich = parse(&spec.enrichment.schedule);
    if name.len() > MAX_NAME {
        problems.push(Problem::new(
            "InvalidSpec",
            format!("the name must be at most {MAX_NAME} characters (run names must fit 63)"),
        ));
    }
    match (bulk, delta, enrich) {
        (Some(bulk), Some(delta), Some(enrich)) if problems.is_empty() => Ok(Schedules {
            bulk,
            delta,
            enrich,
        }),
        _ => Err(problems),
    }
}

/// A SyncRun of this TmdbSync as the plan needs it.
#[derive(Debug, Clone, Default)]
pub struct RunView {
    pub name: String,
    pub run_type: Option<RunType>,
    pub phase: Option<RunPhase>,
    /// The scheduled time of a scheduled run (its annotation).
    pub scheduled_at: Option<DateTime<Utc>>,
    /// RFC 3339, as in the run's status.
    pub completed_at: Option<String>,
    pub reason: Option<String>,
    pub imported: i32,
    pub updated: i32,
    pub errors: i32,
}

impl RunView {
    fn finished_at(&self) -> Option<&str> {
        self.phase.filter(|p| p.is_finished())?;
        self.completed_at.as_deref()
    }
}

/// Something a person should see in `kubectl describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub action: &'static str,
    pub message: String,
}

/// A status to write and, when the Ready condition flipped, the event that says so.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: TmdbSyncStatus,
    pub event: Option<Event>,
}

fn ready_changed(previous: &TmdbSyncStatus, status: bool, reason: &str) -> bool {
    let want = if status { "True" } else { "False" };
    find(&previous.conditions, "Ready").is_none_or(|c| c.status != want || c.reason != reason)
}

/// The status of a TmdbSync whose spec or secrets cannot be used: Degraded, Ready=False with the
/// first problem's reason and every message.
pub fn unusable(
    previous: &TmdbSyncStatus,
    problems: &[Problem],
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Outcome {
    let reason = problems.first().map_or("InvalidSpec", |p| p.reason);
    let message = problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let ready = DesiredCondition::new("Ready", false, reason, message.clone());
    Outcome {
        status: TmdbSyncStatus {
            observed_generation: generation,
            phase: Some(SyncPhase::Degraded),
            conditions: merge(&previous.conditions, &[ready], generation, now),
            ..previous.clone()
        },
        event: ready_changed(previous, false, reason).then(|| Event {
            warning: true,
            reason: reason.into(),
            action: "Validate",
            message,
        }),
    }
}

/// The status while the database cannot be reached: everything else as it was, Ready=False.
pub fn database_unavailable(
    previous: &TmdbSyncStatus,
    error: &str,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Outcome {
    let reason = "DatabaseUnavailable";
    let ready = DesiredCondition::new("Ready", false, reason, error);
    Outcome {
        status: TmdbSyncStatus {
            observed_generation: generation,
            conditions: merge(&previous.conditions, &[ready], generation, now),
            ..previous.clone()
        },
        event: ready_changed(previous, false, reason).then(|| Event {
            warning: true,
            reason: reason.into(),
            action: "Connect",
            message: error.into(),
        }),
    }
}

/// What scheduling decided: the runs to create now, in order, and the schedule times to record.
#[derive(Debug, Clone, PartialEq)]
pub struct DueRuns {
    /// `(type, scheduled time)`: a Catalog run always comes before the Bulk run of the same time.
    pub create: Vec<(RunType, DateTime<Utc>)>,
    pub last_schedule_times: NextRuns,
}

/// The scheduled runs due at `now`: per schedule, the latest due time after the last one recorded
/// (in status, on a run, or the TmdbSync's creation), so a missed day is caught up once, not
/// replayed. Nothing is due while suspended.
pub fn due_runs(
    spec: &TmdbSyncSpec,
    schedules: &Schedules,
    previous: &NextRuns,
    runs: &[RunView],
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    bulk_complete: bool,
) -> DueRuns {
    let mut last = previous.clone();
    let mut create = Vec::new();
    if spec.suspend {
        return DueRuns {
            create,
            last_schedule_times: last,
        };
    }
    let delta_enabled =
        spec.delta.enabled && (spec.delta.start_when == DeltaStart::Always || bulk_complete);
    let plans: [(bool, &Schedule, &[RunType], &mut Option<String>); 3] = [
        (
            spec.bulk.enabled,
            &schedules.bulk,
            &[RunType::Catalog, RunType::Bulk],
            &mut last.bulk,
        ),
        (
            delta_enabled,
            &schedules.delta,
            &[RunType::Delta],
            &mut last.delta,
        ),
        (
            enrich_enabled(spec),
            &schedules.enrich,
            &[RunType::Enrich],
            &mut last.enrich,
        ),
    ];
    for (enabled, schedule, types, recorded) in plans {
        if !enabled {
            continue;
        }
        let after = runs
            .iter()
            .filter(|r| r.run_type.is_some_and(|t| types.contains(&t)))
            .filter_map(|r| r.scheduled_at)
            .chain(recorded.as_deref().and_then(parse_time))
            .chain(std::iter::once(created))
            .max()
            .expect("at least the creation time");
        if let Some(due) = schedule.latest_due(after, now) {
            create.extend(types.iter().map(|t| (*t, due)));
            *recorded = Some(rfc3339(due));
        }
    }
    DueRuns {
        create,
        last_schedule_times: last,
    }
}

/// Whether any enrichment stage is enabled.
pub fn enrich_enabled(spec: &TmdbSyncSpec) -> bool {
    let e = &spec.enrichment;
    e.omdb.enabled || e.collaborations.enabled || e.person_quality_score.enabled
}

/// Finished runs beyond the history limits, per type and outcome, oldest first.
pub fn runs_to_prune(history: &HistorySpec, runs: &[RunView]) -> Vec<String> {
    let mut prune = Vec::new();
    for t in [
        RunType::Catalog,
        RunType::Bulk,
        RunType::Delta,
        RunType::Enrich,
    ] {
        for (phase, keep) in [
            (RunPhase::Succeeded, history.successful_runs_limit),
            (RunPhase::Failed, history.failed_runs_limit),
        ] {
            let mut done: Vec<(&str, &str)> = runs
                .iter()
                .filter(|r| r.run_type == Some(t) && r.phase == Some(phase))
                .filter_map(|r| r.finished_at().map(|at| (at, r.name.as_str())))
                .collect();
            done.sort();
            let excess = done.len().saturating_sub(keep.max(0) as usize);
            prune.extend(done.into_iter().take(excess).map(|(_, n)| n.to_string()));
        }
    }
    prune
}

/// The latest finished run of each type.
pub fn last_runs(runs: &[RunView]) -> LastRuns {
    let latest = |t: RunType| {
        runs.iter()
            .filter(|r| r.run_type == Some(t))
            .filter_map(|r| r.finished_at().map(|at| (at, r)))
            .max_by(|a, b| a.0.cmp(b.0))
            .map(|(at, r)| LastRun {
                name: r.name.clone(),
                phase: r.phase.unwrap_or(RunPhase::Failed),
                completed_at: Some(at.to_string()),
            })
    };
    LastRuns {
        catalog: latest(RunType::Catalog),
        bulk: latest(RunType::Bulk),
        delta: latest(RunType::Delta),
        enrich: latest(RunType::Enrich),
    }
}

/// The next due time per type (catalog and bulk share the bulk schedule).
pub fn next_runs(spec: &TmdbSyncSpec, schedules: &Schedules, now: DateTime<Utc>) -> NextRuns {
    let next = |enabled: bool, s: &Schedule| s.next_after(now).filter(|_| enabled).map(rfc3339);
    NextRuns {
        catalog: next(spec.bulk.enabled, &schedules.bulk),
        bulk: next(spec.bulk.enabled, &schedules.bulk),
        delta: next(spec.delta.enabled, &schedules.delta),
        enrich: next(enrich_enabled(spec), &schedules.enrich),
    }
}

/// What the status of a usable TmdbSync is computed from.
#[derive(Debug, Clone)]
pub struct StatusInputs<'a> {
    pub spec: &'a TmdbSyncSpec,
    pub schedules: &'a Schedules,
    pub previous: &'a TmdbSyncStatus,
    pub runs: &'a [RunView],
    pub health: &'a SyncHealth,
    pub last_schedule_times: NextRuns,
    pub created: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub generation: Option<i64>,
}

/// The status of a usable TmdbSync: phase, progress, last and next runs, side jobs and the five
/// conditions; an event when it recovered from not Ready.
pub fn reconciled(i: StatusInputs<'_>) -> Outcome {
    let health = i.health;
    let last = last_runs(i.runs);
    let latest_tmdb_run = i
        .runs
        .iter()
        .filter(|r| r.run_type != Some(RunType::Enrich))
        .filter(|r| r.phase.is_some_and(RunPhase::is_finished))
        .max_by_key(|r| r.completed_at.clone());
    let credentials_refused =
        latest_tmdb_run.is_some_and(|r| r.reason.as_deref() == Some("AuthFailed"));
    let phase = status::phase(PhaseInputs {
        spec_usable: true,
        suspended: i.spec.suspend,
        catalog_loaded: health.tmdb_total > 0,
        bulk_complete: health.bulk_complete(),
        credentials_refused,
    });
    let since_success = [&last.bulk, &last.delta]
        .into_iter()
        .flatten()
        .filter(|r| r.phase == RunPhase::Succeeded)
        .filter_map(|r| r.completed_at.as_deref().and_then(parse_time))
        .max()
        .map(|t| hours(i.now - t));
    let error_rate = latest_tmdb_run.map_or(0.0, |r| {
        status::error_rate_percent(r.imported.into(), r.updated.into(), r.errors.into())
    });
    let desired = conditions(
        i.spec,
        health,
        credentials_refused,
        status::stalled(
            since_success,
            hours(i.now - i.created),
            i.spec.alerts.stall_after_hours as f64,
        ),
        error_rate,
    );
    let status = TmdbSyncStatus {
        observed_generation: i.generation,
        phase: Some(sync_phase(phase)),
        progress: Some(progress(health)),
        last_runs: Some(last),
        next_runs: Some(next_runs(i.spec, i.schedules, i.now)),
        last_schedule_times: Some(i.last_schedule_times),
        side_jobs: side_jobs(i.spec, &health.side_jobs.stages),
        discover: health.discover.as_ref().map(discover_status),
        conditions: merge(&i.previous.conditions, &desired, i.generation, i.now),
        last_handled_reset_at: i.previous.last_handled_reset_at.clone(),
    };
    let recovered =
        ready_changed(i.previous, true, "Reconciled") && !i.previous.conditions.is_empty();
    Outcome {
        status,
        event: recovered.then(|| Event {
            warning: false,
            reason: "Reconciled".into(),
            action: "Validate",
            message: READY_MESSAGE.into(),
        }),
    }
}

/// Each enrichment stage's completion; a stage turned off in the spec says `enabled: false` and
/// shows no percentage (a disabled stage is not 0 % done, it is not being done).
pub fn side_jobs(
    spec: &TmdbSyncSpec,
    stages: &[super::enrich::SideJobProgress],
) -> Vec<SideJobStatus> {
    stages
        .iter()
        .map(|j| {
            let enabled = stage_enabled(spec, j.stage);
            SideJobStatus {
                stage: j.stage.as_str().into(),
                enabled,
                completed: j.done,
                total: j.total,
                percent: enabled.then_some(j.percent),
            }
        })
        .collect()
}

/// Whether the spec turns enrichment `stage` on.
pub fn stage_enabled(spec: &TmdbSyncSpec, stage: super::enrich::EnrichStage) -> bool {
    use super::enrich::EnrichStage;
    let e = &spec.enrichment;
    match stage {
        EnrichStage::Omdb => e.omdb.enabled,
        EnrichStage::Collaborations => e.collaborations.enabled,
        EnrichStage::Pqs => e.person_quality_score.enabled,
    }
}

const READY_MESSAGE: &str = "spec, secrets and database are usable";

fn conditions(
    spec: &TmdbSyncSpec,
    health: &SyncHealth,
    credentials_refused: bool,
    stalled: bool,
    error_rate: f64,
) -> Vec<DesiredCondition> {
    let alerts = &spec.alerts;
    let low_rate = !health.bulk_complete()
        && status::low_rate(
            health.today_rate,
            health.daily_rate,
            alerts.low_rate_fraction,
        );
    let high_errors = error_rate > alerts.error_rate_percent;
    vec![
        DesiredCondition::new("Ready", true, "Reconciled", READY_MESSAGE),
        if credentials_refused {
            DesiredCondition::new(
                "CredentialsValid",
                false,
                "AuthFailed",
                "TMDb refused the API key in the latest run",
            )
        } else {
            DesiredCondition::new(
                "CredentialsValid",
                true,
                "Accepted",
                "no run was refused by TMDb",
            )
        },
        DesiredCondition::new(
            "Stalled",
            stalled,
            if stalled {
                "NoRecentSuccess"
            } else {
                "RecentSuccess"
            },
            format!(
                "{} successful bulk or delta run within {} hours",
                if stalled { "no" } else { "a" },
                alerts.stall_after_hours
            ),
        ),
        DesiredCondition::new(
            "HighErrorRate",
            high_errors,
            if high_errors {
                "ErrorRateAboveThreshold"
            } else {
                "ErrorRateOk"
            },
            format!(
                "latest run error rate {error_rate:.1}% (threshold {}%)",
                alerts.error_rate_percent
            ),
        ),
        DesiredCondition::new(
            "LowImportRate",
            low_rate,
            if low_rate { "BelowAverage" } else { "RateOk" },
            format!(
                "today {} vs 7-day average {:.0} movies/day",
                health.today_rate, health.daily_rate
            ),
        ),
    ]
}

fn sync_phase(phase: Phase) -> SyncPhase {
    match phase {
        Phase::Pending => SyncPhase::Pending,
        Phase::Bootstrapping => SyncPhase::Bootstrapping,
        Phase::Maintaining => SyncPhase::Maintaining,
        Phase::Suspended => SyncPhase::Suspended,
        Phase::Degraded => SyncPhase::Degraded,
    }
}

fn progress(health: &SyncHealth) -> ProgressStatus {
    ProgressStatus {
        tmdb_total: health.tmdb_total,
        imported: health.imported,
        not_served: health.not_served,
        remaining: health.remaining,
        percent_complete: health.percent_complete,
        total_pages: health.total_pages,
        last_page_processed: health.last_page_processed,
        daily_rate: health.daily_rate,
        estimated_days_remaining: health.estimated_days_remaining,
        estimated_completion: health.estimated_completion.map(|d| d.to_string()),
    }
}

/// The latest Discover walk's coverage as the TmdbSync status shows it.
fn discover_status(c: &super::discover::DiscoverCoverage) -> DiscoverStatus {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    DiscoverStatus {
        date: c.date.map(|d| d.to_string()),
        listed: count(c.listed),
        reported: count(c.reported),
        not_reachable: count(c.not_reachable),
        export_ids: c.export.as_ref().map(|e| count(e.ids)),
        export_ids_not_reachable: c.export.as_ref().map(|e| count(e.not_reachable)),
        message: c.summary(),
    }
}

/// When to look again: the earliest next due time (a second after it), at most 5 minutes away.
pub fn wake(next: &NextRuns, now: DateTime<Utc>) -> Duration {
    [
        next.bulk.as_deref(),
        next.delta.as_deref(),
        next.enrich.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter_map(parse_time)
    .min()
    .map_or(Duration::from_secs(300), |t| {
        Duration::from_secs(((t - now).num_seconds().max(0) as u64 + 1).min(300))
    })
}

fn hours(d: chrono::TimeDelta) -> f64 {
    d.num_seconds() as f64 / 3600.0
}

/// An RFC 3339 time as the resources write it, or `None`.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A time as the resources write it (RFC 3339, whole seconds, `Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::to_time;
    use crate::api::tmdb_sync::{CatalogSource, TmdbSyncSpec};

    fn spec() -> TmdbSyncSpec {
        serde_json::from_value(serde_json::json!({
            "tmdb": {"apiKeySecretRef": {"name": "tmdb", "key": "api-key"}},
            "database": {"urlSecretRef": {"name": "db", "key": "url"}},
        }))
        .expect("a minimal spec")
    }

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s).expect("time")
    }

    fn run(name: &str, t: RunType, phase: RunPhase, completed: &str) -> RunView {
        RunView {
            name: name.into(),
            run_type: Some(t),
            phase: Some(phase),
            completed_at: Some(completed.into()),
            ..Default::default()
        }
    }

    #[test]
    fn validation_cases() {
        type Case = (
            &'static str,
            fn(&mut TmdbSyncSpec),
            &'static str,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            ("a default spec → usable", |_| {}, "cinegraph", None),
            (
                "invalid cron → InvalidSpec",
                |s| s.bulk.schedule = "61 * * * *".into(),
                "cinegraph",
                Some("InvalidSpec"),
            ),
            (
                "unknown time zone → InvalidSpec",
                |s| s.time_zone = "Mars/Olympus".into(),
                "cinegraph",
                Some("InvalidSpec"),
            ),
            (
                "name past 42 characters → InvalidSpec",
                |_| {},
                "a-name-that-is-much-too-long-for-run-names-x",
                Some("InvalidSpec"),
            ),
            (
                "discover source → usable",
                |s| s.bulk.source = CatalogSource::Discover,
                "cinegraph",
                None,
            ),
        ];
        for (case, edit, name, want) in cases {
            let mut s = spec();
            edit(&mut s);
            let got = validate(&s, name).err().map(|p| p[0].reason);
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn scheduling_cases() {
        let created = at("2026-03-01T00:00:00Z");
        let now = at("2026-03-03T02:30:00Z");
        type Edit = fn(&mut TmdbSyncSpec);
        type Case = (
            &'static str,
            Edit,
            Vec<RunView>,
            bool,
            Vec<(RunType, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "catalog due and bulk due → catalog first; delta (Always) and enrich not yet due",
                |_| {},
                vec![],
                false,
                vec![
                    (RunType::Catalog, "2026-03-03T02:00:00Z"),
                    (RunType::Bulk, "2026-03-03T02:00:00Z"),
                    (RunType::Delta, "2026-03-02T04:00:00Z"),
                    (RunType::Enrich, "2026-03-02T05:00:00Z"),
                ],
            ),
            (
                "suspended → no new run",
                |s| s.suspend = true,
                vec![],
                false,
                vec![],
            ),
            (
                "bulk disabled → no catalog or bulk run",
                |s| s.bulk.enabled = false,
                vec![],
                false,
                vec![
                    (RunType::Delta, "2026-03-02T04:00:00Z"),
                    (RunType::Enrich, "2026-03-02T05:00:00Z"),
                ],
            ),
            (
                "delta after bulk, bulk incomplete → no delta",
                |s| {
                    s.delta.start_when = DeltaStart::AfterBulk;
                    s.enrichment.omdb.enabled = false;
                    s.enrichment.collaborations.enabled = false;
                    s.enrichment.person_quality_score.enabled = false;
                },
                vec![],
                false,
                vec![
                    (RunType::Catalog, "2026-03-03T02:00:00Z"),
                    (RunType::Bulk, "2026-03-03T02:00:00Z"),
                ],
            ),
            (
                "a run already made for the due time → not made again",
                |s| {
                    s.delta.enabled = false;
                    s.enrichment.collaborations.enabled = false;
                    s.enrichment.person_quality_score.enabled = false;
                },
                vec![RunView {
                    name: "x-bulk-202603030200".into(),
                    run_type: Some(RunType::Bulk),
                    scheduled_at: Some(at("2026-03-03T02:00:00Z")),
                    ..Default::default()
                }],
                false,
                vec![],
            ),
        ];
        for (case, edit, runs, bulk_complete, want) in cases {
            let mut s = spec();
            edit(&mut s);
            let schedules = validate(&s, "x").expect("valid");
            let due = due_runs(
                &s,
                &schedules,
                &NextRuns::default(),
                &runs,
                created,
                now,
                bulk_complete,
            );
            let got: Vec<(RunType, String)> =
                due.create.iter().map(|(t, d)| (*t, rfc3339(*d))).collect();
            let want: Vec<(RunType, String)> =
                want.into_iter().map(|(t, d)| (t, d.to_string())).collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn a_missed_week_is_caught_up_once() {
        let s = spec();
        let schedules = validate(&s, "x").unwrap();
        let last = NextRuns {
            bulk: Some("2026-03-01T02:00:00Z".into()),
            delta: Some("2026-03-01T04:00:00Z".into()),
            enrich: Some("2026-03-01T05:00:00Z".into()),
            ..Default::default()
        };
        let now = at("2026-03-08T03:00:00Z");
        let due = due_runs(
            &s,
            &schedules,
            &last,
            &[],
            at("2026-01-01T00:00:00Z"),
            now,
            false,
        );
        let bulk: Vec<_> = due
            .create
            .iter()
            .filter(|(t, _)| *t == RunType::Bulk)
            .collect();
        assert_eq!(bulk.len(), 1, "one bulk run for seven missed days");
        assert_eq!(
            due.last_schedule_times.bulk.as_deref(),
            Some("2026-03-08T02:00:00Z")
        );
    }

    #[test]
    fn pruning_keeps_the_newest_per_type_and_outcome() {
        let mut history = spec().history;
        history.successful_runs_limit = 2;
        history.failed_runs_limit = 1;
        let runs = vec![
            run(
                "b1",
                RunType::Bulk,
                RunPhase::Succeeded,
                "2026-03-01T03:00:00Z",
            ),
            run(
                "b2",
                RunType::Bulk,
                RunPhase::Succeeded,
                "2026-03-02T03:00:00Z",
            ),
            run(
                "b3",
                RunType::Bulk,
                RunPhase::Succeeded,
                "2026-03-03T03:00:00Z",
            ),
            run(
                "f1",
                RunType::Bulk,
                RunPhase::Failed,
                "2026-03-01T03:30:00Z",
            ),
            run(
                "f2",
                RunType::Bulk,
                RunPhase::Failed,
                "2026-03-02T03:30:00Z",
            ),
            run(
                "d1",
                RunType::Delta,
                RunPhase::Succeeded,
                "2026-03-01T05:00:00Z",
            ),
            RunView {
                name: "running".into(),
                run_type: Some(RunType::Bulk),
                phase: Some(RunPhase::Running),
                ..Default::default()
            },
        ];
        assert_eq!(runs_to_prune(&history, &runs), vec!["b1", "f1"]);
    }

    #[test]
    fn wake_at_the_next_due_time_or_within_five_minutes() {
        let now = at("2026-03-03T01:59:00Z");
        let next = NextRuns {
            bulk: Some("2026-03-03T02:00:00Z".into()),
            ..Default::default()
        };
        assert_eq!(wake(&next, now), Duration::from_secs(61));
        assert_eq!(wake(&NextRuns::default(), now), Duration::from_secs(300));
    }

    #[test]
    fn the_status_shows_what_the_discover_walk_could_not_reach() {
        use crate::plan::discover::{DiscoverCoverage, ExportComparison};
        use crate::plan::health::{HealthInputs, SyncHealth};
        let mut s = spec();
        s.bulk.source = CatalogSource::Discover;
        let schedules = validate(&s, "cinegraph").expect("usable");
        let now = at("2026-03-03T02:00:00Z");
        let coverage = DiscoverCoverage {
            date: Some(now.date_naive()),
            reported: 1_000,
            listed: 900,
            export: Some(ExportComparison {
                file: "movie_ids_03_03_2026.json.gz".into(),
                ids: 1_020,
                not_reachable: 120,
            }),
            ..Default::default()
        }
        .with_counts();
        let mut health = SyncHealth::compute(
            &HealthInputs {
                tmdb_total: 900,
                discover: Some(coverage),
                ..Default::default()
            },
            now.date_naive(),
        );
        let status = |health: &SyncHealth| {
            reconciled(StatusInputs {
                spec: &s,
                schedules: &schedules,
                previous: &TmdbSyncStatus::default(),
                runs: &[],
                health,
                last_schedule_times: NextRuns::default(),
                created: now,
                now,
                generation: Some(1),
            })
            .status
        };
        let d = status(&health).discover.expect("discover status");
        assert_eq!((d.listed, d.reported, d.not_reachable), (900, 1_000, 100));
        assert_eq!(
            (d.export_ids, d.export_ids_not_reachable),
            (Some(1_020), Some(120))
        );
        assert_eq!(d.date.as_deref(), Some("2026-03-03"));
        assert!(
            d.message
                .contains("120 export ids not reachable by discover")
        );
        health.discover = None;
        assert_eq!(status(&health).discover, None, "export catalogs show none");
    }

    #[test]
    fn unusable_spec_is_degraded_and_says_so_once() {
        let now = at("2026-03-03T02:00:00Z");
        let problems = [
            Problem::new("SecretNotFound", "TMDb API key: secret tmdb not found"),
            Problem::new("SecretNotFound", "database URL: secret db not found"),
        ];
        let first = unusable(&TmdbSyncStatus::default(), &problems, Some(3), now);
        assert_eq!(first.status.phase, Some(SyncPhase::Degraded));
        let ready = find(&first.status.conditions, "Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "SecretNotFound")
        );
        assert!(ready.message.contains("database URL"));
        assert!(first.event.as_ref().is_some_and(|e| e.warning));
        let again = unusable(&first.status, &problems, Some(3), now);
        assert_eq!(again.event, None, "no second event for the same reason");
    }

    #[test]
    fn every_status_path_reports_the_current_generation_and_keeps_the_other_conditions() {
        let t0 = at("2026-03-01T00:00:00Z");
        let now = at("2026-03-03T02:00:00Z");
        let earlier = TmdbSyncStatus {
            observed_generation: Some(1),
            phase: Some(SyncPhase::Bootstrapping),
            conditions: merge(
                &[],
                &[
                    DesiredCondition::new("Ready", true, "Reconciled", "ok"),
                    DesiredCondition::new("Stalled", true, "NoRecentSuccess", "none"),
                ],
                Some(1),
                t0,
            ),
            ..Default::default()
        };
        let problems = [Problem::new("InvalidSpec", "bad cron")];
        let paths = [
            ("unusable spec", unusable(&earlier, &problems, Some(4), now)),
            (
                "database unavailable",
                database_unavailable(&earlier, "connection refused", Some(4), now),
            ),
        ];
        for (case, outcome) in paths {
            let st = outcome.status;
            assert_eq!(st.observed_generation, Some(4), "{case}");
            let ready = find(&st.conditions, "Ready").unwrap();
            assert_eq!(
                (ready.status.as_str(), ready.observed_generation),
                ("False", Some(4)),
                "{case}"
            );
            assert_eq!(ready.last_transition_time, to_time(now), "{case}");
            let stalled = find(&st.conditions, "Stalled").expect("Stalled kept");
            assert_eq!(
                (stalled.status.as_str(), stalled.observed_generation),
                ("True", Some(1)),
                "{case}: kept as it was last evaluated"
            );
            assert_eq!(stalled.last_transition_time, to_time(t0), "{case}");
        }
    }

    #[test]
    fn disabled_side_jobs_say_so_instead_of_zero_percent() {
        use crate::plan::enrich::{EnrichStage, SideJobProgress};
        let stage = |stage: EnrichStage, done, percent| SideJobProgress {
            stage,
            label: stage.label().to_string(),
            done,
            total: 300,
            percent,
            enabled: true,
        };
        let stages = [
            stage(EnrichStage::Omdb, 0, 0.0),
            stage(EnrichStage::Collaborations, 300, 100.0),
            stage(EnrichStage::Pqs, 150, 50.0),
        ];
        let mut s = spec();
        s.enrichment.person_quality_score.enabled = false;
        let got: Vec<(String, bool, i64, Option<f64>)> = side_jobs(&s, &stages)
            .into_iter()
            .map(|j| (j.stage, j.enabled, j.completed, j.percent))
            .collect();
        assert_eq!(
            got,
            [
                ("omdb".to_string(), false, 0, None),
                ("collaborations".to_string(), true, 300, Some(100.0)),
                ("pqs".to_string(), false, 150, None),
            ],
            "OMDb is off by default; PQS turned off here"
        );
    }
}
