//! The Sync Health panel as text for a terminal (`tmdbsync status`, `kubectl tmdbsync status`).

use std::fmt::Write;

use crate::plan::health::{ClockSource, DayRow, DayStatus, SyncHealth};

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

/// One cell per day for the 30-day history: a block whose height follows the day's imports
/// and updates, `‖` for a paused day without runs, `·` for an idle one.
pub fn sparkline(days: &[DayRow]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = days
        .iter()
        .map(|d| d.imported + d.updated)
        .max()
        .unwrap_or(0);
    days.iter()
        .map(|d| match d.status {
            DayStatus::Paused => '‖',
            DayStatus::Idle => '·',
            _ if max == 0 => BLOCKS[0],
            _ => {
                let v = (d.imported + d.updated) as f64 / max as f64;
                BLOCKS[((v * 7.0).round() as usize).min(7)]
            }
        })
        .collect()
}

/// The status word of a day.
fn day_status(d: &DayRow) -> &'static str {
    match d.status {
        DayStatus::Failed => "FAILED",
        other => other.as_str(),
    }
}

/// Renders the whole panel: fixed sections in a fixed order (header, progress, last 7 days,
/// 30-day history, side jobs, alerts, recent runs), each said once.
pub fn render(h: &SyncHealth) -> String {
    let mut s = String::new();
    let who = match (&h.sync.namespace, &h.sync.name) {
        (Some(ns), Some(name)) => format!("  {ns}/{name}"),
        _ => String::new(),
    };
    let phase = h
        .sync
        .phase
        .as_deref()
        .map(|p| format!("  phase {p}"))
        .unwrap_or_default();
    let clock = match h.clock {
        ClockSource::Tmdb => "TMDb's clock",
        ClockSource::Database => "the database's clock (no TMDb answer seen yet)",
        ClockSource::Cluster => "the cluster's clock",
    };
    let _ = writeln!(s, "SYNC HEALTH{who}{phase}");
    let _ = writeln!(s, "Today is {} on {clock}", h.today.format("%a %Y-%m-%d"));
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
    let _ = writeln!(s, "Estimated completion: {}", h.eta.text);
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
        "{:<10} {:>10} {:>9} {:>9} {:>8} {:>7}  Status",
        "Day", "Imported", "Updated", "Skipped", "Deleted", "Errors"
    );
    for d in &h.last_7_days {
        let _ = writeln!(
            s,
            "{:<10} {:>10} {:>9} {:>9} {:>8} {:>7}  {}",
            d.day.format("%a %m-%d"),
            thousands(d.imported),
            thousands(d.updated),
            thousands(d.skipped),
            thousands(d.deleted),
            thousands(d.errors),
            day_status(d)
        );
    }
    if let (Some(first), Some(last)) = (h.history.first(), h.history.last()) {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Last {} days (imported + updated per day; ‖ paused, · idle)",
            h.history.len()
        );
        let _ = writeln!(
            s,
            "{}  {} .. {}",
            sparkline(&h.history),
            first.day.format("%m-%d"),
            last.day.format("%m-%d")
        );
    }
    render_side_jobs(h, &mut s);
    let _ = writeln!(s);
    if h.alerts.is_empty() {
        let _ = writeln!(s, "Alerts: none");
    } else {
        let _ = writeln!(s, "Alerts");
        for a in &h.alerts {
            let _ = writeln!(s, "  • [{}] {}", a.severity.as_str(), a.message);
            let _ = writeln!(s, "      next: {}", a.next_step);
            if let Some(c) = &a.command {
                let _ = writeln!(s, "      $ {c}");
            }
        }
    }
    if !h.runs.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "Recent runs");
        for r in h.runs.iter().take(10) {
            let _ = writeln!(
                s,
                "  {:<6} {:<8} {:<10} {}  {:>6}  imported {} updated {} skipped {} deleted {} errors {}",
                r.name.clone().unwrap_or_else(|| format!("#{}", r.id)),
                r.run_type,
                r.status,
                r.started_at.format("%Y-%m-%d %H:%M"),
                duration(r.duration_seconds),
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

/// "42s", "3m05s", "2h07m".
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// "Side jobs": each stage's completion, or that it is disabled.
fn render_side_jobs(h: &SyncHealth, s: &mut String) {
    let jobs = &h.side_jobs;
    if jobs.stages.is_empty() {
        return;
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Side jobs");
    for j in &jobs.stages {
        if !j.enabled {
            let _ = writeln!(s, "  • {}: disabled", j.label);
            continue;
        }
        if j.total == 0 {
            let _ = writeln!(s, "  • {}: nothing to do yet (no movies stored)", j.label);
            continue;
        }
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
    fn the_panel_has_its_sections_in_order_each_said_once() {
        use crate::plan::enrich::{EnrichStage, SideJobCounts};
        use crate::plan::health::{DayStats, HealthInputs, Pause, SyncFacts};
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let inputs = HealthInputs {
            now: at("2026-03-07T12:00:00Z"),
            clock: crate::plan::health::ClockSource::Tmdb,
            tmdb_total: 1_000,
            imported: 400,
            days: vec![
                DayStats {
                    day: "2026-03-06".parse().unwrap(),
                    imported: 200,
                    runs: 1,
                    ..Default::default()
                },
                DayStats {
                    day: "2026-03-07".parse().unwrap(),
                    imported: 200,
                    runs: 1,
                    ..Default::default()
                },
            ],
            pauses: vec![Pause {
                from: at("2026-03-04T10:00:00Z"),
                until: Some(at("2026-03-04T11:00:00Z")),
            }],
            errors_24h: [("network".to_string(), 2)].into(),
            side_job_counts: EnrichStage::ALL
                .iter()
                .map(|s| SideJobCounts {
                    stage: Some(*s),
                    done: 100,
                    total: 400,
                })
                .collect(),
            ..Default::default()
        };
        let facts = SyncFacts {
            resource: Some(("media".into(), "cinegraph".into())),
            phase: Some("Bootstrapping".into()),
            disabled_side_jobs: vec![EnrichStage::Omdb],
            ..Default::default()
        };
        let text = render(&SyncHealth::build(&inputs, &facts));
        let order = [
            "SYNC HEALTH  media/cinegraph  phase Bootstrapping",
            "Today is Sat 2026-03-07 on TMDb's clock",
            "400 / 1,000 movies",
            "Estimated completion: March 10, 2026 (~3 days)",
            "Import rate: 200 movies/day (7-day average), 200 today",
            "Last 7 days",
            "Wed 03-04",
            "Last 30 days",
            "Side jobs",
            "OMDb Enrichment: disabled",
            "Collaborations: 25.0% complete (100 / 400)",
            "Alerts",
            "2 movie errors in the last 24 h (network 2)",
        ];
        let mut from = 0;
        for needle in order {
            let at = text[from..]
                .find(needle)
                .unwrap_or_else(|| panic!("{needle:?} after byte {from}:\n{text}"));
            from += at + needle.len();
        }
        assert!(
            text.contains("Wed 03-04           0         0         0        0       0  paused"),
            "{text}"
        );
        assert_eq!(text.matches("errors in the last 24 h").count(), 1, "{text}");
        let history = format!("{}‖·██  02-06 .. 03-07", "·".repeat(26));
        assert!(text.contains(&history), "{history}\n{text}");
    }

    #[test]
    fn bar_fills_proportionally() {
        assert_eq!(bar(0.0, 10), "░".repeat(10));
        assert_eq!(bar(50.0, 10), format!("{}{}", "█".repeat(5), "░".repeat(5)));
        assert_eq!(bar(150.0, 4), "█".repeat(4));
    }
}
