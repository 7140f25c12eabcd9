//! The controller's side of the Sync Health pages: the TmdbSyncs it watches and, per sync, its
//! database and what its resource says ([`crate::plan::facts::sync_facts`]), handed to `crate::web::dashboard` through
//! [`SyncDirectory`]. Reads only: the resources and their secrets, never a write.

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::ResourceExt;

use super::Context;
use crate::api::TmdbSync;
use crate::web::dashboard::{Opening, SyncDirectory};
use crate::web::page::SyncListing;

/// The syncs of a running controller.
pub struct ControllerDirectory {
    ctx: Arc<Context>,
}

impl ControllerDirectory {
    /// The directory over the controller's context (its client, namespace and database pools).
    pub fn new(ctx: Arc<Context>) -> Self {
        ControllerDirectory { ctx }
    }
}

fn listing(sync: &TmdbSync) -> SyncListing {
    let status = sync.status.clone().unwrap_or_default();
    SyncListing {
        namespace: sync.namespace().unwrap_or_default(),
        name: sync.name_any(),
        phase: status
            .phase
            .map_or_else(|| "Pending".to_string(), |p| format!("{p:?}")),
        percent_complete: status.progress.map(|p| p.percent_complete),
        problem: status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == "False")
            .map(|c| c.message.clone()),
    }
}

impl SyncDirectory for ControllerDirectory {
    fn list(&self) -> BoxFuture<'_, Result<Vec<SyncListing>, String>> {
        Box::pin(async move {
            let api =
                super::api::<TmdbSync>(&self.ctx.client, self.ctx.config.namespace.as_deref());
            let mut list: Vec<SyncListing> = api
                .list(&Default::default())
                .await
                .map_err(|e| format!("listing TmdbSyncs: {e}"))?
                .items
                .iter()
                .map(listing)
                .collect();
            list.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            Ok(list)
        })
    }

    fn open<'a>(&'a self, namespace: &'a str, name: &'a str) -> Opening<'a> {
        Box::pin(async move {
            if self
                .ctx
                .config
                .namespace
                .as_deref()
                .is_some_and(|watched| watched != namespace)
            {
                return Ok(None);
            }
            let api = super::api::<TmdbSync>(&self.ctx.client, Some(namespace));
            let Some(sync) = api
                .get_opt(name)
                .await
                .map_err(|e| format!("reading TmdbSync {namespace}/{name}: {e}"))?
            else {
                return Ok(None);
            };
            let url = self
                .ctx
                .secret_value(namespace, &sync.spec.database.url_secret_ref)
                .await
                .map_err(|e| format!("reading the database secret: {e}"))?
                .map_err(|p| format!("the database URL cannot be read: {p}"))?;
            let store = self
                .ctx
                .store(&url)
                .await
                .map_err(|e| format!("the database is not available: {e}"))?;
            Ok(Some((store, crate::plan::facts::sync_facts(&sync))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::enrich::EnrichStage;

    #[test]
    fn facts_carry_pause_disabled_side_jobs_and_failing_conditions() {
        let sync: TmdbSync = serde_json::from_value(serde_json::json!({
            "apiVersion": "tmdbsync.io/v1alpha1",
            "kind": "TmdbSync",
            "metadata": {"name": "cinegraph", "namespace": "media"},
            "spec": {
                "tmdb": {"apiKeySecretRef": {"name": "tmdb", "key": "api-key"}},
                "database": {"urlSecretRef": {"name": "db", "key": "url"}},
                "suspend": true,
                "enrichment": {"personQualityScore": {"enabled": false}},
                "alerts": {"stallAfterHours": 12}
            },
            "status": {
                "phase": "Suspended",
                "nextRuns": {"enrich": "2026-03-08T05:00:00Z"},
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                     "lastTransitionTime": "2026-03-07T00:00:00Z"},
                    {"type": "CredentialsValid", "status": "False", "reason": "AuthFailed",
                     "message": "TMDb refused the API key", "lastTransitionTime": "2026-03-07T00:00:00Z"}
                ]
            }
        }))
        .unwrap();
        let f = crate::plan::facts::sync_facts(&sync);
        assert_eq!(f.resource, Some(("media".into(), "cinegraph".into())));
        assert_eq!(f.phase.as_deref(), Some("Suspended"));
        assert!(f.suspended);
        // OMDb is off by default, PQS turned off here; collaborations stay on.
        assert_eq!(f.disabled_side_jobs, [EnrichStage::Omdb, EnrichStage::Pqs]);
        assert_eq!(f.next_enrich_run.as_deref(), Some("2026-03-08T05:00:00Z"));
        assert_eq!(f.thresholds.stall_after_hours, 12.0);
        assert_eq!(f.problems.len(), 1);
        assert_eq!(f.problems[0].condition, "CredentialsValid");
        assert_eq!(listing(&sync).phase, "Suspended");
    }
}
