//! `SyncRun`: one run of a TmdbSync (Catalog, Bulk, Delta or Enrich), executed by one Job.
//! The controller creates scheduled ones; a user may apply a Manual one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What one run does: its TmdbSync, its type and, for a manual run, the pages, days or stages.
/// Immutable once created: to run again, create a new SyncRun.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tmdbsync.io",
    version = "v1alpha1",
    kind = "SyncRun",
    plural = "syncruns",
    shortname = "tmdbrun",
    category = "tmdb-all",
    namespaced,
    status = "SyncRunStatus",
    doc = "SyncRun is one run of a TmdbSync (Catalog, Bulk, Delta or Enrich), executed by one Kubernetes Job. The controller creates the scheduled ones; apply a Manual one to re-import pages or re-read a delta window. Wait for it with `kubectl wait --for=condition=Succeeded syncrun/NAME`.",
    printcolumn = r#"{"name":"Sync","type":"string","jsonPath":".spec.syncRef.name"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.reason","priority":1,"description":"Why the run is in its phase"}"#,
    printcolumn = r#"{"name":"Pages","type":"integer","jsonPath":".status.pagesProcessed"}"#,
    printcolumn = r#"{"name":"Imported","type":"integer","jsonPath":".status.moviesImported"}"#,
    printcolumn = r#"{"name":"Skipped","type":"integer","jsonPath":".status.moviesSkipped"}"#,
    printcolumn = r#"{"name":"Errors","type":"integer","jsonPath":".status.errors"}"#,
    printcolumn = r#"{"name":"Duration","type":"string","jsonPath":".status.duration"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a SyncRun's spec is immutable; create a new run"))]
#[x_kube(validation = Rule::new("!has(self.pages) || self.type == 'Bulk'").message("pages apply to Bulk runs only"))]
#[x_kube(validation = Rule::new("!has(self.window) || self.type == 'Delta'").message("window applies to Delta runs only"))]
#[x_kube(validation = Rule::new("!has(self.stages) || self.type == 'Enrich'").message("stages apply to Enrich runs only"))]
#[serde(rename_all = "camelCase")]
pub struct SyncRunSpec {
    /// The TmdbSync in this namespace the run belongs to (its secrets, database and limits).
    pub sync_ref: SyncRef,
    /// What the run does: Catalog, Bulk, Delta or Enrich.
    #[serde(rename = "type")]
    pub run_type: RunKind,
    /// Who asked for it: Scheduled (the controller) or Manual (default: a person or a tool).
    #[serde(default)]
    pub trigger: Trigger,
    /// Bulk only: the catalog pages to import, refetching stored movies too. Default: the next
    /// `pagesPerRun` pages not imported yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<PageRangeSpec>,
    /// Delta only: the days of TMDb's changes feed to read. Default: every day since the last
    /// delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSpec>,
    /// Enrich only: the stages to run. Default: the stages the TmdbSync enables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<EnrichStage>>,
    /// Pods that share a Bulk run (other types use one). Default: the TmdbSync's
    /// `bulk.parallelism`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20))]
    pub parallelism: Option<i32>,
}

/// Reference to the owning TmdbSync.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SyncRef {
    /// The TmdbSync's name.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// What a run does: `Catalog` (loads TMDb's daily ID export into the catalog), `Bulk` (imports
/// catalog pages), `Delta` (refetches movies from TMDb's changes feed) or `Enrich` (OMDb ratings,
/// collaborations, person quality scores; no TMDb calls).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RunKind {
    Catalog,
    Bulk,
    Delta,
    Enrich,
}

impl From<RunKind> for crate::plan::RunType {
    fn from(k: RunKind) -> Self {
        match k {
            RunKind::Catalog => crate::plan::RunType::Catalog,
            RunKind::Bulk => crate::plan::RunType::Bulk,
            RunKind::Delta => crate::plan::RunType::Delta,
            RunKind::Enrich => crate::plan::RunType::Enrich,
        }
    }
}

impl From<crate::plan::RunType> for RunKind {
    fn from(t: crate::plan::RunType) -> Self {
        match t {
            crate::plan::RunType::Catalog => RunKind::Catalog,
            crate::plan::RunType::Bulk => RunKind::Bulk,
            crate::plan::RunType::Delta => RunKind::Delta,
            crate::plan::RunType::Enrich => RunKind::Enrich,
        }
    }
}

/// Why a run exists: `Scheduled` (created by the controller from a schedule) or `Manual`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Trigger {
    Scheduled,
    #[default]
    Manual,
}

/// Catalog pages of 20 movies, both ends included.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.from <= self.to").message("pages.from must not be after pages.to"))]
pub struct PageRangeSpec {
    /// The first page (1 is the most popular 20 movies at first sight).
    #[schemars(range(min = 1))]
    pub from: i32,
    /// The last page, included.
    #[schemars(range(min = 1))]
    pub to: i32,
}

