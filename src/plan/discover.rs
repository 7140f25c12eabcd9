//! The Discover catalog source (`bulk.source: Discover`), pure: which release-date windows to walk
//! so that no query needs a page past the cap `/discover/movie` serves (500 pages of 20), how a
//! window that would pass it is split, and the coverage a walk reports.

use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// The last page `/discover/movie` serves; asking for a later one is refused (400, status_code 22).
pub const MAX_PAGE: u32 = 500;
/// Results on one discover page.
pub const PAGE_RESULTS: u64 = 20;
/// A split aims at this share (percent) of the cap per window, so a window that gains movies while
/// it is walked still fits.
pub const FILL_PERCENT: u64 = 80;
/// Windows are planned one per year from this year on; everything before it is one window.
pub const FIRST_YEAR: i32 = 1900;
/// The last yearly window ends this many years after today; later dates form one open window.
pub const YEARS_AHEAD: i32 = 2;
/// Where splitting an open-ended window counts from when it has no lower bound.
const OPEN_START: (i32, u32, u32) = (1800, 1, 1);
/// Years counted past the lower bound when splitting a window with no upper bound.
const OPEN_END_YEARS: u64 = 100;

/// A range of primary release dates, both ends included; `None` leaves that end open (no
/// `primary_release_date.gte` / `.lte` filter), so together the windows cover every date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReleaseWindow {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl ReleaseWindow {
    /// `[from, to]`, both ends bounded.
    pub fn between(from: NaiveDate, to: NaiveDate) -> Self {
        ReleaseWindow {
            from: Some(from),
            to: Some(to),
        }
    }

    /// The concrete days splitting works on: open ends stand for [`OPEN_START`] and
    /// [`OPEN_END_YEARS`] past the start.
    fn span(&self) -> (NaiveDate, NaiveDate) {
        let (y, m, d) = OPEN_START;
        let open_start = NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
        let from = self
            .from
            .unwrap_or(open_start.min(self.to.unwrap_or(open_start)));
        let to = self
            .to
            .unwrap_or_else(|| from + Days::new(OPEN_END_YEARS * 365));
        (from, to)
    }

    /// Days in the window as splitting sees it (at least 1).
    pub fn days(&self) -> u64 {
        let (from, to) = self.span();
        ((to - from).num_days() + 1).max(1) as u64
    }
}

impl std::fmt::Display for ReleaseWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.from, self.to) {
            (Some(a), Some(b)) if a == b => write!(f, "{a}"),
            (Some(a), Some(b)) => write!(f, "{a}..{b}"),
            (None, Some(b)) => write!(f, "..{b}"),
            (Some(a), None) => write!(f, "{a}.."),
            (None, None) => f.write_str("any date"),
        }
    }
}

/// The windows a walk starts from: everything before [`FIRST_YEAR`], one window per year up to
/// [`YEARS_AHEAD`] years after `today`, and everything later. Consecutive, no gap, no overlap.
pub fn initial_windows(today: NaiveDate) -> Vec<ReleaseWindow> {
    let jan1 = |y: i32| NaiveDate::from_ymd_opt(y, 1, 1).expect("a valid date");
    let last_year = today.year() + YEARS_AHEAD;
    let mut windows = vec![ReleaseWindow {
        from: None,
        to: Some(jan1(FIRST_YEAR) - Days::new(1)),
    }];
    windows.extend(
        (FIRST_YEAR..=last_year)
            .map(|y| ReleaseWindow::between(jan1(y), jan1(y + 1) - Days::new(1))),
    );
    windows.push(ReleaseWindow {
        from: Some(jan1(last_year + 1)),
        to: None,
    });
    windows
}

/// What to do with a window whose first page said it holds `total_results` movies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowPlan {
    /// Walk pages `1..=pages`: everything fits under the cap.
    Walk { pages: u32 },
    /// Too many for the cap: walk these smaller windows instead (consecutive, covering it).
    Split(Vec<ReleaseWindow>),
    /// Too many for the cap and a single day, which cannot be split: walk up to the cap; `beyond`
    /// movies of it cannot be reached.
    Capped { pages: u32, beyond: u64 },
}

