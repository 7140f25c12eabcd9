//! Enrichment stages (the seed's side jobs): names, stage lists, per-run counters and completion.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::RunType;

/// One enrichment stage. They run in this order: PQS reads OMDb ratings and the collaborations'
/// member snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnrichStage {
    Omdb,
    Collaborations,
    Pqs,
}

impl EnrichStage {
    /// All stages, in running order.
    pub const ALL: [EnrichStage; 3] = [
        EnrichStage::Omdb,
        EnrichStage::Collaborations,
        EnrichStage::Pqs,
    ];

    /// The name on the command line, in env, metadata and status.
    pub fn as_str(self) -> &'static str {
        match self {
            EnrichStage::Omdb => "omdb",
            EnrichStage::Collaborations => "collaborations",
            EnrichStage::Pqs => "pqs",
        }
    }

    /// The label of the Sync Health panel.
    pub fn label(self) -> &'static str {
        match self {
            EnrichStage::Omdb => "OMDb Enrichment",
            EnrichStage::Collaborations => "Collaborations",
            EnrichStage::Pqs => "PQS Calculations",
        }
    }
}

impl fmt::Display for EnrichStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Crew jobs whose people count as a movie's key people (with the cast billed under `top_cast`).
pub const KEY_CREW_JOBS: &[&str] = &[
    "Director",
    "Co-Director",
    "Writer",
    "Screenplay",
    "Story",
    "Co-Writer",
    "Screenstory",
];

/// Cast members billed under this `order` are key people by default.
pub const DEFAULT_TOP_CAST: i32 = 10;

/// The year PQS recency is measured from. Fixed, so a score changes only when its inputs do (an
/// incremental run then equals a full recompute); moving it means re-queueing everyone.
pub const PQS_REFERENCE_YEAR: i32 = 2025;

/// What `--stages` asks for, in running order: TMDb stages as listed, the enrichment stages
/// (named one by one or all as `enrich`) as one Enrich run where the first of them is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StagePlan {
    Tmdb(RunType),
    Enrich(Vec<EnrichStage>),
}

/// Parses a comma list such as `catalog,bulk,delta,enrich` or `omdb,pqs`.
pub fn parse_stages(list: &str) -> Result<Vec<StagePlan>, String> {
    let mut plan = Vec::new();
    let mut enrich: Vec<EnrichStage> = Vec::new();
    let mut enrich_at = None;
    for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let named: Vec<EnrichStage> = match word.to_ascii_lowercase().as_str() {
            "enrich" => EnrichStage::ALL.to_vec(),
            "omdb" => vec![EnrichStage::Omdb],
            "collaborations" => vec![EnrichStage::Collaborations],
            "pqs" => vec![EnrichStage::Pqs],
            other => {
                let t: RunType = other.parse().map_err(|_| {
                    format!(
                        "unknown stage {other:?} (expected catalog, bulk, delta, enrich, omdb, collaborations or pqs)"
                    )
                })?;
                plan.push(StagePlan::Tmdb(t));
                continue;
            }
        };
        enrich_at.get_or_insert(plan.len());
        enrich.extend(named);
    }
    if let Some(at) = enrich_at {
        enrich.sort();
        enrich.dedup();
        plan.insert(at, StagePlan::Enrich(enrich));
    }
    if plan.is_empty() {
        return Err("no stage given".into());
    }
    Ok(plan)
}

/// Parses an enrichment-only list (`TMDBSYNC_ENRICH_STAGES`); empty means all three.
pub fn parse_enrich_stages(list: &str) -> Result<Vec<EnrichStage>, String> {
    if list.trim().is_empty() {
        return Ok(EnrichStage::ALL.to_vec());
    }
    match parse_stages(list)?.as_slice() {
        [StagePlan::Enrich(stages)] => Ok(stages.clone()),
        _ => Err(format!(
            "{list:?}: only omdb, collaborations, pqs or enrich are enrichment stages"
        )),
    }
}

/// What one stage of an Enrich run did, kept in `sync_runs.metadata.stages` and mirrored into the
/// SyncRun status. Units are movies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageCounters {
    pub stage: String,
    /// Movies the stage looked at.
    pub processed: i64,
    /// Movies it completed (an outcome recorded, pairs or scores updated).
    pub done: i64,
    /// Movies that failed (recorded in `sync_errors`, pending again next run).
    pub errors: i64,
}

