//! The Discover catalog source (`bulk.source: Discover`, `tmdbsync run --bulk-source discover`):
//! for clusters that cannot reach TMDb's export host, the catalog is listed from `/discover/movie`
//! instead, in release-date windows small enough that none needs a page past the cap (planned by
//! [`crate::plan::discover`]), plus one pass without a date filter for movies that have no release
//! date. The ids stream into the same catalog load as the export's, so bulk, delta and progress
//! work unchanged. What discover cannot list is counted and reported, never silently missing: by
//! discover's own total, and against the daily export whenever that can be read.

use std::collections::VecDeque;

use chrono::{Days, NaiveDate};
use tokio::sync::mpsc;

use super::{Engine, StageError};
use crate::model::catalog::ExportLine;
use crate::plan::discover::{
    self, DiscoverCoverage, ExportComparison, MAX_PAGE, ReleaseWindow, WindowPlan,
};
use crate::store::catalog::{self, LoadError};
use crate::store::runs;
use crate::tmdb::export::{ExportRecord, export_file_name, open_export};
use crate::tmdb::models::DiscoverPage;
use crate::tmdb::{TmdbClient, TmdbError};

/// How a Discover walk runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoverOptions {
    /// The last page discover serves ([`MAX_PAGE`] on TMDb; lower only to test the planning on a
    /// small catalog).
    pub max_page: u32,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        DiscoverOptions { max_page: MAX_PAGE }
    }
}

/// Sort inside a release-date window: stable while the walk pages through it.
const WINDOW_SORT: &str = "primary_release_date.asc";
/// Sort of the pass without a date filter: TMDb keeps movies without a date out of every date
/// filter and sorts them after dated ones; they are mostly obscure, so the least popular come first.
const NO_DATE_SORT: &str = "popularity.asc";

