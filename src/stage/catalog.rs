//! The Catalog stage: stream the day's ID export into `catalog_ids` (COPY, never whole in memory).
//! Today's file is published by 08:00 UTC; before that, yesterday's is used, and the run says so.

use chrono::{Days, NaiveDate};

use super::{Engine, RunLabel, StageError, StageReport};
use crate::plan::RunType;
use crate::store::catalog::{self, LoadError};
use crate::store::runs;
use crate::tmdb::TmdbError;
use crate::tmdb::export::{ExportReader, ExportRecord, export_file_name, open_export};

/// Loads the newest published export (today's, else yesterday's) into the catalog.
pub async fn run(engine: &Engine, label: &RunLabel) -> Result<StageReport, StageError> {
    engine
        .tmdb
        .check_credentials()
        .await
        .map_err(StageError::from_tmdb)?;
    let today = engine.tmdb.clock().today();
    let run = engine.open_run(RunType::Catalog, label, 0).await?;
    let outcome = load_newest(engine, run, today).await;
    engine
        .close_run(RunType::Catalog, run, label, outcome)
        .await
}

async fn load_newest(
    engine: &Engine,
    run: runs::RunId,
    today: NaiveDate,
) -> Result<(bool, String), StageError> {
    let http = engine.tmdb.http();
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
        records(reader),
        |n| bar.set(n),
    )
    .await
    .map_err(|e| match e {
        LoadError::Store(s) => StageError::Store(s),
        LoadError::Source(t) => StageError::Tmdb(t),
    })?;
    bar.finish();
    runs::merge_metadata(
        &engine.store,
        run,
        &serde_json::json!({ "catalog": summary, "export_file": export_file_name(date) }),
    )
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

/// The export as a stream of parsed lines (`None` for a malformed one).
fn records(
    reader: ExportReader,
) -> impl futures::Stream<Item = Result<Option<crate::tmdb::models::ExportLine>, TmdbError>> {
    futures::stream::try_unfold(reader, |mut reader| async move {
        Ok(reader.next_record().await?.map(|record| {
            let item = match record {
                ExportRecord::Movie(line) => Some(line),
                ExportRecord::Malformed => None,
            };
            (item, reader)
        }))
    })
}
