//! The OMDb stage: movies without an imdb id are recorded as such at no cost; the others are asked
//! by imdb id (never asked first, most popular first), each call counted against the daily limit
//! in Postgres before it is made. "Request limit reached!" ends the stage for the day without
//! touching the movie; "Invalid API key!" ends the run (exit code 3).

use futures::StreamExt;

use super::{EnrichOptions, Tally};
use crate::omdb::{OmdbError, OmdbLookup};
use crate::stage::{Engine, StageError};
use crate::store::omdb::{self as store_omdb, OmdbCandidate, OmdbOutcome};
use crate::store::runs::{self, ErrorRecord, RunCounters};
use crate::store::{Context, Store, StoreError};

/// Movies read per page (one transaction writes a page's outcomes).
const PAGE: i64 = 100;
/// Consecutive failures after which OMDb is considered down for this run. Calls in flight count
/// as possible failures, so a down OMDb costs exactly this many calls of the day's quota.
pub const MAX_FAILURES_IN_A_ROW: usize = 20;

enum Call {
    /// Today's budget is spent: no call was made.
    OverBudget,
    /// Held back: with the calls in flight, OMDb could reach the failure limit; not made, no quota.
    Held,
    Made(Result<OmdbLookup, OmdbError>),
}

/// Failures in a row and calls in flight, shared by the concurrent lookups.
#[derive(Default)]
struct Streak(std::sync::Mutex<(usize, usize)>);

impl Streak {
    /// Lets a call start unless it could be failure number [`MAX_FAILURES_IN_A_ROW`] + 1.
    fn admit(&self) -> bool {
        let mut s = self.0.lock().expect("streak lock");
        let (failures, in_flight) = *s;
        let admitted = failures + in_flight < MAX_FAILURES_IN_A_ROW;
        if admitted {
            s.1 += 1;
        }
        admitted
    }

    /// Records a finished call: a failure extends the streak, anything else ends it.
    fn finish(&self, failed: bool) {
        let mut s = self.0.lock().expect("streak lock");
        s.1 -= 1;
        s.0 = if failed { s.0 + 1 } else { 0 };
    }

    /// Releases an admitted call that was never made.
    fn release(&self) {
        self.0.lock().expect("streak lock").1 -= 1;
    }

    fn failures(&self) -> usize {
        self.0.lock().expect("streak lock").0
    }
}

