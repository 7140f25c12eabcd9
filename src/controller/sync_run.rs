//! The SyncRun reconciler: waits its turn, plans Bulk pages, creates the run's Job, mirrors the
//! counters from Postgres while it runs and records the outcome when the Job ends.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::apply::{Part, server_side_apply};
use super::job::{JobPlan, build_job, fatal_exit_code};
use super::{Context, Error};
use crate::api::conditions::merge;
use crate::api::sync_run::{ERROR_SAMPLE_SIZE, ErrorSample, PageRangeSpec, RunKind};
use crate::api::{FIELD_MANAGER, RunPhase, SyncRun, SyncRunStatus, TmdbSync};
use crate::plan::RunType;
use crate::plan::pages::{PageRange, total_pages};
use crate::plan::run::{self as runplan, BulkPages};
use crate::store::runs::{self, RunStatus};
use crate::store::{Store, pages};

/// Annotation carrying the scheduled time of a scheduled run.
pub const SCHEDULED_AT: &str = "tmdbsync.io/scheduled-at";

/// Reconciles one SyncRun.
pub async fn reconcile(run: Arc<SyncRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = run.namespace().unwrap_or_default();
    let name = run.name_any();
    let status = run.status.clone().unwrap_or_default();
    if status.phase.is_some_and(RunPhase::is_finished) {
        // A run finished by an older controller has no conditions yet: add them once, dated when
        // it finished. Once they are there the run is settled and the cache keeps only its view
        // ([`super::runs`]): it is not reconciled again.
        patch_status_at(&ctx, &run, &status, status.clone(), finished_at(&status)).await?;
        return Ok(Action::await_change());
    }
    let syncs: Api<TmdbSync> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(sync) = syncs.get_opt(&run.spec.sync_ref.name).await? else {
        let message = format!("TmdbSync {:?} does not exist", run.spec.sync_ref.name);
        return finish(
            &ctx,
            &run,
            status,
            RunPhase::Failed,
            "SyncNotFound",
            &message,
            None,
        )
        .await;
    };
    adopt(&ctx, &run, &sync).await?;
    let url = match ctx
        .secret_value(&ns, &sync.spec.database.url_secret_ref)
        .await?
    {
        Ok(url) => url,
        Err(problem) => {
            let next = SyncRunStatus {
                phase: Some(RunPhase::Pending),
                reason: Some("SecretNotFound".into()),
                message: Some(format!("waiting for the database secret: {problem}")),
                ..status.clone()
            };
            patch_status(&ctx, &run, &status, next).await?;
            return Ok(Action::requeue(std::time::Duration::from_secs(30)));
        }
    };
    let store = ctx.store(&url).await?;
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    match jobs.get_opt(&name).await? {
        Some(job) => observe_job(&ctx, &run, status, &store, &job).await,
        None if status.phase == Some(RunPhase::Running) => {
            let message = "its Job disappeared before it finished (deleted?)";
            finish(
                &ctx,
                &run,
                status,
                RunPhase::Failed,
                "JobMissing",
                message,
                Some(&store),
            )
            .await
        }
        None => start(&ctx, &run, status, &sync, &store, &jobs).await,
    }
}

fn calls_tmdb(kind: RunKind) -> bool {
    !matches!(kind, RunKind::Enrich)
}

/// Order of runs of one sync: scheduled time, then Catalog before Bulk before Delta, then name.
fn queue_key(run: &SyncRun) -> (String, u8, String) {
    let at = run
        .annotations()
        .get(SCHEDULED_AT)
        .cloned()
        .or_else(|| run.creation_timestamp().map(|t| t.0.to_string()))
        .unwrap_or_default();
    let rank = match run.spec.run_type {
        RunKind::Catalog => 0,
        RunKind::Bulk => 1,
        RunKind::Delta => 2,
        RunKind::Enrich => 3,
    };
    (at, rank, run.name_any())
}

