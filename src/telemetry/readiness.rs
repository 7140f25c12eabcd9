//! What `/readyz` answers. The controller reports what it observes (its role, answers from the API
//! server, each watch's sync and failures); [`Readiness::verdict`] turns that into ready or not,
//! with the reason:
//!
//! * **Starting**: not ready.
//! * **Standby** (leader election, another replica leads): ready while its checks of the Lease get
//!   answers, i.e. it could take over; not ready before the first answer or after none for `grace`.
//! * **Active** (leading, or no leader election): ready once every watch has listed its objects
//!   (synced), as long as the API server answers (a heartbeat, and the Lease renewals) within
//!   `grace`, and no watch has been failing for `grace` or longer.
//!
//! A watch that failed recovers with its next event (a successful list or any change). A watch that
//! resumes where it left off sends nothing until an object changes, so a failure with no error
//! after it for [`FAILURE_MEMORY`] counts as over too.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long the API server may stay silent, or a watch keep failing, before the controller reports
/// not ready.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How long after its last error a failing watch that sends nothing more still counts as failing:
/// kube-runtime retries a failing watch at most 30 s apart, plus the time each try takes.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(90);

/// What this replica does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not yet standing by or reconciling.
    Starting,
    /// Waiting for the leader Lease.
    Standby,
    /// Reconciling (the leader, or the only replica).
    Active,
}

/// Ready or not, and why (the `/readyz` body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the replica is ready.
    pub ready: bool,
    /// Why, in one line.
    pub reason: String,
}

impl Verdict {
    fn ready(reason: impl Into<String>) -> Self {
        Verdict {
            ready: true,
            reason: reason.into(),
        }
    }

    fn not(reason: impl Into<String>) -> Self {
        Verdict {
            ready: false,
            reason: reason.into(),
        }
    }
}

/// The shared readiness state: cheap to clone, every clone sees the same state.
#[derive(Debug, Clone)]
pub struct Readiness {
    state: Arc<Mutex<State>>,
    /// Woken whenever a watch syncs ([`WatchHealth::wait_synced`]).
    synced: Arc<tokio::sync::Notify>,
}

#[derive(Debug, Clone)]
struct State {
    grace: Duration,
    role: Role,
    api_answered: Option<Instant>,
    lease_answered: Option<Instant>,
    watches: Vec<WatchState>,
}

#[derive(Debug, Clone)]
struct WatchState {
    name: String,
    synced: bool,
    failure: Option<Failure>,
}

#[derive(Debug, Clone)]
struct Failure {
    since: Instant,
    last: Instant,
    reason: String,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new(DEFAULT_GRACE)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn secs(d: Duration) -> u64 {
    d.as_secs_f64().round() as u64
}

impl Readiness {
    /// A replica that is starting, allowing the API server `grace` of silence (and a watch `grace`
    /// of failures) before it is not ready.
    pub fn new(grace: Duration) -> Self {
        Readiness {
            state: Arc::new(Mutex::new(State {
                grace,
                role: Role::Starting,
                api_answered: None,
                lease_answered: None,
                watches: Vec::new(),
            })),
            synced: Arc::default(),
        }
    }

    /// The allowed silence of the API server.
    pub fn grace(&self) -> Duration {
        lock(&self.state).grace
    }

    /// Records what the replica does now.
    pub fn set_role(&self, role: Role) {
        lock(&self.state).role = role;
    }

    /// The API server answered a request (the heartbeat).
    pub fn api_answered(&self) {
        lock(&self.state).api_answered = Some(Instant::now());
    }

    /// The API server answered a check of the leader Lease (also an answer of the API server).
    pub fn lease_answered(&self) {
        let now = Instant::now();
        let mut s = lock(&self.state);
        s.lease_answered = Some(now);
        s.api_answered = Some(now);
    }

