//! `TmdbSync`: one mirrored catalog — where TMDb and the database are, what runs when, and the
//! progress, last and next runs and conditions in its status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;

/// What to mirror and when: where TMDb and the Postgres database are (by Secret reference), the
/// schedules of the bulk import, the delta sync and the enrichment side jobs, the alert
/// thresholds, and the settings of the Jobs that run them.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tmdbsync.io",
    version = "v1alpha1",
    kind = "TmdbSync",
    plural = "tmdbsyncs",
    shortname = "tmdb",
    category = "tmdb-all",
    namespaced,
    status = "TmdbSyncStatus",
    doc = "TmdbSync mirrors the TMDb movie catalog into a Postgres database and keeps it fresh: the controller schedules SyncRuns (Catalog, Bulk, Delta, Enrich) from its spec and reports progress, ETA, the last and next runs and conditions in its status.",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"Whether the spec, its secrets and the database are usable"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","description":"Why it is (not) Ready"}"#,
    printcolumn = r#"{"name":"Progress","type":"number","jsonPath":".status.progress.percentComplete","description":"Percent of the catalog imported"}"#,
    printcolumn = r#"{"name":"Imported","type":"integer","jsonPath":".status.progress.imported"}"#,
    printcolumn = r#"{"name":"ETA","type":"string","jsonPath":".status.progress.estimatedCompletion"}"#,
    printcolumn = r#"{"name":"Last-Bulk","type":"date","jsonPath":".status.lastRuns.bulk.completedAt"}"#,
    printcolumn = r#"{"name":"Last-Delta","type":"date","jsonPath":".status.lastRuns.delta.completedAt"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TmdbSyncSpec {
    /// Where TMDb is, the Secret holding the API key, and how fast to call it.
    pub tmdb: TmdbSpec,
    /// The Postgres database the catalog is mirrored into (its URL, by Secret reference).
    pub database: DatabaseSpec,
    /// Stops scheduling new runs while true; runs already started finish. Default false.
    #[serde(default)]
    pub suspend: bool,
    /// IANA time zone the cron schedules are read in, e.g. `Europe/Berlin`. Default `UTC`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The progressive bulk import: each scheduled time creates a Catalog run (loads TMDb's daily
    /// ID export) and a Bulk run (imports the next `pagesPerRun` pages of 20 movies).
    #[serde(default)]
    pub bulk: BulkSpec,
    /// The delta sync: a Delta run reads TMDb's changes feed for every day since the last one and
    /// refetches the changed movies.
    #[serde(default)]
    pub delta: DeltaSpec,
    /// The side jobs run by Enrich runs: OMDb ratings, collaborations and person quality scores.
    #[serde(default)]
    pub enrichment: EnrichmentSpec,
    /// Refetching stored movies beyond what the changes feed reports (votes and popularity move
    /// without a change entry).
    #[serde(default)]
    pub refresh: RefreshSpec,
    /// Alert thresholds: they set the Stalled, HighErrorRate and LowImportRate conditions and are
    /// exported as metrics for the chart's alert rules.
    #[serde(default)]
    pub alerts: AlertsSpec,
    /// How many finished SyncRuns of each type to keep; older ones are deleted with their Jobs.
    #[serde(default)]
    pub history: HistorySpec,
    /// Settings of the Kubernetes Jobs that execute the runs (image, resources, placement, limits).
    #[serde(default)]
    pub job_template: JobTemplateSpec,
}

fn default_time_zone() -> String {
    "UTC".into()
}

