//! The command line of `kubectl tmdbsync`: kubectl's flags (`-n`, `-A`, `--context`,
//! `--kubeconfig`, `-o`) on every command, and the parsers of `--since`, `--pages`, `--window`
//! and `--delta-since`.

use chrono::{NaiveDate, TimeDelta};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::sync_run::{PageRangeSpec, WindowSpec};

/// `kubectl tmdbsync`: the Sync Health of TmdbSyncs, their runs, and the controls (pause, resume,
/// run now, reset), through the Kubernetes API with your own credentials.
#[derive(Debug, Parser)]
#[command(name = "kubectl tmdbsync", bin_name = "kubectl tmdbsync", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags kubectl users expect, accepted before or after the command.
#[derive(Debug, Args, Clone, Default)]
pub struct Global {
    /// The namespace (default: the kubeconfig context's, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Every namespace (status and runs).
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
    #[arg(long, global = true)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Output format: text, json or yaml (csv for `report`).
    #[arg(short = 'o', long, global = true, value_enum)]
    pub output: Option<Output>,
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Yaml,
    Csv,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The Sync Health of a TmdbSync (all in the namespace without NAME): phase, progress and
    /// ETA, last 7 days, 30-day history, side jobs, alerts, recent runs, conditions, next runs.
    Status {
        /// The TmdbSync.
        name: Option<String>,
        /// Prints it again whenever the TmdbSync or one of its runs changes, until Ctrl-C (or
        /// SIGTERM) or `--timeout`; either ends it with exit 0 after a whole frame.
        #[arg(short = 'w', long)]
        watch: bool,
        /// With `-w`: stop watching after this long, e.g. `10m`, `1h` (default: until Ctrl-C).
        #[arg(long, value_parser = parse_since, requires = "watch")]
        timeout: Option<TimeDelta>,
    },
    /// One row per SyncRun: type, trigger, phase, pages, imported, skipped, errors, duration,
    /// started; newest first.
    Runs {
        /// Only the runs of this TmdbSync.
        name: Option<String>,
        /// Only runs started within this long, e.g. `30d`, `12h`, `90m`.
        #[arg(long, value_parser = parse_since)]
        since: Option<TimeDelta>,
    },
    /// A SyncRun with its Job, pods, events and a sample of its failures, and what to do next.
    Describe {
        /// The SyncRun.
        run: String,
    },
    /// Suspends scheduling (`spec.suspend: true`): running Jobs finish, no new run starts.
    Pause {
        /// The TmdbSync.
        name: String,
    },
    /// Resumes scheduling (`spec.suspend: false`).
    Resume {
        /// The TmdbSync.
        name: String,
    },
    /// Creates a Manual SyncRun now and prints how to follow it.
    RunNow(RunNow),
    /// Asks the controller to re-import every page (`--bulk`) or to replay the changes feed since
    /// a day (`--delta-since`); prints the plan and acts only with `--confirm=NAME`.
    Reset(Reset),
    /// The report download of the web page: one row per day and per run (`-o csv`, the default,
    /// or `-o json`).
    Report {
        /// The TmdbSync.
        name: String,
        /// Days covered, ending today.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

/// `run-now`'s arguments.
#[derive(Debug, Args)]
pub struct RunNow {
    /// The TmdbSync.
    pub name: String,
    /// The run's type.
    #[arg(long = "type", value_enum)]
    pub run_type: RunTypeArg,
    /// Bulk only: catalog pages `A-B` (stored movies refetched too).
    #[arg(long, value_parser = parse_pages)]
    pub pages: Option<PageRangeSpec>,
    /// Delta only: days `FROM..TO` (`YYYY-MM-DD`, both included).
    #[arg(long, value_parser = parse_window)]
    pub window: Option<WindowSpec>,
}

/// `reset`'s arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["bulk", "delta_since"])))]
pub struct Reset {
    /// The TmdbSync.
    pub name: String,
    /// Re-import every catalog page: page checkpoints cleared, stored movies kept and refetched.
    #[arg(long)]
    pub bulk: bool,
    /// Replay TMDb's changes feed from this day (`YYYY-MM-DD`) in windows of at most 14 days.
    #[arg(long, value_parser = parse_day)]
    pub delta_since: Option<NaiveDate>,
    /// Carries it out: the TmdbSync's name, repeated.
    #[arg(long)]
    pub confirm: Option<String>,
}

/// A run type on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunTypeArg {
    Catalog,
    Bulk,
    Delta,
    Enrich,
}

impl From<RunTypeArg> for crate::api::sync_run::RunKind {
    fn from(t: RunTypeArg) -> Self {
        use crate::api::sync_run::RunKind;
        match t {
            RunTypeArg::Catalog => RunKind::Catalog,
            RunTypeArg::Bulk => RunKind::Bulk,
            RunTypeArg::Delta => RunKind::Delta,
            RunTypeArg::Enrich => RunKind::Enrich,
        }
    }
}

/// `30d`, `12h`, `90m`, `45s`, `2w`.
pub fn parse_since(s: &str) -> Result<TimeDelta, String> {
    let bad = || format!("{s:?} is not a duration like 30d, 12h, 90m, 45s or 2w");
    let split = s.len().checked_sub(1).filter(|&i| i > 0).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds)
        .and_then(TimeDelta::try_seconds)
        .ok_or_else(bad)
}

