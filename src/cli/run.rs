//! `tmdbsync run` (stages once, in-process) and `tmdbsync worker` (one stage of a SyncRun in a Job pod).

use super::{StageOptions, engine, enrich_options, fail, run_stage, until_signal};
use crate::{RunArgs, WorkerArgs};
use tmdbsync::exit::ExitCode;
use tmdbsync::plan::RunType;
use tmdbsync::plan::enrich::StagePlan;
use tmdbsync::stage::bulk::BulkOptions;
use tmdbsync::stage::delta::DeltaOptions;
use tmdbsync::stage::{Progress, RunLabel};

pub(crate) async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    // Check the OMDb settings before any stage runs, not when the enrich stage comes.
    if let Err(code) = enrich_options(&a.enrich, &a.engine.timeouts, Vec::new()) {
        return Ok(code);
    }
    let engine = match engine(&a.engine).await {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    let label = RunLabel::default();
    let options = StageOptions {
        catalog: a.engine.bulk_source.into(),
        bulk: BulkOptions {
            pages: None,
            pages_per_run: a.pages,
            shard: None,
            refetch: false,
        },
        delta: DeltaOptions {
            lookback_days: a.engine.lookback_days,
            window: None,
            refresh_stale: a.engine.refresh_stale,
        },
    };
    let work = async {
        let mut all_ok = true;
        let mut unresolved = 0i64;
        for plan in &a.stages.0 {
            let (stage, stages) = match plan {
                StagePlan::Tmdb(t) => (*t, Vec::new()),
                StagePlan::Enrich(s) => (RunType::Enrich, s.clone()),
            };
            let enrich = match enrich_options(&a.enrich, &a.engine.timeouts, stages) {
                Ok(e) => e,
                Err(code) => return code,
            };
            match run_stage(&engine, stage, &label, &options, &enrich).await {
                Ok(report) => {
                    // The stage's summary is the run's closing log line (stage::close_run).
                    all_ok &= report.succeeded;
                    unresolved += i64::from(report.counters.errors);
                }
                Err(e) => {
                    return fail((ExitCode::from(&e), format!("{stage} stage failed: {e}")));
                }
            }
        }
        if !all_ok {
            ExitCode::Retryable
        } else if unresolved > 0 {
            eprintln!(
                "tmdbsync: completed with {unresolved} unresolved errors (movies still failing after \
                 every try, listed in sync_errors); the next run retries them (exit code 5)"
            );
            ExitCode::CompletedWithErrors
        } else {
            ExitCode::Success
        }
    };
    Ok(until_signal(&engine, work).await)
}

pub(crate) async fn worker(a: WorkerArgs) -> anyhow::Result<ExitCode> {
    let engine = match engine(&a.engine).await {
        Ok(mut e) => {
            e.progress = Progress::lines();
            e
        }
        Err(code) => return Ok(code),
    };
    let label = RunLabel {
        name: Some(a.run_name.clone()),
        trigger: Some(a.trigger.clone()),
    };
    let options = StageOptions {
        catalog: a.engine.bulk_source.into(),
        bulk: BulkOptions {
            pages: a
                .pages_from
                .zip(a.pages_to)
                .map(|(from, to)| tmdbsync::plan::pages::PageRange { from, to }),
            pages_per_run: 200,
            shard: Some((a.shard_index, a.shards)),
            refetch: a.refetch,
        },
        delta: DeltaOptions {
            lookback_days: a.engine.lookback_days,
            window: a
                .window_start
                .zip(a.window_end)
                .map(|(start, end)| tmdbsync::plan::windows::DeltaWindow { start, end }),
            // An explicit window is a manual re-read: it spends none of the day's refetches.
            refresh_stale: if a.window_start.is_some() {
                0
            } else {
                a.engine.refresh_stale
            },
        },
    };
    let enrich = match enrich_options(&a.enrich, &a.engine.timeouts, a.enrich_stages.0.clone()) {
        Ok(e) => e,
        Err(code) => return Ok(code),
    };
    tracing::info!(run = %a.run_name, stage = %a.stage, shard = a.shard_index, shards = a.shards, "worker starting");
    let work = async {
        match run_stage(&engine, a.stage, &label, &options, &enrich).await {
            Ok(report) => {
                // The summary is the run's closing log line (stage::close_run). Movies still
                // failing do not fail the pod: the run completed (exit code 5 is `tmdbsync
                // run`'s; a failed pod would be retried or fail the Job).
                if report.succeeded {
                    ExitCode::Success
                } else {
                    ExitCode::Retryable
                }
            }
            Err(e) => fail((ExitCode::from(&e), format!("{} stage failed: {e}", a.stage))),
        }
    };
    Ok(until_signal(&engine, work).await)
}
