//! The request pacer shared by all clones of one TMDb client: it spaces requests `1 / rate` apart
//! (no burst), never lets more than the budget through in any [`WINDOW`], holds every request while
//! TMDb asked to wait (`Retry-After`), and adapts the rate to 429s ([`AdaptiveRate`]).
//!
//! Why not `governor`: its quota is fixed when a limiter is built, and the rate here changes on
//! every 429 and every quiet second. Swapping in a fresh limiter forgets what was just sent (a new
//! limiter grants at once, the worst moment to), and the shared pause, the hard cap per window and
//! first-come-first-served waiting (a retried request must not starve behind luckier ones) are not
//! governor features either. What remains is a few lines of arithmetic over `Instant`s, tested
//! below.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// No window of this length carries more requests than the budget. The 20 ms beyond a second
/// absorb the jitter between a grant here and the server's clock, so no wall-clock second at the
/// server holds more than the budget either (costs 2 % of the budget).
pub const WINDOW: Duration = Duration::from_millis(1020);
/// A grant this late still keeps the schedule (the next one is due `1 / rate` after the slot it
/// was due at, not after the late wake-up), so timer granularity costs no throughput; a grant
/// later than this restarts the schedule, so an idle client never saves up a burst.
const LAG: Duration = Duration::from_millis(10);
/// The lowest rate a cut goes to, in requests per second.
pub const MIN_RATE: f64 = 1.0;
/// A 429 cuts the rate to this share of the rate TMDb accepted.
const CUT: f64 = 0.5;
/// At most one cut per this long: the 429s of one overload come together.
const CUT_INTERVAL: Duration = Duration::from_secs(1);
/// The rate rises once per this long without a 429.
const STEP: Duration = Duration::from_secs(1);

/// The allowed rate of a client: additive increase, multiplicative decrease, with a remembered
/// limit (the rate TMDb last accepted) so it climbs back fast to 90 % of it, creeps past it
/// slowly, and climbs fast again once past it by 10 % without a 429 (the limit has lifted):
///
/// * a 429 for a request sent after the last cut, at most once per [`CUT_INTERVAL`]: the limit
///   becomes the requests sent in the second before it minus the refused one (at least 1, at most
///   the rate), and the rate half of that (at least [`MIN_RATE`]);
/// * each [`STEP`] without a cut: below 90 % of the limit +max(1, limit / 4) (capped at 90 %),
///   between 90 % and 110 % of it +1 % of it (at least 0.02), beyond that (or with no limit known)
///   +max(1, rate / 10), the limit forgotten; never above the budget.
///
/// Against a server allowing 5 per second that is 2.5 → 4.5 in 2 s, 4.5 → 5 in 10 s, one 429
/// every ~15 s (about 2 % of requests); when the limit lifts, 5 → 40 in 20–40 s.
#[derive(Debug, Clone)]
pub struct AdaptiveRate {
    budget: f64,
    rate: f64,
    limit: Option<f64>,
    last_cut: Option<Instant>,
    last_step: Instant,
}

impl AdaptiveRate {
    /// Starts at the full budget (at least [`MIN_RATE`]).
    pub fn new(budget: u32, now: Instant) -> Self {
        let budget = f64::from(budget).max(MIN_RATE);
        AdaptiveRate {
            budget,
            rate: budget,
            limit: None,
            last_cut: None,
            last_step: now,
        }
    }

    /// The allowed rate, in requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The rate TMDb accepted at the last cut, while it is remembered.
    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// Applies the rises due by `now`: one per whole [`STEP`] since the last cut or rise.
    pub fn catch_up(&mut self, now: Instant) {
        while now.saturating_duration_since(self.last_step) >= STEP {
            if self.rate >= self.budget {
                self.last_step = now;
                return;
            }
            self.last_step += STEP;
            self.rise();
        }
    }

    fn rise(&mut self) {
        let r = self.rate;
        self.rate = match self.limit {
            Some(limit) if r < 0.9 * limit => (r + (limit / 4.0).max(1.0)).min(0.9 * limit),
            Some(limit) if r < 1.1 * limit => r + (limit / 100.0).max(0.02),
            _ => {
                self.limit = None;
                r + (r / 10.0).max(1.0)
            }
        }
        .min(self.budget);
    }

    /// A 429 arrived at `now` for a request granted at `sent`, after `sent_last_second` requests
    /// went out in the second before `now`. Returns whether the rate was cut.
    pub fn rate_limited(&mut self, sent: Instant, now: Instant, sent_last_second: usize) -> bool {
        if self
            .last_cut
            .is_some_and(|cut| sent < cut || now.saturating_duration_since(cut) < CUT_INTERVAL)
        {
            return false;
        }
        let accepted = (sent_last_second as f64 - 1.0).clamp(MIN_RATE, self.rate.max(MIN_RATE));
        self.limit = Some(accepted);
        self.rate = (accepted * CUT).max(MIN_RATE);
        self.last_cut = Some(now);
        self.last_step = now;
        true
    }
}

