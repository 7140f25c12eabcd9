//! A SyncRun's decisions, pure: which bulk pages it imports (its own, the recorded plan, or the
//! next open ones), whether its window is valid, how many pods run it and what share of the TMDb
//! budget each pod gets, the conditions its status shows and how its duration reads while it runs.

use super::pages::{PageRange, next_bulk_range};
use crate::api::RunPhase;
use crate::api::conditions::{ConditionStatus, DesiredCondition};

/// What a Bulk run does about pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkPages {
    /// Import these pages; `record` when the plan is new and must be written to status before the
    /// Job exists, so a restarted controller reuses it.
    Import { range: PageRange, record: bool },
    /// Nothing to import: the run ends at once with this outcome.
    Finished {
        succeeded: bool,
        reason: &'static str,
        message: String,
    },
    /// The pages asked for cannot be imported.
    Invalid(String),
}

/// The pages of a Bulk run: the spec's (a manual run), else the plan recorded in status, else the
/// next `pages_per_run` open pages from `first_open` (`None` when every page is done, or when it was
/// not looked up because a range is given).
pub fn bulk_pages(
    asked: Option<PageRange>,
    recorded: Option<PageRange>,
    total: i32,
    first_open: Option<i32>,
    pages_per_run: i32,
) -> BulkPages {
    let range = asked
        .or(recorded)
        .or_else(|| next_bulk_range(first_open, total, pages_per_run));
    let Some(range) = range else {
        return if total == 0 {
            BulkPages::Finished {
                succeeded: false,
                reason: "CatalogEmpty",
                message: "the catalog is empty: a Catalog run must load it first".into(),
            }
        } else {
            BulkPages::Finished {
                succeeded: true,
                reason: "NothingToDo",
                message: format!("all {total} catalog pages are done; nothing to import"),
            }
        };
    };
    if range.to > total {
        return BulkPages::Invalid(format!(
            "pages {}-{} go beyond the catalog's {total} pages",
            range.from, range.to
        ));
    }
    BulkPages::Import {
        range,
        record: asked.is_none() && recorded.is_none(),
    }
}

/// Checks a Delta window's dates (`YYYY-MM-DD`).
pub fn check_window(start: &str, end: &str) -> Result<(), String> {
    match (
        start.parse::<chrono::NaiveDate>(),
        end.parse::<chrono::NaiveDate>(),
    ) {
        (Ok(_), Ok(_)) => Ok(()),
        _ => Err(format!(
            "window {start}..{end} is not a pair of valid dates"
        )),
    }
}

/// Pods for a run: a Bulk run's own parallelism, else the TmdbSync's; any other run one pod (a
/// delta window's watermark is decided by one pod; see the README).
pub fn pods(run_type: super::RunType, own: Option<i32>, bulk_default: i32) -> i32 {
    match run_type {
        super::RunType::Bulk => own.unwrap_or(bulk_default),
        _ => 1,
    }
}

/// Connections TMDb allows one client to keep open (its documentation: about 20 per IP). It is a
/// budget per TmdbSync, like the request rate: a run's pods share it.
pub const TMDB_CONNECTIONS: u32 = 20;

/// One pod's share of a TmdbSync's TMDb budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodBudget {
    /// Requests per second the pod may send.
    pub requests_per_second: u32,
    /// Connections to TMDb the pod may keep open (requests in flight at once).
    pub connections: u32,
}

/// Splits the TmdbSync's `requests_per_second` and [`TMDB_CONNECTIONS`] evenly over a run's `pods`,
/// rounding down so the pods together stay within the budget, but never below 1 (a pod must be
/// able to work; with more pods than the budget allows, each gets 1).
pub fn pod_budget(requests_per_second: u32, pods: i32) -> PodBudget {
    let pods = u32::try_from(pods.max(1)).unwrap_or(1);
    let share = |total: u32| (total / pods).max(1);
    PodBudget {
        requests_per_second: share(requests_per_second),
        connections: share(TMDB_CONNECTIONS),
    }
}

