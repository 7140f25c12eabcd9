//! Lease-based leader election (`coordination.k8s.io/v1` `Lease`), modelled on client-go's
//! `leaderelection` package.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), tmdbsync::controller::leader::Error> {
//! use tmdbsync::controller::leader::{default_identity, LeaderElector, LeaseTiming};
//! let elector = LeaderElector::new(client, "tmdbsync", "tmdbsync-controller", default_identity(),
//!     LeaseTiming::default());
//! elector.acquire().await?; // blocks until this replica leads
//! let handle = elector.renew_in_background();
//! tokio::select! {
//!     _ = handle.lost() => { /* stop acting and exit: Kubernetes restarts the pod */ }
//!     _ = tokio::signal::ctrl_c() => handle.release().await, // another replica takes over at once
//! }
//! # Ok(()) }
//! ```
//!
//! Protocol (the same record client-go writes, so `kubectl get lease` and client-go tools agree):
//! * A lease is *free* when it has no `holderIdentity` (never held, or released), *expired* when
//!   `renewTime + leaseDurationSeconds` lies in the past, and otherwise held by its holder.
//! * Every write is a `replace` carrying the `resourceVersion` that was read (or a `create` for a
//!   missing lease): when two candidates race, the API server accepts one write and answers the other
//!   with 409 Conflict, so at most one identity holds a valid lease at any time.
//! * Taking over from another holder (or a released lease) sets `acquireTime` and increments
//!   `leaseTransitions`; renewing only moves `renewTime`.
//! * The leader renews every `retry_period` by replacing the lease as its own last write left it,
//!   without reading it first (client-go's fast path: one request a renewal, not two); a conflict
//!   means someone else wrote it since, and a full read-decide-write round follows.
//! * When no renewal has succeeded for `renew_deadline` (shorter than `lease_duration`), the leader
//!   reports the leadership lost *before* anyone else may take over, and the caller must stop
//!   acting as leader.
//! * Expiry compares the holder's `renewTime` with the local clock, so clocks must agree to well within
//!   `lease_duration - renew_deadline` (client-go instead times expiry from when it observed the
//!   record change, trading clock trust for a slower first takeover).
//!
//! Why not a crate: `kube-leader-election` 0.44 (the latest) depends on kube 4, not 5, so its `Client`
//! is a different type. `kube-lease-manager` 0.13 does build on kube 5 / k8s-openapi 0.29, but it times
//! leases in whole seconds (`duration` + `grace`; no renew deadline or sub-second retry period),
//! writes through server-side apply / strategic merge without `resourceVersion` preconditions, clears
//! the record on release instead of handing it over client-go style, and would add a dependency
//! (plus `rand` 0.10) for what is ~250 lines here.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

