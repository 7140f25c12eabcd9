//! Kubernetes conditions: `lastTransitionTime` changes only when the status flips.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition as a reconcile wants it; the transition time is filled in by [`merge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl DesiredCondition {
    /// A condition of `type_` with `status`, `reason` and `message`.
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        DesiredCondition {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The conditions to write: the desired ones, keeping each previous `lastTransitionTime` unless its
/// status changed (then `now`). Types not desired are dropped. Sorted by type for stable output.
pub fn merge(
    previous: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = desired
        .iter()
        .map(|d| {
            let status = if d.status { "True" } else { "False" };
            let last = previous
                .iter()
                .find(|c| c.type_ == d.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| to_time(now));
            Condition {
                type_: d.type_.to_string(),
                status: status.to_string(),
                reason: d.reason.clone(),
                message: d.message.clone(),
                last_transition_time: last,
                observed_generation: generation,
            }
        })
        .collect();
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// A chrono time as the API's `Time` (whole seconds, as the API server stores it).
pub fn to_time(t: DateTime<Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(t.timestamp()).expect("time in range"))
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let t1 = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let first = merge(
            &[],
            &[DesiredCondition::new("Ready", true, "Reconciled", "ok")],
            Some(1),
            t0,
        );
        assert_eq!(first[0].last_transition_time, to_time(t0));
        let same = merge(
            &first,
            &[DesiredCondition::new(
                "Ready",
                true,
                "Reconciled",
                "still ok",
            )],
            Some(2),
            t1,
        );
        assert_eq!(same[0].last_transition_time, to_time(t0));
        assert_eq!(same[0].message, "still ok");
        let flipped = merge(
            &same,
            &[DesiredCondition::new(
                "Ready",
                false,
                "InvalidSpec",
                "bad cron",
            )],
            Some(2),
            t1,
        );
        assert_eq!(flipped[0].last_transition_time, to_time(t1));
        assert_eq!(flipped[0].status, "False");
    }
}
