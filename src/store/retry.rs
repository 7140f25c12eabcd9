//! Riding out database outages: a Postgres restart, a fail-over or a lost connection must not cost
//! a run. Work that fails with a connection-level error (see [`StoreError::is_transient`]) is
//! retried whole, with exponential backoff and jitter, until it has failed for the store's outage
//! tolerance ([`DEFAULT_OUTAGE_TOLERANCE`] unless set); then the last error is returned.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::{Result, Store, StoreError};

/// How long database work keeps retrying through an outage by default: five minutes, longer
/// than a restart or a managed fail-over usually takes.
pub const DEFAULT_OUTAGE_TOLERANCE: Duration = Duration::from_secs(300);

/// The first pause after a failure; each next one doubles, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// The retry state of one piece of work: when its outage began and the next pause.
#[derive(Debug)]
pub struct Outage {
    tolerance: Duration,
    started: Option<Instant>,
    pause: Duration,
    tries: u32,
}

impl Outage {
    /// A fresh state allowing `tolerance` of failures.
    pub fn new(tolerance: Duration) -> Self {
        Outage {
            tolerance,
            started: None,
            pause: FIRST_PAUSE,
            tries: 0,
        }
    }

    /// After a failure of `what`: sleeps and returns true when it is worth another try (a
    /// transient error within the tolerance), returns false at once otherwise.
    pub async fn wait(&mut self, what: &str, e: &StoreError) -> bool {
        if !e.is_transient() {
            return false;
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let elapsed = started.elapsed();
        if elapsed >= self.tolerance {
            tracing::error!(error = %e, what, tries = self.tries + 1,
                seconds = elapsed.as_secs(), "the database stayed unavailable; giving up");
            return false;
        }
        self.tries += 1;
        if self.tries == 1 {
            tracing::warn!(error = %e, what, "database unavailable; retrying");
        } else {
            tracing::debug!(error = %e, what, tries = self.tries, "database still unavailable");
        }
        let jitter = self.pause.mul_f64(fastrand::f64() * 0.5);
        let pause = (self.pause + jitter).min(self.tolerance.saturating_sub(elapsed));
        tokio::time::sleep(pause).await;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        true
    }

    /// Notes a success: logs how long the outage lasted, if there was one, and starts afresh.
    pub fn recovered(&mut self, what: &str) {
        if let Some(started) = self.started.take() {
            tracing::info!(
                what,
                tries = self.tries + 1,
                seconds = started.elapsed().as_secs_f64(),
                "the database is back"
            );
        }
        self.pause = FIRST_PAUSE;
        self.tries = 0;
    }
}

impl Store {
    /// How long work on this store retries through an outage.
    pub fn outage_tolerance(&self) -> Duration {
        self.outage_tolerance
    }

    /// The same pool with another outage tolerance (shorter in tests, longer for slow fail-overs).
    pub fn with_outage_tolerance(mut self, tolerance: Duration) -> Self {
        self.outage_tolerance = tolerance;
        self
    }

    /// A retry state for this store's tolerance, for loops that cannot use [`Store::retry`].
    pub fn outage(&self) -> Outage {
        Outage::new(self.outage_tolerance)
    }

    /// Runs `work` (a whole transaction, or a read) and runs it again while it fails with a
    /// connection-level error, for up to the outage tolerance. `what` names it in the logs.
    pub async fn retry<T, F, Fut>(&self, what: &str, mut work: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut outage = self.outage();
        loop {
            match work().await {
                Ok(v) => {
                    outage.recovered(what);
                    return Ok(v);
                }
                Err(e) => {
                    if !outage.wait(what, &e).await {
                        return Err(e);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> StoreError {
        StoreError::Query {
            context: "testing",
            source: sqlx::Error::PoolTimedOut,
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_the_tolerance_then_given_up() {
        let mut outage = Outage::new(Duration::from_millis(700));
        let start = Instant::now();
        let mut tries = 0;
        while outage.wait("testing", &transient()).await {
            tries += 1;
        }
        let waited = start.elapsed();
        assert!((3..=6).contains(&tries), "{tries} tries");
        assert!(
            waited >= Duration::from_millis(700) && waited < Duration::from_millis(900),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let mut outage = Outage::new(Duration::from_secs(60));
        assert!(!outage.wait("testing", &StoreError::NotTmdbsync).await);
    }
}
