//! The report downloads: `report.json` is [`SyncReport`] serialised; `report.csv` is the same
//! rows as CSV, one `day` row per day and one `run` row per run under one header (the columns
//! are documented in docs/report.md).

use serde::Serialize;

use crate::plan::health::SyncReport;

/// One CSV row: a day or a run. Columns that do not apply to the kind are empty.
#[derive(Debug, Serialize)]
struct CsvRow<'a> {
    kind: &'static str,
    day: String,
    status: &'a str,
    paused: Option<bool>,
    runs: Option<i64>,
    failed_runs: Option<i64>,
    run_id: Option<i64>,
    run_name: Option<&'a str>,
    run_type: Option<&'a str>,
    trigger: Option<&'a str>,
    started_at: Option<String>,
    completed_at: Option<String>,
    duration_seconds: Option<String>,
    pages: Option<i64>,
    imported: i64,
    updated: i64,
    skipped: i64,
    deleted: i64,
    errors: i64,
    message: Option<&'a str>,
}

/// The columns of `report.csv`, in order.
pub const CSV_COLUMNS: [&str; 20] = [
    "kind",
    "day",
    "status",
    "paused",
    "runs",
    "failed_runs",
    "run_id",
    "run_name",
    "run_type",
    "trigger",
    "started_at",
    "completed_at",
    "duration_seconds",
    "pages",
    "imported",
    "updated",
    "skipped",
    "deleted",
    "errors",
    "message",
];

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The report as CSV: the day rows (oldest first), then the run rows (oldest first).
pub fn report_csv(report: &SyncReport) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for d in &report.day_rows {
        w.serialize(CsvRow {
            kind: "day",
            day: d.day.to_string(),
            status: d.status.as_str(),
            paused: Some(d.paused),
            runs: Some(d.runs),
            failed_runs: Some(d.failed_runs),
            run_id: None,
            run_name: None,
            run_type: None,
            trigger: None,
            started_at: None,
            completed_at: None,
            duration_seconds: None,
            pages: None,
            imported: d.imported,
            updated: d.updated,
            skipped: d.skipped,
            deleted: d.deleted,
            errors: d.errors,
            message: None,
        })?;
    }
    for r in &report.run_rows {
        w.serialize(CsvRow {
            kind: "run",
            day: r.day.to_string(),
            status: &r.status,
            paused: None,
            runs: None,
            failed_runs: None,
            run_id: Some(r.id),
            run_name: r.name.as_deref(),
            run_type: Some(&r.run_type),
            trigger: Some(&r.trigger),
            started_at: Some(time(r.started_at)),
            completed_at: r.completed_at.map(time),
            duration_seconds: Some(format!("{:.1}", r.duration_seconds)),
            pages: Some(r.pages_processed.into()),
            imported: r.movies_imported.into(),
            updated: r.movies_updated.into(),
            skipped: r.movies_skipped.into(),
            deleted: r.movies_deleted.into(),
            errors: r.errors.into(),
            message: r.message.as_deref(),
        })?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::health::{ReportInputs, RunSummary, SyncFacts};

    #[test]
    fn csv_has_the_documented_header_and_a_row_per_day_and_run() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-07T12:00:00Z")
            .unwrap()
            .to_utc();
        let run = RunSummary {
            id: 3,
            name: None,
            run_type: "bulk".into(),
            trigger: "manual".into(),
            status: "completed".into(),
            day: now.date_naive(),
            started_at: now,
            completed_at: Some(now),
            duration_seconds: 2.0,
            pages_processed: 2,
            movies_imported: 40,
            movies_updated: 0,
            movies_skipped: 1,
            movies_deleted: 0,
            errors: 0,
            data_warnings: 0,
            message: Some("pages 1-2, \"quoted\", a comma".into()),
        };
        let report = SyncReport::build(
            &ReportInputs {
                now,
                runs: vec![run],
                ..Default::default()
            },
            &SyncFacts::default(),
            3,
        );
        let text = report_csv(&report).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, CSV_COLUMNS);
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(&rows[0][0], "day");
        assert_eq!(&rows[0][1], "2026-03-05");
        assert_eq!(&rows[3][0], "run");
        assert_eq!(&rows[3][14], "40");
        assert_eq!(&rows[3][19], "pages 1-2, \"quoted\", a comma");
    }
}
