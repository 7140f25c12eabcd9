//! Pure decisions, no I/O: delta windows, bulk page ranges, progress and ETA. Table-tested.

pub mod alerts;
pub mod discover;
pub mod enrich;
pub mod facts;
pub mod health;
pub mod history;
pub mod pages;
pub mod reset;
pub mod run;
pub mod schedule;
pub mod status;
pub mod sync;
pub mod windows;

use std::fmt;

/// The kinds of sync run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunType {
    Catalog,
    Bulk,
    Delta,
    Enrich,
}

impl RunType {
    /// The `sync_runs.run_type` value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RunType::Catalog => "catalog",
            RunType::Bulk => "bulk",
            RunType::Delta => "delta",
            RunType::Enrich => "enrich",
        }
    }
}

impl fmt::Display for RunType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "catalog" => Ok(RunType::Catalog),
            "bulk" => Ok(RunType::Bulk),
            "delta" => Ok(RunType::Delta),
            "enrich" => Ok(RunType::Enrich),
            other => Err(format!(
                "unknown stage {other:?} (expected catalog, bulk, delta or enrich)"
            )),
        }
    }
}
