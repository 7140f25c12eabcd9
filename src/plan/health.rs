//! Sync Health: the one model of a sync's state that every face renders — the terminal panel
//! (`crate::report`), the web page and its downloads (`crate::web`), and their JSON (`tmdbsync
//! status -o json` and the page's `health.json` are this struct serialised with serde, field for
//! field). [`SyncHealth::build`] makes it from what the store gathers ([`HealthInputs`],
//! `store::health::health_inputs`) and, in a cluster, what the TmdbSync says ([`SyncFacts`]).
//!
//! One clock: "today", the 7-day table, the 30-day history and the daily rate are TMDb's days
//! (the engine reads TMDb's `Date` header, so the simulator's day in tests and the demo), never
//! the machine's.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::alerts::{self, Alert, AlertInputs, AlertThresholds, Commands, ConditionProblem};
use super::enrich::{EnrichStage, SideJobCounts, SideJobs};
pub use super::history::{DayRow, DayStats, DayStatus, Pause, RunSummary};

/// Days of the history chart.
pub const HISTORY_DAYS: u32 = 30;

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockSource {
    /// TMDb's clock, as the latest run saw it in TMDb's `Date` header.
    Tmdb,
    /// The database's clock: no run has seen a TMDb answer yet.
    #[default]
    Database,
    /// The cluster's clock (the controller's and API server's times): `kubectl tmdbsync`, which
    /// reads only the Kubernetes API.
    Cluster,
}

/// What the store gathers for a health report.
#[derive(Debug, Clone, Default)]
pub struct HealthInputs {
    /// "Now" on the clock the report uses (TMDb's when known).
    pub now: DateTime<Utc>,
    /// Which clock `now` and every day come from.
    pub clock: ClockSource,
    /// Ids in the latest export that the sync imports (adult ones excluded unless included).
    pub tmdb_total: i64,
    /// Those ids stored and not deleted.
    pub imported: i64,
    /// Those ids TMDb answered 404 for (and not stored since): work that cannot be done.
    pub not_served: i64,
    /// Pages needed for the whole catalog.
    pub total_pages: i32,
    /// Highest page `p` with pages `1..=p` all done.
    pub last_page_processed: i32,
    /// The date of the latest export loaded.
    pub export_date: Option<NaiveDate>,
    /// The delta watermark.
    pub delta_watermark: Option<NaiveDate>,
    /// Per-day run totals, any order (days older than the history are ignored).
    pub days: Vec<DayStats>,
    /// When the sync was paused (a cluster's `spec.suspend`).
    pub pauses: Vec<Pause>,
    /// When the first run started (on the report's clock).
    pub first_run_at: Option<DateTime<Utc>>,
    /// When the latest successful bulk or delta run finished (on the report's clock).
    pub last_success_at: Option<DateTime<Utc>>,
    /// Errors of the last 24 hours by category.
    pub errors_24h: BTreeMap<String, i64>,
    /// The newest runs, newest first.
    pub recent_runs: Vec<RunSummary>,
    /// The latest finished run of each type.
    pub latest_finished: Vec<RunSummary>,
    /// Per enrichment stage: live movies done and total.
    pub side_job_counts: Vec<SideJobCounts>,
    /// Live movies without an imdb id.
    pub missing_imdb_id: i64,
    /// The latest catalog run's coverage, when it walked `/discover/movie`.
    pub discover: Option<super::discover::DiscoverCoverage>,
}

impl HealthInputs {
    /// Today on the report's clock.
    pub fn today(&self) -> NaiveDate {
        self.now.date_naive()
    }
}

/// What a cluster knows about the sync (its TmdbSync); the default is a database seen without
/// a cluster.
#[derive(Debug, Clone, Default)]
pub struct SyncFacts {
    /// The TmdbSync's namespace and name.
    pub resource: Option<(String, String)>,
    /// Its phase (`status.phase`).
    pub phase: Option<String>,
    /// `spec.suspend`.
    pub suspended: bool,
    /// Side jobs the spec turns off.
    pub disabled_side_jobs: Vec<EnrichStage>,
    /// The next scheduled enrichment run (RFC 3339).
    pub next_enrich_run: Option<String>,
    /// `spec.alerts`.
    pub thresholds: AlertThresholds,
    /// Conditions that are not as they should be (Ready or CredentialsValid false).
    pub problems: Vec<ConditionProblem>,
}