/// What a run waiting for another says.
pub fn waiting_message(run_type: super::RunType, other: &str) -> String {
    if run_type == super::RunType::Enrich {
        format!("waiting for {other} to finish (enrichment follows the imports)")
    } else {
        format!("waiting for {other} to finish (one TMDb run at a time)")
    }
}

/// Why a failed Job failed, as the run's reason and message: the worker's fatal exit codes (3: the
/// credentials, 4: the configuration) end a run at once through the pod failure policy.
pub fn job_failure(
    job_reason: Option<&str>,
    exit_code: Option<i32>,
    job_message: &str,
) -> (&'static str, String) {
    match (job_reason, exit_code) {
        (Some("PodFailurePolicy"), Some(3)) => (
            "AuthFailed",
            "TMDb refused the API key; the run stopped without retrying".into(),
        ),
        (Some("PodFailurePolicy"), Some(4)) => (
            "InvalidConfig",
            format!("the worker rejected its configuration: {job_message}"),
        ),
        (Some("DeadlineExceeded"), _) => (
            "DeadlineExceeded",
            format!("DeadlineExceeded: {job_message}"),
        ),
        (reason, _) => (
            "RetriesExhausted",
            format!("{}: {job_message}", reason.unwrap_or_default()),
        ),
    }
}

/// The conditions of a run in `phase` (with the run's own `reason` and `message`):
/// * `Running`: True while its Job runs;
/// * `Succeeded` and `Failed`: Unknown until the run ends, then exactly one of them is True,
///
/// so `kubectl wait --for=condition=Succeeded syncrun/NAME` (or `Failed`) returns when it ends.
pub fn run_conditions(
    phase: Option<RunPhase>,
    reason: Option<&str>,
    message: Option<&str>,
) -> Vec<DesiredCondition> {
    let phase = phase.unwrap_or(RunPhase::Pending);
    let reason = reason.unwrap_or(match phase {
        RunPhase::Pending => "Pending",
        RunPhase::Running => "Running",
        RunPhase::Succeeded => "Completed",
        RunPhase::Failed => "Failed",
    });
    let message = message.unwrap_or_default();
    let this =
        |type_, status: ConditionStatus| DesiredCondition::new(type_, status, reason, message);
    let open = |type_| {
        DesiredCondition::new(
            type_,
            ConditionStatus::Unknown,
            "NotFinished",
            "the run has not finished yet",
        )
    };
    let running = this("Running", (phase == RunPhase::Running).into());
    match phase {
        RunPhase::Pending | RunPhase::Running => vec![running, open("Succeeded"), open("Failed")],
        RunPhase::Succeeded => vec![
            running,
            this("Succeeded", ConditionStatus::True),
            this("Failed", ConditionStatus::False),
        ],
        RunPhase::Failed => vec![
            running,
            this("Succeeded", ConditionStatus::False),
            this("Failed", ConditionStatus::True),
        ],
    }
}

/// The duration a running run's status shows after `elapsed_secs`: rounded down to whole `step_secs`
/// (the mirror interval) for ten minutes, to whole minutes after. The controller refreshes it on
/// each mirror tick; rounding means the status write it causes wakes the run into the same value,
/// so it writes at most once a step, never in a loop.
pub fn running_duration_secs(elapsed_secs: i64, step_secs: i64) -> i64 {
    let elapsed = elapsed_secs.max(0);
    let step = if elapsed < 600 { step_secs.max(1) } else { 60 };
    elapsed - elapsed % step
}

