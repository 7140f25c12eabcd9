//! `TmdbSync`: one mirrored catalog — where TMDb and the database are, what runs when, and the
//! progress, last and next runs and conditions in its status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;

/// What to sync and when.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tmdbsync.io",
    version = "v1alpha1",
    kind = "TmdbSync",
    plural = "tmdbsyncs",
    shortname = "tmdb",
    namespaced,
    status = "TmdbSyncStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Progress","type":"number","jsonPath":".status.progress.percentComplete","description":"Percent of the catalog imported"}"#,
    printcolumn = r#"{"name":"Imported","type":"integer","jsonPath":".status.progress.imported"}"#,
    printcolumn = r#"{"name":"ETA","type":"string","jsonPath":".status.progress.estimatedCompletion"}"#,
    printcolumn = r#"{"name":"Last-Bulk","type":"date","jsonPath":".status.lastRuns.bulk.completedAt"}"#,
    printcolumn = r#"{"name":"Last-Delta","type":"date","jsonPath":".status.lastRuns.delta.completedAt"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TmdbSyncSpec {
    /// Where TMDb is and how to call it.
    pub tmdb: TmdbSpec,
    /// The Postgres database the catalog is mirrored into.
    pub database: DatabaseSpec,
    /// Suspends scheduling; running runs finish.
    #[serde(default)]
    pub suspend: bool,
    /// IANA time zone the schedules are read in (e.g. `Europe/Berlin`).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Progressive bulk import of the catalog.
    #[serde(default)]
    pub bulk: BulkSpec,
    /// Daily delta sync from TMDb's changes feed.
    #[serde(default)]
    pub delta: DeltaSpec,
    /// The side jobs: OMDb ratings, collaborations, person quality score.
    #[serde(default)]
    pub enrichment: EnrichmentSpec,
    /// Refetching stored movies beyond what the changes feed reports (votes and popularity move
    /// without a change entry).
    #[serde(default)]
    pub refresh: RefreshSpec,
    /// Alert thresholds (exported as metrics for the chart's rules).
    #[serde(default)]
    pub alerts: AlertsSpec,
    /// How many finished SyncRuns to keep.
    #[serde(default)]
    pub history: HistorySpec,
    /// Settings of the Jobs that execute runs.
    #[serde(default)]
    pub job_template: JobTemplateSpec,
}

fn default_time_zone() -> String {
    "UTC".into()
}

/// TMDb access.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TmdbSpec {
    /// The Secret key holding the TMDb API key (v3 key or v4 read token).
    pub api_key_secret_ref: SecretKeyRef,
    /// API base URL.
    #[serde(default = "default_tmdb_url")]
    pub base_url: String,
    /// Base URL of the daily ID exports.
    #[serde(default = "default_export_url")]
    pub export_base_url: String,
    /// Request budget shared by all pods of a run (TMDb allows about 40/s).
    #[serde(default = "default_rps")]
    #[schemars(range(min = 1, max = 1000))]
    pub requests_per_second: u32,
    /// Import adult titles too.
    #[serde(default)]
    pub include_adult: bool,
    /// `language` for details (TMDb's default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Network timeouts of the workers' TMDb and OMDb requests and of the export download
    /// (each defaults to the `tmdbsync run` default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<TimeoutsSpec>,
}

/// Network timeouts, in seconds; each unset one keeps its default.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutsSpec {
    /// Longest one TMDb or OMDb request may take, answer included (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub request_seconds: Option<u32>,
    /// Longest a connect (TCP and TLS) to TMDb, its export host or OMDb may take (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub connect_seconds: Option<u32>,
    /// Longest a request may wait for the next bytes of the answer (default 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub read_seconds: Option<u32>,
    /// Longest the export download may receive nothing before it fails (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub export_idle_seconds: Option<u32>,
    /// Longest the whole export download may take (default 1800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub export_seconds: Option<u32>,
}

fn default_tmdb_url() -> String {
    "https://api.themoviedb.org/3".into()
}
fn default_export_url() -> String {
    "https://files.tmdb.org/p/exports".into()
}
fn default_rps() -> u32 {
    40
}

/// The database.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// The Secret key holding the Postgres URL.
    pub url_secret_ref: SecretKeyRef,
    /// Seconds a worker keeps retrying database work through an outage (a restart, a fail-over)
    /// before its run fails (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub outage_tolerance_seconds: Option<u32>,
}

