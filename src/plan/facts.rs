//! What a TmdbSync resource tells the Sync Health (its name, phase, pause, disabled side jobs,
//! next enrichment run, alert thresholds, failing conditions): a pure reading of the resource,
//! shared by the controller's pages and `kubectl tmdbsync`.

use crate::api::TmdbSync;
use crate::plan::alerts::{AlertThresholds, ConditionProblem};
use crate::plan::enrich::EnrichStage;
use crate::plan::health::SyncFacts;

/// What the TmdbSync says that the Sync Health shows: its name, phase, pause, disabled side
/// jobs, next enrichment run, alert thresholds and failing conditions.
pub fn sync_facts(sync: &TmdbSync) -> SyncFacts {
    let spec = &sync.spec;
    let status = sync.status.clone().unwrap_or_default();
    let enrichment = &spec.enrichment;
    let disabled_side_jobs = [
        (EnrichStage::Omdb, enrichment.omdb.enabled),
        (
            EnrichStage::Collaborations,
            enrichment.collaborations.enabled,
        ),
        (EnrichStage::Pqs, enrichment.person_quality_score.enabled),
    ]
    .into_iter()
    .filter(|(_, enabled)| !enabled)
    .map(|(stage, _)| stage)
    .collect();
    let problems = status
        .conditions
        .iter()
        .filter(|c| matches!(c.type_.as_str(), "Ready" | "CredentialsValid") && c.status == "False")
        .map(|c| ConditionProblem {
            condition: c.type_.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
        .collect();
    SyncFacts {
        resource: Some((
            sync.metadata.namespace.clone().unwrap_or_default(),
            sync.metadata.name.clone().unwrap_or_default(),
        )),
        phase: Some(
            status
                .phase
                .map_or_else(|| "Pending".to_string(), |p| format!("{p:?}")),
        ),
        suspended: spec.suspend,
        disabled_side_jobs,
        next_enrich_run: status.next_runs.and_then(|n| n.enrich),
        thresholds: AlertThresholds {
            stall_after_hours: spec.alerts.stall_after_hours.into(),
            error_rate_percent: spec.alerts.error_rate_percent,
            low_rate_fraction: spec.alerts.low_rate_fraction,
        },
        problems,
    }
}
