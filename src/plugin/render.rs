//! Text output of `kubectl tmdbsync`: the status (the Sync Health panel of `crate::report` framed
//! by the TmdbSync's phase, conditions and next runs), the runs table, a run's description, and
//! colours only where they belong (a terminal, no `NO_COLOR`).

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::api::{SyncRun, TmdbSync};
use crate::plan::health::SyncHealth;
use crate::report::{duration, thousands};

/// Whether to colour: on a terminal and without `NO_COLOR` (no-color.org).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub bool);

impl Colour {
    /// Colours when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect() -> Colour {
        use std::io::IsTerminal;
        Colour(
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.0 && !code.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A TmdbSync or SyncRun phase in its colour (green good, red bad, yellow paused).
    pub fn phase(self, phase: &str) -> String {
        let code = match phase {
            "Maintaining" | "Succeeded" | "completed" => "32",
            "Degraded" | "Failed" | "failed" => "31",
            "Suspended" | "Pending" | "pending" => "33",
            "Bootstrapping" | "Running" | "running" => "36",
            _ => "",
        };
        self.paint(code, phase)
    }
}

/// The status of one TmdbSync: phase and reason, the Sync Health panel, conditions, next runs.
pub fn status(sync: &TmdbSync, h: &SyncHealth, c: Colour) -> String {
    let mut s = String::new();
    let status = sync.status.clone().unwrap_or_default();
    let phase = h.sync.phase.clone().unwrap_or_else(|| "Pending".into());
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let why = ready.map_or_else(
        || "not reconciled yet".to_string(),
        |r| format!("{}: {}", r.reason, r.message),
    );
    let _ = writeln!(s, "Phase: {} ({why})", c.phase(&phase));
    if h.sync.suspended {
        let _ = writeln!(
            s,
            "Scheduling suspended: no new run starts (running Jobs finish)"
        );
    }
    let _ = writeln!(s);
    s.push_str(&crate::report::render(h));
    let _ = writeln!(s);
    let _ = writeln!(s, "Conditions");
    if status.conditions.is_empty() {
        let _ = writeln!(s, "  Not reported yet");
    }
    for cond in &status.conditions {
        let _ = writeln!(
            s,
            "  {:<17} {:<7} {:<20} {}",
            cond.type_, cond.status, cond.reason, cond.message
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Next runs");
    let next = status.next_runs.unwrap_or_default();
    for (ty, at) in [
        ("catalog", next.catalog),
        ("bulk", next.bulk),
        ("delta", next.delta),
        ("enrich", next.enrich),
    ] {
        let at = at.unwrap_or_else(|| {
            if sync.spec.suspend {
                "suspended".into()
            } else {
                "Not scheduled (disabled or waiting)".into()
            }
        });
        let _ = writeln!(s, "  {ty:<8} {at}");
    }
    let _ = writeln!(
        s,
        "\nDays and recent runs are those of the SyncRuns kept in the cluster (spec.history);\nprogress, rate and ETA are the controller's, from the whole database."
    );
    s
}

/// One row of `runs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRow {
    pub namespace: String,
    pub name: String,
    pub sync: String,
    #[serde(rename = "type")]
    pub run_type: String,
    pub trigger: String,
    pub phase: String,
    pub pages: String,
    pub imported: i32,
    pub skipped: i32,
    pub errors: i32,
    pub duration: String,
    pub started: Option<DateTime<Utc>>,
}

impl RunRow {
    /// The row of `run`.
    pub fn of(run: &SyncRun, now: DateTime<Utc>) -> RunRow {
        let status = run.status.clone().unwrap_or_default();
        let summary = super::model::run_summary(run, now);
        let started = status
            .started_at
            .as_deref()
            .and_then(super::model::parse_time);
        RunRow {
            namespace: run.metadata.namespace.clone().unwrap_or_default(),
            name: summary.name.clone().unwrap_or_default(),
            sync: run.spec.sync_ref.name.clone(),
            run_type: format!("{:?}", run.spec.run_type),
            trigger: format!("{:?}", run.spec.trigger),
            phase: format!("{:?}", super::model::phase(run)),
            pages: if status.pages_total > 0 {
                format!("{}/{}", status.pages_processed, status.pages_total)
            } else {
                status.pages_processed.to_string()
            },
            imported: status.movies_imported,
            skipped: status.movies_skipped,
            errors: status.errors,
            duration: status.duration.clone().unwrap_or_else(|| {
                if started.is_some() {
                    duration(summary.duration_seconds)
                } else {
                    "-".into()
                }
            }),
            started,
        }
    }
}

/// The runs as a table, with a NAMESPACE column for `-A` and a SYNC column when not one sync's.
pub fn runs_table(rows: &[RunRow], namespaces: bool, syncs: bool, c: Colour) -> String {
    if rows.is_empty() {
        return "No SyncRuns found.\n".into();
    }
    let mut header = Vec::new();
    if namespaces {
        header.push("NAMESPACE");
    }
    header.push("NAME");
    if syncs {
        header.push("SYNC");
    }
    header.extend([
        "TYPE", "TRIGGER", "PHASE", "PAGES", "IMPORTED", "SKIPPED", "ERRORS", "DURATION", "STARTED",
    ]);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v = Vec::new();
            if namespaces {
                v.push(r.namespace.clone());
            }
            v.push(r.name.clone());
            if syncs {
                v.push(r.sync.clone());
            }
            v.extend([
                r.run_type.clone(),
                r.trigger.clone(),
                r.phase.clone(),
                r.pages.clone(),
                thousands(r.imported.into()),
                thousands(r.skipped.into()),
                thousands(r.errors.into()),
                r.duration.clone(),
                r.started
                    .map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string()),
            ]);
            v
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let phase_col = header.iter().position(|h| *h == "PHASE").expect("column");
    let mut s = String::new();
    let line = |s: &mut String, row: &[String], paint: bool| {
        let mut out = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            let text = if paint && i == phase_col {
                c.phase(cell)
            } else {
                cell.clone()
            };
            if i + 1 == row.len() {
                out.push_str(&text);
            } else {
                let _ = write!(out, "{text}{pad}   ");
            }
        }
        let _ = writeln!(s, "{}", out.trim_end());
    };
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    line(&mut s, &head, false);
    for r in &cells {
        line(&mut s, r, true);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::{run, sync};
    use super::*;

    fn now() -> DateTime<Utc> {
        super::super::model::parse_time("2026-03-07T12:00:00Z").unwrap()
    }

    #[test]
    fn the_runs_table_lines_up_and_colours_only_when_asked() {
        let rows = vec![
            RunRow::of(
                &run(
                    "cinegraph-bulk-1",
                    "Bulk",
                    "Succeeded",
                    "2026-03-06T02:00:00Z",
                    1200,
                ),
                now(),
            ),
            RunRow::of(
                &run(
                    "cinegraph-delta-22",
                    "Delta",
                    "Failed",
                    "2026-03-07T02:00:00Z",
                    3,
                ),
                now(),
            ),
        ];
        let plain = runs_table(&rows, false, false, Colour(false));
        let expected = "\
NAME                 TYPE    TRIGGER     PHASE       PAGES   IMPORTED   SKIPPED   ERRORS   DURATION   STARTED
cinegraph-bulk-1     Bulk    Scheduled   Succeeded   5       1,200      0         1        10m00s     2026-03-06 02:00
cinegraph-delta-22   Delta   Scheduled   Failed      5       3          0         1        10m00s     2026-03-07 02:00
";
        assert_eq!(plain, expected);
        assert!(!plain.contains('\x1b'));
        let coloured = runs_table(&rows, true, true, Colour(true));
        assert!(coloured.starts_with("NAMESPACE   NAME"));
        assert!(coloured.contains("\x1b[31mFailed\x1b[0m"));
        assert_eq!(
            runs_table(&[], false, false, Colour(false)),
            "No SyncRuns found.\n"
        );
    }

    #[test]
    fn status_sections_come_in_a_fixed_order_and_say_what_is_missing() {
        let s = sync(
            serde_json::json!({"phase": "Suspended", "conditions": [
                {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "spec usable",
                 "lastTransitionTime": "2026-03-07T00:00:00Z"}]}),
            true,
        );
        let h = super::super::model::health(&s, &[], now());
        let text = status(&s, &h, Colour(false));
        let order = [
            "Phase: Suspended (Reconciled: spec usable)",
            "Scheduling suspended",
            "SYNC HEALTH  media/cinegraph  phase Suspended",
            "Bulk import progress",
            "Last 7 days",
            "Last 30 days",
            "Alerts",
            "kubectl tmdbsync resume cinegraph -n media",
            "Conditions",
            "Next runs",
            "  bulk     suspended",
        ];
        let mut at = 0;
        for part in order {
            let found = text[at..]
                .find(part)
                .unwrap_or_else(|| panic!("{part} after {at}:\n{text}"));
            at += found + part.len();
        }
        assert!(!text.contains('\x1b'));
        assert!(status(&s, &h, Colour(true)).contains("\x1b[33mSuspended\x1b[0m"));
    }
}