/// Loads the catalog of `today` from a discover walk, then compares it with the export when the
/// export can be read. The run's message says what was listed and what could not be.
pub(super) async fn load(
    engine: &Engine,
    run: runs::RunId,
    today: NaiveDate,
    options: DiscoverOptions,
) -> Result<(bool, String), StageError> {
    let (tx, mut rx) = mpsc::channel::<Result<Option<ExportLine>, TmdbError>>(1024);
    let walker = tokio::spawn(walk(
        engine.tmdb.clone(),
        engine.include_adult,
        today,
        options.max_page,
        tx,
    ));
    let records = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut bar = engine.progress.task("discover", 0, "ids");
    let loaded = catalog::load_export(&engine.store, today, engine.include_adult, records, |n| {
        bar.set(n)
    })
    .await;
    bar.finish();
    // The walker ends once the load stops reading (its sends fail), so joining cannot hang.
    let walked = match walker.await {
        Ok(w) => w,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let summary = match loaded {
        Ok(s) => s,
        Err(LoadError::Store(e)) => return Err(StageError::Store(e)),
        Err(LoadError::Source(e)) => return Err(StageError::from_tmdb(e)),
    };
    let Some(mut walked) = walked else {
        return Err(StageError::Config(
            "the discover walk stopped without saying why".into(),
        ));
    };
    walked.ids.sort_unstable();
    walked.ids.dedup();
    let mut coverage = DiscoverCoverage {
        date: Some(today),
        listed: summary.total_ids.max(0) as u64,
        ..walked.coverage
    }
    .with_counts();
    match compare_with_export(engine, today, &walked.ids).await {
        Ok(c) => coverage.export = Some(c),
        Err(note) => coverage.export_note = Some(note),
    }
    let metadata = serde_json::json!({ "catalog": summary, "discover": coverage });
    let store = &engine.store;
    store
        .retry("recording the discover coverage", || {
            runs::merge_metadata(store, run, &metadata)
        })
        .await?;
    let mut message = format!(
        "loaded the discover catalog of {today}: {} ids ({} adult), {} new; {}",
        summary.total_ids,
        summary.adult_ids,
        summary.new_ids,
        coverage.summary()
    );
    if walked.failed_pages > 0 {
        message.push_str(&format!(
            "; {} discover pages failed after every try (their movies count as not reachable \
             until the next walk)",
            walked.failed_pages
        ));
    }
    Ok((true, message))
}

/// What a walk listed, besides the ids it sent to the load.
struct Walked {
    coverage: DiscoverCoverage,
    /// Every id listed (unsorted, may repeat), for the export comparison.
    ids: Vec<i64>,
    /// Pages that failed after the client's retries (skipped).
    failed_pages: u32,
}

/// One walk: the release-date windows in date order (split when over the cap), then the pass
/// without a date filter, each result sent to the load as it arrives. A credentials or
/// configuration error ends it: the error goes to the load, which rolls back and reports it
/// (`None` here); another failed page is skipped and counted.
async fn walk(
    client: TmdbClient,
    include_adult: bool,
    today: NaiveDate,
    max_page: u32,
    tx: mpsc::Sender<Result<Option<ExportLine>, TmdbError>>,
) -> Option<Walked> {
    let mut w = Walker {
        client,
        include_adult,
        tx,
        walked: Walked {
            coverage: DiscoverCoverage::default(),
            ids: Vec::new(),
            failed_pages: 0,
        },
        stopped: false,
    };
    match w.run(today, max_page).await {
        Ok(()) => Some(w.walked),
        Err(e) => {
            // The load reports it and rolls back: nothing of a broken walk is committed.
            let _ = w.tx.send(Err(e)).await;
            None
        }
    }
}

struct Walker {
    client: TmdbClient,
    include_adult: bool,
    tx: mpsc::Sender<Result<Option<ExportLine>, TmdbError>>,
    walked: Walked,
    /// The load stopped reading: nothing more is worth fetching.
    stopped: bool,
}

impl Walker {
    async fn run(&mut self, today: NaiveDate, max_page: u32) -> Result<(), TmdbError> {
        let mut queue: VecDeque<ReleaseWindow> = discover::initial_windows(today).into();
        while let Some(window) = queue.pop_front() {
            if self.stopped {
                return Ok(());
            }
            let Some(first) = self.page(Some(window), WINDOW_SORT, 1).await? else {
                continue;
            };
            let total = first.total_results.unwrap_or(first.results.len() as u64);
            let pages = match discover::plan_window(window, total, max_page) {
                WindowPlan::Split(parts) => {
                    tracing::debug!(window = %window, total, parts = parts.len(),
                        "discover: window over the page cap, split");
                    for part in parts.into_iter().rev() {
                        queue.push_front(part);
                    }
                    continue;
                }
                WindowPlan::Walk { pages } => pages,
                WindowPlan::Capped { pages, beyond } => {
                    tracing::warn!(window = %window, total, beyond,
                        "discover: one day holds more movies than discover serves; the rest cannot be listed");
                    self.walked.coverage.capped_windows += 1;
                    pages
                }
            };
            self.walked.coverage.windows += 1;
            self.walk_pages(Some(window), WINDOW_SORT, first, pages, max_page)
                .await?;
        }
        // Movies without a release date match no date filter: one pass without one.
        if let Some(first) = self.page(None, NO_DATE_SORT, 1).await? {
            let total = first.total_results.unwrap_or(first.results.len() as u64);
            self.walked.coverage.reported = total;
            let pages = discover::pages_for(total).min(max_page.max(1));
            self.walk_pages(None, NO_DATE_SORT, first, pages, max_page)
                .await?;
        }
        Ok(())
    }

    /// Sends `first` and reads pages `2..=pages` (more if the window grew, never past the cap).
    async fn walk_pages(
        &mut self,
        window: Option<ReleaseWindow>,
        sort: &str,
        first: DiscoverPage,
        pages: u32,
        max_page: u32,
    ) -> Result<(), TmdbError> {
        let mut last = pages;
        let mut next = Some(first);
        let mut number = 1;
        loop {
            if let Some(page) = next.take() {
                let grown = page.total_pages.unwrap_or(0).min(max_page.max(1));
                last = last.max(grown);
                if page.results.is_empty() {
                    return Ok(());
                }
                self.send(window.is_none(), page).await;
            }
            number += 1;
            if number > last || self.stopped {
                return Ok(());
            }
            next = self.page(window, sort, number).await?;
        }
    }

    /// One page, or `None` when it failed after every try (counted, skipped); credentials and
    /// configuration errors end the walk.
    async fn page(
        &mut self,
        window: Option<ReleaseWindow>,
        sort: &str,
        number: u32,
    ) -> Result<Option<DiscoverPage>, TmdbError> {
        let mut query = vec![
            ("sort_by", sort.to_string()),
            ("include_adult", self.include_adult.to_string()),
            ("include_video", "true".to_string()),
            ("page", number.to_string()),
        ];
        if let Some(w) = window {
            if let Some(from) = w.from {
                query.push(("primary_release_date.gte", from.to_string()));
            }
            if let Some(to) = w.to {
                query.push(("primary_release_date.lte", to.to_string()));
            }
        }
        match self.client.discover(&query).await {
            Ok(page) => Ok(Some(page)),
            Err(e) if e.is_fatal() || e.is_config() => Err(e),
            Err(e) => {
                let window = window.map_or("no date filter".to_string(), |w| w.to_string());
                tracing::warn!(window = %window, page = number, error = %e,
                    "discover: a page failed after every try; its movies are not listed this time");
                self.walked.failed_pages += 1;
                Ok(None)
            }
        }
    }

    /// Sends a page's movies to the load; `no_date_pass` counts the ones without a release date.
    async fn send(&mut self, no_date_pass: bool, page: DiscoverPage) {
        for m in page.results {
            if no_date_pass && m.release_date.is_none() {
                self.walked.coverage.without_date += 1;
            }
            self.walked.ids.push(m.id);
            let line = ExportLine {
                id: m.id,
                adult: m.adult,
                original_title: m.original_title,
                popularity: m.popularity,
                video: None,
            };
            if self.tx.send(Ok(Some(line))).await.is_err() {
                self.stopped = true;
                return;
            }
        }
    }
}

/// Compares the walk with the export (today's, else yesterday's): how many of the export's ids
/// the sync imports discover did not list. `Err` says why there is no comparison.
async fn compare_with_export(
    engine: &Engine,
    today: NaiveDate,
    listed: &[i64],
) -> Result<ExportComparison, String> {
    let client = &engine.tmdb;
    let mut opened = None;
    for date in [today, today - Days::new(1)] {
        match open_export(client, &engine.export_url, date).await {
            Ok(Some(reader)) => {
                opened = Some((export_file_name(date), reader));
                break;
            }
            Ok(None) => continue,
            Err(e) => return Err(format!("the export could not be read ({e})")),
        }
    }
    let Some((file, mut reader)) = opened else {
        return Err(format!(
            "neither {} nor {} is published",
            export_file_name(today),
            export_file_name(today - Days::new(1))
        ));
    };
    let mut ids = Vec::new();
    loop {
        match reader.next_record().await {
            Ok(Some(ExportRecord::Movie(line))) => {
                if engine.include_adult || line.adult != Some(true) {
                    ids.push(line.id);
                }
            }
            Ok(Some(ExportRecord::Malformed)) => {}
            Ok(None) => break,
            Err(e) => return Err(format!("reading {file} failed ({e})")),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ExportComparison {
        not_reachable: discover::missing_from(&ids, listed),
        ids: ids.len() as u64,
        file,
    })
}