/// Paces one client's requests; see the module doc.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<PacerState>,
    /// Held by the one request waiting for the next slot; the others queue behind it in order.
    turn: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct PacerState {
    rate: AdaptiveRate,
    /// The most requests in any [`WINDOW`]: the budget.
    cap: usize,
    /// The time the last grant was due at (the schedule's position).
    last_slot: Option<Instant>,
    paused_until: Option<Instant>,
    /// The last `cap` grants.
    grants: VecDeque<Instant>,
}

impl PacerState {
    /// Grants a request at `now` (returning `now`), or says when one may be due.
    fn try_take(&mut self, now: Instant) -> Result<Instant, Instant> {
        self.rate.catch_up(now);
        let interval = Duration::from_secs_f64(1.0 / self.rate.rate());
        let mut due = self.last_slot.map_or(now, |slot| slot + interval);
        if let Some(pause) = self.paused_until {
            due = due.max(pause);
        }
        if self.grants.len() >= self.cap
            && let Some(oldest) = self.grants.front()
        {
            due = due.max(*oldest + WINDOW);
        }
        if due > now {
            return Err(due);
        }
        self.last_slot = Some(due.max(now.checked_sub(LAG).unwrap_or(now)));
        self.grants.push_back(now);
        while self.grants.len() > self.cap {
            self.grants.pop_front();
        }
        Ok(now)
    }

    fn sent_within(&self, span: Duration, now: Instant) -> usize {
        self.grants
            .iter()
            .rev()
            .take_while(|t| now.saturating_duration_since(**t) < span)
            .count()
    }
}

impl Pacer {
    /// A pacer for `budget` requests per second (at least 1).
    pub fn new(budget: u32) -> Self {
        let now = Instant::now();
        let cap = budget.max(1) as usize;
        Pacer {
            state: Mutex::new(PacerState {
                rate: AdaptiveRate::new(budget, now),
                cap,
                last_slot: None,
                paused_until: None,
                grants: VecDeque::with_capacity(cap.min(4096)),
            }),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PacerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this request's turn, first come first served; returns the time it was granted
    /// (pass it to [`Pacer::rate_limited`] if TMDb answers 429).
    pub async fn acquire(&self) -> Instant {
        let _turn = self.turn.lock().await;
        loop {
            let due = match self.state().try_take(Instant::now()) {
                Ok(granted) => return granted,
                Err(due) => due,
            };
            // Rechecked on waking: a 429 meanwhile may have paused or slowed everything.
            tokio::time::sleep_until(due.into()).await;
        }
    }

    /// TMDb answered 429 to the request granted at `sent`: every request waits `retry_after`
    /// when given, and the rate is cut (see [`AdaptiveRate`]).
    pub fn rate_limited(&self, sent: Instant, retry_after: Option<Duration>) {
        let now = Instant::now();
        let mut state = self.state();
        if let Some(wait) = retry_after {
            let until = now + wait;
            state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        }
        let sent_last_second = state.sent_within(Duration::from_secs(1), now);
        if state.rate.rate_limited(sent, now, sent_last_second) {
            tracing::warn!(
                rate = format!("{:.2}", state.rate.rate()),
                accepted = format!("{:.2}", state.rate.limit().unwrap_or_default()),
                "TMDb answered 429: lowering the request rate"
            );
        }
    }

    /// The allowed rate now, in requests per second.
    pub fn rate(&self) -> f64 {
        let mut state = self.state();
        state.rate.catch_up(Instant::now());
        state.rate.rate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_429_halves_the_accepted_rate_once_per_interval_and_ignores_older_requests() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(40, t0);
        assert_eq!(r.rate(), 40.0);
        // 6 went out in the last second, the 6th was refused: the server accepted 5.
        assert!(r.rate_limited(t0 + secs(0.1), t0 + secs(0.15), 6));
        assert_eq!((r.rate(), r.limit()), (2.5, Some(5.0)));
        // The same overload's other 429s: within the interval, or sent before the cut.
        assert!(!r.rate_limited(t0 + secs(0.12), t0 + secs(0.5), 6));
        assert!(!r.rate_limited(t0 + secs(0.14), t0 + secs(1.5), 6));
        assert_eq!(r.rate(), 2.5);
        // A request sent after the cut, a second later: cut again, never under the floor.
        assert!(r.rate_limited(t0 + secs(1.2), t0 + secs(1.3), 2));
        assert_eq!((r.rate(), r.limit()), (MIN_RATE, Some(1.0)));
    }

    #[test]
    fn the_accepted_rate_is_at_most_the_rate_and_at_least_the_floor() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(10, t0);
        assert!(r.rate_limited(t0, t0, 40));
        assert_eq!(r.limit(), Some(10.0));
        let mut r = AdaptiveRate::new(10, t0);
        assert!(r.rate_limited(t0, t0, 0));
        assert_eq!((r.rate(), r.limit()), (1.0, Some(1.0)));
    }

    #[test]
    fn the_rate_climbs_fast_to_ninety_percent_then_creeps_then_climbs_to_the_budget() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(40, t0);
        r.rate_limited(t0, t0, 21); // accepted 20, rate 10
        let at = |s: f64| t0 + secs(s);
        let table = [
            (0.9, 10.0),  // no whole second yet
            (1.0, 15.0),  // +limit/4
            (2.0, 18.0),  // capped at 90 % of 20
            (3.0, 18.2),  // +1 % of the limit
            (12.0, 20.0), // 9 more creeping steps
            (21.0, 21.8), // 19 creeping steps: 18 + 19 × 0.2
        ];
        for (s, want) in table {
            r.catch_up(at(s));
            assert!(
                (r.rate() - want).abs() < 1e-6,
                "at {s} s: {} (want {want})",
                r.rate()
            );
        }
        assert_eq!(r.limit(), Some(20.0));
        // Past 110 % of the limit without a 429: it has lifted, forgotten, +10 % a second.
        r.catch_up(at(26.0));
        assert!(r.rate() > 26.0, "{}", r.rate());
        assert_eq!(r.limit(), None);
        r.catch_up(at(60.0));
        assert_eq!(r.rate(), 40.0, "never above the budget");
        r.catch_up(at(3600.0));
        assert_eq!(r.rate(), 40.0);
    }

