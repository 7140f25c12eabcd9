//! The Job that executes a SyncRun: Indexed over `parallelism` pods, each with its share of the
//! TmdbSync's TMDb budget (requests per second and connections), fatal exit codes fail it at once,
//! secrets arrive as `secretKeyRef` env, pods run locked down and need no API access.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    SeccompProfile, SecretKeySelector, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use crate::api::sync_run::{EnrichStage, RunKind};
use crate::api::tmdb_sync::EnrichmentSpec;
use crate::api::{SyncRun, TmdbSync};
use crate::exit::ExitCode;
use crate::plan::pages::PageRange;
use crate::plan::run::pod_budget;

/// Labels on every object the controller creates for a run.
pub const LABEL_SYNC: &str = "tmdbsync.io/sync";
pub const LABEL_RUN: &str = "tmdbsync.io/run";
pub const LABEL_TYPE: &str = "tmdbsync.io/type";
/// The worker container's name (the podFailurePolicy rules name it).
pub const WORKER: &str = "worker";

/// What the controller decided for this run.
#[derive(Debug, Clone)]
pub struct JobPlan {
    pub image: String,
    pub pods: i32,
    pub pages: Option<PageRange>,
    pub ttl_seconds: i32,
    /// The worker container's resources: the TmdbSync's `jobTemplate.resources`, else the
    /// operator's default (`--job-resources`).
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn secret_env(name: &str, r: &crate::api::SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
    }
}

