//! Cron schedules in a time zone, with CronJob semantics: a missed run is caught up at most once
//! (only the latest missed time), and run names carry the scheduled minute.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A parsed schedule: a standard 5-field cron expression read in an IANA time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

/// Why a schedule is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron schedule {expr:?}: {reason}")]
    Cron { expr: String, reason: String },
    #[error("unknown time zone {0:?} (use an IANA name such as UTC or Europe/Berlin)")]
    TimeZone(String),
}

impl Schedule {
    /// Parses `expr` (minute hour day-of-month month day-of-week) in time zone `tz`.
    pub fn parse(expr: &str, tz: &str) -> Result<Self, ScheduleError> {
        let tz: Tz = tz
            .parse()
            .map_err(|_| ScheduleError::TimeZone(tz.to_string()))?;
        let fields = expr.split_whitespace().count();
        if fields != 5 {
            return Err(ScheduleError::Cron {
                expr: expr.into(),
                reason: format!("expected 5 fields (minute hour day month weekday), got {fields}"),
            });
        }
        let cron = Cron::from_str(expr).map_err(|e| ScheduleError::Cron {
            expr: expr.into(),
            reason: e.to_string(),
        })?;
        Ok(Schedule { cron, tz })
    }

    /// The latest fire time in `(after, now]`: the run that is due, if any. Older missed times are
    /// skipped (caught up at most once).
    pub fn latest_due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.tz);
        let prev = self.cron.find_previous_occurrence(&local, true).ok()?;
        let prev = prev.with_timezone(&Utc);
        (prev > after).then_some(prev)
    }

    /// The first fire time strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The deterministic name of a scheduled run: `<sync>-<type>-<yyyymmddhhmm>` (UTC minute).
pub fn run_name(sync: &str, run_type: super::RunType, at: DateTime<Utc>) -> String {
    format!("{sync}-{}-{}", run_type.as_str(), at.format("%Y%m%d%H%M"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parse_rejects_bad_expressions_and_zones() {
        assert!(Schedule::parse("0 2 * * *", "UTC").is_ok());
        assert!(Schedule::parse("0 2 * * 1-5", "Europe/Berlin").is_ok());
        for bad in [
            "",
            "0 2 * *",
            "0 0 2 * * *",
            "61 2 * * *",
            "every day",
            "0 25 * * *",
        ] {
            assert!(
                matches!(Schedule::parse(bad, "UTC"), Err(ScheduleError::Cron { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            Schedule::parse("0 2 * * *", "Mars/Olympus").unwrap_err(),
            ScheduleError::TimeZone("Mars/Olympus".into())
        );
    }

    #[test]
    fn latest_due_cases() {
        let s = Schedule::parse("0 2 * * *", "UTC").unwrap();
        let cases = [
            // (after, now, due)
            ("2026-03-01T00:00:00Z", "2026-03-01T01:59:00Z", None),
            (
                "2026-03-01T00:00:00Z",
                "2026-03-01T02:00:00Z",
                Some("2026-03-01T02:00:00Z"),
            ),
            ("2026-03-01T02:00:00Z", "2026-03-01T05:00:00Z", None),
            // three days missed: only the latest is caught up
            (
                "2026-03-01T02:00:00Z",
                "2026-03-04T03:00:00Z",
                Some("2026-03-04T02:00:00Z"),
            ),
        ];
        for (after, now, due) in cases {
            assert_eq!(
                s.latest_due(utc(after), utc(now)),
                due.map(utc),
                "after={after} now={now}"
            );
        }
    }

    #[test]
    fn schedules_follow_the_time_zone_across_daylight_saving() {
        let s = Schedule::parse("0 2 * * *", "Europe/Berlin").unwrap();
        // Winter: 02:00 CET = 01:00 UTC; summer: 02:00 CEST = 00:00 UTC.
        assert_eq!(
            s.next_after(utc("2026-01-10T12:00:00Z")),
            Some(utc("2026-01-11T01:00:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-07-10T12:00:00Z")),
            Some(utc("2026-07-11T00:00:00Z"))
        );
        let weekly = Schedule::parse("30 4 * * 1", "UTC").unwrap();
        // 2026-03-02 is a Monday.
        assert_eq!(
            weekly.next_after(utc("2026-02-27T00:00:00Z")),
            Some(utc("2026-03-02T04:30:00Z"))
        );
    }

    #[test]
    fn run_names_carry_the_utc_minute() {
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 2, 0, 0).unwrap();
        assert_eq!(
            run_name("cinegraph", super::super::RunType::Bulk, at),
            "cinegraph-bulk-202603040200"
        );
    }
}