/// Per-stage movie counts as the store gathers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideJobCounts {
    pub stage: Option<EnrichStage>,
    /// Live movies the stage has done for their current version.
    pub done: i64,
    /// Live movies.
    pub total: i64,
}

/// Completion of one side job (the seed's "OMDb Enrichment: 98.2% complete (348,456 / 352,000)").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideJobProgress {
    pub stage: EnrichStage,
    /// "OMDb Enrichment", "Collaborations", "PQS Calculations".
    pub label: String,
    pub done: i64,
    pub total: i64,
    /// Rounded to one decimal, 100 when there is nothing to do.
    pub percent: f64,
    /// False when the TmdbSync turns the stage off: shown as disabled, not as a percentage.
    pub enabled: bool,
}

/// The side-job part of the Sync Health report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SideJobs {
    pub stages: Vec<SideJobProgress>,
    /// Live movies without an IMDb id (OMDb cannot be asked about them).
    pub missing_imdb_id: i64,
    /// The next scheduled Enrich run (RFC 3339), when a schedule is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

/// Completion percentages from counts.
pub fn side_job_progress(counts: &[SideJobCounts]) -> Vec<SideJobProgress> {
    counts
        .iter()
        .filter_map(|c| {
            let stage = c.stage?;
            let percent = if c.total > 0 {
                let p = c.done.min(c.total) as f64 * 100.0 / c.total as f64;
                // Never show 100.0 while something is pending.
                let rounded = (p * 10.0).round() / 10.0;
                if rounded >= 100.0 && c.done < c.total {
                    99.9
                } else {
                    rounded
                }
            } else {
                100.0
            };
            Some(SideJobProgress {
                stage,
                label: stage.label().to_string(),
                done: c.done,
                total: c.total,
                percent,
                enabled: true,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_lists_group_enrichment_into_one_run_in_running_order() {
        use EnrichStage::*;
        let cases: [(&str, Vec<StagePlan>); 4] = [
            (
                "catalog,bulk,delta",
                vec![
                    StagePlan::Tmdb(RunType::Catalog),
                    StagePlan::Tmdb(RunType::Bulk),
                    StagePlan::Tmdb(RunType::Delta),
                ],
            ),
            (
                "enrich",
                vec![StagePlan::Enrich(vec![Omdb, Collaborations, Pqs])],
            ),
            (
                "pqs,delta,omdb",
                vec![
                    StagePlan::Enrich(vec![Omdb, Pqs]),
                    StagePlan::Tmdb(RunType::Delta),
                ],
            ),
            (
                "delta, collaborations,pqs",
                vec![
                    StagePlan::Tmdb(RunType::Delta),
                    StagePlan::Enrich(vec![Collaborations, Pqs]),
                ],
            ),
        ];
        for (list, want) in cases {
            assert_eq!(parse_stages(list).unwrap(), want, "{list}");
        }
        assert!(parse_stages("omdb,bogus").unwrap_err().contains("bogus"));
        assert!(parse_stages("").is_err());
        assert_eq!(parse_enrich_stages("").unwrap(), EnrichStage::ALL.to_vec());
        assert_eq!(parse_enrich_stages("pqs").unwrap(), vec![Pqs]);
        assert!(parse_enrich_stages("bulk,pqs").is_err());
    }

    #[test]
    fn completion_percent_like_the_seed_and_never_100_while_pending() {
        let counts = [
            SideJobCounts {
                stage: Some(EnrichStage::Omdb),
                done: 348_456,
                total: 352_000,
            },
            SideJobCounts {
                stage: Some(EnrichStage::Collaborations),
                done: 351_999,
                total: 352_000,
            },
            SideJobCounts {
                stage: Some(EnrichStage::Pqs),
                done: 0,
                total: 0,
            },
        ];
        let p = side_job_progress(&counts);
        assert_eq!(p[0].percent, 99.0);
        assert_eq!(p[0].label, "OMDb Enrichment");
        assert_eq!(p[1].percent, 99.9);
        assert_eq!(p[2].percent, 100.0);
    }
}