impl SyncFacts {
    /// Facts naming a TmdbSync given as `NAMESPACE/NAME` (the rest unknown): for a database of
    /// a cluster's sync viewed without the cluster.
    pub fn named(sync: &str) -> Result<SyncFacts, String> {
        match sync.split_once('/') {
            Some((ns, name))
                if !ns.is_empty()
                    && !name.is_empty()
                    && !name.contains('/')
                    && [ns, name].iter().all(|s| {
                        s.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
                        })
                    }) =>
            {
                Ok(SyncFacts {
                    resource: Some((ns.to_string(), name.to_string())),
                    ..Default::default()
                })
            }
            _ => Err(format!(
                "--sync {sync:?} is not NAMESPACE/NAME (lowercase letters, digits, '-' and '.'), e.g. media/cinegraph"
            )),
        }
    }

    /// The commands alerts and the page name: `kubectl tmdbsync …` for a TmdbSync.
    pub fn commands(&self) -> Commands {
        match &self.resource {
            Some((namespace, name)) => Commands::Kubectl {
                namespace: namespace.clone(),
                name: name.clone(),
            },
            None => Commands::Local,
        }
    }
}

/// Which sync the report is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncIdentity {
    /// The TmdbSync's namespace (`None` without a cluster).
    pub namespace: Option<String>,
    /// The TmdbSync's name (`None` without a cluster).
    pub name: Option<String>,
    /// Its phase (Pending, Bootstrapping, Maintaining, Suspended, Degraded), when known.
    pub phase: Option<String>,
    /// Paused (`spec.suspend`).
    pub suspended: bool,
}

/// Where the estimate of completion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EtaState {
    /// Every movie TMDb serves is stored.
    Complete,
    /// Not a full day of data yet: no finished day with runs.
    Calculating,
    /// From the average of the last 7 finished days with runs.
    Estimated,
    /// Finished days had runs but imported nothing (or none ran in the last 7 days).
    Unknown,
}

/// The estimate of completion, with the words every face shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eta {
    pub state: EtaState,
    /// "March 15, 2026 (~162 days)", "calculating…", "complete", "unknown (…)".
    pub text: String,
}

/// The Sync Health report (the seed's panel). Serialised as is for `tmdbsync status -o json` and
/// the page's `health.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncHealth {
    /// Which sync.
    pub sync: SyncIdentity,
    /// When the report was made, on its clock.
    pub generated_at: DateTime<Utc>,
    /// Which clock the days come from.
    pub clock: ClockSource,
    /// Today on that clock.
    pub today: NaiveDate,
    /// Ids in the latest export that the sync imports.
    pub tmdb_total: i64,
    /// Those ids stored and not deleted.
    pub imported: i64,
    /// Ids in the export that TMDb does not serve (404): neither imported nor remaining.
    pub not_served: i64,
    /// Ids TMDb serves that are not stored yet.
    pub remaining: i64,
    /// Imported over the ids TMDb serves (100 when everything served is stored).
    pub percent_complete: f64,
    pub total_pages: i32,
    pub last_page_processed: i32,
    /// Movies imported per day: the average of the last 7 finished days that had runs (today
    /// is not finished and is not counted).
    pub daily_rate: f64,
    /// Movies imported today.
    pub today_rate: i64,
    /// Days to completion at the daily rate (`None` while calculating or unknown).
    pub estimated_days_remaining: Option<f64>,
    pub estimated_completion: Option<NaiveDate>,
    /// The estimate, with its state and words.
    pub eta: Eta,
    pub export_date: Option<NaiveDate>,
    pub delta_watermark: Option<NaiveDate>,
    /// The last 7 days, oldest first (the last 7 of `history`).
    pub last_7_days: Vec<DayRow>,
    /// The last 30 days, oldest first, paused and idle days marked.
    pub history: Vec<DayRow>,
    pub errors_24h: BTreeMap<String, i64>,
    /// The newest runs, newest first.
    pub runs: Vec<RunSummary>,
    /// Completion of OMDb, collaborations and PQS (disabled ones say so).
    pub side_jobs: SideJobs,
    /// What needs attention, most severe first, each with the next thing to do.
    pub alerts: Vec<Alert>,
    /// What the latest Discover catalog walk could not reach (`bulk.source: Discover` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discover: Option<super::discover::DiscoverCoverage>,
}