/// Whether a run of kind `mine` waits for an unfinished run of kind `other` queued before it: at
/// most one TMDb-calling run per TmdbSync at a time; Enrich (no TMDb calls) waits for the Bulk and
/// Delta runs scheduled at or before it, whose movies it enriches, and for an earlier Enrich run.
fn waits_for(mine: RunKind, other: RunKind) -> bool {
    match mine {
        RunKind::Enrich => matches!(other, RunKind::Bulk | RunKind::Delta | RunKind::Enrich),
        _ => calls_tmdb(other),
    }
}

/// The run this one waits for, if any (see `waits_for`).
async fn blocker(ctx: &Context, run: &SyncRun) -> Result<Option<String>, Error> {
    let api: Api<SyncRun> =
        Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    let mine = queue_key(run);
    let others = super::runs::of_sync(&api, &run.spec.sync_ref.name).await?;
    Ok(others
        .iter()
        .filter(|o| o.name_any() != run.name_any())
        .filter(|o| waits_for(run.spec.run_type, o.spec.run_type))
        .filter(|o| {
            let phase = o.status.as_ref().and_then(|s| s.phase);
            match phase {
                // A later Bulk or Delta already running does not hold an Enrich run back.
                Some(RunPhase::Running) if run.spec.run_type == RunKind::Enrich => {
                    queue_key(o) < mine
                }
                Some(RunPhase::Running) => true,
                Some(RunPhase::Succeeded | RunPhase::Failed) => false,
                _ => queue_key(o) < mine,
            }
        })
        .map(|o| o.name_any())
        .min())
}

