//! The Collaborations stage: batches of pending movies through `store::collaborations`.

use super::{EnrichOptions, Tally};
use crate::plan::enrich::KEY_CREW_JOBS;
use crate::stage::{Engine, StageError};
use crate::store::collaborations;

/// Movies per transaction.
const BATCH_MOVIES: i64 = 5_000;

/// Brings collaborations up to date with every stored movie's credits.
pub async fn run(
    engine: &Engine,
    options: &EnrichOptions,
    tally: &mut Tally,
) -> Result<String, StageError> {
    let store = &engine.store;
    let pending = store
        .retry("counting movies pending collaborations", || {
            collaborations::pending_count(store)
        })
        .await?;
    let mut bar = engine
        .progress
        .task("collabs", pending.max(0) as u64, "movies");
    let (mut movies, mut changed, mut pairs) = (0, 0, 0);
    loop {
        let b = store
            .retry("updating collaborations", || {
                collaborations::apply_batch(store, BATCH_MOVIES, options.top_cast, KEY_CREW_JOBS)
            })
            .await?;
        if b.movies == 0 {
            break;
        }
        movies += b.movies;
        changed += b.changed;
        pairs += b.pairs;
        tally.add(b.movies, b.movies, 0);
        tally.save().await?;
        bar.inc(b.movies as u64);
    }
    bar.finish();
    Ok(format!(
        "{movies} movies brought up to date ({changed} with new key people), {pairs} pairs updated"
    ))
}