    /// Registers a watch named `name` (e.g. `tmdbsyncs`), not synced yet; the controller reports
    /// its events on the returned handle.
    pub fn watch(&self, name: impl Into<String>) -> WatchHealth {
        let mut s = lock(&self.state);
        s.watches.push(WatchState {
            name: name.into(),
            synced: false,
            failure: None,
        });
        WatchHealth {
            state: self.state.clone(),
            index: s.watches.len() - 1,
            synced: self.synced.clone(),
        }
    }

    /// Ready or not now, and why.
    pub fn verdict(&self) -> Verdict {
        self.verdict_at(Instant::now())
    }

    /// Ready or not at `now`, and why.
    pub fn verdict_at(&self, now: Instant) -> Verdict {
        assess(&lock(&self.state), now)
    }
}

/// One watch's reports to its [`Readiness`].
#[derive(Debug, Clone)]
pub struct WatchHealth {
    state: Arc<Mutex<State>>,
    index: usize,
    synced: Arc<tokio::sync::Notify>,
}

impl WatchHealth {
    /// The watch's name.
    pub fn name(&self) -> String {
        lock(&self.state).watches[self.index].name.clone()
    }

    /// The watch listed every object (its initial list, or a relist, is complete). Returns
    /// whether it was failing until now.
    pub fn synced(&self) -> bool {
        let was_failing = {
            let mut s = lock(&self.state);
            let w = &mut s.watches[self.index];
            w.synced = true;
            w.failure.take().is_some()
        };
        self.synced.notify_waiters();
        was_failing
    }

    /// Resolves once the watch has listed every object. Any number of tasks may wait (unlike a
    /// reflector store's `wait_until_ready`, which wakes only the last task that polled it).
    pub async fn wait_synced(&self) {
        loop {
            let notified = self.synced.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.state).watches[self.index].synced {
                return;
            }
            notified.await;
        }
    }

    /// The watch delivered an event: it works. Returns whether it was failing until now.
    pub fn working(&self) -> bool {
        lock(&self.state).watches[self.index]
            .failure
            .take()
            .is_some()
    }

    /// The watch failed (it retries on its own).
    pub fn failed(&self, reason: impl Into<String>) {
        self.failed_at(Instant::now(), reason);
    }

    /// [`failed`](Self::failed) at `now` (for tests).
    pub fn failed_at(&self, now: Instant, reason: impl Into<String>) {
        let mut s = lock(&self.state);
        let w = &mut s.watches[self.index];
        // A failure long silent was over (the watch resumed without an event): a new one starts.
        let since = match &w.failure {
            Some(f) if now.saturating_duration_since(f.last) <= FAILURE_MEMORY => f.since,
            _ => now,
        };
        w.failure = Some(Failure {
            since,
            last: now,
            reason: reason.into(),
        });
    }
}

