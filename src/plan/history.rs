//! A sync's history by day and by run: the rows of the Sync Health's 7-day table and 30-day chart,
//! and of the report download (`report.csv`, `report.json`; columns in docs/report.md). Days are
//! TMDb's days (see [`super::health::ClockSource`]).

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Run totals of one day, as the store sums them (days without runs are absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayStats {
    /// The day, by TMDb's clock.
    pub day: NaiveDate,
    pub imported: i64,
    pub updated: i64,
    pub skipped: i64,
    pub deleted: i64,
    pub errors: i64,
    /// Runs started that day.
    pub runs: i64,
    /// Of those, runs that failed (or whose processes died).
    pub failed_runs: i64,
    /// Of those, runs still going.
    pub running_runs: i64,
}

/// A time the sync was suspended (`spec.suspend`), by TMDb's clock; `until` is `None` while it
/// still is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

impl Pause {
    /// Whether the sync was paused at some time during `day`.
    pub fn covers(&self, day: NaiveDate) -> bool {
        let start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let end = start + chrono::TimeDelta::days(1);
        self.from < end && self.until.is_none_or(|u| u > start)
    }
}

/// How a day went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DayStatus {
    /// Runs finished, none failed.
    Ok,
    /// At least one run failed.
    Failed,
    /// A run is still going.
    Running,
    /// No run, and the sync was paused (suspended) that day.
    Paused,
    /// No run, not paused: nothing was scheduled, or nothing ran.
    Idle,
}

impl DayStatus {
    /// The word the panel and the report show.
    pub fn as_str(self) -> &'static str {
        match self {
            DayStatus::Ok => "ok",
            DayStatus::Failed => "failed",
            DayStatus::Running => "running",
            DayStatus::Paused => "paused",
            DayStatus::Idle => "idle",
        }
    }
}

/// One day of the history (a row of the 7-day table, a bar of the 30-day chart, a `day` row of
/// the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayRow {
    /// The day, by TMDb's clock.
    pub day: NaiveDate,
    /// Movies stored for the first time.
    pub imported: i64,
    /// Movies stored again (a change, a refresh).
    pub updated: i64,
    /// Movies passed over without a request (already imported, adult, unchanged).
    pub skipped: i64,
    /// Movies marked deleted (TMDb answered 404).
    pub deleted: i64,
    /// Movies that still failed after every try.
    pub errors: i64,
    /// Runs started that day.
    pub runs: i64,
    /// Of those, runs that failed.
    pub failed_runs: i64,
    /// The sync was paused at some time that day.
    pub paused: bool,
    pub status: DayStatus,
}

/// The `n` days ending with `today`, oldest first, every day present (days without runs are idle
/// or paused).
pub fn day_rows(stats: &[DayStats], pauses: &[Pause], today: NaiveDate, n: u32) -> Vec<DayRow> {
    (0..u64::from(n))
        .rev()
        .map(|back| {
            let day = today - Days::new(back);
            let paused = pauses.iter().any(|p| p.covers(day));
            let s = stats
                .iter()
                .find(|s| s.day == day)
                .cloned()
                .unwrap_or(DayStats {
                    day,
                    ..Default::default()
                });
            let status = if s.running_runs > 0 {
                DayStatus::Running
            } else if s.failed_runs > 0 {
                DayStatus::Failed
            } else if s.runs > 0 {
                DayStatus::Ok
            } else if paused {
                DayStatus::Paused
            } else {
                DayStatus::Idle
            };
            DayRow {
                day,
                imported: s.imported,
                updated: s.updated,
                skipped: s.skipped,
                deleted: s.deleted,
                errors: s.errors,
                runs: s.runs,
                failed_runs: s.failed_runs,
                paused,
                status,
            }
        })
        .collect()
}

/// One run as the panel and the report list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// `sync_runs.id`.
    pub id: i64,
    /// The SyncRun's name (operator runs); `None` for `tmdbsync run`.
    pub name: Option<String>,
    /// catalog, bulk, delta or enrich.
    pub run_type: String,
    /// scheduled or manual.
    pub trigger: String,
    /// running, completed or failed (a run whose processes died reads failed).
    pub status: String,
    /// The day it started, by TMDb's clock.
    pub day: NaiveDate,
    /// When it started and finished, on TMDb's clock (UTC), like the days.
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Seconds from start to finish (to now while running).
    pub duration_seconds: f64,
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

impl RunSummary {
    /// Whether the run ended failed.
    pub fn failed(&self) -> bool {
        self.status == "failed"
    }
}

/// Sums over a report's days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub runs: i64,
    pub failed_runs: i64,
    pub imported: i64,
    pub updated: i64,
    pub skipped: i64,
    pub deleted: i64,
    pub errors: i64,
}

impl Totals {
    /// The sums of `rows`.
    pub fn of(rows: &[DayRow]) -> Totals {
        rows.iter().fold(Totals::default(), |t, d| Totals {
            runs: t.runs + d.runs,
            failed_runs: t.failed_runs + d.failed_runs,
            imported: t.imported + d.imported,
            updated: t.updated + d.updated,
            skipped: t.skipped + d.skipped,
            deleted: t.deleted + d.deleted,
            errors: t.errors + d.errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn every_day_is_present_and_marked() {
        let stats = [
            DayStats {
                day: d("2026-03-05"),
                imported: 10,
                runs: 1,
                ..Default::default()
            },
            DayStats {
                day: d("2026-03-06"),
                runs: 2,
                failed_runs: 1,
                ..Default::default()
            },
            DayStats {
                day: d("2026-03-07"),
                runs: 1,
                running_runs: 1,
                ..Default::default()
            },
            // Outside the window: ignored.
            DayStats {
                day: d("2026-02-01"),
                imported: 99,
                runs: 1,
                ..Default::default()
            },
        ];
        let pauses = [Pause {
            from: t("2026-03-02T23:00:00Z"),
            until: Some(t("2026-03-04T00:00:00Z")),
        }];
        let rows = day_rows(&stats, &pauses, d("2026-03-07"), 7);
        let got: Vec<(NaiveDate, DayStatus, bool)> =
            rows.iter().map(|r| (r.day, r.status, r.paused)).collect();
        assert_eq!(
            got,
            vec![
                (d("2026-03-01"), DayStatus::Idle, false),
                (d("2026-03-02"), DayStatus::Paused, true),
                (d("2026-03-03"), DayStatus::Paused, true),
                // The pause ended at midnight: the 4th was not paused.
                (d("2026-03-04"), DayStatus::Idle, false),
                (d("2026-03-05"), DayStatus::Ok, false),
                (d("2026-03-06"), DayStatus::Failed, false),
                (d("2026-03-07"), DayStatus::Running, false),
            ]
        );
        assert_eq!(Totals::of(&rows).imported, 10);
        assert_eq!(Totals::of(&rows).runs, 4);
    }

    #[test]
    fn an_open_pause_covers_today_and_runs_win_over_it() {
        let pauses = [Pause {
            from: t("2026-03-06T12:00:00Z"),
            until: None,
        }];
        let stats = [DayStats {
            day: d("2026-03-06"),
            runs: 1,
            ..Default::default()
        }];
        let rows = day_rows(&stats, &pauses, d("2026-03-07"), 2);
        assert_eq!(rows[0].status, DayStatus::Ok);
        assert!(rows[0].paused);
        assert_eq!(rows[1].status, DayStatus::Paused);
    }
}