impl SyncHealth {
    /// The report for a database seen without a cluster, with `today` as the current day.
    pub fn compute(inputs: &HealthInputs, today: NaiveDate) -> SyncHealth {
        Self::assemble(inputs, &SyncFacts::default(), today)
    }

    /// The report on the inputs' own clock, with what the cluster knows. This is the function
    /// every face calls.
    pub fn build(inputs: &HealthInputs, facts: &SyncFacts) -> SyncHealth {
        Self::assemble(inputs, facts, inputs.today())
    }

    fn assemble(inputs: &HealthInputs, facts: &SyncFacts, today: NaiveDate) -> SyncHealth {
        let not_served = inputs.not_served.clamp(0, inputs.tmdb_total.max(0));
        let served = inputs.tmdb_total - not_served;
        let remaining = (served - inputs.imported).max(0);
        let percent_complete = if served > 0 {
            let p = inputs.imported as f64 / served as f64 * 100.0;
            (p.min(100.0) * 100.0).round() / 100.0
        } else if inputs.tmdb_total > 0 {
            // Every listed id is gone: nothing TMDb serves is missing.
            100.0
        } else {
            0.0
        };
        let history = super::history::day_rows(&inputs.days, &inputs.pauses, today, HISTORY_DAYS);
        let last_7_days = history[history.len() - 7..].to_vec();
        // A full day of data: finished days (before today) of the last 7 that had runs.
        let finished: Vec<&DayRow> = history
            .iter()
            .filter(|d| d.day < today && d.day >= today - Days::new(7) && d.runs > 0)
            .collect();
        let daily_rate = if finished.is_empty() {
            0.0
        } else {
            finished.iter().map(|d| d.imported).sum::<i64>() as f64 / finished.len() as f64
        };
        let today_rate = history.last().map_or(0, |d| d.imported);
        let complete = inputs.tmdb_total > 0 && remaining == 0;
        let state = if complete {
            EtaState::Complete
        } else if !finished.is_empty() && daily_rate > 0.0 {
            EtaState::Estimated
        } else if finished.is_empty()
            && inputs
                .first_run_at
                .is_none_or(|t| t.date_naive() >= today - Days::new(7))
        {
            EtaState::Calculating
        } else {
            EtaState::Unknown
        };
        let estimated_days_remaining = match state {
            EtaState::Complete => Some(0.0),
            EtaState::Estimated => Some(((remaining as f64 / daily_rate) * 10.0).ceil() / 10.0),
            _ => None,
        };
        let estimated_completion =
            estimated_days_remaining.map(|d| today + Days::new(d.ceil() as u64));
        let eta = Eta {
            state,
            text: match (state, estimated_completion, estimated_days_remaining) {
                (EtaState::Complete, _, _) => "complete".into(),
                (EtaState::Estimated, Some(date), Some(days)) => {
                    format!("{} (~{days} days)", date.format("%B %-d, %Y"))
                }
                (EtaState::Calculating, ..) => "calculating… (needs a full day of runs)".into(),
                _ if finished.is_empty() => "unknown (no run in the last 7 days)".into(),
                _ => "unknown (nothing imported in the last 7 days)".into(),
            },
        };
        let mut side_jobs = SideJobs {
            stages: super::enrich::side_job_progress(&inputs.side_job_counts),
            missing_imdb_id: inputs.missing_imdb_id,
            next_run: facts.next_enrich_run.clone(),
        };
        for job in &mut side_jobs.stages {
            job.enabled = !facts.disabled_side_jobs.contains(&job.stage);
        }
        let bulk_complete = (inputs.total_pages > 0
            && inputs.last_page_processed >= inputs.total_pages)
            || (inputs.tmdb_total > 0 && remaining == 0);
        let hours = |t: DateTime<Utc>| (inputs.now - t).num_seconds() as f64 / 3600.0;
        let commands = facts.commands();
        let omdb_enabled = side_jobs
            .stages
            .iter()
            .any(|j| j.stage == EnrichStage::Omdb && j.enabled);
        let alerts = alerts::alerts(&AlertInputs {
            commands: &commands,
            thresholds: facts.thresholds,
            problems: &facts.problems,
            suspended: facts.suspended,
            tmdb_total: inputs.tmdb_total,
            not_served,
            bulk_complete,
            today_rate,
            daily_rate,
            hours_since_success: inputs.last_success_at.map(hours),
            hours_since_first_run: inputs.first_run_at.map(hours),
            latest_finished: &inputs.latest_finished,
            errors_24h: &inputs.errors_24h,
            missing_imdb_id: if omdb_enabled {
                inputs.missing_imdb_id
            } else {
                0
            },
        });
        SyncHealth {
            sync: SyncIdentity {
                namespace: facts.resource.as_ref().map(|r| r.0.clone()),
                name: facts.resource.as_ref().map(|r| r.1.clone()),
                phase: facts.phase.clone(),
                suspended: facts.suspended,
            },
            generated_at: inputs.now,
            clock: inputs.clock,
            today,
            tmdb_total: inputs.tmdb_total,
            imported: inputs.imported,
            not_served,
            remaining,
            percent_complete,
            total_pages: inputs.total_pages,
            last_page_processed: inputs.last_page_processed,
            daily_rate: (daily_rate * 10.0).round() / 10.0,
            today_rate,
            estimated_days_remaining,
            estimated_completion,
            eta,
            export_date: inputs.export_date,
            delta_watermark: inputs.delta_watermark,
            last_7_days,
            history,
            errors_24h: inputs.errors_24h.clone(),
            runs: inputs.recent_runs.clone(),
            side_jobs,
            alerts,
            discover: inputs.discover.clone(),
        }
    }