/// Asks OMDb about pending movies until none is left or the day's budget is spent.
pub async fn run(
    engine: &Engine,
    options: &EnrichOptions,
    tally: &mut Tally,
) -> Result<String, StageError> {
    let store = &engine.store;
    let no_imdb = store
        .retry("recording movies without an imdb id", || {
            store_omdb::record_no_imdb_id(store)
        })
        .await?;
    tally.add(no_imdb, no_imdb, 0);
    tally.save().await?;
    let Some(client) = options.omdb.clone() else {
        tracing::warn!("no OMDb API key: OMDb lookups skipped");
        return Ok(format!(
            "{no_imdb} movies recorded without an imdb id; lookups skipped (no OMDb API key)"
        ));
    };
    let limit = options.omdb_daily_limit;
    let calls_today = store
        .retry("reading today's OMDb calls", || {
            store_omdb::calls_today(store)
        })
        .await?;
    let budget = (limit - calls_today).max(0) as i64;
    let pending = store
        .retry("counting OMDb-pending movies", || {
            store_omdb::pending_count(store)
        })
        .await?;
    let mut bar = engine
        .progress
        .task("omdb", pending.min(budget) as u64, "movies");
    let (mut found, mut unknown, mut errors) = (0i64, 0i64, 0i64);
    let mut failed: Vec<i64> = Vec::new();
    let streak = Streak::default();
    let mut stop: Option<String> = None;
    while stop.is_none() {
        let page = store
            .retry("listing OMDb-pending movies", || {
                store_omdb::pending(store, PAGE, &failed)
            })
            .await?;
        if page.is_empty() {
            break;
        }
        let calls: Vec<(OmdbCandidate, Call)> = futures::stream::iter(page)
            .map(|c| {
                let client = client.clone();
                let streak = &streak;
                async move {
                    if !streak.admit() {
                        return Ok((c, Call::Held));
                    }
                    let reserved = store
                        .retry("counting an OMDb call", || {
                            store_omdb::reserve_call(store, limit)
                        })
                        .await;
                    match reserved {
                        Ok(false) => {
                            streak.release();
                            Ok((c, Call::OverBudget))
                        }
                        Ok(true) => {
                            let r = client.by_imdb_id(&c.imdb_id).await;
                            let failed = matches!(&r, Err(e) if counts_as_failure(e));
                            streak.finish(failed);
                            Ok((c, Call::Made(r)))
                        }
                        Err(e) => {
                            streak.release();
                            Err(e)
                        }
                    }
                }
            })
            .buffer_unordered(options.omdb_concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let mut outcomes = Vec::new();
        let mut records = Vec::new();
        let mut fatal = None;
        for (c, call) in calls {
            match call {
                Call::OverBudget => {
                    stop.get_or_insert(format!("the daily limit of {limit} OMDb calls is reached"));
                }
                Call::Held => {}
                Call::Made(Ok(lookup)) => {
                    let outcome = match lookup {
                        OmdbLookup::Found(m) => {
                            found += 1;
                            OmdbOutcome::Found(m)
                        }
                        OmdbLookup::NotFound => {
                            unknown += 1;
                            OmdbOutcome::NotFound
                        }
                        OmdbLookup::IncorrectId => {
                            unknown += 1;
                            OmdbOutcome::IncorrectId
                        }
                    };
                    outcomes.push((c, outcome));
                }
                Call::Made(Err(OmdbError::LimitReached)) => {
                    stop = Some("OMDb answered \"Request limit reached!\"".into());
                }
                Call::Made(Err(e)) if e.is_fatal() => fatal = Some(e),
                Call::Made(Err(e)) => {
                    errors += 1;
                    failed.push(c.movie_id);
                    records.push(ErrorRecord {
                        category: e.category(),
                        movie_id: Some(c.movie_id),
                        http_status: e.http_status(),
                        message: e.to_string(),
                        attempts: 1,
                    });
                }
            }
        }
        let done = outcomes.len() as i64;
        write_page(store, tally.run(), &outcomes, &records).await?;
        tally.add(done + records.len() as i64, done, records.len() as i64);
        tally.save().await?;
        bar.inc(done as u64 + records.len() as u64);
        if let Some(e) = fatal {
            return Err(StageError::OmdbCredentials(e));
        }
        let in_a_row = streak.failures();
        if in_a_row >= MAX_FAILURES_IN_A_ROW {
            stop = Some(format!(
                "stopped after {in_a_row} failed OMDb calls in a row"
            ));
        }
    }
    bar.finish();
    if stop.as_deref().is_some_and(|s| s.contains("Request limit")) {
        store
            .retry("closing today's OMDb budget", || {
                store_omdb::exhaust_today(store, limit)
            })
            .await?;
    }
    let mut message = format!(
        "{found} found, {unknown} unknown to OMDb, {no_imdb} without an imdb id, {errors} errors"
    );
    if let Some(why) = stop {
        message.push_str(&format!("; {why}, the rest waits for the next run"));
    }
    Ok(message)
}

/// A failure that counts towards [`MAX_FAILURES_IN_A_ROW`] (not the quota or the key, which stop
/// the stage on their own).
fn counts_as_failure(e: &OmdbError) -> bool {
    !e.is_fatal() && !matches!(e, OmdbError::LimitReached)
}

async fn write_page(
    store: &Store,
    run: runs::RunId,
    outcomes: &[(OmdbCandidate, OmdbOutcome)],
    errors: &[ErrorRecord],
) -> Result<(), StageError> {
    match write_outcomes(store, run, outcomes, errors).await {
        Err(e) if e.is_record_data_error() && !outcomes.is_empty() => {
            // One body the database refuses never costs the page: store the outcomes one by one
            // and quarantine the refused ones as data errors (their movies stay pending).
            tracing::warn!(error = %e, "the database refused a page of OMDb outcomes; storing them one by one");
            let mut quarantined = errors.to_vec();
            for outcome in outcomes {
                match write_outcomes(store, run, std::slice::from_ref(outcome), &[]).await {
                    Ok(()) => {}
                    Err(e) if e.is_record_data_error() => {
                        quarantined.push(ErrorRecord {
                            category: crate::model::ErrorCategory::Data,
                            movie_id: Some(outcome.0.movie_id),
                            http_status: None,
                            message: format!(
                                "quarantined: the database refused this OMDb answer on its own: {e}"
                            ),
                            attempts: 2,
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(write_outcomes(store, run, &[], &quarantined).await?)
        }
        other => Ok(other?),
    }
}

/// Stores a page's outcomes in one transaction, retried through an outage and applied once.
async fn write_outcomes(
    store: &Store,
    run: runs::RunId,
    outcomes: &[(OmdbCandidate, OmdbOutcome)],
    errors: &[ErrorRecord],
) -> Result<(), StoreError> {
    let token = fastrand::i64(..);
    store
        .retry("storing OMDb outcomes", || {
            write_outcomes_once(store, run, token, outcomes, errors)
        })
        .await
}

async fn write_outcomes_once(
    store: &Store,
    run: runs::RunId,
    token: i64,
    outcomes: &[(OmdbCandidate, OmdbOutcome)],
    errors: &[ErrorRecord],
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    if !runs::claim_write(&mut tx, run, token).await? {
        return Ok(());
    }
    store_omdb::record_outcomes(&mut tx, outcomes).await?;
    runs::record_errors(&mut tx, run, errors).await?;
    if !errors.is_empty() {
        let counters = RunCounters {
            errors: errors.len() as i32,
            ..Default::default()
        };
        runs::add_counts(&mut tx, run, &counters).await?;
    }
    runs::fence(&mut tx, run).await?;
    tx.commit().await.context("committing OMDb outcomes")?;
    Ok(())
}