/// Pages needed for `results` (at least 1: the first page is always read).
pub fn pages_for(results: u64) -> u32 {
    results.div_ceil(PAGE_RESULTS).clamp(1, u64::from(u32::MAX)) as u32
}

/// Decides a window from its reported size, with `max_page` the last page discover serves.
pub fn plan_window(window: ReleaseWindow, total_results: u64, max_page: u32) -> WindowPlan {
    let max_page = max_page.max(1);
    let cap = u64::from(max_page) * PAGE_RESULTS;
    if total_results <= cap {
        return WindowPlan::Walk {
            pages: pages_for(total_results),
        };
    }
    let parts = split(window, total_results, cap);
    if parts.len() > 1 {
        WindowPlan::Split(parts)
    } else {
        WindowPlan::Capped {
            pages: max_page,
            beyond: total_results - cap,
        }
    }
}

/// Splits `window` into consecutive windows of equal length, enough of them that
/// `total_results` spread evenly would fill each to [`FILL_PERCENT`] of `cap` (at least two; never
/// shorter than a day). A one-day window comes back whole.
pub fn split(window: ReleaseWindow, total_results: u64, cap: u64) -> Vec<ReleaseWindow> {
    let days = window.days();
    let target = (cap * FILL_PERCENT / 100).max(1);
    let parts = total_results.div_ceil(target).max(2).min(days);
    if parts < 2 {
        return vec![window];
    }
    let (from, _) = window.span();
    let mut out = Vec::with_capacity(parts as usize);
    let mut start = 0u64;
    for i in 1..=parts {
        let end = days * i / parts;
        let piece_from = from + Days::new(start);
        let piece_to = from + Days::new(end - 1);
        out.push(ReleaseWindow {
            from: if i == 1 {
                window.from
            } else {
                Some(piece_from)
            },
            to: if i == parts {
                window.to
            } else {
                Some(piece_to)
            },
        });
        start = end;
    }
    out
}

/// How far a Discover walk reached, recorded with its Catalog run and shown in the run's message,
/// the TmdbSync status and `tmdbsync status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverCoverage {
    /// The day the walk ran (the catalog date it loaded).
    #[serde(default)]
    pub date: Option<NaiveDate>,
    /// Movies discover reports in all (its unfiltered `total_results`).
    pub reported: u64,
    /// Distinct ids the walk listed and loaded into the catalog.
    pub listed: u64,
    /// Of those, ids without a release date (found by the pass without a date filter).
    pub without_date: u64,
    /// Release-date windows walked (after splitting).
    pub windows: u32,
    /// Single days with more movies than the cap; their excess cannot be listed.
    pub capped_windows: u32,
    /// Movies discover reports but the walk could not list: `reported - listed`, at least 0.
    pub not_reachable: u64,
    /// The comparison with TMDb's daily export, when the export could be read.
    #[serde(default)]
    pub export: Option<ExportComparison>,
    /// Why there is no comparison with the export (it could not be read).
    #[serde(default)]
    pub export_note: Option<String>,
}

/// The walk compared with the export of the same day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportComparison {
    /// The export file compared with.
    pub file: String,
    /// Ids in it the sync imports (adult ones only with `includeAdult`).
    pub ids: u64,
    /// Of those, ids discover did not list.
    pub not_reachable: u64,
}

impl DiscoverCoverage {
    /// Fills in `not_reachable` from the counts.
    pub fn with_counts(mut self) -> Self {
        self.not_reachable = self.reported.saturating_sub(self.listed);
        self
    }