/// A duration as `kubectl` prints one: `5s`, `1m5s`, `1h2m5s`.
pub fn format_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::RunType;

    fn r(from: i32, to: i32) -> PageRange {
        PageRange { from, to }
    }

    #[test]
    fn bulk_page_cases() {
        let cases = [
            (
                "manual pages → those pages, nothing recorded",
                bulk_pages(Some(r(1, 10)), None, 50, None, 200),
                BulkPages::Import {
                    range: r(1, 10),
                    record: false,
                },
            ),
            (
                "a recorded plan → reused after a restart",
                bulk_pages(None, Some(r(11, 20)), 50, Some(30), 10),
                BulkPages::Import {
                    range: r(11, 20),
                    record: false,
                },
            ),
            (
                "no plan → the next open pages, recorded",
                bulk_pages(None, None, 50, Some(21), 10),
                BulkPages::Import {
                    range: r(21, 30),
                    record: true,
                },
            ),
            (
                "the last pages → cut at the catalog's end",
                bulk_pages(None, None, 50, Some(45), 10),
                BulkPages::Import {
                    range: r(45, 50),
                    record: true,
                },
            ),
            (
                "empty catalog → failed, CatalogEmpty",
                bulk_pages(None, None, 0, Some(1), 10),
                BulkPages::Finished {
                    succeeded: false,
                    reason: "CatalogEmpty",
                    message: "the catalog is empty: a Catalog run must load it first".into(),
                },
            ),
            (
                "every page done → succeeded, NothingToDo",
                bulk_pages(None, None, 50, None, 10),
                BulkPages::Finished {
                    succeeded: true,
                    reason: "NothingToDo",
                    message: "all 50 catalog pages are done; nothing to import".into(),
                },
            ),
            (
                "manual pages past the catalog → invalid",
                bulk_pages(Some(r(40, 60)), None, 50, None, 10),
                BulkPages::Invalid("pages 40-60 go beyond the catalog's 50 pages".into()),
            ),
        ];
        for (case, got, want) in cases {
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn job_failure_cases() {
        let cases = [
            (
                "exit 3 through the failure policy → AuthFailed",
                Some("PodFailurePolicy"),
                Some(3),
                "AuthFailed",
            ),
            (
                "exit 4 through the failure policy → InvalidConfig",
                Some("PodFailurePolicy"),
                Some(4),
                "InvalidConfig",
            ),
            (
                "deadline → DeadlineExceeded",
                Some("DeadlineExceeded"),
                None,
                "DeadlineExceeded",
            ),
            (
                "backoff limit → RetriesExhausted",
                Some("BackoffLimitExceeded"),
                Some(1),
                "RetriesExhausted",
            ),
        ];
        for (case, reason, code, want) in cases {
            assert_eq!(job_failure(reason, code, "m").0, want, "{case}");
        }
        assert!(
            job_failure(Some("PodFailurePolicy"), Some(4), "bad url")
                .1
                .contains("bad url")
        );
    }

    #[test]
    fn a_runs_pods_share_the_request_rate_and_the_connection_cap() {
        // (requests per second, pods) → per-pod (rate, connections)
        #[rustfmt::skip]
        let cases = [
            (40, 1, 40, 20),
            (40, 2, 20, 10),
            (40, 3, 13, 6),
            (40, 4, 10, 5),
            (40, 20, 2, 1),
            (1000, 7, 142, 2),
            (1, 4, 1, 5),      // a rate below the pod count: 1 each, the only way to work
            (40, 0, 40, 20),   // no pods is read as one
            (40, -3, 40, 20),
        ];
        for (rps, pods, want_rps, want_conns) in cases {
            assert_eq!(
                pod_budget(rps, pods),
                PodBudget {
                    requests_per_second: want_rps,
                    connections: want_conns
                },
                "{rps} rps over {pods} pods"
            );
        }
        // Every pod count a run may have (parallelism 1-20): the pods together never exceed the
        // TmdbSync's rate or TMDb's connection cap, and each pod gets at least one of each.
        for pods in 1..=20 {
            for rps in [20, 40, 100, 1000] {
                let b = pod_budget(rps, pods);
                let n = pods as u32;
                assert!(b.connections >= 1 && b.requests_per_second >= 1);
                assert!(b.connections * n <= TMDB_CONNECTIONS, "{pods} pods: {b:?}");
                assert!(
                    b.requests_per_second * n <= rps,
                    "{rps} rps, {pods} pods: {b:?}"
                );
                // Rounding down loses less than one pod's share.
                assert!(
                    TMDB_CONNECTIONS - b.connections * n < n,
                    "{pods} pods: {b:?}"
                );
            }
        }
    }

    #[test]
    fn windows_pods_and_waiting() {
        assert!(check_window("2026-01-01", "2026-01-14").is_ok());
        assert!(
            check_window("2026-02-30", "2026-03-01").is_err(),
            "no such day"
        );
        assert_eq!(pods(RunType::Bulk, None, 3), 3);
        assert_eq!(pods(RunType::Bulk, Some(2), 3), 2);
        assert_eq!(
            pods(RunType::Delta, Some(4), 3),
            1,
            "one pod decides a window"
        );
        assert!(waiting_message(RunType::Enrich, "x").contains("enrichment follows"));
        assert!(waiting_message(RunType::Bulk, "x").contains("one TMDb run"));
    }

    #[test]
    fn run_condition_cases() {
        use ConditionStatus::{False, True, Unknown};
        type Row = (&'static str, ConditionStatus, &'static str);
        type Case = (
            &'static str,
            Option<RunPhase>,
            Option<&'static str>,
            Vec<Row>,
        );
        let cases: Vec<Case> = vec![
            (
                "new run, no status yet → not running, outcome unknown",
                None,
                None,
                vec![
                    ("Running", False, "Pending"),
                    ("Succeeded", Unknown, "NotFinished"),
                    ("Failed", Unknown, "NotFinished"),
                ],
            ),
            (
                "queued behind another run → not running, with the reason",
                Some(RunPhase::Pending),
                Some("Waiting"),
                vec![
                    ("Running", False, "Waiting"),
                    ("Succeeded", Unknown, "NotFinished"),
                    ("Failed", Unknown, "NotFinished"),
                ],
            ),
            (
                "Job running → Running True",
                Some(RunPhase::Running),
                Some("JobCreated"),
                vec![
                    ("Running", True, "JobCreated"),
                    ("Succeeded", Unknown, "NotFinished"),
                    ("Failed", Unknown, "NotFinished"),
                ],
            ),
            (
                "succeeded → Succeeded True, Failed False",
                Some(RunPhase::Succeeded),
                Some("NothingToDo"),
                vec![
                    ("Running", False, "NothingToDo"),
                    ("Succeeded", True, "NothingToDo"),
                    ("Failed", False, "NothingToDo"),
                ],
            ),
            (
                "failed → Failed True with the reason, Succeeded False",
                Some(RunPhase::Failed),
                Some("AuthFailed"),
                vec![
                    ("Running", False, "AuthFailed"),
                    ("Succeeded", False, "AuthFailed"),
                    ("Failed", True, "AuthFailed"),
                ],
            ),
        ];
        for (case, phase, reason, want) in cases {
            let got: Vec<(&str, ConditionStatus, String)> =
                run_conditions(phase, reason, Some("m"))
                    .into_iter()
                    .map(|c| (c.type_, c.status, c.reason))
                    .collect();
            let want: Vec<(&str, ConditionStatus, String)> = want
                .into_iter()
                .map(|(t, s, r)| (t, s, r.to_string()))
                .collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn a_running_duration_grows_in_steps() {
        let cases = [
            ("under a step → 0", 4, 5, 0),
            ("rounded down to the mirror interval", 17, 5, 15),
            ("a 1 s interval → every second", 17, 1, 17),
            ("past ten minutes → whole minutes", 725, 5, 720),
            ("a clock behind the start → 0", -3, 5, 0),
            ("a zero interval counts as one second", 7, 0, 7),
        ];
        for (case, elapsed, step, want) in cases {
            assert_eq!(running_duration_secs(elapsed, step), want, "{case}");
        }
    }

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(format_duration(5), "5s");
        assert_eq!(format_duration(65), "1m5s");
        assert_eq!(format_duration(3725), "1h2m5s");
        assert_eq!(format_duration(-3), "0s");
    }
}