/// Where the catalog comes from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum CatalogSource {
    /// TMDb's daily ID export (complete).
    #[default]
    Export,
    /// `/discover/movie` in release-date windows (for clusters that cannot reach the export host).
    Discover,
}

/// Bulk import settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Cron schedule (5 fields) in `timeZone`; the Catalog run goes first.
    #[serde(default = "default_bulk_schedule")]
    pub schedule: String,
    /// Where the Catalog run lists movie ids from: `Export` (TMDb's daily ID export, complete) or
    /// `Discover` (`/discover/movie` in release-date windows, for clusters that cannot reach the
    /// export host; `status.discover` counts what it cannot reach).
    #[serde(default)]
    pub source: CatalogSource,
    /// Pages of 20 movies per run (200 ≈ 4,000 movies).
    #[serde(default = "default_pages_per_run")]
    #[schemars(range(min = 1, max = 100000))]
    pub pages_per_run: i32,
    /// Pods sharing a run.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 20))]
    pub parallelism: i32,
}

impl Default for BulkSpec {
    fn default() -> Self {
        BulkSpec {
            enabled: true,
            schedule: default_bulk_schedule(),
            source: CatalogSource::Export,
            pages_per_run: default_pages_per_run(),
            parallelism: 1,
        }
    }
}

fn yes() -> bool {
    true
}
fn one() -> i32 {
    1
}
fn default_bulk_schedule() -> String {
    "0 2 * * *".into()
}
fn default_pages_per_run() -> i32 {
    200
}

/// When delta runs start.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeltaStart {
    /// From the first day, for what is already imported.
    #[default]
    Always,
    /// Only once the bulk import is complete.
    AfterBulk,
}

/// Delta sync settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeltaSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_delta_schedule")]
    pub schedule: String,
    /// Days the first delta looks back when nothing else says where to start.
    #[serde(default = "default_lookback")]
    #[schemars(range(min = 1, max = 90))]
    pub lookback_days: u32,
    #[serde(default)]
    pub start_when: DeltaStart,
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 20))]
    pub parallelism: i32,
}

impl Default for DeltaSpec {
    fn default() -> Self {
        DeltaSpec {
            enabled: true,
            schedule: default_delta_schedule(),
            lookback_days: 1,
            start_when: DeltaStart::Always,
            parallelism: 1,
        }
    }
}

fn default_delta_schedule() -> String {
    "0 4 * * *".into()
}
fn default_lookback() -> u32 {
    1
}

/// The side jobs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrichmentSpec {
    #[serde(default = "default_enrich_schedule")]
    pub schedule: String,
    #[serde(default)]
    pub omdb: OmdbSpec,
    #[serde(default)]
    pub collaborations: Toggle,
    #[serde(default)]
    pub person_quality_score: Toggle,
    /// Cast members billed under this order count as key people for collaborations and the
    /// person quality score (directors and writers always do).
    #[serde(default = "default_top_cast")]
    #[schemars(range(min = 1, max = 1000))]
    pub top_cast: i32,
}

impl Default for EnrichmentSpec {
    fn default() -> Self {
        EnrichmentSpec {
            schedule: default_enrich_schedule(),
            omdb: OmdbSpec::default(),
            collaborations: Toggle::default(),
            person_quality_score: Toggle::default(),
            top_cast: default_top_cast(),
        }
    }
}

fn default_top_cast() -> i32 {
    crate::plan::enrich::DEFAULT_TOP_CAST
}

/// Refetching stored movies the changes feed does not report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshSpec {
    /// Movies a day that Delta runs refetch on top of the changes feed, the ones fetched longest
    /// ago first (the Delta runs of the last 24 hours share the budget; 0 turns it off). Each
    /// costs one request of `tmdb.requestsPerSecond`.
    #[serde(default = "default_stale_per_day")]
    #[schemars(range(min = 0, max = 10000000))]
    pub stale_movies_per_day: u32,
}

impl Default for RefreshSpec {
    fn default() -> Self {
        RefreshSpec {
            stale_movies_per_day: default_stale_per_day(),
        }
    }
}

fn default_stale_per_day() -> u32 {
    1000
}

