//! The TmdbSync reconciler: validates the spec and its secrets, creates scheduled SyncRuns (CronJob
//! semantics), prunes history, and mirrors progress, last/next runs and conditions into status.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};

use super::apply::{Part, server_side_apply};
use super::sync_run::SCHEDULED_AT;
use super::{Context, Error};
use crate::api::sync_run::{SyncRef, SyncRunSpec, Trigger};
use crate::api::{FIELD_MANAGER, SyncRun, TmdbSync, TmdbSyncStatus};
use crate::plan::RunType;
use crate::plan::health::SyncHealth;
use crate::plan::schedule::run_name;
use crate::plan::sync::{self as plan, Problem, RunView};

/// Longest name a TmdbSync may have: run and Job names (`<sync>-catalog-<minute>`) must fit 63.
pub const MAX_NAME: usize = plan::MAX_NAME;

/// Reconciles one TmdbSync: reads the spec's secrets, the database's Sync Health and the runs,
/// lets [`plan`] decide, and applies the decision (runs created and pruned, status, events).
pub async fn reconcile(sync: Arc<TmdbSync>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = Utc::now();
    let previous = sync.status.clone().unwrap_or_default();
    let generation = sync.metadata.generation;
    let (schedules, database_url) = match usable_spec(&ctx, &sync).await? {
        Ok(usable) => usable,
        Err(problems) => {
            let outcome = plan::unusable(&previous, &problems, generation, now);
            apply(&ctx, &sync, &previous, outcome).await?;
            // Secrets are not watched: look again in a while (no hot loop, no crash loop).
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };
    let store = match ctx.store(&database_url).await {
        Ok(s) => s,
        Err(e) => {
            // The URL may have been rotated: read the Secrets again on the retry.
            ctx.forget_secrets(&sync.namespace().unwrap_or_default());
            let outcome = plan::database_unavailable(&previous, &e.to_string(), generation, now);
            apply(&ctx, &sync, &previous, outcome).await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };
    let reset = handle_reset(&ctx, &sync, &previous, &store, now).await?;
    let health = observe_health(&ctx, &sync, &store)
        .await
        .inspect_err(|_| ctx.forget_secrets(&sync.namespace().unwrap_or_default()))?;
    let mut runs = list_runs(&ctx, &sync).await?;
    let created = sync.creation_timestamp().map_or(now, |t| from_k8s(&t.0));
    let due = plan::due_runs(
        &sync.spec,
        &schedules,
        &previous.last_schedule_times.clone().unwrap_or_default(),
        &runs,
        created,
        now,
        health.bulk_complete(),
    );
    for (run_type, at) in &due.create {
        if let Some(view) = create_run(&ctx, &sync, *run_type, *at).await? {
            runs.push(view);
        }
    }
    prune(&ctx, &sync, &plan::runs_to_prune(&sync.spec.history, &runs)).await?;
    let mut outcome = plan::reconciled(plan::StatusInputs {
        spec: &sync.spec,
        schedules: &schedules,
        previous: &previous,
        runs: &runs,
        health: &health,
        last_schedule_times: due.last_schedule_times,
        created,
        now,
        generation,
    });
    if reset.is_some() {
        outcome.status.last_handled_reset_at = reset;
    }
    let wake = plan::wake(outcome.status.next_runs.as_ref().expect("set"), now);
    apply(&ctx, &sync, &previous, outcome).await?;
    Ok(Action::requeue(wake))
}

/// Carries out a requested reset ([`crate::plan::reset`]) once, records it as an Event and
/// returns its token for `status.lastHandledResetAt` (`None`: nothing pending).
async fn handle_reset(
    ctx: &Context,
    sync: &TmdbSync,
    previous: &TmdbSyncStatus,
    store: &crate::store::Store,
    now: DateTime<Utc>,
) -> Result<Option<String>, Error> {
    use crate::plan::reset::{self, ResetKind};
    let a = sync.annotations();
    let Some((token, kind)) = reset::pending(
        a.get(reset::RESET_REQUESTED_AT).map(String::as_str),
        a.get(reset::RESET_WHAT).map(String::as_str),
        previous.last_handled_reset_at.as_deref(),
    ) else {
        return Ok(None);
    };
    let (warning, reason, note) = match kind {
        Err(message) => (true, "ResetRefused", message),
        Ok(ResetKind::Bulk) => {
            let total =
                crate::plan::pages::total_pages(crate::store::catalog::max_ordinal(store).await?);
            if total == 0 {
                (
                    true,
                    "ResetRefused",
                    "bulk reset: no catalog loaded yet (run a Catalog run first)".to_string(),
                )
            } else {
                let cleared = crate::store::pages::clear_bulk_pages(store).await?;
                let name = format!("{}-bulk-r{}", sync.name_any(), now.format("%Y%m%d%H%M"));
                let mut run = scheduled_run(sync, RunType::Bulk, now);
                run.metadata.name = Some(name.clone());
                run.metadata.annotations = None;
                run.spec.trigger = Trigger::Manual;
                run.spec.pages = Some(crate::api::sync_run::PageRangeSpec { from: 1, to: total });
                let api: Api<SyncRun> =
                    Api::namespaced(ctx.client.clone(), &sync.namespace().unwrap_or_default());
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                match api.create(&params, &run).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
                (
                    false,
                    "ResetBulk",
                    format!(
                        "bulk reset: cleared {cleared} page checkpoints; SyncRun {name} re-imports pages 1-{total}, refetching stored movies"
                    ),
                )
            }
        }
        Ok(ResetKind::DeltaSince(day)) => {
            let n = crate::store::pages::forget_delta_days(store, day).await?;
            (
                false,
                "ResetDelta",
                format!(
                    "delta reset: forgot {n} delta days from {day} on; the next Delta run replays the changes feed from {day}"
                ),
            )
        }
    };
    tracing::info!(sync = %sync.name_any(), reason, "{note}");
    ctx.event(&sync.object_ref(&()), warning, reason, "Reset", note)
        .await;
    Ok(Some(token))
}

/// The schedules and the database URL of a usable spec, or every problem found: what the schema
/// cannot say (checked by [`plan::validate`]), then the referenced secrets.
async fn usable_spec(
    ctx: &Context,
    sync: &TmdbSync,
) -> Result<Result<(plan::Schedules, String), Vec<Problem>>, Error> {
    let schedules = match plan::validate(&sync.spec, &sync.name_any()) {
        Ok(s) => s,
        Err(problems) => return Ok(Err(problems)),
    };
    let ns = sync.namespace().unwrap_or_default();
    let mut problems = Vec::new();
    if let Err(p) = ctx
        .secret_value(&ns, &sync.spec.tmdb.api_key_secret_ref)
        .await?
    {
        problems.push(Problem::new("SecretNotFound", format!("TMDb API key: {p}")));
    }
    let url = match ctx
        .secret_value(&ns, &sync.spec.database.url_secret_ref)
        .await?
    {
        Ok(url) => Some(url),
        Err(p) => {
            problems.push(Problem::new("SecretNotFound", format!("database URL: {p}")));
            None
        }
    };
    let omdb = &sync.spec.enrichment.omdb;
    match (omdb.enabled, &omdb.api_key_secret_ref) {
        (true, None) => problems.push(Problem::new(
            "InvalidSpec",
            "enrichment.omdb is enabled without apiKeySecretRef",
        )),
        (true, Some(key)) => {
            if let Err(p) = ctx.secret_value(&ns, key).await? {
                problems.push(Problem::new("SecretNotFound", format!("OMDb API key: {p}")));
            }
        }
        _ => {}
    }
    Ok(match url {
        Some(url) if problems.is_empty() => Ok((schedules, url)),
        _ => Err(problems),
    })
}

/// The Sync Health from Postgres, also exported as this TmdbSync's metrics; records whether the
/// sync is paused (the history marks paused days).
async fn observe_health(
    ctx: &Context,
    sync: &TmdbSync,
    store: &crate::store::Store,
) -> Result<SyncHealth, Error> {
    let inputs = crate::store::health::health_inputs(store, 0).await?;
    // TMDb's day, as the runs saw it: the simulator's and the machine's days never mix.
    let health = SyncHealth::compute(&inputs, inputs.today());
    crate::store::history::record_suspension(store, sync.spec.suspend).await?;
    let totals = crate::store::health::metric_totals(store).await?;
    let side_jobs: Vec<(String, f64)> = health
        .side_jobs
        .stages
        .iter()
        .map(|j| (j.stage.as_str().to_string(), j.percent / 100.0))
        .collect();
    let ns = sync.namespace().unwrap_or_default();
    ctx.metrics
        .observe_sync(&ns, &sync.name_any(), &health, &totals, &side_jobs);
    Ok(health)
}

/// This TmdbSync's runs, as the plan sees them: from the SyncRun cache, or listed by label (see
/// [`super::runs`]).
async fn list_runs(ctx: &Context, sync: &TmdbSync) -> Result<Vec<RunView>, Error> {
    let (ns, name) = (sync.namespace().unwrap_or_default(), sync.name_any());
    if let Some(cache) = ctx.run_cache()
        && let Some(runs) = cache.of_sync(&ns, &name).await
    {
        return Ok(runs);
    }
    let api: Api<SyncRun> = Api::namespaced(ctx.client.clone(), &ns);
    Ok(super::runs::of_sync(&api, &name)
        .await?
        .iter()
        .map(super::runs::view)
        .collect())
}

/// Creates the scheduled run (AlreadyExists is success: a restart never doubles a run).
async fn create_run(
    ctx: &Context,
    sync: &TmdbSync,
    run_type: RunType,
    at: chrono::DateTime<Utc>,
) -> Result<Option<RunView>, Error> {
    let api: Api<SyncRun> =
        Api::namespaced(ctx.client.clone(), &sync.namespace().unwrap_or_default());
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api
        .create(&params, &scheduled_run(sync, run_type, at))
        .await
    {
        Ok(r) => {
            tracing::info!(sync = %sync.name_any(), run = %r.name_any(), "scheduled run created");
            Ok(Some(super::runs::view(&r)))
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes the status (when it changed) and the event the plan asked for.
async fn apply(
    ctx: &Context,
    sync: &TmdbSync,
    previous: &TmdbSyncStatus,
    outcome: plan::Outcome,
) -> Result<(), Error> {
    patch_status(ctx, sync, previous, outcome.status).await?;
    if let Some(e) = outcome.event {
        ctx.event(
            &sync.object_ref(&()),
            e.warning,
            &e.reason,
            e.action,
            e.message,
        )
        .await;
    }
    Ok(())
}

fn from_k8s(t: &k8s_openapi::jiff::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.as_second(), 0).unwrap_or_default()
}

fn scheduled_run(sync: &TmdbSync, run_type: RunType, at: DateTime<Utc>) -> SyncRun {
    let name = run_name(&sync.name_any(), run_type, at);
    let mut run = SyncRun::new(
        &name,
        SyncRunSpec {
            sync_ref: SyncRef {
                name: sync.name_any(),
            },
            run_type: run_type.into(),
            trigger: Trigger::Scheduled,
            pages: None,
            window: None,
            stages: None,
            parallelism: None,
        },
    );
    run.metadata.namespace = sync.namespace();
    run.metadata.owner_references =
        Some(vec![sync.controller_owner_ref(&()).expect("sync has uid")]);
    run.metadata.labels = Some(
        [
            (super::job::LABEL_SYNC.to_string(), sync.name_any()),
            (
                super::job::LABEL_TYPE.to_string(),
                run_type.as_str().to_string(),
            ),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "tmdbsync".to_string(),
            ),
        ]
        .into(),
    );
    run.metadata.annotations = Some([(SCHEDULED_AT.to_string(), plan::rfc3339(at))].into());
    run
}

/// Deletes the runs the plan prunes (their Jobs go with them).
async fn prune(ctx: &Context, sync: &TmdbSync, names: &[String]) -> Result<(), Error> {
    let api: Api<SyncRun> =
        Api::namespaced(ctx.client.clone(), &sync.namespace().unwrap_or_default());
    for name in names {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => tracing::info!(sync = %sync.name_any(), run = %name, "pruned finished run"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn patch_status(
    ctx: &Context,
    sync: &TmdbSync,
    current: &TmdbSyncStatus,
    next: TmdbSyncStatus,
) -> Result<(), Error> {
    if &next == current {
        return Ok(());
    }
    server_side_apply(&ctx.client, sync, Part::Status, next).await?;
    Ok(())
}