/// Builds the Job for `run` of `sync`.
pub fn build_job(run: &SyncRun, sync: &TmdbSync, plan: &JobPlan) -> Job {
    let name = run.metadata.name.clone().expect("run has a name");
    let labels = job_labels(run, &name);
    let pods = plan.pods.max(1);
    let template = &sync.spec.job_template;
    let container = worker_container(run, plan, worker_env(run, sync, plan, &name));
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: run.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: Some(vec![run.controller_owner_ref(&()).expect("run has uid")]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(pods),
            parallelism: Some(pods),
            backoff_limit_per_index: Some(template.backoff_limit_per_index.unwrap_or(2)),
            pod_failure_policy: Some(fail_on_fatal_exit_codes()),
            active_deadline_seconds: template.active_deadline_seconds,
            ttl_seconds_after_finished: Some(plan.ttl_seconds),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(worker_pod(container, template)),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn job_labels(run: &SyncRun, name: &str) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", "tmdbsync"),
        ("app.kubernetes.io/component", "worker"),
        ("app.kubernetes.io/managed-by", "tmdbsync"),
        (LABEL_SYNC, run.spec.sync_ref.name.as_str()),
        (LABEL_RUN, name),
        (
            LABEL_TYPE,
            crate::plan::RunType::from(run.spec.run_type).as_str(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The worker's settings: secrets as `secretKeyRef`, everything else plain.
fn worker_env(run: &SyncRun, sync: &TmdbSync, plan: &JobPlan, name: &str) -> Vec<EnvVar> {
    let spec = &sync.spec;
    let pods = plan.pods.max(1);
    // Each pod gets its share of the TmdbSync's budget: requests per second and connections.
    let budget = pod_budget(spec.tmdb.requests_per_second, pods);
    let mut vars = vec![
        env("TMDBSYNC_RUN_NAME", name),
        env(
            "TMDBSYNC_TRIGGER",
            format!("{:?}", run.spec.trigger).to_lowercase(),
        ),
        env("TMDBSYNC_SHARDS", pods.to_string()),
        env("TMDBSYNC_RPS", budget.requests_per_second.to_string()),
        env("TMDBSYNC_MAX_CONNECTIONS", budget.connections.to_string()),
        env("TMDB_URL", &spec.tmdb.base_url),
        env("TMDB_EXPORT_URL", &spec.tmdb.export_base_url),
        env(
            "TMDBSYNC_INCLUDE_ADULT",
            spec.tmdb.include_adult.to_string(),
        ),
        env(
            "TMDBSYNC_LOOKBACK_DAYS",
            spec.delta.lookback_days.to_string(),
        ),
        env("TMDBSYNC_LOG_FORMAT", "json"),
        secret_env("DATABASE_URL", &spec.database.url_secret_ref),
        secret_env("TMDB_API_KEY", &spec.tmdb.api_key_secret_ref),
    ];
    if let Some(lang) = &spec.tmdb.language {
        vars.push(env("TMDBSYNC_LANGUAGE", lang));
    }
    vars.extend(settings_env(run, spec));
    if let Some(p) = plan.pages {
        vars.push(env("TMDBSYNC_PAGES_FROM", p.from.to_string()));
        vars.push(env("TMDBSYNC_PAGES_TO", p.to.to_string()));
    }
    if run.spec.pages.is_some() {
        // Pages named in the spec are a re-import: fetch them again even if stored.
        vars.push(env("TMDBSYNC_REFETCH", "true"));
    }
    if let Some(w) = &run.spec.window {
        vars.push(env("TMDBSYNC_WINDOW_START", &w.start));
        vars.push(env("TMDBSYNC_WINDOW_END", &w.end));
    }
    if run.spec.run_type == RunKind::Enrich {
        vars.extend(enrich_env(run, sync));
    }
    vars
}

/// The settings `tmdbsync run` takes as flags, from the TmdbSync (the README's parity table):
/// the catalog source, the daily stale refetches, key cast, timeouts and the database outage
/// tolerance. Unset optional ones keep the worker's defaults.
fn settings_env(run: &SyncRun, spec: &crate::api::tmdb_sync::TmdbSyncSpec) -> Vec<EnvVar> {
    use crate::api::tmdb_sync::CatalogSource;
    let source = match spec.bulk.source {
        CatalogSource::Export => "export",
        CatalogSource::Discover => "discover",
    };
    let mut vars = vec![env("TMDBSYNC_BULK_SOURCE", source)];
    match run.spec.run_type {
        // A manual window re-reads days; it spends none of the day's refetches.
        RunKind::Delta if run.spec.window.is_none() => vars.push(env(
            "TMDBSYNC_REFRESH_STALE",
            spec.refresh.stale_movies_per_day.to_string(),
        )),
        RunKind::Enrich => vars.push(env(
            "TMDBSYNC_TOP_CAST",
            spec.enrichment.top_cast.to_string(),
        )),
        _ => {}
    }
    let t = spec.tmdb.timeouts.clone().unwrap_or_default();
    let seconds = [
        ("TMDBSYNC_TIMEOUT_SECS", t.request_seconds),
        ("TMDBSYNC_CONNECT_TIMEOUT_SECS", t.connect_seconds),
        ("TMDBSYNC_READ_TIMEOUT_SECS", t.read_seconds),
        ("TMDBSYNC_EXPORT_IDLE_TIMEOUT_SECS", t.export_idle_seconds),
        ("TMDBSYNC_EXPORT_TIMEOUT_SECS", t.export_seconds),
        (
            "TMDBSYNC_DB_OUTAGE_SECS",
            spec.database.outage_tolerance_seconds,
        ),
    ];
    vars.extend(
        seconds
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| env(name, v.to_string()))),
    );
    vars
}

/// The worker container: `tmdbsync worker <type>`, locked down (no privilege escalation, read-only
/// root filesystem, non-root, every capability dropped).
fn worker_container(run: &SyncRun, plan: &JobPlan, vars: Vec<EnvVar>) -> Container {
    let subcommand = match run.spec.run_type {
        RunKind::Catalog => "catalog",
        RunKind::Bulk => "bulk",
        RunKind::Delta => "delta",
        RunKind::Enrich => "enrich",
    };
    Container {
        name: WORKER.into(),
        image: Some(plan.image.clone()),
        args: Some(vec!["worker".into(), subcommand.into()]),
        env: Some(vars),
        resources: plan.resources.clone(),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Fails the Job at once on the worker's fatal exit codes (bad credentials, bad configuration).
fn fail_on_fatal_exit_codes() -> PodFailurePolicy {
    let fatal_rule = |code: ExitCode| PodFailurePolicyRule {
        action: "FailJob".into(),
        on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: Some(WORKER.into()),
            operator: "In".into(),
            values: vec![code as i32],
        }),
        on_pod_conditions: None,
    };
    PodFailurePolicy {
        rules: vec![
            fatal_rule(ExitCode::Credentials),
            fatal_rule(ExitCode::Config),
        ],
    }
}

fn worker_pod(container: Container, template: &crate::api::tmdb_sync::JobTemplateSpec) -> PodSpec {
    PodSpec {
        restart_policy: Some("Never".into()),
        // Workers talk to TMDb and Postgres only, never to the Kubernetes API.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        containers: vec![container],
        node_selector: template.node_selector.clone(),
        tolerations: template.tolerations.clone(),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The stages a TmdbSync's `enrichment` spec enables, in running order.
pub fn enabled_enrich_stages(e: &EnrichmentSpec) -> Vec<EnrichStage> {
    [
        (e.omdb.enabled, EnrichStage::Omdb),
        (e.collaborations.enabled, EnrichStage::Collaborations),
        (e.person_quality_score.enabled, EnrichStage::Pqs),
    ]
    .into_iter()
    .filter_map(|(on, s)| on.then_some(s))
    .collect()
}

/// An Enrich worker's settings: its stages (the run's, else the enabled ones) and OMDb access
/// (the key only while OMDb is enabled).
fn enrich_env(run: &SyncRun, sync: &TmdbSync) -> Vec<EnvVar> {
    let e = &sync.spec.enrichment;
    let stages = run
        .spec
        .stages
        .clone()
        .unwrap_or_else(|| enabled_enrich_stages(e));
    let names: Vec<&str> = stages.iter().map(|s| s.as_str()).collect();
    let mut vars = vec![
        env("TMDBSYNC_ENRICH_STAGES", names.join(",")),
        env(
            "OMDB_URL",
            e.omdb
                .base_url
                .as_deref()
                .unwrap_or(crate::omdb::DEFAULT_URL),
        ),
        env(
            "TMDBSYNC_OMDB_DAILY_LIMIT",
            e.omdb.daily_limit.unwrap_or(1000).to_string(),
        ),
    ];
    if e.omdb.enabled
        && let Some(key) = &e.omdb.api_key_secret_ref
    {
        vars.push(secret_env("OMDB_API_KEY", key));
    }
    vars
}

/// The exit code a failed Job's pod failure policy matched, read from its condition message
/// (the Job controller writes "... failed with exit code N matching FailJob rule ...").
pub fn fatal_exit_code(message: &str) -> Option<i32> {
    let rest = message.split("exit code ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(omdb_enabled: bool, stages: Option<&str>) -> (SyncRun, TmdbSync) {
        let sync: TmdbSync = serde_json::from_value(serde_json::json!({
            "apiVersion": "tmdbsync.io/v1alpha1", "kind": "TmdbSync",
            "metadata": {"name": "cine", "namespace": "media", "uid": "u1"},
            "spec": {
                "tmdb": {"apiKeySecretRef": {"name": "tmdb", "key": "api-key"}},
                "database": {"urlSecretRef": {"name": "db", "key": "url"}},
                "enrichment": {"omdb": {"enabled": omdb_enabled, "dailyLimit": 500,
                    "apiKeySecretRef": {"name": "omdb", "key": "key"}},
                    "personQualityScore": {"enabled": false}}
            }
        }))
        .unwrap();
        let mut spec = serde_json::json!({"syncRef": {"name": "cine"}, "type": "Enrich"});
        if let Some(s) = stages {
            spec["stages"] = serde_json::json!([s]);
        }
        let run: SyncRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
            "metadata": {"name": "cine-enrich-1", "namespace": "media", "uid": "u2"},
            "spec": spec
        }))
        .unwrap();
        (run, sync)
    }

    fn job_env(run: &SyncRun, sync: &TmdbSync) -> BTreeMap<String, EnvVar> {
        pods_env(run, sync, 1)
    }

    /// The worker env of the Job of `run` (an Enrich run) with `pods` pods.
    fn pods_env(run: &SyncRun, sync: &TmdbSync, pods: i32) -> BTreeMap<String, EnvVar> {
        let plan = JobPlan {
            image: "img".into(),
            pods,
            pages: None,
            ttl_seconds: 60,
            resources: None,
        };
        let job = build_job(run, sync, &plan);
        let spec = job.spec.unwrap();
        assert_eq!(
            (spec.parallelism, spec.completions),
            (Some(pods), Some(pods))
        );
        let c = &spec.template.spec.unwrap().containers[0];
        assert_eq!(c.args.as_deref().unwrap(), ["worker", "enrich"]);
        c.env
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect()
    }

    #[test]
    fn each_pod_gets_its_share_of_the_request_rate_and_of_the_connection_cap() {
        let (run, mut sync) = objects(false, None);
        sync.spec.tmdb.requests_per_second = 40;
        let value = |env: &BTreeMap<String, EnvVar>, k: &str| -> u32 {
            env[k].value.as_deref().unwrap().parse().unwrap()
        };
        for (pods, rps, connections) in
            [(1, 40, 20), (2, 20, 10), (3, 13, 6), (4, 10, 5), (20, 2, 1)]
        {
            let env = pods_env(&run, &sync, pods);
            assert_eq!(value(&env, "TMDBSYNC_SHARDS"), pods as u32);
            assert_eq!(value(&env, "TMDBSYNC_RPS"), rps, "{pods} pods");
            assert_eq!(
                value(&env, "TMDBSYNC_MAX_CONNECTIONS"),
                connections,
                "{pods} pods"
            );
            // The whole run stays within TMDb's cap of open connections.
            assert!(connections * pods as u32 <= crate::plan::run::TMDB_CONNECTIONS);
        }
    }

    #[test]
    fn enrich_jobs_get_the_enabled_stages_and_the_omdb_key_only_when_omdb_is_on() {
        let (run, sync) = objects(true, None);
        let env = job_env(&run, &sync);
        let value = |k: &str| env[k].value.clone().unwrap();
        assert_eq!(value("TMDBSYNC_ENRICH_STAGES"), "omdb,collaborations");
        assert_eq!(value("OMDB_URL"), crate::omdb::DEFAULT_URL);
        assert_eq!(value("TMDBSYNC_OMDB_DAILY_LIMIT"), "500");
        let key = env["OMDB_API_KEY"].value_from.clone().unwrap();
        assert_eq!(key.secret_key_ref.unwrap().name, "omdb");

        let (run, sync) = objects(false, Some("Pqs"));
        let env = job_env(&run, &sync);
        assert_eq!(env["TMDBSYNC_ENRICH_STAGES"].value.as_deref(), Some("pqs"));
        assert!(!env.contains_key("OMDB_API_KEY"));
    }

    #[test]
    fn jobs_carry_the_settings_tmdbsync_run_takes_as_flags() {
        let (_, mut sync) = objects(false, None);
        sync.spec.bulk.source = crate::api::tmdb_sync::CatalogSource::Discover;
        sync.spec.refresh.stale_movies_per_day = 250;
        sync.spec.enrichment.top_cast = 5;
        sync.spec.database.outage_tolerance_seconds = Some(900);
        sync.spec.tmdb.timeouts = Some(crate::api::tmdb_sync::TimeoutsSpec {
            connect_seconds: Some(3),
            ..Default::default()
        });
        let of = |kind: &str, window: bool| {
            let mut spec = serde_json::json!({"syncRef": {"name": "cine"}, "type": kind});
            if window {
                spec["window"] = serde_json::json!({"start": "2026-01-01", "end": "2026-01-02"});
            }
            let run: SyncRun = serde_json::from_value(serde_json::json!({
                "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
                "metadata": {"name": "cine-x-1", "namespace": "media", "uid": "u3"},
                "spec": spec
            }))
            .unwrap();
            let plan = JobPlan {
                image: "img".into(),
                pods: 1,
                pages: None,
                ttl_seconds: 60,
                resources: None,
            };
            let job = build_job(&run, &sync, &plan);
            let c = job.spec.unwrap().template.spec.unwrap().containers[0].clone();
            c.env
                .unwrap()
                .into_iter()
                .filter_map(|e| e.value.map(|v| (e.name, v)))
                .collect::<BTreeMap<String, String>>()
        };
        let catalog = of("Catalog", false);
        assert_eq!(catalog["TMDBSYNC_BULK_SOURCE"], "discover");
        assert_eq!(catalog["TMDBSYNC_CONNECT_TIMEOUT_SECS"], "3");
        assert_eq!(catalog["TMDBSYNC_DB_OUTAGE_SECS"], "900");
        assert!(
            !catalog.contains_key("TMDBSYNC_TIMEOUT_SECS"),
            "unset keeps the default"
        );
        assert!(!catalog.contains_key("TMDBSYNC_REFRESH_STALE"));
        assert_eq!(of("Delta", false)["TMDBSYNC_REFRESH_STALE"], "250");
        assert!(!of("Delta", true).contains_key("TMDBSYNC_REFRESH_STALE"));
        assert_eq!(of("Enrich", false)["TMDBSYNC_TOP_CAST"], "5");
    }

    #[test]
    fn fatal_exit_code_is_read_from_the_job_condition() {
        let m = "Container worker for pod ns/x-0-abc failed with exit code 3 matching FailJob rule at index 0";
        assert_eq!(fatal_exit_code(m), Some(3));
        assert_eq!(
            fatal_exit_code("Job has reached the specified backoff limit"),
            None
        );
    }
}
