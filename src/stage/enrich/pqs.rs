//! The PQS stage: queue the people of pending movies, then score the queue in batches.

use super::Tally;
use crate::plan::enrich::PQS_REFERENCE_YEAR;
use crate::stage::{Engine, StageError};
use crate::store::pqs;

/// Movies queued per transaction.
const QUEUE_MOVIES: i64 = 50_000;
/// People scored per transaction.
const SCORE_PEOPLE: i64 = 20_000;

/// Recomputes the score of every person touched since the last run.
pub async fn run(engine: &Engine, tally: &mut Tally) -> Result<String, StageError> {
    let store = &engine.store;
    let mut movies = 0;
    loop {
        let n = store
            .retry("queueing people to score", || {
                pqs::queue_pending_movies(store, QUEUE_MOVIES)
            })
            .await?;
        if n == 0 {
            break;
        }
        movies += n;
        tally.add(n, 0, 0);
        tally.save().await?;
    }
    let queued = store
        .retry("counting people to score", || pqs::queued_people(store))
        .await?;
    let mut bar = engine.progress.task("pqs", queued.max(0) as u64, "people");
    let mut people = 0;
    loop {
        let n = store
            .retry("scoring people", || {
                pqs::score_queued(store, SCORE_PEOPLE, PQS_REFERENCE_YEAR)
            })
            .await?;
        if n == 0 {
            break;
        }
        people += n;
        bar.inc(n as u64);
    }
    bar.finish();
    tally.add(0, movies, 0);
    Ok(format!(
        "{movies} movies changed since the last run, {people} people scored"
    ))
}