/// How to reach and call TMDb.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TmdbSpec {
    /// The key of a Secret in this namespace holding the TMDb API key (a v3 key or a v4 read
    /// access token). Only referenced: the key never appears in a status, event or log.
    pub api_key_secret_ref: SecretKeyRef,
    /// TMDb API base URL. Default `https://api.themoviedb.org/3`.
    #[serde(default = "default_tmdb_url")]
    pub base_url: String,
    /// Base URL of TMDb's daily ID exports (`movie_ids_MM_DD_YYYY.json.gz`). Default
    /// `https://files.tmdb.org/p/exports`.
    #[serde(default = "default_export_url")]
    pub export_base_url: String,
    /// Requests per second to TMDb, shared by all pods of a run (each gets an equal share).
    /// TMDb documents about 40 per second. Default 40.
    #[serde(default = "default_rps")]
    #[schemars(range(min = 1, max = 1000))]
    pub requests_per_second: u32,
    /// Imports titles TMDb flags as adult too. Default false.
    #[serde(default)]
    pub include_adult: bool,
    /// The `language` TMDb answers movie details in (e.g. `de-DE`); TMDb's default (`en-US`)
    /// when unset.
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

/// The Postgres database the catalog is mirrored into.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// The key of a Secret in this namespace holding the Postgres URL
    /// (`postgres://user:password@host:5432/db`). Only referenced, never copied.
    pub url_secret_ref: SecretKeyRef,
    /// Seconds a worker keeps retrying database work through an outage (a restart, a fail-over)
    /// before its run fails (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub outage_tolerance_seconds: Option<u32>,
}

/// Where the catalog of movie ids comes from: `Export` (TMDb's daily ID export, complete) or
/// `Discover` (`/discover/movie` in release-date windows, for clusters that cannot reach the export
/// host).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum CatalogSource {
    /// TMDb's daily ID export (complete).
    #[default]
    Export,
    /// `/discover/movie` in release-date windows (for clusters that cannot reach the export host).
    Discover,
}

/// The progressive bulk import of the catalog.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkSpec {
    /// Schedules Catalog and Bulk runs. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When to create a Catalog and a Bulk run: a 5-field cron expression read in `timeZone`.
    /// Default `0 2 * * *`. The Catalog run goes first.
    #[serde(default = "default_bulk_schedule")]
    pub schedule: String,
    /// Where the Catalog run lists movie ids from: `Export` (TMDb's daily ID export, complete) or
    /// `Discover` (`/discover/movie` in release-date windows, for clusters that cannot reach the
    /// export host; `status.discover` counts what it cannot reach).
    #[serde(default)]
    pub source: CatalogSource,
    /// Catalog pages (20 movies each) a scheduled Bulk run imports. Default 200 (about 4,000
    /// movies).
    #[serde(default = "default_pages_per_run")]
    #[schemars(range(min = 1, max = 100000))]
    pub pages_per_run: i32,
    /// Pods that share a Bulk run's pages (and its request budget). Default 1.
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

/// When Delta runs start: `Always` (from the first day, for what is already imported) or
/// `AfterBulk` (only once every catalog page is imported).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeltaStart {
    /// From the first day, for what is already imported.
    #[default]
    Always,
    /// Only once the bulk import is complete.
    AfterBulk,
}

/// The delta sync from TMDb's changes feed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeltaSpec {
    /// Schedules Delta runs. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When to create a Delta run: a 5-field cron expression read in `timeZone`. Default
    /// `0 4 * * *`.
    #[serde(default = "default_delta_schedule")]
    pub schedule: String,
    /// Days the first Delta run reads back when neither an earlier delta nor the catalog export
    /// says where to start. Default 1.
    #[serde(default = "default_lookback")]
    #[schemars(range(min = 1, max = 90))]
    pub lookback_days: u32,
    /// `Always` (default): deltas run from the first day for what is already imported;
    /// `AfterBulk`: only once the bulk import is complete.
    #[serde(default)]
    pub start_when: DeltaStart,
    /// Pods of a Delta run. Delta runs use one pod whatever is set (one pod decides a window's
    /// watermark); kept for symmetry with `bulk`. Default 1.
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