fn default_enrich_schedule() -> String {
    "0 5 * * *".into()
}

/// On or off.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Toggle {
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

/// OMDb enrichment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OmdbSpec {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// OMDb calls per UTC day across all runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub daily_limit: Option<u32>,
}

/// Alert thresholds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertsSpec {
    #[serde(default = "default_stall")]
    #[schemars(range(min = 1))]
    pub stall_after_hours: u32,
    #[serde(default = "default_error_rate")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub error_rate_percent: f64,
    #[serde(default = "default_low_rate")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub low_rate_fraction: f64,
}

impl Default for AlertsSpec {
    fn default() -> Self {
        AlertsSpec {
            stall_after_hours: default_stall(),
            error_rate_percent: default_error_rate(),
            low_rate_fraction: default_low_rate(),
        }
    }
}

fn default_stall() -> u32 {
    36
}
fn default_error_rate() -> f64 {
    5.0
}
fn default_low_rate() -> f64 {
    0.5
}

/// History limits.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistorySpec {
    #[serde(default = "default_successful")]
    #[schemars(range(min = 0))]
    pub successful_runs_limit: i32,
    #[serde(default = "default_failed")]
    #[schemars(range(min = 0))]
    pub failed_runs_limit: i32,
}

impl Default for HistorySpec {
    fn default() -> Self {
        HistorySpec {
            successful_runs_limit: default_successful(),
            failed_runs_limit: default_failed(),
        }
    }
}

fn default_successful() -> i32 {
    7
}
fn default_failed() -> i32 {
    3
}

/// Settings of the Jobs that execute runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplateSpec {
    /// Worker image (defaults to the operator's own image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Longest a run's Job may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60))]
    pub active_deadline_seconds: Option<i64>,
    /// Retries per shard pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit_per_index: Option<i32>,
}

/// The lifecycle of a TmdbSync.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SyncPhase {
    /// Not reconciled yet, or the catalog is not loaded.
    Pending,
    /// Importing the catalog page by page.
    Bootstrapping,
    /// Every catalog page is done; deltas keep it fresh.
    Maintaining,
    /// Scheduling is suspended.
    Suspended,
    /// The spec or its secrets are unusable, or the last run failed.
    Degraded,
}

/// Observed state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TmdbSyncStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SyncPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_runs: Option<LastRuns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_runs: Option<NextRuns>,
    /// The latest scheduled time a run was created for, per type (CronJob's lastScheduleTime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_times: Option<NextRuns>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub side_jobs: Vec<SideJobStatus>,
    /// How much of the catalog the latest Discover walk reached (`bulk.source: Discover` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover: Option<DiscoverStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The coverage of the latest Discover catalog walk.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverStatus {
    /// The day of the walk (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Distinct movie ids the walk listed into the catalog.
    pub listed: i64,
    /// Movies discover reports in all.
    pub reported: i64,
    /// Movies discover reports but could not list (past its page cap).
    pub not_reachable: i64,
    /// Ids in TMDb's daily export that the sync imports, when the export could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_ids: Option<i64>,
    /// Of those, ids discover did not list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_ids_not_reachable: Option<i64>,
    /// The walk's coverage in a sentence.
    pub message: String,
}

/// Catalog coverage and ETA (the same numbers as `tmdbsync status`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressStatus {
    pub tmdb_total: i64,
    pub imported: i64,
    /// Ids in TMDb's latest export that TMDb does not serve (its API answers 404): deleted or not
    /// public. They are neither imported nor remaining, and are rechecked weekly.
    #[serde(default)]
    pub not_served: i64,
    pub remaining: i64,
    pub percent_complete: f64,
    pub total_pages: i32,
    pub last_page_processed: i32,
    pub daily_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_days_remaining: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_completion: Option<String>,
}

/// The latest finished run of each type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct LastRuns {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<LastRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk: Option<LastRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<LastRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrich: Option<LastRun>,
}

/// A time per run type (RFC 3339).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct NextRuns {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrich: Option<String>,
}

/// The latest finished run of a type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastRun {
    pub name: String,
    pub phase: super::RunPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

/// Completion of one side-job stage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SideJobStatus {
    pub stage: String,
    pub completed: i64,
    pub total: i64,
    pub percent: f64,
}
