//! Sync Health: progress, rate, ETA and the last days, computed from counts gathered by the store.
//! One function serves `tmdbsync status`, the web page and the TmdbSync status.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use serde::Serialize;

/// What the store gathers for a health report.
#[derive(Debug, Clone, Default)]
pub struct HealthInputs {
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
    /// Per-day run totals, any order, any span (at least the last 7 days are used).
    pub days: Vec<DayStats>,
    /// Errors of the last 24 hours by category.
    pub errors_24h: BTreeMap<String, i64>,
    /// The newest runs, newest first.
    pub recent_runs: Vec<RunSummary>,
    /// Per enrichment stage: live movies done and total.
    pub side_job_counts: Vec<super::enrich::SideJobCounts>,
    /// Live movies without an imdb id.
    pub missing_imdb_id: i64,
    /// The latest catalog run's coverage, when it walked `/discover/movie`.
    pub discover: Option<super::discover::DiscoverCoverage>,
}

/// Run totals for one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayStats {
    pub day: NaiveDate,
    pub imported: i64,
    pub updated: i64,
    pub skipped: i64,
    pub errors: i64,
    pub runs: i64,
    pub failed_runs: i64,
    pub running_runs: i64,
}

/// One run as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub name: Option<String>,
    pub run_type: String,
    pub status: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub pages_processed: i32,
    pub movies_imported: i32,
    pub movies_updated: i32,
    pub movies_skipped: i32,
    pub movies_deleted: i32,
    pub errors: i32,
    /// Stored movies that carried an oddity (a value nulled, a body repaired).
    pub data_warnings: i32,
    pub message: Option<String>,
}

/// How a day went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DayStatus {
    /// Runs finished, none failed.
    Ok,
    /// At least one run failed.
    Failed,
    /// A run is still going.
    Running,
    /// No run that day.
    Idle,
}

/// One row of the last-7-days table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayRow {
    pub day: NaiveDate,
    pub imported: i64,
    pub skipped: i64,
    pub errors: i64,
    pub status: DayStatus,
}

/// The Sync Health report (the seed's panel).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncHealth {
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
    /// Movies imported per day, averaged over the last 7 days that had runs.
    pub daily_rate: f64,
    /// Movies imported today.
    pub today_rate: i64,
    pub estimated_days_remaining: Option<f64>,
    pub estimated_completion: Option<NaiveDate>,
    pub export_date: Option<NaiveDate>,
    pub delta_watermark: Option<NaiveDate>,
    pub last_7_days: Vec<DayRow>,
    pub errors_24h: BTreeMap<String, i64>,
    pub runs: Vec<RunSummary>,
    /// Completion of OMDb, collaborations and PQS.
    pub side_jobs: super::enrich::SideJobs,
    /// What the latest Discover catalog walk could not reach (`bulk.source: Discover` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discover: Option<super::discover::DiscoverCoverage>,
}

impl SyncHealth {
    /// Computes the report for `today` (the date the caller considers current).
    pub fn compute(inputs: &HealthInputs, today: NaiveDate) -> SyncHealth {
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
        let by_day: BTreeMap<NaiveDate, &DayStats> =
            inputs.days.iter().map(|d| (d.day, d)).collect();
        let week: Vec<NaiveDate> = (0..7).rev().map(|i| today - Days::new(i)).collect();
        let last_7_days: Vec<DayRow> = week
            .iter()
            .map(|day| match by_day.get(day) {
                Some(s) => DayRow {
                    day: *day,
                    imported: s.imported,
                    skipped: s.skipped,
                    errors: s.errors,
                    status: if s.running_runs > 0 {
                        DayStatus::Running
                    } else if s.failed_runs > 0 {
                        DayStatus::Failed
                    } else if s.runs > 0 {
                        DayStatus::Ok
                    } else {
                        DayStatus::Idle
                    },
                },
                None => DayRow {
                    day: *day,
                    imported: 0,
                    skipped: 0,
                    errors: 0,
                    status: DayStatus::Idle,
                },
            })
            .collect();
        let active: Vec<&DayRow> = last_7_days
            .iter()
            .filter(|d| d.status != DayStatus::Idle)
            .collect();
        let daily_rate = if active.is_empty() {
            0.0
        } else {
            active.iter().map(|d| d.imported).sum::<i64>() as f64 / active.len() as f64
        };
        let today_rate = by_day.get(&today).map_or(0, |d| d.imported);
        let estimated_days_remaining = if remaining == 0 {
            Some(0.0)
        } else if daily_rate > 0.0 {
            Some(((remaining as f64 / daily_rate) * 10.0).ceil() / 10.0)
        } else {
            None
        };
        let estimated_completion =
            estimated_days_remaining.map(|d| today + Days::new(d.ceil() as u64));
        SyncHealth {
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
            export_date: inputs.export_date,
            delta_watermark: inputs.delta_watermark,
            last_7_days,
            errors_24h: inputs.errors_24h.clone(),
            runs: inputs.recent_runs.clone(),
            side_jobs: super::enrich::SideJobs {
                stages: super::enrich::side_job_progress(&inputs.side_job_counts),
                missing_imdb_id: inputs.missing_imdb_id,
                next_run: None,
            },
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
        assert!((h.daily_rate - 13.3).abs() < 1e-9);
        assert_eq!(h.estimated_days_remaining, Some(4.5));
    }

    #[test]
    fn no_rate_means_no_eta_and_empty_catalog_is_zero_percent() {
        let h = SyncHealth::compute(&HealthInputs::default(), d("2026-03-07"));
        assert_eq!(h.percent_complete, 0.0);
        assert_eq!(h.estimated_days_remaining, Some(0.0));
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
                days: vec![day("2026-03-07", 10, 1, 0)],
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