/// The side jobs, run by Enrich runs after the imports.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrichmentSpec {
    /// When to create an Enrich run (when any stage is enabled): a 5-field cron expression read in
    /// `timeZone`. Default `0 5 * * *`.
    #[serde(default = "default_enrich_schedule")]
    pub schedule: String,
    /// OMDb ratings by IMDb id. Off by default; needs `apiKeySecretRef`.
    #[serde(default)]
    pub omdb: OmdbSpec,
    /// Collaborations: pairs of people (directors, writers, top-billed cast) who worked on the
    /// same movies. On by default.
    #[serde(default)]
    pub collaborations: Toggle,
    /// Person quality scores computed from each person's movies. On by default.
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

/// Turns an enrichment stage on or off.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct Toggle {
    /// Runs the stage in Enrich runs. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

/// OMDb enrichment: ratings (IMDb, Rotten Tomatoes, Metacritic) by IMDb id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OmdbSpec {
    /// Runs the OMDb stage in Enrich runs. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// The key of a Secret in this namespace holding the OMDb API key; required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// OMDb base URL. Default `https://www.omdbapi.com/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// OMDb calls per UTC day across all runs (OMDb's free keys allow 1,000). Default 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub daily_limit: Option<u32>,
}

/// Alert thresholds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertsSpec {
    /// Hours without a successful Bulk or Delta run after which the sync counts as stalled
    /// (condition Stalled). Default 36.
    #[serde(default = "default_stall")]
    #[schemars(range(min = 1))]
    pub stall_after_hours: u32,
    /// Error rate of the latest run, in percent of the movies it attempted, above which
    /// condition HighErrorRate is True. Default 5.0.
    #[serde(default = "default_error_rate")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub error_rate_percent: f64,
    /// While bootstrapping, today's imports below this fraction of the 7-day daily average set
    /// condition LowImportRate. Default 0.5.
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

/// How many finished SyncRuns to keep, per run type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistorySpec {
    /// Succeeded runs kept per type; older ones are deleted. Default 7.
    #[serde(default = "default_successful")]
    #[schemars(range(min = 0))]
    pub successful_runs_limit: i32,
    /// Failed runs kept per type; older ones are deleted. Default 3.
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

/// The worker pods' resources when neither the TmdbSync nor the operator's `--job-resources` set
/// any: a worker's peak RSS stays below 100 MB whatever the catalog's size or pages per run
/// (BENCHMARKS.md, `scripts/bench-scale.sh`), so 128Mi is requested and 256Mi is the limit; no CPU
/// limit (a worker waits on TMDb's rate limit, not on CPU, and throttling only slows its batches).
pub fn default_job_resources() -> ResourceRequirements {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let q = |v: &str| Quantity(v.into());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), q("100m")),
            ("memory".into(), q("128Mi")),
        ])),
        limits: Some(BTreeMap::from([("memory".into(), q("256Mi"))])),
        ..Default::default()
    }
}

/// Settings of the Kubernetes Jobs that execute the runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplateSpec {
    /// The worker image; default the operator's own image (`--worker-image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// CPU and memory requests and limits of each worker pod. Unset: the operator's default
    /// (`--job-resources`, the chart's `jobResources`; built in: 100m CPU and 128Mi memory
    /// requested, 256Mi memory limit, from a worker's measured peak below 100 MB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node labels the worker pods must run on (the pod's `nodeSelector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations of the worker pods, to run on tainted nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Longest a run's Job may take, in seconds; it then fails with reason DeadlineExceeded.
    /// Unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60))]
    pub active_deadline_seconds: Option<i64>,
    /// Retries of each pod (shard) of a run before the run fails. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit_per_index: Option<i32>,
}

/// Where a TmdbSync stands: `Pending` (not reconciled yet, or no catalog loaded), `Bootstrapping`
/// (importing the catalog page by page), `Maintaining` (every page imported; deltas keep it
/// fresh), `Suspended` (scheduling suspended) or `Degraded` (the spec or its secrets are unusable,
/// or TMDb refused the API key).
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

