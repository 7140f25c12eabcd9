//! The Sync Health web page, server-rendered from the one model ([`SyncHealth`]) with askama
//! templates (`src/web/templates/`, escaped by default: a title or message with `<script>` stays
//! text). It works without JavaScript: a tiny script reloads it every so often and pauses while
//! the tab is hidden; without scripts a `<noscript>` meta refresh does. Read-only: where a person
//! would act, the page shows the exact command. The same page, without refresh and downloads,
//! is `tmdbsync status --format html` (one self-contained file: styles inline, chart as SVG).

use askama::Template;

use crate::plan::alerts::{Alert, Commands};
use crate::plan::health::{DayRow, EtaState, SyncFacts, SyncHealth};
use crate::report::{duration, thousands};

/// How the page is served.
#[derive(Debug, Clone, Default)]
pub struct PageOptions {
    /// Path the downloads hang off (`""` for `tmdbsync dashboard`, `/syncs/NS/NAME` in the
    /// controller); `None` in a saved file, which has no downloads.
    pub base: Option<String>,
    /// Seconds between refreshes; `None` for a saved file.
    pub refresh_secs: Option<u32>,
    /// Link back to the list of syncs (the controller's `/`).
    pub back_to_list: bool,
}

/// A bar segment of the 30-day chart.
#[derive(Debug, Clone)]
struct Segment {
    class: &'static str,
    y: String,
    height: String,
}

/// One day of the 30-day chart.
#[derive(Debug, Clone)]
struct Bar {
    x: String,
    label_x: String,
    day: String,
    label: String,
    status: &'static str,
    total: i64,
    /// The bar's height in pixels (all its segments).
    height: String,
    title: String,
    segments: Vec<Segment>,
    show_label: bool,
}

/// A row of the 7-day table.
#[derive(Debug, Clone)]
struct TableRow {
    day: String,
    imported: String,
    updated: String,
    skipped: String,
    deleted: String,
    errors: String,
    status: &'static str,
}

/// A side-job card.
#[derive(Debug, Clone)]
struct Card {
    label: String,
    enabled: bool,
    percent: String,
    width: String,
    counts: String,
}

/// A recent run.
#[derive(Debug, Clone)]
struct RunRow {
    id: i64,
    name: String,
    run_type: String,
    trigger: String,
    status: String,
    started: String,
    duration: String,
    pages: String,
    imported: String,
    updated: String,
    skipped: String,
    deleted: String,
    errors: String,
    message: String,
}

/// A command a person may run.
#[derive(Debug, Clone)]
struct Action {
    what: &'static str,
    command: String,
}

#[derive(Template)]
#[template(path = "sync_health.html")]
struct HealthPage<'a> {
    title: String,
    subtitle: String,
    phase: String,
    h: &'a SyncHealth,
    percent: String,
    bar_width: String,
    imported: String,
    total: String,
    remaining: String,
    eta_state: &'static str,
    daily_rate: String,
    today_rate: String,
    not_served: String,
    table: Vec<TableRow>,
    bars: Vec<Bar>,
    chart_max: String,
    chart_width: usize,
    cards: Vec<Card>,
    alerts: &'a [Alert],
    runs: Vec<RunRow>,
    actions: Vec<Action>,
    base: Option<String>,
    refresh_secs: Option<u32>,
    refresh_ms: u64,
    back_to_list: bool,
    clock: &'static str,
}

/// One TmdbSync in the controller's list.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncListing {
    pub namespace: String,
    pub name: String,
    /// `status.phase` (Pending when not reconciled yet).
    pub phase: String,
    /// `status.progress.percentComplete`, when known.
    pub percent_complete: Option<f64>,
    /// The Ready condition's message when it is false.
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    syncs: &'a [SyncListing],
    refresh_secs: u32,
    refresh_ms: u64,
}

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage<'a> {
    title: &'a str,
    message: &'a str,
}

const CHART_HEIGHT: f64 = 160.0;
const BAR_STEP: f64 = 24.0;
const BAR_WIDTH: f64 = 18.0;

fn chart(days: &[DayRow]) -> (Vec<Bar>, i64) {
    let total = |d: &DayRow| d.imported + d.updated + d.skipped + d.deleted + d.errors;
    let max = days.iter().map(total).max().unwrap_or(0);
    let scale = CHART_HEIGHT / max.max(1) as f64;
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = i as f64 * BAR_STEP + 3.0;
            let mut top = CHART_HEIGHT;
            let mut segments = Vec::new();
            for (class, v) in [
                ("imported", d.imported),
                ("updated", d.updated),
                ("skipped", d.skipped),
                ("deleted", d.deleted),
                ("errors", d.errors),
            ] {
                if v <= 0 {
                    continue;
                }
                let height = v as f64 * scale;
                top -= height;
                segments.push(Segment {
                    class,
                    y: format!("{top:.2}"),
                    height: format!("{height:.2}"),
                });
            }
            Bar {
                x: format!("{x:.1}"),
                label_x: format!("{:.1}", x + BAR_WIDTH / 2.0),
                day: d.day.to_string(),
                label: d.day.format("%d").to_string(),
                status: d.status.as_str(),
                total: total(d),
                height: format!("{:.2}", total(d) as f64 * scale),
                title: format!(
                    "{} ({}): imported {}, updated {}, skipped {}, deleted {}, errors {}, runs {}{}",
                    d.day,
                    d.status.as_str(),
                    thousands(d.imported),
                    thousands(d.updated),
                    thousands(d.skipped),
                    thousands(d.deleted),
                    thousands(d.errors),
                    d.runs,
                    if d.paused { ", paused" } else { "" }
                ),
                segments,
                show_label: i % 5 == 4 || i + 1 == days.len(),
            }
        })
        .collect();
    (bars, max)
}

