//! The Catalog stage: stream the day's ID export into `catalog_ids` (COPY, never whole in memory).
//! Today's file is published by 08:00 UTC; before that, yesterday's is used, and the run says so.
//! With the Discover source the ids come from a `/discover/movie` walk instead ([`super::discover`]).

use chrono::{Days, NaiveDate};

use super::discover::DiscoverOptions;
use super::{Engine, RunLabel, StageError, StageReport};
use crate::plan::RunType;
use crate::store::catalog::{self, LoadError};
use crate::store::runs;
use crate::tmdb::TmdbError;
use crate::tmdb::export::{ExportReader, ExportRecord, export_file_name, open_export};

/// Where a Catalog run lists the catalog from (`bulk.source`, `--bulk-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatalogSource {
    /// TMDb's daily ID export: complete.
    #[default]
    Export,
    /// A `/discover/movie` walk, for clusters that cannot reach the export host.
    Discover(DiscoverOptions),
}

/// Loads the newest published export (today's, else yesterday's) into the catalog.
pub async fn run(engine: &Engine, label: &RunLabel) -> Result<StageReport, StageError> {
    run_from(engine, CatalogSource::Export, label).await
}

/// Loads the catalog from `source`.
pub async fn run_from(
    engine: &Engine,
    source: CatalogSource,
    label: &RunLabel,
) -> Result<StageReport, StageError> {
    engine.check_credentials().await?;
    let today = engine.tmdb.clock().today();
    let run = engine.open_run(RunType::Catalog, label, 0).await?;
    // The load is one transaction fed by the download: a database outage retries it whole, from
    // a new download (no detail request is involved).
    let mut outage = engine.store.outage();
    let outcome = loop {
        let outcome = match source {
            CatalogSource::Export => load_newest(engine, run, today).await,
            CatalogSource::Discover(options) => {
                super::discover::load(engine, run, today, options).await
            }
        };
        if let Err(StageError::Store(e)) = &outcome
            && outage.wait("loading the catalog", e).await
        {
            continue;
        }
        break outcome;
    };
    engine
        .close_run(RunType::Catalog, run, label, outcome)
        .await
}

async fn load_newest(
    engine: &Engine,
    run: runs::RunId,
    today: NaiveDate,
) -> Result<(bool, String), StageError> {
    let http = &engine.tmdb;
    let mut note = String::new();
    let (date, reader) = match open_export(http, &engine.export_url, today)
        .await
        .map_err(StageError::Tmdb)?
    {
        Some(r) => (today, r),
        None => {
            let yesterday = today - Days::new(1);
            note = format!(
                "; {} is not published yet, used the previous day's export",
                export_file_name(today)
            );
            tracing::warn!(today = %today, "today's export is not published yet; using yesterday's");
            match open_export(http, &engine.export_url, yesterday)
                .await
                .map_err(StageError::Tmdb)?
            {
                Some(r) => (yesterday, r),
                None => {
                    return Err(StageError::Tmdb(TmdbError::Api {
                        status: 404,
                        code: None,
                        message: format!(
                            "neither {} nor {} is published",
                            export_file_name(today),
                            export_file_name(yesterday)
                        ),
                    }));
                }
            }
        }
    };
    let mut bar = engine.progress.task("catalog", 0, "lines");
    let summary = catalog::load_export(
        &engine.store,
        date,
        engine.include_adult,
        records(reader, export_file_name(date)),
        |n| bar.set(n),
    )
    .await
    .map_err(|e| match e {
        LoadError::Store(s) => StageError::Store(s),
        LoadError::Source(t) => StageError::Tmdb(t),
    })?;
    bar.finish();
    let metadata = serde_json::json!({ "catalog": summary, "export_file": export_file_name(date) });
    let store = &engine.store;
    store
        .retry("recording the catalog load", || {
            runs::merge_metadata(store, run, &metadata)
        })
        .await?;
    Ok((
        true,
        format!(
            "loaded {}: {} ids ({} adult), {} new, {} malformed lines skipped{note}",
            export_file_name(date),
            summary.total_ids,
            summary.adult_ids,
            summary.new_ids,
            summary.malformed
        ),
    ))
}

/// More than this share of malformed lines (in percent) means the file is not a usable export:
/// the catalog run fails with a data error and loads nothing.
pub const MAX_MALFORMED_PERCENT: u64 = 1;

/// Whether `malformed` of `lines` is more than [`MAX_MALFORMED_PERCENT`].
pub fn too_many_malformed(malformed: u64, lines: u64) -> bool {
    malformed * 100 > lines * MAX_MALFORMED_PERCENT
}

/// The export as a stream of parsed lines (`None` for a malformed one). At the end, a file with
/// too many malformed lines yields an error instead, so the load is rolled back.
fn records(
    reader: ExportReader,
    file: String,
) -> impl futures::Stream<Item = Result<Option<crate::model::catalog::ExportLine>, TmdbError>> {
    futures::stream::try_unfold(
        (reader, 0u64, 0u64),
        move |(mut reader, lines, malformed)| {
            let file = file.clone();
            async move {
                let Some(record) = reader.next_record().await? else {
                    if too_many_malformed(malformed, lines) {
                        return Err(TmdbError::MalformedExport(format!(
                            "the export {file} has {malformed} malformed lines of {lines}, more \
                             than {MAX_MALFORMED_PERCENT} %: a data error, nothing was loaded"
                        )));
                    }
                    return Ok(None);
                };
                let item = match record {
                    ExportRecord::Movie(line) => Some(line),
                    ExportRecord::Malformed => None,
                };
                let malformed = malformed + u64::from(item.is_none());
                Ok(Some((item, (reader, lines + 1, malformed))))
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::too_many_malformed;

    #[test]
    fn more_than_one_percent_malformed_lines_is_not_an_export() {
        let cases = [
            (0, 0, false),
            (0, 4, false),
            (3, 4, true),
            (1, 4, true),
            (1, 100, false),
            (1, 101, false),
            (2, 102, true),
            (3, 303, false),
            (10_000, 1_000_000, false),
            (10_001, 1_000_000, true),
        ];
        for (malformed, lines, refused) in cases {
            assert_eq!(
                too_many_malformed(malformed, lines),
                refused,
                "{malformed} of {lines}"
            );
        }
    }
}