/// What the controller observed: the phase, catalog progress and ETA, the last and next runs, the
/// side jobs' completion and the conditions. Written by the controller only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TmdbSyncStatus {
    /// The `metadata.generation` of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the sync stands: Pending, Bootstrapping, Maintaining, Suspended or Degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SyncPhase>,
    /// Catalog coverage, daily import rate and ETA (the numbers `tmdbsync status` shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressStatus>,
    /// The latest finished SyncRun of each type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_runs: Option<LastRuns>,
    /// When the next run of each type is due (a type without a time is disabled or suspended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_runs: Option<NextRuns>,
    /// The latest scheduled time a run was created for, per schedule (like a CronJob's
    /// `lastScheduleTime`), so a restart never schedules the same time twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_times: Option<NextRuns>,
    /// Completion of each enrichment stage (OMDb, collaborations, person quality score).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub side_jobs: Vec<SideJobStatus>,
    /// How much of the catalog the latest Discover walk reached (`bulk.source: Discover` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover: Option<DiscoverStatus>,
    /// The value of the annotation `tmdbsync.io/reset-requested-at` the controller last carried
    /// out (the Flux `requestedAt` pattern): a reset is pending while the two differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reset_at: Option<String>,
    /// Ready (spec, secrets and database usable), CredentialsValid, Stalled, HighErrorRate and
    /// LowImportRate, each with its own lastTransitionTime.
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
    /// Movies in the catalog (TMDb's latest ID export, as far as loaded).
    pub tmdb_total: i64,
    /// Catalog movies stored in the database.
    pub imported: i64,
    /// Ids in TMDb's latest export that TMDb does not serve (its API answers 404): deleted or not
    /// public. They are neither imported nor remaining, and are rechecked weekly.
    #[serde(default)]
    pub not_served: i64,
    /// Catalog movies still to import.
    pub remaining: i64,
    /// Imported movies in percent of the importable catalog (one decimal).
    pub percent_complete: f64,
    /// Catalog pages (20 movies each).
    pub total_pages: i32,
    /// The highest catalog page fully processed.
    pub last_page_processed: i32,
    /// Movies imported per day, averaged over the last 7 days.
    pub daily_rate: f64,
    /// Days until the catalog is imported at `dailyRate`; absent while there is no rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_days_remaining: Option<f64>,
    /// The day the catalog should be imported at `dailyRate` (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date"))]
    pub estimated_completion: Option<String>,
}

/// The latest finished run of each type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct LastRuns {
    /// The latest finished Catalog run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<LastRun>,
    /// The latest finished Bulk run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk: Option<LastRun>,
    /// The latest finished Delta run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<LastRun>,
    /// The latest finished Enrich run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrich: Option<LastRun>,
}

/// A time per run type (RFC 3339, UTC).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct NextRuns {
    /// The time for Catalog runs (they follow the bulk schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub catalog: Option<String>,
    /// The time for Bulk runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub bulk: Option<String>,
    /// The time for Delta runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub delta: Option<String>,
    /// The time for Enrich runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub enrich: Option<String>,
}

/// The latest finished run of a type.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastRun {
    /// The SyncRun's name (it may have been pruned since).
    pub name: String,
    /// How it ended: Succeeded or Failed.
    pub phase: super::RunPhase,
    /// When it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub completed_at: Option<String>,
}

/// Completion of one enrichment stage over the stored movies.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SideJobStatus {
    /// `omdb`, `collaborations` or `pqs` (person quality score).
    pub stage: String,
    /// Whether `spec.enrichment` turns the stage on. A disabled stage shows no `percent`: it is
    /// not being done, which is not the same as 0 % done.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Stored movies the stage has done for their current version.
    pub completed: i64,
    /// Stored movies the stage applies to.
    pub total: i64,
    /// `completed` in percent of `total` (one decimal); absent while the stage is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}