    /// Whether the bulk phase is over: every catalog page processed, or every id TMDb serves
    /// stored (ids it does not serve never hold the sync in bootstrapping).
    pub fn bulk_complete(&self) -> bool {
        (self.total_pages > 0 && self.last_page_processed >= self.total_pages)
            || (self.tmdb_total > 0 && self.remaining == 0)
    }
}

/// A report download: per-day rows and per-run rows over the last `days` days (TMDb's days).
/// Served as `report.json` (this struct) and `report.csv` (`crate::web::report`); the columns
/// are documented in docs/report.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    pub sync: SyncIdentity,
    pub generated_at: DateTime<Utc>,
    pub clock: ClockSource,
    /// The first and last day covered.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Days covered.
    pub days: u32,
    /// Sums of `day_rows`.
    pub totals: super::history::Totals,
    /// One row per day, oldest first.
    pub day_rows: Vec<DayRow>,
    /// One row per run started in those days, oldest first.
    pub run_rows: Vec<RunSummary>,
}

/// What the store gathers for a report.
#[derive(Debug, Clone, Default)]
pub struct ReportInputs {
    pub now: DateTime<Utc>,
    pub clock: ClockSource,
    pub days: Vec<DayStats>,
    pub pauses: Vec<Pause>,
    /// Runs started in the covered days, any order.
    pub runs: Vec<RunSummary>,
}

/// Most days a report covers.
pub const MAX_REPORT_DAYS: u32 = 366;