/// Errors of the leader elector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The timing cannot give a safe election (see [`LeaseTiming::validate`]).
    #[error("invalid lease timing: {0}")]
    InvalidTiming(&'static str),
    /// A request about the lease failed. [`LeaderElector::acquire`] retries transient failures
    /// and returns this only when retrying cannot help (400, 401, 403, 404, 422: e.g. missing RBAC
    /// on `leases`, or a missing namespace).
    #[error("lease {lease}: {}", describe(source))]
    Api {
        /// `namespace/name` of the lease.
        lease: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Timing of an election, with client-go's names and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a lease stays valid after its last renewal: other candidates take over only once
    /// `renewTime + lease_duration` has passed. Written as `leaseDurationSeconds` (rounded up).
    pub lease_duration: Duration,
    /// How long the leader keeps retrying failed renewals, counted from its last successful one,
    /// before it reports the leadership lost. Shorter than `lease_duration`, so the old leader
    /// stops acting before a new one can start.
    pub renew_deadline: Duration,
    /// Interval between acquisition attempts and between renewals.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    /// client-go's defaults: 15 s / 10 s / 2 s.
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaseTiming {
    /// Checks `0 < retry_period < renew_deadline < lease_duration` (client-go's rule).
    pub fn validate(&self) -> Result<(), Error> {
        if self.retry_period.is_zero() {
            return Err(Error::InvalidTiming("retry_period must be positive"));
        }
        if self.renew_deadline <= self.retry_period {
            return Err(Error::InvalidTiming(
                "renew_deadline must be longer than retry_period",
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(Error::InvalidTiming(
                "lease_duration must be longer than renew_deadline",
            ));
        }
        Ok(())
    }

    /// `leaseDurationSeconds` to write: `lease_duration` rounded up to whole seconds, at least 1.
    pub fn lease_duration_seconds(&self) -> i32 {
        let secs =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
    }
}

/// What a lease record means for one candidate at one moment (pure; see [`LeaseState::observe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// No holder: never held, or released.
    Free,
    /// Held by the observing identity (valid or not: it may renew either way).
    Ours,
    /// Held by another identity until `expires`.
    HeldByOther {
        /// The holder's identity.
        holder: String,
        /// `renewTime + leaseDurationSeconds`.
        expires: Timestamp,
    },
    /// Held by another identity that has not renewed within its lease duration.
    Expired {
        /// The stale holder's identity.
        holder: String,
    },
}

impl LeaseState {
    /// Classifies `spec` as seen by `identity` at `now`. A held lease without `renewTime` counts
    /// as expired (nothing says it is alive), and a missing `leaseDurationSeconds` as 0.
    pub fn observe(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> LeaseState {
        let holder = spec
            .and_then(|s| s.holder_identity.as_deref())
            .filter(|h| !h.is_empty());
        let Some(holder) = holder else {
            return LeaseState::Free;
        };
        if holder == identity {
            return LeaseState::Ours;
        }
        let spec = spec.expect("a holder implies a spec");
        let expires = spec.renew_time.as_ref().map(|renew| {
            let secs = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
            renew
                .0
                .checked_add(SignedDuration::from_secs(secs))
                .unwrap_or(Timestamp::MAX)
        });
        match expires {
            Some(expires) if expires > now => LeaseState::HeldByOther {
                holder: holder.to_string(),
                expires,
            },
            _ => LeaseState::Expired {
                holder: holder.to_string(),
            },
        }
    }

    /// Whether the observer may write itself as the holder.
    pub fn may_acquire(&self) -> bool {
        !matches!(self, LeaseState::HeldByOther { .. })
    }
}

/// The spec `identity` writes to take or renew a lease whose current spec is `old` (`None`: the
/// lease does not exist yet). Other fields of `old` are kept. Renewing its own lease moves only
/// `renewTime` (and `leaseDurationSeconds`); a change of holder sets `acquireTime` and increments
/// `leaseTransitions` (a new lease starts at 0, like client-go).
pub fn claimed_spec(
    old: Option<&LeaseSpec>,
    identity: &str,
    timing: &LeaseTiming,
    now: Timestamp,
) -> LeaseSpec {
    let mut spec = old.cloned().unwrap_or_default();
    let ours = old.and_then(|s| s.holder_identity.as_deref()) == Some(identity);
    if !ours {
        spec.holder_identity = Some(identity.to_string());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(match old {
            Some(old) => old.lease_transitions.unwrap_or(0).saturating_add(1),
            None => 0,
        });
    } else if spec.acquire_time.is_none() {
        spec.acquire_time = Some(MicroTime(now));
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(timing.lease_duration_seconds());
    spec
}

/// The spec written on a graceful release: no holder and `leaseDurationSeconds: 1`, times set to
/// `now`, `leaseTransitions` kept (what client-go writes with `ReleaseOnCancel`).
pub fn released_spec(old: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
    let mut spec = old.cloned().unwrap_or_default();
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.acquire_time = Some(MicroTime(now));
    spec.renew_time = Some(MicroTime(now));
    spec
}

/// An identity unique to this process: `$HOSTNAME` (the pod name in Kubernetes) or the kernel's
/// host name, plus a random suffix, so a restarted replica never mistakes its predecessor's lease
/// for its own.
pub fn default_identity() -> String {
    let host = crate::host::name().unwrap_or_else(|| "tmdbsync".to_string());
    format!("{host}_{:08x}", fastrand::u32(..))
}

/// The outcome of one [`LeaderElector::try_acquire_or_renew`] round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// This identity holds the lease now (created, taken over or renewed).
    Held,
    /// Another identity holds a valid lease.
    HeldByOther {
        /// Its identity.
        holder: String,
    },
    /// Another writer changed the lease between our read and our write (409 Conflict).
    Conflict,
}

/// Competes for one Lease under one identity. Create with [`LeaderElector::new`], wait with
/// [`acquire`](LeaderElector::acquire), then keep the lease with
/// [`renew_in_background`](LeaderElector::renew_in_background).
#[derive(Debug)]
pub struct LeaderElector {
    inner: Arc<Inner>,
    /// When the successful acquisition round started (the leader's renew deadline counts from it).
    acquired_at: Mutex<Option<Instant>>,
}

#[derive(Debug)]
struct Inner {
    api: Api<Lease>,
    /// `namespace/name`, for logs and errors.
    lease: String,
    name: String,
    identity: String,
    timing: LeaseTiming,
    on_lease_answered: Option<LeaseAnsweredHook>,
    /// The lease as our last successful write left it (we held it then); renewals replace it
    /// without reading it first.
    written: Mutex<Option<Lease>>,
}

/// Called whenever the API server answered a request about the lease: a read, or a renewal it
/// accepted.
#[derive(Clone)]
struct LeaseAnsweredHook(Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for LeaseAnsweredHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaseAnsweredHook")
    }
}

impl LeaderElector {
    /// An elector for the Lease `namespace/lease_name` under `identity` (unique per replica, e.g.
    /// [`default_identity`]). Makes no request; the lease is created on first acquisition.
    pub fn new(
        client: Client,
        namespace: &str,
        lease_name: impl Into<String>,
        identity: impl Into<String>,
        timing: LeaseTiming,
    ) -> Self {
        let name = lease_name.into();
        Self {
            inner: Arc::new(Inner {
                api: Api::namespaced(client, namespace),
                lease: format!("{namespace}/{name}"),
                name,
                identity: identity.into(),
                timing,
                on_lease_answered: None,
                written: Mutex::new(None),
            }),
            acquired_at: Mutex::new(None),
        }
    }

    /// Calls `hook` whenever the API server answers a request about the lease (the read of every
    /// acquisition attempt, every renewal it accepts): a standby that gets answers could take over
    /// (its `/readyz`).
    pub fn on_lease_answered(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the elector is not shared before it runs")
            .on_lease_answered = Some(LeaseAnsweredHook(Arc::new(hook)));
        self
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// The lease as `namespace/name`.
    pub fn lease(&self) -> &str {
        &self.inner.lease
    }

    /// Blocks until this identity holds the lease: retries every `retry_period` (+ up to 20 %
    /// jitter) while another identity holds it or the API server fails transiently. Returns an
    /// error for invalid timing or a request the API server refuses for good (RBAC, missing
    /// namespace). Cancel-safe: dropping the future at worst leaves a fresh lease held by this
    /// identity, which expires after `lease_duration`.
    pub async fn acquire(&self) -> Result<(), Error> {
        let inner = &self.inner;
        inner.timing.validate()?;
        info!(lease = %inner.lease, identity = %inner.identity, "trying to acquire the lease");
        let mut last_holder = None;
        loop {
            let started = Instant::now();
            let attempt =
                tokio::time::timeout(inner.timing.renew_deadline, inner.try_acquire_or_renew())
                    .await;
            match attempt {
                Ok(Ok(Attempt::Held)) => {
                    *self.acquired_at.lock().expect("not poisoned") = Some(started);
                    return Ok(());
                }
                Ok(Ok(Attempt::HeldByOther { holder })) => {
                    if last_holder.as_ref() != Some(&holder) {
                        info!(lease = %inner.lease, identity = %inner.identity, holder = %holder,
                            "lease held by another identity; waiting");
                        last_holder = Some(holder);
                    }
                }
                Ok(Ok(Attempt::Conflict)) => {
                    debug!(lease = %inner.lease, identity = %inner.identity,
                        "lost a write race for the lease; retrying");
                }
                Ok(Err(e)) if e.is_permanent() => return Err(e),
                Ok(Err(e)) => {
                    warn!(lease = %inner.lease, identity = %inner.identity, error = %e,
                        "acquiring the lease failed; retrying");
                }
                Err(_) => {
                    warn!(lease = %inner.lease, identity = %inner.identity,
                        "acquiring the lease timed out; retrying");
                }
            }
            let jitter = inner.timing.retry_period.mul_f64(fastrand::f64() * 0.2);
            tokio::time::sleep(inner.timing.retry_period + jitter).await;
        }
    }

    /// One round of the protocol: read the lease, then create it, take it over or renew it when
    /// allowed. Used by [`acquire`](Self::acquire) and the renewal loop.
    pub async fn try_acquire_or_renew(&self) -> Result<Attempt, Error> {
        self.inner.try_acquire_or_renew().await
    }

    /// Starts renewing the lease every `retry_period` on a background task. Call after
    /// [`acquire`](Self::acquire). Dropping the handle stops renewing without releasing (the lease
    /// then expires); [`LeaderHandle::release`] hands it over at once.
    pub fn renew_in_background(self) -> LeaderHandle {
        let acquired_at = self
            .acquired_at
            .lock()
            .expect("not poisoned")
            .unwrap_or_else(Instant::now);
        let (lost_tx, lost_rx) = watch::channel(false);
        let inner = self.inner.clone();
        let task = tokio::spawn(renew_loop(inner, acquired_at, lost_tx));
        LeaderHandle {
            inner: self.inner,
            task: Some(task),
            lost_rx,
        }
    }
}

impl Error {
    /// Whether retrying cannot help (the API server refused the request itself).
    fn is_permanent(&self) -> bool {
        match self {
            Error::InvalidTiming(_) => true,
            Error::Api { source, .. } => {
                matches!(source, kube::Error::Api(s) if matches!(s.code, 400 | 401 | 403 | 404 | 422))
            }
        }
    }
}

/// A one-line description (kube's own `Display` of API errors repeats the whole status as `Debug`).
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl Inner {
    fn api_error(&self, source: kube::Error) -> Error {
        Error::Api {
            lease: self.lease.clone(),
            source,
        }
    }

    async fn try_acquire_or_renew(&self) -> Result<Attempt, Error> {
        if self.renew_written().await? {
            return Ok(Attempt::Held);
        }
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.api_error(e))?;
        self.lease_answered();
        let now = Timestamp::now();
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(claimed_spec(None, &self.identity, &self.timing, now)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(written) => {
                    self.remember(Some(written));
                    info!(lease = %self.lease, identity = %self.identity, holder = %self.identity,
                        transitions = 0, "created the lease: now leading");
                    Ok(Attempt::Held)
                }
                Err(e) if is_conflict(&e) => Ok(Attempt::Conflict),
                Err(e) => Err(self.api_error(e)),
            };
        };
        let state = LeaseState::observe(lease.spec.as_ref(), &self.identity, now);
        if let LeaseState::HeldByOther { holder, .. } = state {
            return Ok(Attempt::HeldByOther { holder });
        }
        let spec = claimed_spec(lease.spec.as_ref(), &self.identity, &self.timing, now);
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(spec);
        // `lease.metadata.resourceVersion` is what we read: the replace is a compare-and-swap.
        let Some(written) = self.replace(&lease).await? else {
            return Ok(Attempt::Conflict);
        };
        if state == LeaseState::Ours {
            self.renewed(written);
            return Ok(Attempt::Held);
        }
        self.remember(Some(written));
        match state {
            LeaseState::Expired { holder } => {
                info!(lease = %self.lease, identity = %self.identity, holder = %self.identity,
                    previous_holder = %holder, transitions,
                    "took over the expired lease: now leading")
            }
            _ => info!(lease = %self.lease, identity = %self.identity,
                holder = %self.identity, transitions, "acquired the free lease: now leading"),
        }
        Ok(Attempt::Held)
    }

    /// Tells the hook, if any, that the API server answered about the lease.
    fn lease_answered(&self) {
        if let Some(LeaseAnsweredHook(hook)) = &self.on_lease_answered {
            hook();
        }
    }

    /// Replaces the lease with `lease`, whose `resourceVersion` makes it a compare-and-swap:
    /// the lease as written, or `None` when someone else wrote it since (409 Conflict).
    async fn replace(&self, lease: &Lease) -> Result<Option<Lease>, Error> {
        match self
            .api
            .replace(&self.name, &PostParams::default(), lease)
            .await
        {
            Ok(written) => Ok(Some(written)),
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(self.api_error(e)),
        }
    }

    /// Keeps a renewal of our own lease the API server accepted (`written`, the lease it stored).
    fn renewed(&self, written: Lease) {
        self.remember(Some(written));
        debug!(lease = %self.lease, identity = %self.identity, "renewed the lease");
    }

    /// Keeps (or forgets) the lease as our last write left it.
    fn remember(&self, lease: Option<Lease>) {
        *self.written.lock().expect("not poisoned") = lease;
    }

    /// Renews the lease we wrote last without reading it (client-go's fast path for the leader):
    /// its `resourceVersion` makes the replace a compare-and-swap, so when anyone else wrote the
    /// lease since, it fails with a conflict and the caller does the full read-decide-write round.
    /// `false`: nothing to renew this way (no write of ours remembered, or a conflict).
    async fn renew_written(&self) -> Result<bool, Error> {
        let Some(mut lease) = self.written.lock().expect("not poisoned").take() else {
            return Ok(false);
        };
        let now = Timestamp::now();
        lease.spec = Some(claimed_spec(
            lease.spec.as_ref(),
            &self.identity,
            &self.timing,
            now,
        ));
        let Some(written) = self.replace(&lease).await? else {
            return Ok(false);
        };
        self.lease_answered();
        self.renewed(written);
        Ok(true)
    }

    /// Clears the holder if it is still us (retrying lost write races a few times).
    async fn release(&self) -> Result<bool, Error> {
        self.remember(None);
        for _ in 0..3 {
            let Some(mut lease) = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| self.api_error(e))?
            else {
                return Ok(false);
            };
            let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.clone());
            if holder.as_deref() != Some(self.identity.as_str()) {
                info!(lease = %self.lease, identity = %self.identity,
                    holder = %holder.unwrap_or_default(), "not the holder any more: nothing to release");
                return Ok(false);
            }
            lease.spec = Some(released_spec(lease.spec.as_ref(), Timestamp::now()));
            if self.replace(&lease).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Renews until a renewal is impossible (another holder) or has not succeeded for
/// `renew_deadline` since the last success, then flags `lost` and ends.
async fn renew_loop(inner: Arc<Inner>, mut last_success: Instant, lost: watch::Sender<bool>) {
    let timing = inner.timing;
    let mut next = last_success + timing.retry_period;
    let reason = loop {
        let deadline = last_success + timing.renew_deadline;
        tokio::time::sleep_until(next.min(deadline)).await;
        let started = Instant::now();
        if started >= deadline {
            break format!(
                "no successful renewal for {:?} (renew deadline)",
                timing.renew_deadline
            );
        }
        match tokio::time::timeout_at(deadline, inner.try_acquire_or_renew()).await {
            Ok(Ok(Attempt::Held)) => {
                last_success = started;
            }
            Ok(Ok(Attempt::HeldByOther { holder })) => {
                break format!("the lease is held by {holder}");
            }
            Ok(Ok(Attempt::Conflict)) => {
                warn!(lease = %inner.lease, identity = %inner.identity,
                    "renewal lost a write race; retrying");
            }
            Ok(Err(e)) => {
                warn!(lease = %inner.lease, identity = %inner.identity, error = %e,
                    "renewing the lease failed; retrying");
            }
            Err(_) => {
                break format!(
                    "no successful renewal for {:?} (renew deadline)",
                    timing.renew_deadline
                );
            }
        }
        next = started + timing.retry_period;
    };
    error!(lease = %inner.lease, identity = %inner.identity, reason = %reason,
        "leadership lost: stop acting as leader");
    let _ = lost.send(true);
}

/// The leader's side of a held lease: renews it on a background task until lost, released or
/// dropped (dropping stops renewing without releasing).
#[derive(Debug)]
pub struct LeaderHandle {
    inner: Arc<Inner>,
    task: Option<JoinHandle<()>>,
    lost_rx: watch::Receiver<bool>,
}

impl LeaderHandle {
    /// Resolves once leadership is lost: another identity holds the lease, or no renewal succeeded
    /// within `renew_deadline`. The caller must then stop acting as leader (typically exit, so
    /// Kubernetes restarts the process as a follower). Independent of `self`'s lifetime; may be
    /// called any number of times.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.lost_rx.clone();
        async move {
            // An error means the renewal task is gone without a verdict: not renewing any more.
            let _ = rx.wait_for(|lost| *lost).await;
        }
    }

    /// Whether the lease is still considered ours (no loss reported yet).
    pub fn is_leader(&self) -> bool {
        !*self.lost_rx.borrow()
    }

    /// The identity holding the lease.
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// Stops renewing and, if the lease is still ours, clears its holder (`leaseDurationSeconds:
    /// 1`) so another candidate takes over within its next retry. Bounded by `renew_deadline`;
    /// failures are logged (the lease then simply expires).
    pub async fn release(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        let inner = &self.inner;
        match tokio::time::timeout(inner.timing.renew_deadline, inner.release()).await {
            Ok(Ok(true)) => {
                info!(lease = %inner.lease, identity = %inner.identity, "released the lease")
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => warn!(lease = %inner.lease, identity = %inner.identity, error = %e,
                "releasing the lease failed; it will expire"),
            Err(_) => warn!(lease = %inner.lease, identity = %inner.identity,
                "releasing the lease timed out; it will expire"),
        }
    }
}

impl Drop for LeaderHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "me";

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn spec(holder: Option<&str>, renew: Option<i64>, duration: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            renew_time: renew.map(|s| MicroTime(ts(s))),
            acquire_time: renew.map(|s| MicroTime(ts(s - 100))),
            lease_duration_seconds: duration,
            lease_transitions: Some(4),
            ..LeaseSpec::default()
        }
    }

    fn timing(lease: u64) -> LeaseTiming {
        LeaseTiming {
            lease_duration: Duration::from_millis(lease),
            renew_deadline: Duration::from_millis(lease / 2),
            retry_period: Duration::from_millis(lease / 4),
        }
    }

    #[test]
    fn observe_table() {
        let other = |expires: i64| LeaseState::HeldByOther {
            holder: "other".into(),
            expires: ts(expires),
        };
        let expired = LeaseState::Expired {
            holder: "other".into(),
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, Option<LeaseSpec>, i64, LeaseState)> = vec![
            ("no spec", None, 0, LeaseState::Free),
            ("no holder", Some(spec(None, Some(0), Some(15))), 0, LeaseState::Free),
            ("empty holder (client-go release)", Some(spec(Some(""), Some(0), Some(1))), 0, LeaseState::Free),
            ("ours and valid", Some(spec(Some(ME), Some(0), Some(15))), 5, LeaseState::Ours),
            ("ours but expired: may still renew", Some(spec(Some(ME), Some(0), Some(15))), 60, LeaseState::Ours),
            ("other, just renewed", Some(spec(Some("other"), Some(0), Some(15))), 0, other(15)),
            ("other, 1 s before expiry", Some(spec(Some("other"), Some(0), Some(15))), 14, other(15)),
            ("other, exactly at expiry", Some(spec(Some("other"), Some(0), Some(15))), 15, expired.clone()),
            ("other, long expired", Some(spec(Some("other"), Some(0), Some(15))), 600, expired.clone()),
            ("other, renewTime in our future (skew)", Some(spec(Some("other"), Some(30), Some(15))), 0, other(45)),
            ("other, no renewTime", Some(spec(Some("other"), None, Some(15))), 0, expired.clone()),
            ("other, no leaseDurationSeconds", Some(spec(Some("other"), Some(0), None)), 0, expired.clone()),
            ("other, negative duration", Some(spec(Some("other"), Some(0), Some(-5))), 0, expired.clone()),
        ];
        for (name, spec, now, want) in cases {
            let got = LeaseState::observe(spec.as_ref(), ME, ts(now));
            assert_eq!(got, want, "{name}");
            assert_eq!(
                got.may_acquire(),
                !matches!(want, LeaseState::HeldByOther { .. }),
                "{name}"
            );
        }
    }

    #[test]
    fn claimed_spec_table() {
        let t = LeaseTiming::default();
        // (case, old, expected transitions, acquireTime reset to now)
        let cases: Vec<(&str, Option<LeaseSpec>, i32, bool)> = vec![
            ("new lease", None, 0, true),
            (
                "renew ours",
                Some(spec(Some(ME), Some(0), Some(15))),
                4,
                false,
            ),
            (
                "take over expired",
                Some(spec(Some("other"), Some(0), Some(15))),
                5,
                true,
            ),
            ("take released", Some(spec(None, Some(0), Some(1))), 5, true),
            (
                "take released (empty holder)",
                Some(spec(Some(""), Some(0), Some(1))),
                5,
                true,
            ),
        ];
        let now = ts(1000);
        for (name, old, transitions, reacquired) in cases {
            let got = claimed_spec(old.as_ref(), ME, &t, now);
            assert_eq!(got.holder_identity.as_deref(), Some(ME), "{name}");
            assert_eq!(got.lease_transitions, Some(transitions), "{name}");
            assert_eq!(got.renew_time, Some(MicroTime(now)), "{name}");
            assert_eq!(got.lease_duration_seconds, Some(15), "{name}");
            let want_acquire = if reacquired {
                Some(MicroTime(now))
            } else {
                old.as_ref().unwrap().acquire_time.clone()
            };
            assert_eq!(got.acquire_time, want_acquire, "{name}");
            // What we wrote reads back as ours, and valid for a competitor until renew + duration.
            assert_eq!(
                LeaseState::observe(Some(&got), ME, now),
                LeaseState::Ours,
                "{name}"
            );
            assert_eq!(
                LeaseState::observe(Some(&got), "other", ts(1014)),
                LeaseState::HeldByOther {
                    holder: ME.into(),
                    expires: ts(1015)
                },
                "{name}"
            );
        }
    }

    #[test]
    fn claimed_spec_keeps_unrelated_fields() {
        let mut old = spec(Some("other"), Some(0), Some(15));
        old.strategy = Some("OldestEmulationVersion".into());
        let got = claimed_spec(Some(&old), ME, &LeaseTiming::default(), ts(100));
        assert_eq!(got.strategy.as_deref(), Some("OldestEmulationVersion"));
    }

    #[test]
    fn released_spec_frees_the_lease() {
        let old = spec(Some(ME), Some(0), Some(15));
        let got = released_spec(Some(&old), ts(10));
        assert_eq!(got.holder_identity, None);
        assert_eq!(got.lease_duration_seconds, Some(1));
        assert_eq!(got.lease_transitions, Some(4));
        assert_eq!(got.renew_time, Some(MicroTime(ts(10))));
        for who in [ME, "other"] {
            assert_eq!(
                LeaseState::observe(Some(&got), who, ts(10)),
                LeaseState::Free
            );
        }
        // The next holder counts a transition.
        let next = claimed_spec(Some(&got), "other", &LeaseTiming::default(), ts(11));
        assert_eq!(next.lease_transitions, Some(5));
    }

    #[test]
    fn timing_validation_table() {
        let ms = Duration::from_millis;
        #[rustfmt::skip]
        let cases = [
            ("client-go defaults", LeaseTiming::default(), true),
            ("test timing", LeaseTiming { lease_duration: ms(3000), renew_deadline: ms(2000), retry_period: ms(500) }, true),
            ("zero retry", LeaseTiming { lease_duration: ms(3000), renew_deadline: ms(2000), retry_period: ms(0) }, false),
            ("renew == retry", LeaseTiming { lease_duration: ms(3000), renew_deadline: ms(500), retry_period: ms(500) }, false),
            ("lease == renew", LeaseTiming { lease_duration: ms(2000), renew_deadline: ms(2000), retry_period: ms(500) }, false),
            ("lease < renew", LeaseTiming { lease_duration: ms(1000), renew_deadline: ms(2000), retry_period: ms(500) }, false),
        ];
        for (name, timing, ok) in cases {
            assert_eq!(timing.validate().is_ok(), ok, "{name}");
        }
    }

    #[test]
    fn lease_duration_seconds_rounds_up() {
        for (millis, secs) in [
            (15_000, 15),
            (3_000, 3),
            (2_500, 3),
            (400, 1),
            (1, 1),
            (0, 1),
        ] {
            assert_eq!(timing(millis).lease_duration_seconds(), secs, "{millis} ms");
        }
    }

    #[test]
    fn default_identity_is_unique() {
        let (a, b) = (default_identity(), default_identity());
        assert_ne!(a, b);
        assert!(a.contains('_'));
    }
}