fn actions(commands: &Commands, h: &SyncHealth) -> Vec<Action> {
    let mut out = Vec::new();
    match commands {
        Commands::Kubectl { namespace, name } => {
            let ns = if namespace.is_empty() {
                String::new()
            } else {
                format!(" -n {namespace}")
            };
            out.push(Action {
                what: "Status in the terminal",
                command: format!("kubectl tmdbsync status {name}{ns}"),
            });
            if h.sync.suspended {
                out.push(Action {
                    what: "Resume scheduling",
                    command: commands.resume().unwrap_or_default(),
                });
            } else {
                out.push(Action {
                    what: "Pause scheduling (running Jobs finish)",
                    command: commands.pause().unwrap_or_default(),
                });
            }
            out.push(Action {
                what: "Run a delta now",
                command: commands.run_now("delta"),
            });
            out.push(Action {
                what: "Every run of the last 30 days",
                command: format!("kubectl tmdbsync runs {name}{ns} --since 30d"),
            });
            out.push(Action {
                what: "The 30-day report as CSV",
                command: format!("kubectl tmdbsync report {name}{ns} --days 30 -o csv"),
            });
        }
        Commands::Local => {
            out.push(Action {
                what: "Status in the terminal",
                command: "tmdbsync status".into(),
            });
            out.push(Action {
                what: "Run the next bulk pages and a delta now",
                command: commands.run_now("bulk,delta"),
            });
            out.push(Action {
                what: "Run the side jobs now",
                command: commands.run_now("enrich"),
            });
        }
    }
    out
}

fn facts_commands(h: &SyncHealth) -> Commands {
    SyncFacts {
        resource: h.sync.namespace.clone().zip(h.sync.name.clone()),
        ..Default::default()
    }
    .commands()
}

/// Renders the Sync Health page.
pub fn render_health(h: &SyncHealth, options: &PageOptions) -> String {
    let (bars, max) = chart(&h.history);
    let title = match (&h.sync.namespace, &h.sync.name) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        _ => "tmdbsync".into(),
    };
    let page = HealthPage {
        subtitle: match h.sync.name {
            Some(_) => "TmdbSync".into(),
            None => "database without a cluster".into(),
        },
        title,
        phase: h.sync.phase.clone().unwrap_or_default(),
        percent: format!("{:.1}", h.percent_complete),
        bar_width: format!("{:.2}", h.percent_complete.clamp(0.0, 100.0)),
        imported: thousands(h.imported),
        total: thousands(h.tmdb_total),
        remaining: thousands(h.remaining),
        eta_state: match h.eta.state {
            EtaState::Complete => "complete",
            EtaState::Calculating => "calculating",
            EtaState::Estimated => "estimated",
            EtaState::Unknown => "unknown",
        },
        daily_rate: thousands(h.daily_rate.round() as i64),
        today_rate: thousands(h.today_rate),
        not_served: thousands(h.not_served),
        table: h
            .last_7_days
            .iter()
            .map(|d| TableRow {
                day: d.day.format("%a %Y-%m-%d").to_string(),
                imported: thousands(d.imported),
                updated: thousands(d.updated),
                skipped: thousands(d.skipped),
                deleted: thousands(d.deleted),
                errors: thousands(d.errors),
                status: d.status.as_str(),
            })
            .collect(),
        chart_width: (h.history.len() as f64 * BAR_STEP) as usize + 6,
        chart_max: thousands(max),
        bars,
        cards: h
            .side_jobs
            .stages
            .iter()
            .map(|j| Card {
                label: j.label.clone(),
                enabled: j.enabled,
                percent: format!("{:.1}", j.percent),
                width: format!("{:.1}", j.percent.clamp(0.0, 100.0)),
                counts: format!("{} / {}", thousands(j.done), thousands(j.total)),
            })
            .collect(),
        alerts: &h.alerts,
        runs: h
            .runs
            .iter()
            .map(|r| RunRow {
                id: r.id,
                name: r.name.clone().unwrap_or_default(),
                run_type: r.run_type.clone(),
                trigger: r.trigger.clone(),
                status: r.status.clone(),
                started: r.started_at.format("%Y-%m-%d %H:%M").to_string(),
                duration: duration(r.duration_seconds),
                pages: thousands(r.pages_processed.into()),
                imported: thousands(r.movies_imported.into()),
                updated: thousands(r.movies_updated.into()),
                skipped: thousands(r.movies_skipped.into()),
                deleted: thousands(r.movies_deleted.into()),
                errors: thousands(r.errors.into()),
                message: r.message.clone().unwrap_or_default(),
            })
            .collect(),
        actions: actions(&facts_commands(h), h),
        base: options.base.clone(),
        refresh_secs: options.refresh_secs,
        refresh_ms: u64::from(options.refresh_secs.unwrap_or(0)) * 1000,
        back_to_list: options.back_to_list,
        clock: match h.clock {
            crate::plan::health::ClockSource::Tmdb => "TMDb's clock",
            crate::plan::health::ClockSource::Database => "the database's clock",
            crate::plan::health::ClockSource::Cluster => "the cluster's clock",
        },
        h,
    };
    page.render()
        .unwrap_or_else(|e| problem("Sync Health", &e.to_string()))
}

