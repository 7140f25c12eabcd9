//! The Enrich run (the seed's side jobs): OMDb ratings, collaborations and person quality scores,
//! in that order, as one `sync_runs` row (run type `enrich`) whose metadata keeps per-stage
//! counters. None of them calls TMDb.

pub mod collaborations;
pub mod omdb;
pub mod pqs;

use super::{Engine, RunLabel, StageError, StageReport};
use crate::omdb::OmdbClient;
use crate::plan::RunType;
use crate::plan::enrich::{DEFAULT_TOP_CAST, EnrichStage, StageCounters};
use crate::store::runs::RunId;
use crate::store::{Store, StoreError, pipeline};

/// What an Enrich run does and with which settings.
#[derive(Clone)]
pub struct EnrichOptions {
    /// Stages to run, in running order.
    pub stages: Vec<EnrichStage>,
    /// The OMDb client; without one (no API key) the OMDb stage is skipped.
    pub omdb: Option<OmdbClient>,
    /// OMDb calls allowed per UTC day across all runs.
    pub omdb_daily_limit: i32,
    /// OMDb requests in flight at once.
    pub omdb_concurrency: usize,
    /// Cast members billed under this order are key people (collaborations, PQS).
    pub top_cast: i32,
}

impl Default for EnrichOptions {
    fn default() -> Self {
        EnrichOptions {
            stages: EnrichStage::ALL.to_vec(),
            omdb: None,
            omdb_daily_limit: 1000,
            omdb_concurrency: 4,
            top_cast: DEFAULT_TOP_CAST,
        }
    }
}

/// Runs the enrichment stages as one run.
pub async fn run(
    engine: &Engine,
    options: &EnrichOptions,
    label: &RunLabel,
) -> Result<StageReport, StageError> {
    let run = engine.open_run(RunType::Enrich, label, 0).await?;
    let outcome = run_stages(engine, options, run).await;
    engine.close_run(RunType::Enrich, run, label, outcome).await
}

async fn run_stages(
    engine: &Engine,
    options: &EnrichOptions,
    run: RunId,
) -> Result<(bool, String), StageError> {
    // A retried pod of the same SyncRun continues the counters of the attempt before it.
    let store = &engine.store;
    let counters = store
        .retry("reading enrichment counters", || {
            pipeline::stage_counters(store, run)
        })
        .await?;
    let mut tally = Tally {
        store: engine.store.clone(),
        run,
        counters,
        current: 0,
    };
    let mut messages = Vec::new();
    for stage in &options.stages {
        tally.start(*stage);
        let message = match stage {
            EnrichStage::Omdb => omdb::run(engine, options, &mut tally).await,
            EnrichStage::Collaborations => collaborations::run(engine, options, &mut tally).await,
            EnrichStage::Pqs => pqs::run(engine, &mut tally).await,
        };
        // The stage's own failure is what the run reports, not a failure to save its tally.
        let saved = tally.save().await;
        let message = message?;
        saved?;
        // Said once at info level: the run's closing line carries every stage's summary.
        tracing::debug!(stage = %stage, run_id = run, "{message}");
        messages.push(format!("{stage}: {message}"));
    }
    Ok((true, messages.join("; ")))
}

/// The per-stage counters of the run, saved into its metadata after every batch.
pub struct Tally {
    store: Store,
    run: RunId,
    counters: Vec<StageCounters>,
    current: usize,
}

impl Tally {
    fn start(&mut self, stage: EnrichStage) {
        self.current = match self.counters.iter().position(|c| c.stage == stage.as_str()) {
            Some(i) => i,
            None => {
                self.counters.push(StageCounters {
                    stage: stage.as_str().into(),
                    ..Default::default()
                });
                self.counters.len() - 1
            }
        };
    }

    /// Adds to the current stage's counters.
    pub fn add(&mut self, processed: i64, done: i64, errors: i64) {
        let c = &mut self.counters[self.current];
        c.processed += processed;
        c.done += done;
        c.errors += errors;
    }

    /// The run id, for statements that record errors with the work.
    pub fn run(&self) -> RunId {
        self.run
    }

    /// Writes the counters into the run's metadata (retried through an outage).
    pub async fn save(&self) -> Result<(), StoreError> {
        self.store
            .retry("saving enrichment counters", || {
                pipeline::save_stage_counters(&self.store, self.run, &self.counters)
            })
            .await
    }
}
