//! The Sync Health panel as text for a terminal (`tmdbsync status`, `kubectl tmdbsync status`).

use std::fmt::Write;

use crate::plan::health::{DayStatus, SyncHealth};

/// Thousands separators: 352000 → "352,000".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A bar of `width` cells filled to `percent`.
pub fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

/// Renders the whole panel.
pub fn render(h: &SyncHealth) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "SYNC HEALTH");
    let _ = writeln!(s);
    let _ = writeln!(s, "Bulk import progress");
    let _ = writeln!(
        s,
        "{}  {:.1}%",
        bar(h.percent_complete, 40),
        h.percent_complete
    );
    let _ = writeln!(
        s,
        "{} / {} movies ({} remaining; pages {} / {} done)",
        thousands(h.imported),
        thousands(h.tmdb_total),
        thousands(h.remaining),
        thousands(h.last_page_processed.into()),
        thousands(h.total_pages.into())
    );
    if h.not_served > 0 {
        let _ = writeln!(
            s,
            "{} export ids not served by TMDb (404; not remaining, rechecked weekly)",
            thousands(h.not_served)
        );
    }
    if let Some(d) = &h.discover {
        let _ = writeln!(s, "Catalog from discover: {}", d.summary());
    }
    let eta = match (h.estimated_completion, h.estimated_days_remaining) {
        (Some(date), Some(0.0)) => format!("complete ({date})"),
        (Some(date), Some(days)) => format!("{} (~{days} days)", date.format("%B %-d, %Y")),
        _ => "unknown (no imports in the last 7 days)".into(),
    };
    let _ = writeln!(s, "Estimated completion: {eta}");
    let _ = writeln!(
        s,
        "Import rate: {} movies/day (7-day average), {} today",
        thousands(h.daily_rate.round() as i64),
        thousands(h.today_rate)
    );
    let show = |d: Option<chrono::NaiveDate>| d.map_or("none".to_string(), |d| d.to_string());
    let _ = writeln!(
        s,
        "Catalog export: {}    Delta watermark: {}",
        show(h.export_date),
        show(h.delta_watermark)
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "Last 7 days");
    let _ = writeln!(
        s,
        "{:<10} {:>10} {:>9} {:>7}  Status",
        "Day", "Imported", "Skipped", "Errors"
    );
    for d in &h.last_7_days {
        let status = match d.status {
            DayStatus::Ok => "ok",
            DayStatus::Failed => "FAILED",
            DayStatus::Running => "running",
            DayStatus::Idle => "idle",
        };
        let _ = writeln!(
            s,
            "{:<10} {:>10} {:>9} {:>7}  {status}",
            d.day.format("%a %m-%d"),
            thousands(d.imported),
            thousands(d.skipped),
            thousands(d.errors)
        );
    }
    render_side_jobs(h, &mut s);
    let _ = writeln!(s);
    if h.errors_24h.is_empty() {
        let _ = writeln!(s, "Errors in the last 24 h: none");
    } else {
        let list: Vec<String> = h
            .errors_24h
            .iter()
            .map(|(k, v)| format!("{k} {}", thousands(*v)))
            .collect();
        let _ = writeln!(s, "Errors in the last 24 h: {}", list.join(", "));
    }
    if !h.runs.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "Recent runs");
        for r in h.runs.iter().take(10) {
            let _ = writeln!(
                s,
                "  #{:<5} {:<8} {:<10} {}  imported {} updated {} skipped {} deleted {} errors {}",
                r.id,
                r.run_type,
                r.status,
                r.started_at.format("%Y-%m-%d %H:%M"),
                thousands(r.movies_imported.into()),
                thousands(r.movies_updated.into()),
                thousands(r.movies_skipped.into()),
                thousands(r.movies_deleted.into()),
                thousands(r.errors.into())
            );
            if r.data_warnings > 0 {
                let _ = writeln!(
                    s,
                    "         {} movies stored with data warnings (odd values nulled, text repaired)",
                    thousands(r.data_warnings.into())
                );
            }
        }
    }
    s
}

/// "Side job status" lines and the missing-imdb alert.
fn render_side_jobs(h: &SyncHealth, s: &mut String) {
    let jobs = &h.side_jobs;
    if jobs.stages.iter().all(|j| j.total == 0) {
        return;
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Side job status");
    for j in &jobs.stages {
        let _ = writeln!(
            s,
            "  • {}: {:.1}% complete ({} / {})",
            j.label,
            j.percent,
            thousands(j.done),
            thousands(j.total)
        );
    }
    if let Some(next) = &jobs.next_run {
        let _ = writeln!(s, "  next enrichment run: {next}");
    }
    if jobs.missing_imdb_id > 0 {
        let _ = writeln!(s);
        let _ = writeln!(s, "Alerts");
        let _ = writeln!(
            s,
            "  • {} movies missing OMDb data (no IMDb ID)",
            thousands(jobs.missing_imdb_id)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(352000), "352,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
    }

    #[test]
    fn ids_not_served_show_as_their_own_figure() {
        use crate::plan::health::HealthInputs;
        let today = chrono::NaiveDate::from_ymd_opt(2026, 3, 7).unwrap();
        let inputs = HealthInputs {
            tmdb_total: 5_000,
            imported: 4_995,
            not_served: 5,
            ..Default::default()
        };
        let text = render(&SyncHealth::compute(&inputs, today));
        assert!(
            text.contains("4,995 / 5,000 movies (0 remaining;"),
            "{text}"
        );
        assert!(text.contains("5 export ids not served by TMDb"), "{text}");
        assert!(text.contains("100.0%"), "{text}");
        let none = render(&SyncHealth::compute(
            &HealthInputs {
                not_served: 0,
                ..inputs
            },
            today,
        ));
        assert!(!none.contains("not served"), "{none}");
    }

    #[test]
    fn bar_fills_proportionally() {
        assert_eq!(bar(0.0, 10), "░".repeat(10));
        assert_eq!(bar(50.0, 10), format!("{}{}", "█".repeat(5), "░".repeat(5)));
        assert_eq!(bar(150.0, 4), "█".repeat(4));
    }
}