fn assess(s: &State, now: Instant) -> Verdict {
    let ago = |t: Instant| now.saturating_duration_since(t);
    match s.role {
        Role::Starting => Verdict::not("starting"),
        Role::Standby => match s.lease_answered {
            None => Verdict::not("standby: no answer about the leader Lease yet"),
            Some(t) if ago(t) > s.grace => Verdict::not(format!(
                "standby: no answer about the leader Lease for {} s, so it could not take over",
                secs(ago(t))
            )),
            Some(_) => Verdict::ready("standby: the leader Lease answers; ready to take over"),
        },
        Role::Active => {
            match s.api_answered {
                None => return Verdict::not("no answer from the Kubernetes API server yet"),
                Some(t) if ago(t) > s.grace => {
                    return Verdict::not(format!(
                        "no answer from the Kubernetes API server for {} s",
                        secs(ago(t))
                    ));
                }
                Some(_) => {}
            }
            if s.watches.is_empty() {
                return Verdict::not("the watches have not started");
            }
            let failing = s.watches.iter().find_map(|w| {
                let f = w.failure.as_ref()?;
                (ago(f.last) <= FAILURE_MEMORY && ago(f.since) >= s.grace).then_some((w, f))
            });
            if let Some((w, f)) = failing {
                return Verdict::not(format!(
                    "the watch of {} has been failing for {} s: {}",
                    w.name,
                    secs(ago(f.since)),
                    f.reason
                ));
            }
            if let Some(w) = s.watches.iter().find(|w| !w.synced) {
                return Verdict::not(match &w.failure {
                    Some(f) => format!("the watch of {} has not synced: {}", w.name, f.reason),
                    None => format!("the watch of {} has not synced yet", w.name),
                });
            }
            let names: Vec<&str> = s.watches.iter().map(|w| w.name.as_str()).collect();
            Verdict::ready(format!("reconciling; watches synced: {}", names.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_task_waiting_for_a_watch_to_sync_is_woken() {
        let r = Readiness::new(GRACE);
        let runs = r.watch("syncruns");
        let other = r.watch("jobs");
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let w = runs.clone();
                tokio::spawn(async move { w.wait_synced().await })
            })
            .collect();
        tokio::task::yield_now().await;
        other.synced();
        tokio::task::yield_now().await;
        assert!(
            waiters.iter().all(|w| !w.is_finished()),
            "another watch synced"
        );
        runs.synced();
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("woken")
                .unwrap();
        }
        // Once synced, a new waiter returns at once.
        runs.wait_synced().await;
    }

    const GRACE: Duration = Duration::from_secs(30);

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// An active replica with two watches, both synced, the API answering at `t0`.
    fn active(t0: Instant) -> (Readiness, WatchHealth, WatchHealth) {
        let r = Readiness::new(GRACE);
        r.set_role(Role::Active);
        lock(&r.state).api_answered = Some(t0);
        let a = r.watch("tmdbsyncs");
        let b = r.watch("jobs");
        a.synced();
        b.synced();
        (r, a, b)
    }

    #[test]
    fn a_starting_replica_and_an_active_one_before_its_watches_sync_are_not_ready() {
        let t0 = Instant::now();
        let r = Readiness::new(GRACE);
        assert_eq!(r.verdict_at(t0), Verdict::not("starting"));
        r.set_role(Role::Active);
        assert!(r.verdict_at(t0).reason.contains("API server yet"));
        lock(&r.state).api_answered = Some(t0);
        assert_eq!(r.verdict_at(t0).reason, "the watches have not started");
        let a = r.watch("tmdbsyncs");
        let b = r.watch("syncruns");
        a.synced();
        let v = r.verdict_at(t0);
        assert_eq!(v, Verdict::not("the watch of syncruns has not synced yet"));
        // A watch that cannot list (a missing CRD, missing RBAC) says why.
        b.failed_at(
            t0,
            "404 NotFound: the server could not find the requested resource",
        );
        let v = r.verdict_at(t0 + s(1));
        assert!(!v.ready);
        assert!(v.reason.contains("syncruns has not synced: 404"), "{v:?}");
        // Still failing after the grace (the API server answers): the failure is what it reports.
        lock(&r.state).api_answered = Some(t0 + s(40));
        b.failed_at(t0 + s(40), "404 NotFound");
        let v = r.verdict_at(t0 + s(40));
        assert!(
            v.reason.contains("syncruns has been failing for 40 s"),
            "{v:?}"
        );
        // The CRD appears: the next list syncs it.
        lock(&r.state).api_answered = Some(t0 + s(41));
        b.synced();
        let v = r.verdict_at(t0 + s(41));
        assert_eq!(
            v,
            Verdict::ready("reconciling; watches synced: tmdbsyncs, syncruns")
        );
    }

    #[test]
    fn an_active_replica_turns_not_ready_when_the_api_server_stops_answering() {
        let t0 = Instant::now();
        let (r, _, _) = active(t0);
        // (seconds since the last answer, ready)
        for (after, ready) in [(0, true), (10, true), (30, true), (31, false), (600, false)] {
            let v = r.verdict_at(t0 + s(after));
            assert_eq!(v.ready, ready, "{after} s: {v:?}");
            if !ready {
                assert_eq!(
                    v.reason,
                    format!("no answer from the Kubernetes API server for {after} s")
                );
            }
        }
        lock(&r.state).api_answered = Some(t0 + s(600));
        assert!(
            r.verdict_at(t0 + s(601)).ready,
            "answers again: ready again"
        );
    }

    #[test]
    fn a_watch_failing_for_the_grace_makes_an_active_replica_not_ready_until_it_recovers() {
        let t0 = Instant::now();
        // (errors at these seconds, then checked at, ready)
        #[rustfmt::skip]
        let cases: Vec<(&str, Vec<u64>, u64, bool)> = vec![
            ("one error is a blip", vec![0], 5, true),
            ("failing for less than the grace", vec![0, 10, 25], 29, true),
            ("failing for the grace", vec![0, 10, 25], 30, false),
            ("failing and retrying every 30 s", vec![0, 30, 60, 90], 100, false),
            ("no error since for the failure memory: over", vec![0, 30, 60], 60 + 91, true),
            ("within the failure memory", vec![0, 30, 60], 60 + 89, false),
            ("an error after a long silence starts a new streak", vec![0, 30, 200], 210, true),
            ("which fails in its turn after the grace", vec![0, 30, 200, 220], 230, false),
        ];
        for (case, errors, at, ready) in cases {
            let (r, _, jobs) = active(t0);
            lock(&r.state).api_answered = Some(t0 + s(at));
            for e in &errors {
                jobs.failed_at(t0 + s(*e), "403 Forbidden: jobs.batch is forbidden");
            }
            let v = r.verdict_at(t0 + s(at));
            assert_eq!(v.ready, ready, "{case}: {v:?}");
            if !ready {
                assert!(
                    v.reason
                        .starts_with("the watch of jobs has been failing for"),
                    "{case}: {v:?}"
                );
                assert!(
                    v.reason.ends_with("403 Forbidden: jobs.batch is forbidden"),
                    "{case}"
                );
            }
        }
        // Any event ends the failure at once.
        let (r, _, jobs) = active(t0);
        lock(&r.state).api_answered = Some(t0 + s(100));
        for e in [0, 30, 60, 90] {
            jobs.failed_at(t0 + s(e), "watch broke");
        }
        assert!(!r.verdict_at(t0 + s(100)).ready);
        jobs.working();
        assert!(r.verdict_at(t0 + s(100)).ready);
        // A new failure starts a new streak.
        jobs.failed_at(t0 + s(100), "watch broke");
        assert!(r.verdict_at(t0 + s(100)).ready);
    }

    #[test]
    fn a_standby_is_ready_while_the_lease_answers() {
        let t0 = Instant::now();
        let r = Readiness::new(GRACE);
        r.set_role(Role::Standby);
        let v = r.verdict_at(t0);
        assert_eq!(
            v,
            Verdict::not("standby: no answer about the leader Lease yet")
        );
        lock(&r.state).lease_answered = Some(t0);
        assert!(r.verdict_at(t0 + s(30)).ready);
        let v = r.verdict_at(t0 + s(45));
        assert!(!v.ready);
        assert!(
            v.reason.contains("for 45 s, so it could not take over"),
            "{v:?}"
        );
        // The watches of a standby do not exist yet and do not count.
        r.watch("tmdbsyncs");
        lock(&r.state).lease_answered = Some(t0 + s(45));
        assert!(r.verdict_at(t0 + s(46)).ready);
    }

    #[test]
    fn a_lease_answer_is_an_answer_of_the_api_server() {
        let r = Readiness::new(GRACE);
        r.lease_answered();
        let s = lock(&r.state);
        assert!(s.api_answered.is_some() && s.api_answered == s.lease_answered);
    }
}
