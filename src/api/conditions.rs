//! Kubernetes conditions, merged per type: each type keeps its own `lastTransitionTime`, which
//! changes only when that type's status flips.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition's status, as the Kubernetes conventions spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    /// Not decided yet (a run's `Succeeded` while it is still going).
    Unknown,
}

impl ConditionStatus {
    /// `True`, `False` or `Unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(b: bool) -> Self {
        if b {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// A condition as a reconcile wants it; the transition time is filled in by [`merge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: &'static str,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

impl DesiredCondition {
    /// A condition of `type_` with `status` (a `bool` or a [`ConditionStatus`]), `reason` and
    /// `message`.
    pub fn new(
        type_: &'static str,
        status: impl Into<ConditionStatus>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        DesiredCondition {
            type_,
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The conditions to write, merged per type:
/// * a desired type takes its status, reason, message and `generation`; its
///   `lastTransitionTime` stays the previous one of that type unless its status flipped (then `now`);
/// * a previous type not desired this time is kept exactly as it was (its own transition time and
///   the generation it was last evaluated at), so a reconcile that could look at one condition
///   only (an unusable spec, an unreachable database) does not erase the others.
///
/// Sorted by type for stable output (so an unchanged status compares equal).
pub fn merge(
    previous: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    let kept = previous
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned();
    let updated = desired.iter().map(|d| {
        let status = d.status.as_str();
        let last = find(previous, d.type_)
            .filter(|c| c.status == status)
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
    });
    let mut out: Vec<Condition> = kept.chain(updated).collect();
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
    use ConditionStatus::{False, True, Unknown};
    use chrono::TimeZone;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap()
    }

    fn cond(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        since: u32,
        gen_: i64,
    ) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.as_str().into(),
            reason: reason.into(),
            message: format!("{type_} {reason}"),
            last_transition_time: to_time(day(since)),
            observed_generation: Some(gen_),
        }
    }

    fn want(type_: &'static str, status: ConditionStatus, reason: &str) -> DesiredCondition {
        DesiredCondition::new(type_, status, reason, format!("{type_} {reason}"))
    }

    /// `(type, status, reason, lastTransitionTime day, observedGeneration)` of each condition.
    fn summary(c: &[Condition]) -> Vec<(String, String, String, Time, Option<i64>)> {
        c.iter()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.last_transition_time.clone(),
                    c.observed_generation,
                )
            })
            .collect()
    }

    #[test]
    fn merge_cases() {
        // Every case merges at day 9, generation 3.
        type Row = (&'static str, ConditionStatus, &'static str, u32, i64);
        type Case = (
            &'static str,
            Vec<Condition>,
            Vec<DesiredCondition>,
            Vec<Row>,
        );
        let cases: Vec<Case> = vec![
            (
                "first reconcile → every condition transitions now",
                vec![],
                vec![
                    want("Ready", True, "Reconciled"),
                    want("Stalled", False, "RecentSuccess"),
                ],
                vec![
                    ("Ready", True, "Reconciled", 9, 3),
                    ("Stalled", False, "RecentSuccess", 9, 3),
                ],
            ),
            (
                "same status, new reason → transition time kept, reason and generation updated",
                vec![cond("Ready", False, "InvalidSpec", 2, 1)],
                vec![want("Ready", False, "SecretNotFound")],
                vec![("Ready", False, "SecretNotFound", 2, 3)],
            ),
            (
                "status flips → transition time now",
                vec![cond("Ready", False, "InvalidSpec", 2, 1)],
                vec![want("Ready", True, "Reconciled")],
                vec![("Ready", True, "Reconciled", 9, 3)],
            ),
            (
                "only Ready desired → the other types keep their own times and generations",
                vec![
                    cond("Ready", True, "Reconciled", 1, 2),
                    cond("Stalled", True, "NoRecentSuccess", 4, 2),
                    cond("HighErrorRate", False, "ErrorRateOk", 5, 2),
                ],
                vec![want("Ready", False, "DatabaseUnavailable")],
                vec![
                    ("HighErrorRate", False, "ErrorRateOk", 5, 2),
                    ("Ready", False, "DatabaseUnavailable", 9, 3),
                    ("Stalled", True, "NoRecentSuccess", 4, 2),
                ],
            ),
            (
                "each type flips on its own",
                vec![
                    cond("Ready", True, "Reconciled", 1, 2),
                    cond("Stalled", True, "NoRecentSuccess", 4, 2),
                ],
                vec![
                    want("Ready", True, "Reconciled"),
                    want("Stalled", False, "RecentSuccess"),
                ],
                vec![
                    ("Ready", True, "Reconciled", 1, 3),
                    ("Stalled", False, "RecentSuccess", 9, 3),
                ],
            ),
            (
                "Unknown → True is a transition",
                vec![cond("Succeeded", Unknown, "NotFinished", 3, 1)],
                vec![want("Succeeded", True, "Completed")],
                vec![("Succeeded", True, "Completed", 9, 3)],
            ),
        ];
        for (case, previous, desired, rows) in cases {
            let got = merge(&previous, &desired, Some(3), day(9));
            let expected: Vec<_> = rows
                .into_iter()
                .map(|(t, s, r, since, g)| {
                    (
                        t.to_string(),
                        s.as_str().to_string(),
                        r.to_string(),
                        to_time(day(since)),
                        Some(g),
                    )
                })
                .collect();
            assert_eq!(summary(&got), expected, "{case}");
        }
    }

    #[test]
    fn merging_the_same_conditions_again_changes_nothing() {
        let desired = [
            want("Ready", True, "Reconciled"),
            want("Stalled", False, "RecentSuccess"),
        ];
        let first = merge(&[], &desired, Some(1), day(1));
        assert_eq!(merge(&first, &desired, Some(1), day(5)), first);
    }
}