    #[test]
    fn small_limits_rise_by_at_least_a_fiftieth_of_a_request() {
        let t0 = Instant::now();
        let mut r = AdaptiveRate::new(40, t0);
        r.rate_limited(t0, t0, 2); // accepted 1, rate at the floor 1
        r.catch_up(t0 + secs(1.0));
        assert!((r.rate() - 1.02).abs() < 1e-9, "{}", r.rate());
    }

    #[test]
    fn grants_are_spaced_without_burst_and_capped_per_window() {
        let t0 = Instant::now();
        let mut s = PacerState {
            rate: AdaptiveRate::new(4, t0),
            cap: 4,
            last_slot: None,
            paused_until: None,
            grants: VecDeque::new(),
        };
        assert_eq!(s.try_take(t0), Ok(t0));
        // The next is due a quarter second later, not at once.
        assert_eq!(s.try_take(t0 + secs(0.1)), Err(t0 + secs(0.25)));
        // A late wake-up within LAG keeps the schedule.
        assert!(s.try_take(t0 + secs(0.255)).is_ok());
        assert_eq!(s.try_take(t0 + secs(0.4)), Err(t0 + secs(0.5)));
        assert!(s.try_take(t0 + secs(0.5)).is_ok());
        assert!(s.try_take(t0 + secs(0.75)).is_ok());
        // Five grants in one window are refused: the fifth waits for the first plus WINDOW.
        assert_eq!(s.try_take(t0 + secs(1.0)), Err(t0 + WINDOW));
        assert!(s.try_take(t0 + WINDOW).is_ok());
        // After idling, no saved-up burst: one, then the spacing again.
        let later = t0 + secs(10.0);
        assert!(s.try_take(later).is_ok());
        assert_eq!(s.try_take(later), Err(later - LAG + secs(0.25)));
    }

    #[test]
    fn a_pause_holds_every_request() {
        let t0 = Instant::now();
        let mut s = PacerState {
            rate: AdaptiveRate::new(100, t0),
            cap: 100,
            last_slot: None,
            paused_until: Some(t0 + secs(1.0)),
            grants: VecDeque::new(),
        };
        assert_eq!(s.try_take(t0 + secs(0.5)), Err(t0 + secs(1.0)));
        assert!(s.try_take(t0 + secs(1.0)).is_ok());
    }

    #[tokio::test]
    async fn a_shared_pacer_never_exceeds_its_budget_in_any_window() {
        let pacer = std::sync::Arc::new(Pacer::new(50));
        let started = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let p = pacer.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for _ in 0..10 {
                        got.push(p.acquire().await);
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<Instant> = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        let elapsed = started.elapsed();
        // 80 grants at 50/s: about 1.6 s, never a burst.
        assert!(elapsed >= secs(1.5), "{elapsed:?}");
        for w in all.windows(51) {
            assert!(
                w[50] - w[0] >= WINDOW,
                "51 grants within {:?}",
                w[50] - w[0]
            );
        }
        for w in all.windows(2) {
            assert!(w[1] - w[0] >= secs(0.02) - LAG, "{:?}", w[1] - w[0]);
        }
    }
}