/// Days of TMDb's changes feed, both ends included (`YYYY-MM-DD`, UTC).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.start <= self.end").message("window.start must not be after window.end"))]
pub struct WindowSpec {
    /// The first day, `YYYY-MM-DD`.
    #[schemars(regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub start: String,
    /// The last day, included, `YYYY-MM-DD`.
    #[schemars(regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub end: String,
}

/// An enrichment stage: `Omdb` (ratings), `Collaborations` or `Pqs` (person quality score).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum EnrichStage {
    Omdb,
    Collaborations,
    Pqs,
}

/// Where a run stands: `Pending` (validated, or queued behind another run), `Running` (its Job
/// runs), `Succeeded` or `Failed`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RunPhase {
    /// Validated, or queued behind another run.
    Pending,
    /// Its Job is running.
    Running,
    /// It ended well.
    Succeeded,
    /// It ended with an error (see `reason` and `message`).
    Failed,
}

impl RunPhase {
    /// Whether the run is over.
    pub fn is_finished(self) -> bool {
        matches!(self, RunPhase::Succeeded | RunPhase::Failed)
    }
}

/// What the run did and where it stands; the counters mirror the run's `sync_runs` row in
/// Postgres. Written by the controller only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRunStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the run stands: Pending, Running, Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RunPhase>,
    /// Bulk: the pages the controller planned when the spec left them open (reused after a
    /// controller restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_pages: Option<PageRangeSpec>,
    /// The Job executing the run (same name as the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// The run's row in Postgres (`sync_runs.id`), once its Job has opened it: the `run_id` of
    /// the report downloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// When its Job was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub started_at: Option<String>,
    /// When the run finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub completed_at: Option<String>,
    /// How long it ran, e.g. `1h2m5s`; while running, refreshed at each status update (in
    /// steps of the controller's mirror interval, whole minutes past ten minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Catalog pages the run covers (Bulk, Catalog).
    #[serde(default)]
    pub pages_total: i32,
    /// Catalog pages finished.
    #[serde(default)]
    pub pages_processed: i32,
    /// Movies stored for the first time.
    #[serde(default)]
    pub movies_imported: i32,
    /// Stored movies refetched and updated.
    #[serde(default)]
    pub movies_updated: i32,
    /// Movies passed over: already stored, adult titles excluded, or gone from the export.
    #[serde(default)]
    pub movies_skipped: i32,
    /// Movies TMDb no longer serves (404), marked deleted.
    #[serde(default)]
    pub movies_deleted: i32,
    /// Errors recorded in `sync_errors` (one per movie or request that failed).
    #[serde(default)]
    pub errors: i32,
    /// Movies stored with a data warning: a value of the wrong type or out of its column's range
    /// was stored as null, or text Postgres cannot hold was repaired; `raw` keeps what TMDb sent.
    #[serde(default)]
    pub data_warnings: i32,
    /// Enrich: what each stage did (movies), mirrored from the run's `sync_runs.metadata`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageCounters>,
    /// Why the run is in its phase, one CamelCase word: Waiting, SecretNotFound, JobCreated,
    /// Running, Completed, NothingToDo, AuthFailed, InvalidConfig, InvalidSpec, CatalogEmpty,
    /// DeadlineExceeded, RetriesExhausted, JobMissing, SyncNotFound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What happened, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Up to 10 of the run's failures (movie id, category, HTTP status, message), the oldest
    /// first, so `kubectl tmdbsync describe` shows why without database access; `errors` counts
    /// them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_sample: Vec<ErrorSample>,
    /// Running (True while its Job runs), Succeeded and Failed (Unknown until the run ends, then
    /// one of them True): `kubectl wait --for=condition=Succeeded` waits on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One failure of a run, as recorded in `sync_errors` (secrets already redacted there).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorSample {
    /// The movie that failed, when the failure was about one movie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub movie_id: Option<i64>,
    /// What kind of failure (`http_5xx`, `timeout`, `parse`, `not_found`, ...).
    pub category: String,
    /// TMDb's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i32>,
    /// What went wrong (at most 200 characters).
    pub message: String,
}

/// Failures a SyncRun status samples.
pub const ERROR_SAMPLE_SIZE: i64 = 10;

/// What one enrichment stage of a run did, in movies.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct StageCounters {
    /// `omdb`, `collaborations` or `pqs`.
    pub stage: String,
    /// Movies looked at.
    pub processed: i64,
    /// Movies completed.
    pub done: i64,
    /// Movies that failed (pending again next run).
    pub errors: i64,
}

impl From<crate::plan::enrich::StageCounters> for StageCounters {
    fn from(c: crate::plan::enrich::StageCounters) -> Self {
        StageCounters {
            stage: c.stage,
            processed: c.processed,
            done: c.done,
            errors: c.errors,
        }
    }
}

impl EnrichStage {
    /// The stage's name in `TMDBSYNC_ENRICH_STAGES`.
    pub fn as_str(self) -> &'static str {
        match self {
            EnrichStage::Omdb => "omdb",
            EnrichStage::Collaborations => "collaborations",
            EnrichStage::Pqs => "pqs",
        }
    }
}