async fn start(
    ctx: &Context,
    run: &SyncRun,
    status: SyncRunStatus,
    sync: &TmdbSync,
    store: &Store,
    jobs: &Api<Job>,
) -> Result<Action, Error> {
    let run_type = RunType::from(run.spec.run_type);
    if let Some(other) = blocker(ctx, run).await? {
        let next = SyncRunStatus {
            phase: Some(RunPhase::Pending),
            reason: Some("Waiting".into()),
            message: Some(runplan::waiting_message(run_type, &other)),
            ..status.clone()
        };
        patch_status(ctx, run, &status, next).await?;
        return Ok(Action::requeue(std::time::Duration::from_secs(5)));
    }
    let (pages, planned) = match bulk_pages(ctx, run, sync, store, &status).await? {
        Planned::Pages(pages, planned) => (pages, planned),
        Planned::Ended(action) => return Ok(action),
    };
    if let Some(w) = &run.spec.window
        && let Err(message) = runplan::check_window(&w.start, &w.end)
    {
        return invalid(ctx, run, status, &message, store).await;
    }
    let pods = runplan::pods(run_type, run.spec.parallelism, sync.spec.bulk.parallelism);
    create_job(ctx, run, sync, jobs, pods, pages).await?;
    let next = SyncRunStatus {
        phase: Some(RunPhase::Running),
        planned_pages: planned,
        job_name: Some(run.name_any()),
        started_at: Some(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        pages_total: pages.map_or(0, |p| p.len()),
        reason: Some("JobCreated".into()),
        message: Some(format!("{} pod(s) started", pods)),
        ..status.clone()
    };
    patch_status(ctx, run, &status, next).await?;
    ctx.event(
        &run.object_ref(&()),
        false,
        "RunStarted",
        "CreateJob",
        format!("Job {} created with {pods} pod(s)", run.name_any()),
    )
    .await;
    Ok(Action::requeue(ctx.config.mirror_interval))
}

/// What a run's Job works on: the pages (a Bulk run's; none for the other types) and the plan
/// recorded in status, or the run ended without a Job.
enum Planned {
    Pages(Option<PageRange>, Option<PageRangeSpec>),
    Ended(Action),
}

/// Plans a Bulk run's pages ([`plan_pages`]), recording a new plan in status before the Job
/// exists (so a restart reuses it); a run with nothing to import, or an invalid one, ends here.
async fn bulk_pages(
    ctx: &Context,
    run: &SyncRun,
    sync: &TmdbSync,
    store: &Store,
    status: &SyncRunStatus,
) -> Result<Planned, Error> {
    let planned = status.planned_pages;
    if !matches!(RunType::from(run.spec.run_type), RunType::Bulk) {
        return Ok(Planned::Pages(None, planned));
    }
    let status = status.clone();
    match plan_pages(run, sync, store, planned).await? {
        BulkPages::Import { range, record } => {
            if !record {
                return Ok(Planned::Pages(Some(range), planned));
            }
            let planned = Some(PageRangeSpec {
                from: range.from,
                to: range.to,
            });
            let next = SyncRunStatus {
                planned_pages: planned,
                ..status.clone()
            };
            patch_status(ctx, run, &status, next).await?;
            Ok(Planned::Pages(Some(range), planned))
        }
        BulkPages::Finished {
            succeeded,
            reason,
            message,
        } => {
            let phase = if succeeded {
                RunPhase::Succeeded
            } else {
                RunPhase::Failed
            };
            let action = finish(ctx, run, status, phase, reason, &message, Some(store)).await?;
            Ok(Planned::Ended(action))
        }
        BulkPages::Invalid(message) => Ok(Planned::Ended(
            invalid(ctx, run, status, &message, store).await?,
        )),
    }
}

/// Reads what the page plan needs (the catalog size, the first open page) and lets
/// [`runplan::bulk_pages`] decide.
async fn plan_pages(
    run: &SyncRun,
    sync: &TmdbSync,
    store: &Store,
    planned: Option<PageRangeSpec>,
) -> Result<BulkPages, Error> {
    let range = |p: PageRangeSpec| PageRange {
        from: p.from,
        to: p.to,
    };
    let (asked, recorded) = (run.spec.pages.map(range), planned.map(range));
    let total = total_pages(crate::store::catalog::max_ordinal(store).await?);
    let first_open = match asked.or(recorded) {
        Some(_) => None,
        None => pages::first_open_page(store, total).await?,
    };
    Ok(runplan::bulk_pages(
        asked,
        recorded,
        total,
        first_open,
        sync.spec.bulk.pages_per_run,
    ))
}

/// Creates the run's Job (AlreadyExists is success: a restart never doubles it).
async fn create_job(
    ctx: &Context,
    run: &SyncRun,
    sync: &TmdbSync,
    jobs: &Api<Job>,
    pods: i32,
    pages: Option<PageRange>,
) -> Result<(), Error> {
    let plan = JobPlan {
        image: sync
            .spec
            .job_template
            .image
            .clone()
            .unwrap_or_else(|| ctx.config.worker_image.clone()),
        pods,
        pages,
        ttl_seconds: ctx.config.job_ttl_seconds,
        resources: Some(
            (sync.spec.job_template.resources.as_ref())
                .unwrap_or(&ctx.config.job_resources)
                .clone(),
        ),
    };
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match jobs.create(&params, &build_job(run, sync, &plan)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn observe_job(
    ctx: &Context,
    run: &SyncRun,
    status: SyncRunStatus,
    store: &Store,
    job: &Job,
) -> Result<Action, Error> {
    let mut next = status.clone();
    next.phase = Some(RunPhase::Running);
    next.job_name = Some(job.name_any());
    if next.started_at.is_none() {
        next.started_at = job.creation_timestamp().map(|t| t.0.to_string());
    }
    mirror_counters(run, store, &mut next).await?;
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let done = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t && c.status == "True")
    };
    if done("Complete").is_some() {
        let message = next.message.clone().unwrap_or_else(|| "completed".into());
        return finish(
            ctx,
            run,
            next,
            RunPhase::Succeeded,
            "Completed",
            &message,
            Some(store),
        )
        .await;
    }
    if let Some(c) = done("Failed") {
        let job_message = c.message.clone().unwrap_or_default();
        let (reason, message) = runplan::job_failure(
            c.reason.as_deref(),
            fatal_exit_code(&job_message),
            &job_message,
        );
        return finish(
            ctx,
            run,
            next,
            RunPhase::Failed,
            reason,
            &message,
            Some(store),
        )
        .await;
    }
    next.reason = Some("Running".into());
    if let Some(started) = next
        .started_at
        .as_deref()
        .and_then(crate::plan::sync::parse_time)
    {
        let elapsed = (Utc::now() - started).num_seconds();
        let step = ctx.config.mirror_interval.as_secs() as i64;
        next.duration = Some(runplan::format_duration(runplan::running_duration_secs(
            elapsed, step,
        )));
    }
    patch_status(ctx, run, &status, next).await?;
    Ok(Action::requeue(ctx.config.mirror_interval))
}

/// Copies the run's counters (and, for Enrich, its per-stage counters) from Postgres into `next`.
async fn mirror_counters(
    run: &SyncRun,
    store: &Store,
    next: &mut SyncRunStatus,
) -> Result<(), Error> {
    let Some(row) = runs::get_run_by_name(store, &run.name_any()).await? else {
        return Ok(());
    };
    next.run_id = Some(row.id);
    next.pages_total = row.pages_total.max(next.pages_total);
    next.pages_processed = row.pages_processed;
    next.movies_imported = row.movies_imported;
    next.movies_updated = row.movies_updated;
    next.movies_skipped = row.movies_skipped;
    next.movies_deleted = row.movies_deleted;
    next.errors = row.errors_count;
    next.data_warnings = row.data_warnings;
    if row.message.is_some() {
        next.message = row.message;
    }
    if row.errors_count > 0 && next.error_sample.len() < ERROR_SAMPLE_SIZE as usize {
        next.error_sample = runs::error_sample_by_name(store, &run.name_any(), ERROR_SAMPLE_SIZE)
            .await?
            .into_iter()
            .map(|e| ErrorSample {
                movie_id: e.movie_id,
                category: e.category,
                http_status: e.http_status,
                message: e.message.chars().take(200).collect(),
            })
            .collect();
    }
    if run.spec.run_type == RunKind::Enrich {
        next.stages = crate::store::pipeline::stage_counters_by_name(store, &run.name_any())
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
    }
    Ok(())
}

/// Records the outcome in Postgres and the status, with an event.
async fn finish(
    ctx: &Context,
    run: &SyncRun,
    status: SyncRunStatus,
    phase: RunPhase,
    reason: &str,
    message: &str,
    store: Option<&Store>,
) -> Result<Action, Error> {
    if let Some(store) = store {
        let outcome = if phase == RunPhase::Succeeded {
            RunStatus::Completed
        } else {
            RunStatus::Failed
        };
        runs::finalize_named(
            store,
            &run.name_any(),
            RunType::from(run.spec.run_type),
            outcome,
            message,
        )
        .await?;
    }
    let now = Utc::now();
    let started = status
        .started_at
        .as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    let next = SyncRunStatus {
        phase: Some(phase),
        completed_at: Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        duration: started.map(|s| runplan::format_duration((now - s).num_seconds())),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..status.clone()
    };
    patch_status(ctx, run, &status, next).await?;
    let warning = phase == RunPhase::Failed;
    let event_reason = if warning { "RunFailed" } else { "RunSucceeded" };
    ctx.event(
        &run.object_ref(&()),
        warning,
        event_reason,
        "Finish",
        format!("{reason}: {message}"),
    )
    .await;
    Ok(Action::await_change())
}

/// Fails a run whose spec cannot work (recorded like any other outcome).
async fn invalid(
    ctx: &Context,
    run: &SyncRun,
    status: SyncRunStatus,
    message: &str,
    store: &Store,
) -> Result<Action, Error> {
    finish(
        ctx,
        run,
        status,
        RunPhase::Failed,
        "InvalidSpec",
        message,
        Some(store),
    )
    .await
}

/// Makes the TmdbSync the controller-owner of a manual run (garbage collection, parent wake-ups)
/// and labels the run with its sync.
async fn adopt(ctx: &Context, run: &SyncRun, sync: &TmdbSync) -> Result<(), Error> {
    let owned = run
        .owner_references()
        .iter()
        .any(|o| Some(&o.uid) == sync.uid().as_ref());
    if owned && super::runs::is_labelled(run) {
        return Ok(());
    }
    // The sync label lets reconciles list a sync's runs by label (see `super::runs`).
    let metadata = json!({
        "name": run.name_any(),
        "labels": { super::job::LABEL_SYNC: run.spec.sync_ref.name },
        "ownerReferences": [sync.controller_owner_ref(&()).expect("sync has uid")],
    });
    server_side_apply(&ctx.client, run, Part::Metadata, metadata).await?;
    Ok(())
}

/// Server-side applies the status when it differs from the current one, with the conditions its
/// phase and reason imply ([`runplan::run_conditions`]) and `observedGeneration`.
async fn patch_status(
    ctx: &Context,
    run: &SyncRun,
    current: &SyncRunStatus,
    next: SyncRunStatus,
) -> Result<(), Error> {
    patch_status_at(ctx, run, current, next, None).await
}

/// [`patch_status`], with conditions that transition now dated `at` (default: now).
async fn patch_status_at(
    ctx: &Context,
    run: &SyncRun,
    current: &SyncRunStatus,
    next: SyncRunStatus,
    at: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    let next = with_conditions(run, current, next, at);
    if &next == current {
        return Ok(());
    }
    server_side_apply(&ctx.client, run, Part::Status, next).await?;
    Ok(())
}

/// `next` as written: observing the run's generation, with the conditions its phase implies
/// merged into `current`'s (a condition that changes is dated `at`, default now).
fn with_conditions(
    run: &SyncRun,
    current: &SyncRunStatus,
    mut next: SyncRunStatus,
    at: Option<DateTime<Utc>>,
) -> SyncRunStatus {
    next.observed_generation = run.metadata.generation;
    let desired =
        runplan::run_conditions(next.phase, next.reason.as_deref(), next.message.as_deref());
    next.conditions = merge(
        &current.conditions,
        &desired,
        run.metadata.generation,
        at.unwrap_or_else(Utc::now),
    );
    next
}

/// When a finished run finished (its `completedAt`).
fn finished_at(status: &SyncRunStatus) -> Option<DateTime<Utc>> {
    status
        .completed_at
        .as_deref()
        .and_then(crate::plan::sync::parse_time)
}

/// Whether `run` is finished and its reconcile would change nothing: its status observes its
/// generation and carries every condition its outcome implies. Such a run is never reconciled
/// again (until it changes), so the controller caches only its view.
pub fn is_settled(run: &SyncRun) -> bool {
    let Some(status) = &run.status else {
        return false;
    };
    status.phase.is_some_and(RunPhase::is_finished)
        && with_conditions(run, status, status.clone(), finished_at(status)) == *status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrich_waits_for_imports_and_earlier_enrichment_but_never_holds_tmdb_runs() {
        use RunKind::*;
        let cases = [
            (Enrich, Bulk, true),
            (Enrich, Delta, true),
            (Enrich, Enrich, true),
            (Enrich, Catalog, false),
            (Bulk, Enrich, false),
            (Delta, Enrich, false),
            (Delta, Bulk, true),
            (Catalog, Delta, true),
        ];
        for (mine, other, want) in cases {
            assert_eq!(waits_for(mine, other), want, "{mine:?} behind {other:?}");
        }
    }
}