impl SyncReport {
    /// The report over `days` days (clamped to 1..=[`MAX_REPORT_DAYS`]) ending today.
    pub fn build(inputs: &ReportInputs, facts: &SyncFacts, days: u32) -> SyncReport {
        let days = days.clamp(1, MAX_REPORT_DAYS);
        let to = inputs.now.date_naive();
        let from = to - Days::new(u64::from(days) - 1);
        let day_rows = super::history::day_rows(&inputs.days, &inputs.pauses, to, days);
        let mut run_rows: Vec<RunSummary> = inputs
            .runs
            .iter()
            .filter(|r| r.day >= from && r.day <= to)
            .cloned()
            .collect();
        run_rows.sort_by_key(|r| (r.started_at, r.id));
        SyncReport {
            sync: SyncIdentity {
                namespace: facts.resource.as_ref().map(|r| r.0.clone()),
                name: facts.resource.as_ref().map(|r| r.1.clone()),
                phase: facts.phase.clone(),
                suspended: facts.suspended,
            },
            generated_at: inputs.now,
            clock: inputs.clock,
            from,
            to,
            days,
            totals: super::history::Totals::of(&day_rows),
            day_rows,
            run_rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn day(s: &str, imported: i64, runs: i64, failed: i64) -> DayStats {
        DayStats {
            day: d(s),
            imported,
            runs,
            failed_runs: failed,
            ..Default::default()
        }
    }

    #[test]
    fn progress_and_eta_from_the_seed_example() {
        // 352,000 of 1,000,000 at 4,000 a day: 162 days, as the seed's panel says.
        let inputs = HealthInputs {
            tmdb_total: 1_000_000,
            imported: 352_000,
            days: (1..=7)
                .map(|i| day(&format!("2026-03-0{i}"), 4_000, 1, 0))
                .collect(),
            ..Default::default()
        };
        let h = SyncHealth::compute(&inputs, d("2026-03-07"));
        assert_eq!(h.remaining, 648_000);
        assert_eq!(h.percent_complete, 35.2);
        assert_eq!(h.daily_rate, 4_000.0);
        assert_eq!(h.estimated_days_remaining, Some(162.0));
        assert_eq!(h.estimated_completion, Some(d("2026-08-16")));
        assert_eq!(h.today_rate, 4_000);
    }

    #[test]
    fn idle_days_do_not_dilute_the_rate_and_statuses_are_per_day() {
        let inputs = HealthInputs {
            tmdb_total: 100,
            imported: 40,
            days: vec![
                day("2026-03-05", 20, 1, 0),
                day("2026-03-06", 0, 2, 1),
                day("2026-03-07", 20, 1, 0),
            ],
            ..Default::default()
        };
        let h = SyncHealth::compute(&inputs, d("2026-03-07"));
        assert_eq!(h.last_7_days.len(), 7);
        assert_eq!(h.last_7_days[0].day, d("2026-03-01"));
        assert_eq!(h.last_7_days[0].status, DayStatus::Idle);
        assert_eq!(h.last_7_days[5].status, DayStatus::Failed);
        assert_eq!(h.last_7_days[6].status, DayStatus::Ok);
        // Today is not finished: the rate is over the 5th and the 6th.
        assert_eq!(h.daily_rate, 10.0);
        assert_eq!(h.today_rate, 20);
        assert_eq!(h.estimated_days_remaining, Some(6.0));
        assert_eq!(h.history.len(), 30);
        assert_eq!(h.history[23..], h.last_7_days[..]);
    }

    #[test]
    fn no_rate_means_no_eta_and_empty_catalog_is_zero_percent() {
        let h = SyncHealth::compute(&HealthInputs::default(), d("2026-03-07"));
        assert_eq!(h.percent_complete, 0.0);
        assert_eq!(h.eta.state, EtaState::Calculating);
        assert_eq!(h.estimated_days_remaining, None);
        let inputs = HealthInputs {
            tmdb_total: 10,
            ..Default::default()
        };
        let h = SyncHealth::compute(&inputs, d("2026-03-07"));
        assert_eq!(h.estimated_days_remaining, None);
        assert_eq!(h.estimated_completion, None);
    }

    #[test]
    fn ids_tmdb_does_not_serve_are_neither_imported_nor_remaining() {
        // (total, imported, not served) → (remaining, percent, ETA days at 10 a day, complete)
        let cases = [
            // The demo's end: 5 deleted ids no longer hold progress below 100 %.
            ((5_000, 4_995, 5), (0, 100.0, Some(0.0), true)),
            ((5_000, 4_995, 0), (5, 99.9, Some(0.5), false)),
            ((1_000, 400, 200), (400, 50.0, Some(40.0), false)),
            // Every listed id gone: nothing TMDb serves is missing.
            ((10, 0, 10), (0, 100.0, Some(0.0), true)),
            // A count above the total (inconsistent inputs) is capped, never negative.
            ((10, 0, 12), (0, 100.0, Some(0.0), true)),
            ((0, 0, 0), (0, 0.0, Some(0.0), false)),
        ];
        for ((total, imported, not_served), (remaining, percent, eta, complete)) in cases {
            let inputs = HealthInputs {
                tmdb_total: total,
                imported,
                not_served,
                total_pages: 250,
                last_page_processed: 10,
                days: vec![day("2026-03-06", 10, 1, 0), day("2026-03-07", 10, 1, 0)],
                ..Default::default()
            };
            let h = SyncHealth::compute(&inputs, d("2026-03-07"));
            let case = (total, imported, not_served);
            assert_eq!(h.remaining, remaining, "{case:?}");
            assert_eq!(h.percent_complete, percent, "{case:?}");
            assert_eq!(h.estimated_days_remaining, eta, "{case:?}");
            assert_eq!(h.bulk_complete(), complete, "{case:?}");
            assert_eq!(h.not_served, not_served.min(total), "{case:?}");
        }
    }

    #[test]
    fn the_eta_waits_for_a_full_day_of_runs() {
        let today = d("2026-03-07");
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        // (days with runs, first run) → (state, days remaining, words)
        let cases = [
            // Only today so far: calculating, however much today imported.
            (
                vec![day("2026-03-07", 500, 1, 0)],
                Some(at("2026-03-07T08:00:00Z")),
                (
                    EtaState::Calculating,
                    None,
                    "calculating… (needs a full day of runs)",
                ),
            ),
            // Yesterday finished with runs: estimated from it alone (today not counted).
            (
                vec![day("2026-03-06", 100, 1, 0), day("2026-03-07", 500, 1, 0)],
                Some(at("2026-03-06T23:00:00Z")),
                (EtaState::Estimated, Some(9.0), "March 16, 2026 (~9 days)"),
            ),
            // Runs long ago, none in the last 7 finished days.
            (
                vec![day("2026-02-20", 100, 1, 0)],
                Some(at("2026-02-20T02:00:00Z")),
                (
                    EtaState::Unknown,
                    None,
                    "unknown (no run in the last 7 days)",
                ),
            ),
            // Runs that imported nothing (delta only).
            (
                vec![day("2026-03-05", 0, 1, 0)],
                Some(at("2026-03-05T02:00:00Z")),
                (
                    EtaState::Unknown,
                    None,
                    "unknown (nothing imported in the last 7 days)",
                ),
            ),
        ];
        for (days, first_run_at, (state, eta_days, text)) in cases {
            let inputs = HealthInputs {
                tmdb_total: 1_000,
                imported: 100,
                days,
                first_run_at,
                ..Default::default()
            };
            let h = SyncHealth::compute(&inputs, today);
            assert_eq!(h.eta.state, state, "{text}");
            assert_eq!(h.estimated_days_remaining, eta_days, "{text}");
            assert_eq!(h.eta.text, text);
        }
        let done = HealthInputs {
            tmdb_total: 10,
            imported: 10,
            ..Default::default()
        };
        let h = SyncHealth::compute(&done, today);
        assert_eq!(
            (h.eta.state, h.eta.text.as_str()),
            (EtaState::Complete, "complete")
        );
        assert_eq!(h.estimated_days_remaining, Some(0.0));
    }

    #[test]
    fn a_cluster_names_the_sync_disables_side_jobs_and_uses_kubectl() {
        use super::super::enrich::SideJobCounts;
        let inputs = HealthInputs {
            now: DateTime::parse_from_rfc3339("2026-03-07T12:00:00Z")
                .unwrap()
                .to_utc(),
            clock: ClockSource::Tmdb,
            tmdb_total: 100,
            imported: 10,
            missing_imdb_id: 3,
            side_job_counts: EnrichStage::ALL
                .iter()
                .map(|s| SideJobCounts {
                    stage: Some(*s),
                    done: 0,
                    total: 10,
                })
                .collect(),
            ..Default::default()
        };
        let facts = SyncFacts {
            resource: Some(("media".into(), "cinegraph".into())),
            phase: Some("Suspended".into()),
            suspended: true,
            disabled_side_jobs: vec![EnrichStage::Omdb],
            ..Default::default()
        };
        let h = SyncHealth::build(&inputs, &facts);
        assert_eq!(h.today, d("2026-03-07"));
        assert_eq!(h.sync.name.as_deref(), Some("cinegraph"));
        let enabled: Vec<bool> = h.side_jobs.stages.iter().map(|j| j.enabled).collect();
        assert_eq!(enabled, [false, true, true]);
        let ids: Vec<&str> = h.alerts.iter().map(|a| a.id.as_str()).collect();
        // OMDb is off: movies without an imdb id are no alert.
        assert_eq!(ids, ["paused"]);
        assert_eq!(
            h.alerts[0].command.as_deref(),
            Some("kubectl tmdbsync resume cinegraph -n media")
        );
        let json = serde_json::to_value(&h).unwrap();
        for key in [
            "sync",
            "eta",
            "history",
            "last_7_days",
            "side_jobs",
            "alerts",
            "runs",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn a_report_covers_every_day_and_only_its_runs() {
        let now = DateTime::parse_from_rfc3339("2026-03-07T12:00:00Z")
            .unwrap()
            .to_utc();
        let run = |id: i64, day: &str| RunSummary {
            id,
            name: None,
            run_type: "bulk".into(),
            trigger: "manual".into(),
            status: "completed".into(),
            day: d(day),
            started_at: now - chrono::TimeDelta::days(100 - id),
            completed_at: None,
            duration_seconds: 1.0,
            pages_processed: 1,
            movies_imported: 20,
            movies_updated: 0,
            movies_skipped: 0,
            movies_deleted: 0,
            errors: 0,
            data_warnings: 0,
            message: None,
        };
        let inputs = ReportInputs {
            now,
            clock: ClockSource::Tmdb,
            days: vec![day("2026-03-01", 20, 1, 0), day("2026-03-07", 20, 1, 0)],
            pauses: vec![],
            runs: vec![
                run(2, "2026-03-07"),
                run(1, "2026-03-01"),
                run(0, "2026-02-28"),
            ],
        };
        let r = SyncReport::build(&inputs, &SyncFacts::default(), 7);
        assert_eq!(
            (r.from, r.to, r.day_rows.len()),
            (d("2026-03-01"), d("2026-03-07"), 7)
        );
        let ids: Vec<i64> = r.run_rows.iter().map(|r| r.id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!((r.totals.imported, r.totals.runs), (40, 2));
        let back: SyncReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert_eq!(SyncReport::build(&inputs, &SyncFacts::default(), 0).days, 1);
        assert_eq!(
            SyncReport::build(&inputs, &SyncFacts::default(), 9999).days,
            MAX_REPORT_DAYS
        );
    }

    #[test]
    fn all_pages_done_completes_bulk_even_with_ids_remaining() {
        let inputs = HealthInputs {
            tmdb_total: 100,
            imported: 90,
            total_pages: 5,
            last_page_processed: 5,
            ..Default::default()
        };
        assert!(SyncHealth::compute(&inputs, d("2026-03-07")).bulk_complete());
    }

    #[test]
    fn percent_is_capped_at_100() {
        let inputs = HealthInputs {
            tmdb_total: 10,
            imported: 12,
            ..Default::default()
        };
        let h = SyncHealth::compute(&inputs, d("2026-03-07"));
        assert_eq!(h.percent_complete, 100.0);
        assert_eq!(h.remaining, 0);
    }
}
