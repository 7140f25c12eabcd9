//! Concurrent detail fetching: up to `concurrency` requests in flight (the client enforces the rate
//! limit and the connection cap), a second pass for ids whose retries were exhausted, and a stop at
//! the first credentials failure.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::model::movie::FetchedMovie;
use crate::tmdb::{TmdbClient, TmdbError};

/// What became of one id.
#[derive(Debug)]
pub enum FetchOutcome {
    /// Details, ready to store.
    Fetched(Box<FetchedMovie>),
    /// TMDb answered 404: the movie is gone.
    NotFound,
    /// Every try failed; `attempts` requests were made for the id (both passes, 429s included).
    Failed { error: TmdbError, attempts: u32 },
}

/// One fetched id with the caller's tag (a page number, a window index).
#[derive(Debug)]
pub struct Fetched<T> {
    pub tag: T,
    pub id: i64,
    pub outcome: FetchOutcome,
}

/// An event from the fetcher.
#[derive(Debug)]
pub enum FetchEvent<T> {
    Done(Fetched<T>),
    /// Credentials were refused: nothing more is fetched.
    Fatal(TmdbError),
}

/// Pause before the second pass over failed ids, so a transient outage can pass.
const SECOND_PASS_DELAY: Duration = Duration::from_secs(1);

/// Fetches `items` in the background; events arrive on the returned channel in completion order,
/// one per id (unless a fatal error ends it early). Dropping the receiver cancels the work.
pub fn fetch_movies<T>(
    client: TmdbClient,
    items: Vec<(T, i64)>,
    concurrency: usize,
) -> mpsc::Receiver<FetchEvent<T>>
where
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel(concurrency.max(1) * 4);
    tokio::spawn(async move {
        // (tag, id, requests made for it in earlier passes)
        let mut work: Vec<(T, i64, u32)> = items.into_iter().map(|(t, id)| (t, id, 0)).collect();
        for pass in 1..=2u32 {
            if work.is_empty() {
                break;
            }
            if pass == 2 {
                tracing::info!(
                    ids = work.len(),
                    "second pass over ids whose retries ran out"
                );
                tokio::time::sleep(SECOND_PASS_DELAY).await;
            }
            // Each request runs as its own task, so one in flight completes (its answer waits
            // here) while this loop is blocked on a full channel, e.g. while the writer rides out
            // a database restart. Polled only from this loop, a request would sit unread until
            // its timeout and be asked again. Dropping the loop aborts the tasks.
            let mut results = futures::stream::iter(work)
                .map(|(tag, id, before)| {
                    let client = client.clone();
                    let task = AbortOnDropHandle::new(tokio::spawn(async move {
                        client.movie_counted(id).await
                    }));
                    async move {
                        let (result, requests) = task.await.unwrap_or_else(|panic| {
                            // A bug reading one answer fails that movie (the next run retries
                            // it), never the run.
                            let error = TmdbError::Malformed(format!("reading it failed: {panic}"));
                            (Err(error), 1)
                        });
                        (tag, id, result, before + requests)
                    }
                })
                .buffer_unordered(concurrency.max(1));
            let mut again = Vec::new();
            while let Some((tag, id, result, requests)) = results.next().await {
                let outcome = match result {
                    Ok(movie) => FetchOutcome::Fetched(Box::new(movie)),
                    Err(TmdbError::NotFound { .. }) => FetchOutcome::NotFound,
                    Err(e) if e.is_fatal() => {
                        let _ = tx.send(FetchEvent::Fatal(e)).await;
                        return;
                    }
                    Err(e) if pass == 1 && worth_another_pass(&e) => {
                        again.push((tag, id, requests));
                        continue;
                    }
                    Err(TmdbError::RateLimited { .. }) => FetchOutcome::Failed {
                        error: TmdbError::RateLimited { attempts: requests },
                        attempts: requests,
                    },
                    Err(error) => FetchOutcome::Failed {
                        error,
                        attempts: requests,
                    },
                };
                if tx
                    .send(FetchEvent::Done(Fetched { tag, id, outcome }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            work = again;
        }
    });
    rx
}

/// The run message's note on errors left at the end of a run: movies that failed every try of
/// both passes (or that the database refused) and that the next run retries. Empty without any.
pub fn still_failing_note(errors: i32) -> String {
    match errors {
        0 => String::new(),
        1 => "; 1 movie still failing (the next run retries it)".into(),
        n => format!("; {n} movies still failing (the next run retries them)"),
    }
}

/// A 4xx other than 404/429 will not change on a second pass; everything else may.
fn worth_another_pass(e: &TmdbError) -> bool {
    !matches!(e, TmdbError::Api { status, .. } if *status < 500)
}