/// Renders the controller's list of TmdbSyncs.
pub fn render_index(syncs: &[SyncListing], refresh_secs: u32) -> String {
    IndexPage {
        syncs,
        refresh_secs,
        refresh_ms: u64::from(refresh_secs) * 1000,
    }
    .render()
    .unwrap_or_else(|e| problem("TmdbSyncs", &e.to_string()))
}

/// A page that says what went wrong (a sync not found, its database unreachable).
pub fn problem(title: &str, message: &str) -> String {
    ProblemPage { title, message }
        .render()
        .unwrap_or_else(|_| "tmdbsync: the page could not be rendered".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::health::{HealthInputs, RunSummary};

    fn health(message: &str) -> SyncHealth {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-07T12:00:00Z")
            .unwrap()
            .to_utc();
        let run = RunSummary {
            id: 7,
            name: Some("cinegraph-bulk-202603070200".into()),
            run_type: "bulk".into(),
            trigger: "scheduled".into(),
            status: "failed".into(),
            day: now.date_naive(),
            started_at: now,
            completed_at: Some(now),
            duration_seconds: 65.0,
            pages_processed: 3,
            movies_imported: 60,
            movies_updated: 0,
            movies_skipped: 0,
            movies_deleted: 0,
            errors: 1,
            data_warnings: 0,
            message: Some(message.into()),
        };
        let inputs = HealthInputs {
            now,
            tmdb_total: 1000,
            imported: 60,
            recent_runs: vec![run.clone()],
            latest_finished: vec![run],
            ..Default::default()
        };
        SyncHealth::build(
            &inputs,
            &SyncFacts {
                resource: Some(("media".into(), "cinegraph".into())),
                ..Default::default()
            },
        )
    }

    #[test]
    fn markup_in_a_message_stays_text() {
        let html = render_health(
            &health("<script>alert('x')</script> & <b>bold</b>"),
            &PageOptions::default(),
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>bold"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; &#60;b&#62;")
                || html
                    .contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;"),
            "{html}"
        );
        // A saved file has no script and no refresh at all.
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("http-equiv=\"refresh\""), "{html}");
    }

    #[test]
    fn the_page_has_every_section_and_the_commands() {
        let html = render_health(
            &health("failed"),
            &PageOptions {
                base: Some("/syncs/media/cinegraph".into()),
                refresh_secs: Some(30),
                back_to_list: true,
            },
        );
        for needle in [
            "60 of 1,000 movies",
            "class=\"day-row\"",
            "class=\"chart\"",
            "kubectl tmdbsync describe cinegraph-bulk-202603070200 -n media",
            "kubectl tmdbsync pause cinegraph -n media",
            "/syncs/media/cinegraph/report.csv",
            "/syncs/media/cinegraph/health.json",
            "http-equiv=\"refresh\" content=\"30\"",
            "document.hidden",
            "calculating…",
        ] {
            assert!(html.contains(needle), "{needle}: {html}");
        }
        assert_eq!(html.matches("class=\"day-row\"").count(), 7);
        assert_eq!(html.matches("<g class=\"day ").count(), 30);
    }

    #[test]
    fn a_disabled_side_job_says_so_instead_of_a_percentage() {
        use crate::plan::enrich::{EnrichStage, SideJobCounts};
        let inputs = HealthInputs {
            side_job_counts: EnrichStage::ALL
                .iter()
                .map(|s| SideJobCounts {
                    stage: Some(*s),
                    done: 5,
                    total: 10,
                })
                .collect(),
            ..Default::default()
        };
        let facts = SyncFacts {
            resource: Some(("media".into(), "cinegraph".into())),
            disabled_side_jobs: vec![EnrichStage::Pqs],
            ..Default::default()
        };
        let html = render_health(&SyncHealth::build(&inputs, &facts), &PageOptions::default());
        assert_eq!(html.matches("data-enabled=\"true\"").count(), 2, "{html}");
        assert_eq!(html.matches("data-enabled=\"false\"").count(), 1, "{html}");
        assert_eq!(
            html.matches("<span class=\"job-percent\">50.0%</span>")
                .count(),
            2,
            "{html}"
        );
        assert!(
            html.contains("<div class=\"job-percent\">Disabled</div>"),
            "{html}"
        );
    }
}
