//! Run leases: a process keeps each run it has open alive with a heartbeat (every quarter lease it
//! pushes the run's `alive_until` a lease ahead), so a run whose process died reads as failed
//! once its lease runs out, and another run may then take its stage. A process that finds its
//! run no longer `running` (declared dead while it was frozen or cut off) stops renewing; its
//! writes are refused by the fence in each write transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::store::Store;
use crate::store::runs::{self, RunId};

/// How long a run stays alive without a heartbeat, by default.
pub const DEFAULT_RUN_LEASE: Duration = Duration::from_secs(60);
/// How long opening a run waits for a stage another run holds, by default: two leases, so a run
/// started right after a killed one waits for the killed one's lease to run out.
pub const DEFAULT_STAGE_WAIT: Duration = Duration::from_secs(120);

/// Leases of the runs this process has open (shared by clones of an [`crate::stage::Engine`]).
#[derive(Clone, Debug)]
pub struct RunControl {
    /// How long a run stays alive without a heartbeat; heartbeats come every quarter of it.
    pub lease: Duration,
    /// How long opening a run waits while another live run holds its stage.
    pub wait: Duration,
    /// Runs open in this process, with how many stages hold each (shards of one named run in
    /// one process share a heartbeat).
    open: Arc<Mutex<HashMap<RunId, (usize, Heartbeat)>>>,
}

impl Default for RunControl {
    fn default() -> Self {
        RunControl::new(DEFAULT_RUN_LEASE, DEFAULT_STAGE_WAIT)
    }
}

/// A heartbeat task; it stops when dropped.
#[derive(Debug)]
struct Heartbeat {
    named: bool,
    task: JoinHandle<()>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RunControl {
    /// Leases of `lease`, waiting up to `wait` for a busy stage.
    pub fn new(lease: Duration, wait: Duration) -> Self {
        RunControl {
            lease: lease.max(Duration::from_millis(400)),
            wait,
            open: Default::default(),
        }
    }

    /// Pause between two looks at a busy stage.
    pub(crate) fn poll(&self) -> Duration {
        (self.lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// Starts keeping `run` alive (or counts one more holder of it).
    pub(crate) fn hold(&self, store: &Store, run: RunId, named: bool) {
        let mut open = self.open.lock().expect("run leases lock");
        match open.get_mut(&run) {
            Some((holders, _)) => *holders += 1,
            None => {
                let task = tokio::spawn(beat(store.clone(), run, self.lease));
                open.insert(run, (1, Heartbeat { named, task }));
            }
        }
    }

    /// Stops keeping `run` alive once its last holder releases it.
    pub(crate) fn release(&self, run: RunId) {
        let mut open = self.open.lock().expect("run leases lock");
        if let Some((holders, _)) = open.get_mut(&run) {
            *holders -= 1;
            if *holders == 0 {
                open.remove(&run);
            }
        }
    }

    /// Stops every heartbeat; returns the runs with whether each is named.
    pub(crate) fn release_all(&self) -> Vec<(RunId, bool)> {
        let beats: Vec<(RunId, (usize, Heartbeat))> =
            self.open.lock().expect("run leases lock").drain().collect();
        beats
            .into_iter()
            .map(|(run, (_, b))| (run, b.named))
            .collect()
    }
}

async fn beat(store: Store, run: RunId, lease: Duration) {
    let every = lease / 4;
    loop {
        tokio::time::sleep(every).await;
        match runs::heartbeat(&store, run, lease).await {
            Ok(true) => {
                // A long run keeps the Sync Health counts fresh (one pod at a time).
                let every = Some(crate::store::health::COUNTS_REFRESH_EVERY);
                if let Err(e) = crate::store::health::refresh_counts(&store, every).await {
                    tracing::debug!(run_id = run, error = %e, "could not recompute the health counts");
                }
            }
            Ok(false) => {
                tracing::error!(
                    run_id = run,
                    "this run is no longer running (declared dead, or finished by the operator): \
                     its writes are refused from now on"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(run_id = run, error = %e, "could not renew the run's heartbeat")
            }
        }
    }
}

/// Names one opening of a run: `host pid N #nonce` (the nonce tells two openings by one process
/// apart).
pub(crate) fn owner_tag() -> String {
    let host = crate::host::name().unwrap_or_else(|| "unknown-host".into());
    format!(
        "{host} pid {} #{:08x}",
        std::process::id(),
        fastrand::u32(..)
    )
}
