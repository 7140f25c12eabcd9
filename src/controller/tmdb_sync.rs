//! The TmdbSync reconciler: validates the spec and its secrets, creates scheduled SyncRuns (CronJob
//! semantics), prunes history, and mirrors progress, last/next runs and conditions into status.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::job::enabled_enrich_stages;
use super::sync_run::SCHEDULED_AT;
use super::{Context, Error};
use crate::api::conditions::{DesiredCondition, merge};
use crate::api::sync_run::{RunKind, SyncRef, SyncRunSpec, Trigger};
use crate::api::tmdb_sync::{
    DeltaStart, LastRun, LastRuns, NextRuns, ProgressStatus, SideJobStatus,
};
use crate::api::{FIELD_MANAGER, RunPhase, SyncPhase, SyncRun, TmdbSync, TmdbSyncStatus};
use crate::plan::RunType;
use crate::plan::health::SyncHealth;
use crate::plan::schedule::{Schedule, run_name};
use crate::plan::status::{self as decide, Phase, PhaseInputs};

/// Longest name a TmdbSync may have: run and Job names (`<sync>-catalog-<minute>`) must fit 63.
pub const MAX_NAME: usize = 42;

/// Reconciles one TmdbSync.
pub async fn reconcile(sync: Arc<TmdbSync>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = sync.namespace().unwrap_or_default();
    let name = sync.name_any();
    let now = Utc::now();
    let previous = sync.status.clone().unwrap_or_default();

    // What cannot be said in the schema: schedules, time zone, name length, secrets.
    let mut problems: Vec<(&str, String)> = Vec::new();
    let tz = &sync.spec.time_zone;
    let parse = |expr: &str| Schedule::parse(expr, tz);
    let bulk_schedule = parse(&sync.spec.bulk.schedule).map_err(|e| e.to_string());
    let delta_schedule = parse(&sync.spec.delta.schedule).map_err(|e| e.to_string());
    let enrich_schedule = parse(&sync.spec.enrichment.schedule).map_err(|e| e.to_string());
    for s in [&bulk_schedule, &delta_schedule, &enrich_schedule] {
        if let Err(e) = s {
            problems.push(("InvalidSpec", e.clone()));
        }
    }
    if name.len() > MAX_NAME {
        problems.push((
            "InvalidSpec",
            format!("the name must be at most {MAX_NAME} characters (run names must fit 63)"),
        ));
    }
    if sync.spec.bulk.source == crate::api::tmdb_sync::CatalogSource::Discover {
        // Said plainly rather than silently using the export: the discover walk is not built yet.
        problems.push((
            "InvalidSpec",
            "bulk.source Discover is not supported yet; use Export (TMDb's daily ID export)".into(),
        ));
    }
    let mut database_url = None;
    if problems.is_empty() {
        match ctx
            .secret_value(&ns, &sync.spec.tmdb.api_key_secret_ref)
            .await?
        {
            Ok(_) => {}
            Err(p) => problems.push(("SecretNotFound", format!("TMDb API key: {p}"))),
        }
        match ctx
            .secret_value(&ns, &sync.spec.database.url_secret_ref)
            .await?
        {
            Ok(url) => database_url = Some(url),
            Err(p) => problems.push(("SecretNotFound", format!("database URL: {p}"))),
        }
        let omdb = &sync.spec.enrichment.omdb;
        match (omdb.enabled, &omdb.api_key_secret_ref) {
            (true, None) => problems.push((
                "InvalidSpec",
                "enrichment.omdb is enabled without apiKeySecretRef".into(),
            )),
            (true, Some(key)) => {
                if let Err(p) = ctx.secret_value(&ns, key).await? {
                    problems.push(("SecretNotFound", format!("OMDb API key: {p}")));
                }
            }
            _ => {}
        }
    }
    if let Some((reason, _)) = problems.first() {
        let message = problems
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let conditions = vec![DesiredCondition::new(
            "Ready",
            false,
            *reason,
            message.clone(),
        )];
        let next = TmdbSyncStatus {
            phase: Some(SyncPhase::Degraded),
            conditions: merge(
                &previous.conditions,
                &conditions,
                sync.metadata.generation,
                now,
            ),
            ..previous.clone()
        };
        let changed = ready_changed(&previous, false, reason);
        patch_status(&ctx, &sync, &previous, next).await?;
        if changed {
            ctx.event(&sync.object_ref(&()), true, reason, "Validate", message)
                .await;
        }
        // Secrets are not watched: look again in a while (no hot loop, no crash loop).
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    let (bulk_schedule, delta_schedule, enrich_schedule) = (
        bulk_schedule.expect("valid"),
        delta_schedule.expect("valid"),
        enrich_schedule.expect("valid"),
    );
    let enrich_enabled = !enabled_enrich_stages(&sync.spec.enrichment).is_empty();
    let store = match ctx.store(database_url.as_deref().expect("url")).await {
        Ok(s) => s,
        Err(e) => {
            let conditions = vec![DesiredCondition::new(
                "Ready",
                false,
                "DatabaseUnavailable",
                e.to_string(),
            )];
            let next = TmdbSyncStatus {
                conditions: merge(
                    &previous.conditions,
                    &conditions,
                    sync.metadata.generation,
                    now,
                ),
                ..previous.clone()
            };
            let changed = ready_changed(&previous, false, "DatabaseUnavailable");
            patch_status(&ctx, &sync, &previous, next).await?;
            if changed {
                ctx.event(
                    &sync.object_ref(&()),
                    true,
                    "DatabaseUnavailable",
                    "Connect",
                    e.to_string(),
                )
                .await;
            }
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };
    let inputs = crate::store::health::health_inputs(&store, 0).await?;
    let health = SyncHealth::compute(&inputs, now.date_naive());
    let totals = crate::store::health::metric_totals(&store).await?;
    let side_jobs: Vec<(String, f64)> = health
        .side_jobs
        .stages
        .iter()
        .map(|j| (j.stage.as_str().to_string(), j.percent / 100.0))
        .collect();
    ctx.metrics
        .observe_sync(&ns, &name, &health, &totals, &side_jobs);

    let runs_api: Api<SyncRun> = Api::namespaced(ctx.client.clone(), &ns);
    let mut runs: Vec<SyncRun> = runs_api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|r| r.spec.sync_ref.name == name)
        .collect();

    // Schedule: the latest due time since the last one, per schedule (caught up at most once).
    let created = sync.creation_timestamp().map_or(now, |t| from_k8s(&t.0));
    let mut last_scheduled = previous.last_schedule_times.clone().unwrap_or_default();
    if !sync.spec.suspend {
        let plans: [(bool, &Schedule, &[RunType], &mut Option<String>); 3] = [
            (
                sync.spec.bulk.enabled,
                &bulk_schedule,
                &[RunType::Catalog, RunType::Bulk],
                &mut last_scheduled.bulk,
            ),
            (
                sync.spec.delta.enabled
                    && (sync.spec.delta.start_when == DeltaStart::Always || health.bulk_complete()),
                &delta_schedule,
                &[RunType::Delta],
                &mut last_scheduled.delta,
            ),
            (
                enrich_enabled,
                &enrich_schedule,
                &[RunType::Enrich],
                &mut last_scheduled.enrich,
            ),
        ];
        for (enabled, schedule, types, last) in plans {
            if !enabled {
                continue;
            }
            let after = last_time(last.as_deref(), &runs, types, created);
            if let Some(due) = schedule.latest_due(after, now) {
                for t in types {
                    let run = scheduled_run(&sync, *t, due);
                    match runs_api
                        .create(
                            &PostParams {
                                field_manager: Some(FIELD_MANAGER.into()),
                                ..Default::default()
                            },
                            &run,
                        )
                        .await
                    {
                        Ok(r) => {
                            tracing::info!(sync = %name, run = %r.name_any(), "scheduled run created");
                            runs.push(r);
                        }
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                *last = Some(rfc3339(due));
            }
        }
    }
    prune_history(&ctx, &sync, &runs).await?;

    // Status.
    let last_runs = last_runs(&runs);
    let latest_tmdb_run = runs
        .iter()
        .filter(|r| r.spec.run_type != RunKind::Enrich)
        .filter(|r| {
            r.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(RunPhase::is_finished)
        })
        .max_by_key(|r| r.status.as_ref().and_then(|s| s.completed_at.clone()));
    let credentials_refused = latest_tmdb_run
        .and_then(|r| r.status.as_ref())
        .is_some_and(|s| s.reason.as_deref() == Some("AuthFailed"));
    let phase = decide::phase(PhaseInputs {
        spec_usable: true,
        suspended: sync.spec.suspend,
        catalog_loaded: health.tmdb_total > 0,
        bulk_complete: health.bulk_complete(),
        credentials_refused,
    });
    let since_success = [&last_runs.bulk, &last_runs.delta]
        .into_iter()
        .flatten()
        .filter(|r| r.phase == RunPhase::Succeeded)
        .filter_map(|r| r.completed_at.as_deref().and_then(parse_time))
        .max()
        .map(|t| (now - t).num_seconds() as f64 / 3600.0);
    let age_hours = (now - created).num_seconds() as f64 / 3600.0;
    let alerts = &sync.spec.alerts;
    let stalled = decide::stalled(since_success, age_hours, alerts.stall_after_hours as f64);
    let error_rate = latest_tmdb_run
        .and_then(|r| r.status.as_ref())
        .map_or(0.0, |s| {
            decide::error_rate_percent(
                s.movies_imported.into(),
                s.movies_updated.into(),
                s.errors.into(),
            )
        });
    let low_rate = !health.bulk_complete()
        && decide::low_rate(
            health.today_rate,
            health.daily_rate,
            alerts.low_rate_fraction,
        );
    let desired = vec![
        DesiredCondition::new(
            "Ready",
            true,
            "Reconciled",
            "spec, secrets and database are usable",
        ),
        if credentials_refused {
            DesiredCondition::new(
                "CredentialsValid",
                false,
                "AuthFailed",
                "TMDb refused the API key in the latest run",
            )
        } else {
            DesiredCondition::new(
                "CredentialsValid",
                true,
                "Accepted",
                "no run was refused by TMDb",
            )
        },
        DesiredCondition::new(
            "Stalled",
            stalled,
            if stalled {
                "NoRecentSuccess"
            } else {
                "RecentSuccess"
            },
            format!(
                "{} successful bulk or delta run within {} hours",
                if stalled { "no" } else { "a" },
                alerts.stall_after_hours
            ),
        ),
        DesiredCondition::new(
            "HighErrorRate",
            error_rate > alerts.error_rate_percent,
            if error_rate > alerts.error_rate_percent {
                "ErrorRateAboveThreshold"
            } else {
                "ErrorRateOk"
            },
            format!(
                "latest run error rate {error_rate:.1}% (threshold {}%)",
                alerts.error_rate_percent
            ),
        ),
        DesiredCondition::new(
            "LowImportRate",
            low_rate,
            if low_rate { "BelowAverage" } else { "RateOk" },
            format!(
                "today {} vs 7-day average {:.0} movies/day",
                health.today_rate, health.daily_rate
            ),
        ),
    ];
    let next_runs = NextRuns {
        catalog: bulk_schedule
            .next_after(now)
            .filter(|_| sync.spec.bulk.enabled)
            .map(rfc3339),
        bulk: bulk_schedule
            .next_after(now)
            .filter(|_| sync.spec.bulk.enabled)
            .map(rfc3339),
        delta: delta_schedule
            .next_after(now)
            .filter(|_| sync.spec.delta.enabled)
            .map(rfc3339),
        enrich: enrich_schedule
            .next_after(now)
            .filter(|_| enrich_enabled)
            .map(rfc3339),
    };
    let next = TmdbSyncStatus {
        observed_generation: sync.metadata.generation,
        phase: Some(match phase {
            Phase::Pending => SyncPhase::Pending,
            Phase::Bootstrapping => SyncPhase::Bootstrapping,
            Phase::Maintaining => SyncPhase::Maintaining,
            Phase::Suspended => SyncPhase::Suspended,
            Phase::Degraded => SyncPhase::Degraded,
        }),
        progress: Some(ProgressStatus {
            tmdb_total: health.tmdb_total,
            imported: health.imported,
            not_served: health.not_served,
            remaining: health.remaining,
            percent_complete: health.percent_complete,
            total_pages: health.total_pages,
            last_page_processed: health.last_page_processed,
            daily_rate: health.daily_rate,
            estimated_days_remaining: health.estimated_days_remaining,
            estimated_completion: health.estimated_completion.map(|d| d.to_string()),
        }),
        last_runs: Some(last_runs),
        next_runs: Some(next_runs.clone()),
        last_schedule_times: Some(last_scheduled),
        side_jobs: health
            .side_jobs
            .stages
            .iter()
            .map(|j| SideJobStatus {
                stage: j.stage.as_str().into(),
                completed: j.done,
                total: j.total,
                percent: j.percent,
            })
            .collect(),
        conditions: merge(
            &previous.conditions,
            &desired,
            sync.metadata.generation,
            now,
        ),
    };
    let recovered = ready_changed(&previous, true, "Reconciled") && !previous.conditions.is_empty();
    patch_status(&ctx, &sync, &previous, next).await?;
    if recovered {
        ctx.event(
            &sync.object_ref(&()),
            false,
            "Reconciled",
            "Validate",
            "spec, secrets and database are usable".into(),
        )
        .await;
    }
    // Wake at the next due time (the earliest of the schedules), and at least every 5 minutes.
    let wake = [
        next_runs.bulk.as_deref(),
        next_runs.delta.as_deref(),
        next_runs.enrich.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter_map(parse_time)
    .min()
    .map_or(Duration::from_secs(300), |t| {
        Duration::from_secs(((t - now).num_seconds().max(0) as u64 + 1).min(300))
    });
    Ok(Action::requeue(wake))
}

fn ready_changed(previous: &TmdbSyncStatus, status: bool, reason: &str) -> bool {
    let want = if status { "True" } else { "False" };
    crate::api::conditions::find(&previous.conditions, "Ready")
        .is_none_or(|c| c.status != want || c.reason != reason)
}

fn from_k8s(t: &k8s_openapi::jiff::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.as_second(), 0).unwrap_or_default()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The latest scheduled time recorded for these types: the status, the runs' annotations, or the
/// creation of the TmdbSync (nothing before it is "missed").
fn last_time(
    status: Option<&str>,
    runs: &[SyncRun],
    types: &[RunType],
    created: DateTime<Utc>,
) -> DateTime<Utc> {
    runs.iter()
        .filter(|r| types.contains(&RunType::from(r.spec.run_type)))
        .filter_map(|r| {
            r.annotations()
                .get(SCHEDULED_AT)
                .and_then(|s| parse_time(s))
        })
        .chain(status.and_then(parse_time))
        .chain(std::iter::once(created))
        .max()
        .expect("at least the creation time")
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
    run.metadata.annotations = Some([(SCHEDULED_AT.to_string(), rfc3339(at))].into());
    run
}

fn finished_at(r: &SyncRun) -> Option<String> {
    let s = r.status.as_ref()?;
    s.phase.filter(|p| p.is_finished())?;
    s.completed_at.clone()
}

fn last_runs(runs: &[SyncRun]) -> LastRuns {
    let latest = |kind: RunKind| {
        runs.iter()
            .filter(|r| r.spec.run_type == kind)
            .filter_map(|r| finished_at(r).map(|t| (t, r)))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(t, r)| LastRun {
                name: r.name_any(),
                phase: r
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .unwrap_or(RunPhase::Failed),
                completed_at: Some(t),
            })
    };
    LastRuns {
        catalog: latest(RunKind::Catalog),
        bulk: latest(RunKind::Bulk),
        delta: latest(RunKind::Delta),
        enrich: latest(RunKind::Enrich),
    }
}

/// Deletes finished runs beyond the history limits, per type, oldest first (their Jobs go with them).
async fn prune_history(ctx: &Context, sync: &TmdbSync, runs: &[SyncRun]) -> Result<(), Error> {
    let api: Api<SyncRun> =
        Api::namespaced(ctx.client.clone(), &sync.namespace().unwrap_or_default());
    let limits = &sync.spec.history;
    for kind in [
        RunKind::Catalog,
        RunKind::Bulk,
        RunKind::Delta,
        RunKind::Enrich,
    ] {
        for (phase, keep) in [
            (RunPhase::Succeeded, limits.successful_runs_limit),
            (RunPhase::Failed, limits.failed_runs_limit),
        ] {
            let mut done: Vec<(String, String)> = runs
                .iter()
                .filter(|r| {
                    r.spec.run_type == kind
                        && r.status.as_ref().and_then(|s| s.phase) == Some(phase)
                })
                .filter_map(|r| finished_at(r).map(|t| (t, r.name_any())))
                .collect();
            done.sort();
            let excess = done.len().saturating_sub(keep.max(0) as usize);
            for (_, name) in done.into_iter().take(excess) {
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => {
                        tracing::info!(sync = %sync.name_any(), run = %name, "pruned finished run")
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
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
    let api: Api<TmdbSync> =
        Api::namespaced(ctx.client.clone(), &sync.namespace().unwrap_or_default());
    let patch = json!({ "apiVersion": "tmdbsync.io/v1alpha1", "kind": "TmdbSync", "status": next });
    api.patch_status(
        &sync.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
