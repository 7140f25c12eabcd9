//! `SyncRun`: one run of a TmdbSync (Catalog, Bulk, Delta or Enrich), executed by one Job.
//! The controller creates scheduled ones; a user may apply a Manual one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One run. The spec is immutable once created.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tmdbsync.io",
    version = "v1alpha1",
    kind = "SyncRun",
    plural = "syncruns",
    shortname = "sr",
    namespaced,
    status = "SyncRunStatus",
    printcolumn = r#"{"name":"Sync","type":"string","jsonPath":".spec.syncRef.name"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
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
    /// The TmdbSync (same namespace) this run belongs to.
    pub sync_ref: SyncRef,
    /// What the run does.
    #[serde(rename = "type")]
    pub run_type: RunKind,
    /// Who asked for it.
    #[serde(default)]
    pub trigger: Trigger,
    /// Bulk: the catalog pages to import (default: the next `pagesPerRun` open pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<PageRangeSpec>,
    /// Delta: the days to read (default: every day since the watermark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSpec>,
    /// Enrich: which stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<EnrichStage>>,
    /// Pods sharing the run (default: the TmdbSync's setting for the type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20))]
    pub parallelism: Option<i32>,
}

/// Reference to the owning TmdbSync.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SyncRef {
    #[schemars(length(min = 1))]
    pub name: String,
}

/// The run types.
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

/// Why a run exists.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Trigger {
    Scheduled,
    #[default]
    Manual,
}

/// Bulk pages, both ends included.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.from <= self.to").message("pages.from must not be after pages.to"))]
pub struct PageRangeSpec {
    #[schemars(range(min = 1))]
    pub from: i32,
    #[schemars(range(min = 1))]
    pub to: i32,
}

/// Delta days, both ends included (`YYYY-MM-DD`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.start <= self.end").message("window.start must not be after window.end"))]
pub struct WindowSpec {
    #[schemars(regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub start: String,
    #[schemars(regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub end: String,
}

/// Enrichment stages.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum EnrichStage {
    Omdb,
    Collaborations,
    Pqs,
}

/// A run's lifecycle.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RunPhase {
    /// Waiting: validated, or queued behind another TMDb-calling run.
    Pending,
    /// Its Job is running.
    Running,
    Succeeded,
    Failed,
}

impl RunPhase {
    /// Whether the run is over.
    pub fn is_finished(self) -> bool {
        matches!(self, RunPhase::Succeeded | RunPhase::Failed)
    }
}

/// Observed state of a run; counters mirror the `sync_runs` row.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRunStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RunPhase>,
    /// The pages or window the controller planned when the spec left them open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_pages: Option<PageRangeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default)]
    pub pages_total: i32,
    #[serde(default)]
    pub pages_processed: i32,
    #[serde(default)]
    pub movies_imported: i32,
    #[serde(default)]
    pub movies_updated: i32,
    #[serde(default)]
    pub movies_skipped: i32,
    #[serde(default)]
    pub movies_deleted: i32,
    #[serde(default)]
    pub errors: i32,
    /// Movies stored with a data warning: a value of the wrong type or out of its column's range
    /// was stored as null, or text Postgres cannot hold was repaired; `raw` keeps what TMDb sent.
    #[serde(default)]
    pub data_warnings: i32,
    /// Enrich: what each stage did (movies), mirrored from the run's `sync_runs.metadata`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageCounters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

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
