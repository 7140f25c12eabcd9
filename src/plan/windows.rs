//! Delta windows: every day since the watermark, in windows TMDb accepts (at most 14 days).

use chrono::{Days, NaiveDate};

/// The longest window TMDb's `/movie/changes` accepts, in days, both ends included.
pub const MAX_WINDOW_DAYS: u64 = 14;

/// A range of days, both ends included, read from the changes feed in one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaWindow {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl DeltaWindow {
    /// The days of the window that are over (before `today`): the ones a success may record.
    pub fn finished_days(&self, today: NaiveDate) -> Vec<NaiveDate> {
        self.start
            .iter_days()
            .take_while(|d| *d <= self.end && *d < today)
            .collect()
    }
}

/// The first day the next delta run must read: the day after the watermark; without one, the first
/// catalog export's day (everything imported since needs its changes); without that, `lookback_days`
/// before today.
pub fn delta_start(
    watermark: Option<NaiveDate>,
    first_export: Option<NaiveDate>,
    today: NaiveDate,
    lookback_days: u32,
) -> NaiveDate {
    let start = match (watermark, first_export) {
        (Some(w), _) => w + Days::new(1),
        (None, Some(e)) => e,
        (None, None) => today - Days::new(u64::from(lookback_days)),
    };
    start.min(today)
}

/// Splits `[start, end]` into consecutive windows of at most `max_days` days, with no gap.
pub fn delta_windows(start: NaiveDate, end: NaiveDate, max_days: u64) -> Vec<DeltaWindow> {
    let mut windows = Vec::new();
    let mut from = start;
    while from <= end {
        let to = (from + Days::new(max_days.max(1) - 1)).min(end);
        windows.push(DeltaWindow {
            start: from,
            end: to,
        });
        from = to + Days::new(1);
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn delta_start_cases() {
        let today = d("2026-05-20");
        let cases = [
            (Some(d("2026-05-17")), None, 1, d("2026-05-18")),
            (
                Some(d("2026-05-17")),
                Some(d("2026-01-01")),
                1,
                d("2026-05-18"),
            ),
            (None, Some(d("2026-05-10")), 1, d("2026-05-10")),
            (None, None, 1, d("2026-05-19")),
            (None, None, 3, d("2026-05-17")),
            (Some(d("2026-05-25")), None, 1, today),
        ];
        for (watermark, first, lookback, want) in cases {
            assert_eq!(delta_start(watermark, first, today, lookback), want);
        }
    }

    #[test]
    fn windows_cover_every_day_without_gap_or_overlap_and_respect_the_limit() {
        let start = d("2026-01-01");
        for len in [1u64, 13, 14, 15, 29, 100] {
            let end = start + Days::new(len - 1);
            let ws = delta_windows(start, end, MAX_WINDOW_DAYS);
            assert_eq!(ws.first().unwrap().start, start);
            assert_eq!(ws.last().unwrap().end, end);
            for w in &ws {
                assert!((w.end - w.start).num_days() < MAX_WINDOW_DAYS as i64);
            }
            for pair in ws.windows(2) {
                assert_eq!(pair[0].end + Days::new(1), pair[1].start);
            }
            assert_eq!(ws.len() as u64, len.div_ceil(MAX_WINDOW_DAYS));
        }
        assert!(delta_windows(d("2026-01-02"), d("2026-01-01"), 14).is_empty());
    }

    #[test]
    fn only_days_before_today_are_finished() {
        let w = DeltaWindow {
            start: d("2026-01-01"),
            end: d("2026-01-04"),
        };
        assert_eq!(
            w.finished_days(d("2026-01-03")),
            vec![d("2026-01-01"), d("2026-01-02")]
        );
        assert_eq!(w.finished_days(d("2026-02-01")).len(), 4);
    }
}