/// `A-B` (1 ≤ A ≤ B) or a single page `A`.
pub fn parse_pages(s: &str) -> Result<PageRangeSpec, String> {
    let bad = || format!("{s:?} is not pages A-B with 1 <= A <= B, e.g. 1-50");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let from: i32 = a.trim().parse().map_err(|_| bad())?;
    let to: i32 = b.trim().parse().map_err(|_| bad())?;
    if from < 1 || from > to {
        return Err(bad());
    }
    Ok(PageRangeSpec { from, to })
}

/// `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a day YYYY-MM-DD, e.g. 2026-03-01"))
}

/// `FROM..TO` (days, FROM ≤ TO) or a single day.
pub fn parse_window(s: &str) -> Result<WindowSpec, String> {
    let (a, b) = s.split_once("..").unwrap_or((s, s));
    let (from, to) = (parse_day(a)?, parse_day(b)?);
    if from > to {
        return Err(format!("{s:?}: the window starts after it ends"));
    }
    Ok(WindowSpec {
        start: from.to_string(),
        end: to.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pages_and_windows_parse_or_say_why_not() {
        assert_eq!(parse_since("30d"), Ok(TimeDelta::days(30)));
        assert_eq!(parse_since("90m"), Ok(TimeDelta::minutes(90)));
        assert_eq!(parse_since("2w"), Ok(TimeDelta::days(14)));
        for bad in ["", "d", "30", "-1d", "0h", "3y", "1.5d"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_pages("1-50"), Ok(PageRangeSpec { from: 1, to: 50 }));
        assert_eq!(parse_pages("7"), Ok(PageRangeSpec { from: 7, to: 7 }));
        for bad in ["0-3", "5-2", "a-b", "1-", ""] {
            assert!(parse_pages(bad).is_err(), "{bad}");
        }
        let w = parse_window("2026-03-01..2026-03-05").unwrap();
        assert_eq!(
            (w.start.as_str(), w.end.as_str()),
            ("2026-03-01", "2026-03-05")
        );
        assert!(parse_window("2026-03-05..2026-03-01").is_err());
        assert!(parse_window("2026-02-30").is_err());
    }

    #[test]
    fn kubectl_flags_go_before_or_after_the_command() {
        let cli = Cli::try_parse_from([
            "kubectl-tmdbsync",
            "-n",
            "media",
            "status",
            "cinegraph",
            "-o",
            "json",
            "--context",
            "kind-x",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("media"));
        assert_eq!(cli.global.output, Some(Output::Json));
        assert_eq!(cli.global.context.as_deref(), Some("kind-x"));
        assert!(matches!(
            cli.command,
            Command::Status {
                name: Some(_),
                watch: false,
                timeout: None
            }
        ));
        let cli =
            Cli::try_parse_from(["kubectl-tmdbsync", "status", "-w", "--timeout", "90s"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Status {
                name: None,
                watch: true,
                timeout: Some(t)
            } if t == TimeDelta::seconds(90)
        ));
        let cli = Cli::try_parse_from([
            "kubectl-tmdbsync",
            "run-now",
            "cinegraph",
            "--type",
            "bulk",
            "--pages",
            "3-4",
            "-A",
        ])
        .unwrap();
        assert!(cli.global.all_namespaces);
        match cli.command {
            Command::RunNow(r) => {
                assert_eq!(r.run_type, RunTypeArg::Bulk);
                assert_eq!(r.pages, Some(PageRangeSpec { from: 3, to: 4 }));
            }
            other => panic!("{other:?}"),
        }
        // reset needs --bulk or --delta-since; a bad type or day is refused by clap (exit 2).
        for bad in [
            vec!["kubectl-tmdbsync", "reset", "cinegraph"],
            vec!["kubectl-tmdbsync", "run-now", "cinegraph", "--type", "full"],
            vec![
                "kubectl-tmdbsync",
                "reset",
                "x",
                "--delta-since",
                "yesterday",
            ],
            vec!["kubectl-tmdbsync", "runs", "--since", "a week"],
            // --timeout bounds a watch: alone it means nothing.
            vec!["kubectl-tmdbsync", "status", "--timeout", "1m"],
        ] {
            let e = Cli::try_parse_from(&bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }
}