    /// One line for people: what was listed and what could not be.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "discover listed {} of the {} movies it reports ({} release-date windows, {} without a \
             release date)",
            self.listed, self.reported, self.windows, self.without_date
        );
        if self.not_reachable > 0 {
            s.push_str(&format!(
                "; {} not reachable by discover (beyond the last page it serves for any query)",
                self.not_reachable
            ));
        }
        match (&self.export, &self.export_note) {
            (Some(e), _) => s.push_str(&format!(
                "; {} export ids not reachable by discover (of {} in {})",
                e.not_reachable, e.ids, e.file
            )),
            (None, Some(note)) => s.push_str(&format!("; no export comparison: {note}")),
            (None, None) => {}
        }
        s
    }

    /// The best count of catalog movies discover cannot reach: the export comparison when there
    /// is one, else discover's own count.
    pub fn unreachable(&self) -> u64 {
        self.export
            .as_ref()
            .map_or(self.not_reachable, |e| e.not_reachable)
    }
}

/// How many of `export` (sorted, distinct) are missing from `listed` (sorted, distinct).
pub fn missing_from(export: &[i64], listed: &[i64]) -> u64 {
    let (mut i, mut j, mut missing) = (0, 0, 0u64);
    while i < export.len() {
        match listed.get(j) {
            Some(l) if *l < export[i] => j += 1,
            Some(l) if *l == export[i] => {
                i += 1;
                j += 1;
            }
            _ => {
                missing += 1;
                i += 1;
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn w(from: &str, to: &str) -> ReleaseWindow {
        ReleaseWindow::between(d(from), d(to))
    }

    /// Windows are consecutive: each starts the day after the previous one ends.
    fn assert_consecutive(ws: &[ReleaseWindow]) {
        for pair in ws.windows(2) {
            let (a, b) = (pair[0].to.unwrap(), pair[1].from.unwrap());
            assert_eq!(a + Days::new(1), b, "gap or overlap in {ws:?}");
        }
    }

    #[test]
    fn initial_windows_cover_every_date_once() {
        let ws = initial_windows(d("2026-03-07"));
        assert_eq!(ws.first().unwrap().from, None);
        assert_eq!(ws.first().unwrap().to, Some(d("1899-12-31")));
        assert_eq!(ws[1], w("1900-01-01", "1900-12-31"));
        assert_eq!(ws[ws.len() - 2], w("2028-01-01", "2028-12-31"));
        assert_eq!(ws.last().unwrap().from, Some(d("2029-01-01")));
        assert_eq!(ws.last().unwrap().to, None);
        assert_eq!(ws.len(), 1 + (2028 - 1900 + 1) + 1);
        assert_consecutive(&ws);
    }

    #[test]
    fn a_window_is_walked_split_or_capped_by_its_size() {
        let year = w("2020-01-01", "2020-12-31");
        let day = w("2020-05-01", "2020-05-01");
        let cases: [(&str, ReleaseWindow, u64, u32, WindowPlan); 7] = [
            (
                "empty: page 1 only",
                year,
                0,
                500,
                WindowPlan::Walk { pages: 1 },
            ),
            (
                "one partial page",
                year,
                7,
                500,
                WindowPlan::Walk { pages: 1 },
            ),
            (
                "exactly the cap",
                year,
                10_000,
                500,
                WindowPlan::Walk { pages: 500 },
            ),
            (
                "one past the cap: split in two",
                year,
                10_001,
                500,
                WindowPlan::Split(vec![
                    w("2020-01-01", "2020-07-01"),
                    w("2020-07-02", "2020-12-31"),
                ]),
            ),
            (
                "a full day cannot be split",
                day,
                12_345,
                500,
                WindowPlan::Capped {
                    pages: 500,
                    beyond: 2_345,
                },
            ),
            (
                "a small cap",
                year,
                61,
                3,
                WindowPlan::Split(vec![
                    w("2020-01-01", "2020-07-01"),
                    w("2020-07-02", "2020-12-31"),
                ]),
            ),
            (
                "a small cap, a day",
                day,
                61,
                3,
                WindowPlan::Capped {
                    pages: 3,
                    beyond: 1,
                },
            ),
        ];
        for (name, window, total, cap, want) in cases {
            assert_eq!(plan_window(window, total, cap), want, "{name}");
        }
    }

    #[test]
    fn splits_are_sized_from_the_count_and_stay_consecutive() {
        // 40,000 movies in a year at 8,000 a window: 5 windows of about 73 days.
        let parts = split(w("2020-01-01", "2020-12-31"), 40_000, 10_000);
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[0].from, Some(d("2020-01-01")));
        assert_eq!(parts[4].to, Some(d("2020-12-31")));
        assert_consecutive(&parts);
        let lengths: Vec<u64> = parts.iter().map(ReleaseWindow::days).collect();
        assert!(lengths.iter().all(|l| (73..=74).contains(l)), "{lengths:?}");
        // Never more windows than days, never less than a day each.
        let parts = split(w("2020-01-01", "2020-01-03"), 1_000_000, 10_000);
        assert_eq!(
            parts,
            vec![
                w("2020-01-01", "2020-01-01"),
                w("2020-01-02", "2020-01-02"),
                w("2020-01-03", "2020-01-03")
            ]
        );
        assert_eq!(
            split(w("2020-01-01", "2020-01-01"), 50_000, 10_000).len(),
            1
        );
    }

    #[test]
    fn open_windows_keep_their_open_end_when_split() {
        let before = ReleaseWindow {
            from: None,
            to: Some(d("1899-12-31")),
        };
        let parts = split(before, 25_000, 10_000);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0].from, None);
        assert_eq!(parts[3].to, Some(d("1899-12-31")));
        assert_consecutive(&parts);

        let after = ReleaseWindow {
            from: Some(d("2029-01-01")),
            to: None,
        };
        let parts = split(after, 10_001, 10_000);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].from, Some(d("2029-01-01")));
        assert_eq!(parts[1].to, None);
        assert_consecutive(&parts);

        // An open window ending before the open start is a single day to splitting: it stays whole.
        let ancient = ReleaseWindow {
            from: None,
            to: Some(d("1700-01-01")),
        };
        assert_eq!(split(ancient, 20_000, 10_000), vec![ancient]);
    }

    #[test]
    fn missing_ids_are_counted_by_a_sorted_merge() {
        let cases: [(&[i64], &[i64], u64); 6] = [
            (&[], &[], 0),
            (&[1, 2, 3], &[], 3),
            (&[], &[1, 2], 0),
            (&[1, 2, 3], &[1, 2, 3], 0),
            (&[1, 3, 5, 7], &[2, 3, 4, 7, 9], 2),
            (&[10, 20], &[1, 2, 3, 20], 1),
        ];
        for (export, listed, want) in cases {
            assert_eq!(
                missing_from(export, listed),
                want,
                "{export:?} vs {listed:?}"
            );
        }
    }

    #[test]
    fn coverage_says_what_could_not_be_reached() {
        let c = DiscoverCoverage {
            reported: 1_000,
            listed: 950,
            without_date: 40,
            windows: 12,
            ..Default::default()
        }
        .with_counts();
        assert_eq!(c.not_reachable, 50);
        assert_eq!(c.unreachable(), 50);
        let s = c.summary();
        assert!(s.contains("listed 950 of the 1000"), "{s}");
        assert!(s.contains("50 not reachable by discover"), "{s}");

        let c = DiscoverCoverage {
            export: Some(ExportComparison {
                file: "movie_ids_03_07_2026.json.gz".into(),
                ids: 1_010,
                not_reachable: 60,
            }),
            ..c
        };
        assert_eq!(c.unreachable(), 60);
        assert!(
            c.summary().contains(
                "60 export ids not reachable by discover (of 1010 in movie_ids_03_07_2026.json.gz)"
            ),
            "{}",
            c.summary()
        );

        let all = DiscoverCoverage {
            reported: 10,
            listed: 10,
            export_note: Some("the export host could not be reached".into()),
            ..Default::default()
        }
        .with_counts();
        assert_eq!(all.not_reachable, 0);
        assert!(!all.summary().contains("not reachable by discover"));
        assert!(
            all.summary()
                .contains("no export comparison: the export host")
        );
    }
}
