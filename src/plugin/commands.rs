//! The commands: read the objects, call [`super::model`] and [`super::render`], print; the three
//! that act make one write each.

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde::Serialize;
use serde_json::json;

use super::PluginError;
use super::args::{Cli, Command, Global, Output, Reset, RunNow};
use super::describe::{self, EventLine, JobState, PodState, RunDescription};
use super::model;
use super::render::{self, Colour, RunRow};
use crate::api::sync_run::{RunKind, SyncRef, SyncRunSpec, Trigger};
use crate::api::{SyncRun, TmdbSync};
use crate::plan::health::SyncReport;

/// Runs the parsed command line; prints to stdout.
pub async fn run(cli: Cli) -> Result<(), PluginError> {
    crate::http::install_crypto_provider();
    let (client, default_ns) = client(&cli.global).await?;
    let ns = cli.global.namespace.clone().unwrap_or(default_ns);
    let k = Kube {
        client,
        ns,
        all: cli.global.all_namespaces,
        output: cli.global.output,
        colour: Colour::detect(),
        terminal: std::io::IsTerminal::is_terminal(&std::io::stdout()),
    };
    across_namespaces(&cli)?;
    match cli.command {
        Command::Status {
            name,
            watch,
            timeout,
        } => {
            let bound = timeout.and_then(|t| t.to_std().ok());
            k.status(name.as_deref(), watch, bound).await
        }
        Command::Runs { name, since } => k.runs(name.as_deref(), since).await,
        Command::Describe { run } => k.describe(&run).await,
        Command::Pause { name } => k.suspend(&name, true).await,
        Command::Resume { name } => k.suspend(&name, false).await,
        Command::RunNow(r) => k.run_now(&r).await,
        Command::Reset(r) => k.reset(&r).await,
        Command::Report { name, days } => k.report(&name, days).await,
    }
}

/// `-A` lists: it goes with `status` and `runs` without a NAME, as kubectl refuses to get a
/// named object across all namespaces.
fn across_namespaces(cli: &Cli) -> Result<(), PluginError> {
    if !cli.global.all_namespaces {
        return Ok(());
    }
    match &cli.command {
        Command::Status { name: None, .. } | Command::Runs { name: None, .. } => Ok(()),
        Command::Status { .. } | Command::Runs { .. } => Err(PluginError::Usage(
            "a TmdbSync cannot be named across all namespaces: use -n NAMESPACE with NAME, or -A without it".into(),
        )),
        _ => Err(PluginError::Usage(
            "-A applies to `status` and `runs` without NAME; use -n NAMESPACE".into(),
        )),
    }
}

/// Writes `text` to stdout; `Ok(false)` when the reader went away (a closed pipe, e.g. `| head`),
/// which ends a command quietly instead of with a panic.
fn emit(text: &str) -> Result<bool, PluginError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(PluginError::Output(e.to_string())),
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM: how a person or a supervisor asks a watch to stop.
async fn stop_asked() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// How often `status -w` looks for changes.
const WATCH_POLL: Duration = Duration::from_secs(2);

/// The client from the kubeconfig (`--kubeconfig`, `--context`) or, inside a pod, its service
/// account; with timeouts, and the namespace the context names.
async fn client(g: &Global) -> Result<(Client, String), PluginError> {
    let options = KubeConfigOptions {
        context: g.context.clone(),
        ..Default::default()
    };
    let bad = |e: &dyn std::fmt::Display| PluginError::Kubeconfig(e.to_string());
    let mut config = match (&g.kubeconfig, &g.context) {
        (Some(path), _) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| bad(&e))?;
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| bad(&e))?
        }
        (None, Some(_)) => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| bad(&e))?,
        (None, None) => Config::infer().await.map_err(|e| bad(&e))?,
    };
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    let ns = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| bad(&e))?;
    Ok((client, ns))
}

struct Kube {
    client: Client,
    ns: String,
    all: bool,
    output: Option<Output>,
    colour: Colour,
    /// stdout is a terminal: watch frames redraw the screen.
    terminal: bool,
}

fn encode(value: &impl Serialize, output: Output) -> Result<String, PluginError> {
    let out = |e: &dyn std::fmt::Display| PluginError::Output(e.to_string());
    match output {
        Output::Yaml => serde_norway::to_string(value).map_err(|e| out(&e)),
        _ => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| out(&e)),
    }
}

impl Kube {
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn listing_api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        if self.all {
            Api::all(self.client.clone())
        } else {
            self.api()
        }
    }

    fn text(&self) -> bool {
        matches!(self.output, None | Some(Output::Text))
    }

    fn structured(&self) -> Result<Output, PluginError> {
        match self.output {
            Some(Output::Csv) => Err(PluginError::Usage(
                "-o csv is for `report`; use text, json or yaml here".into(),
            )),
            Some(o) => Ok(o),
            None => Ok(Output::Text),
        }
    }

    async fn sync(&self, name: &str) -> Result<TmdbSync, PluginError> {
        self.api::<TmdbSync>()
            .get_opt(name)
            .await?
            .ok_or_else(|| {
                PluginError::NotFound(format!(
                    "TmdbSync {name:?} not found in namespace {:?} (list them: kubectl get tmdbsyncs -n {})",
                    self.ns, self.ns
                ))
            })
    }

    async fn runs_in(&self, ns: &str) -> Result<Vec<SyncRun>, PluginError> {
        Ok(Api::<SyncRun>::namespaced(self.client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items)
    }

    /// The syncs asked for, with their namespaces' runs.
    async fn syncs(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<(TmdbSync, Vec<SyncRun>)>, PluginError> {
        let syncs = match name {
            Some(n) => vec![self.sync(n).await?],
            None => {
                let mut l = self
                    .listing_api::<TmdbSync>()
                    .list(&ListParams::default())
                    .await?
                    .items;
                l.sort_by_key(|s| (s.namespace(), s.name_any()));
                l
            }
        };
        let mut out = Vec::new();
        for s in syncs {
            let runs = self.runs_in(&s.namespace().unwrap_or_default()).await?;
            out.push((s, runs));
        }
        Ok(out)
    }

    /// `status`, and with `watch` its frames: one whenever the resource versions of the syncs
    /// or their runs change, until asked to stop, `bound` passes or the reader goes away. A
    /// frame is written whole (no await inside), so stopping never cuts one.
    async fn status(
        &self,
        name: Option<&str>,
        watch: bool,
        bound: Option<Duration>,
    ) -> Result<(), PluginError> {
        let output = self.structured()?;
        if !watch {
            self.status_frame(name, output, None).await?;
            return Ok(());
        }
        let frames = async {
            let mut last_seen = None;
            while self
                .status_frame(name, output, Some(&mut last_seen))
                .await?
            {
                tokio::time::sleep(WATCH_POLL).await;
            }
            Ok::<(), PluginError>(())
        };
        let until_bound = async {
            match bound {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = frames => r,
            () = stop_asked() => Ok(()),
            () = until_bound => Ok(()),
        }
    }

    /// Prints the status; when watching, only if what it is built from (the resource versions)
    /// changed since `last_seen`, which it updates. `Ok(false)` when stdout is closed.
    async fn status_frame(
        &self,
        name: Option<&str>,
        output: Output,
        last_seen: Option<&mut Option<String>>,
    ) -> Result<bool, PluginError> {
        let syncs = self.syncs(name).await?;
        let watching = last_seen.is_some();
        if let Some(last) = last_seen {
            let seen: String = syncs
                .iter()
                .flat_map(|(s, runs)| {
                    std::iter::once(s.resource_version())
                        .chain(runs.iter().map(|r| r.resource_version()))
                })
                .map(|v| v.unwrap_or_default())
                .collect::<Vec<_>>()
                .join(",");
            if last.as_deref() == Some(seen.as_str()) {
                return Ok(true);
            }
            *last = Some(seen);
        }
        let now = Utc::now();
        let healths: Vec<_> = syncs
            .iter()
            .map(|(s, runs)| (s, model::health(s, runs, now)))
            .collect();
        let text = if output == Output::Text {
            if healths.is_empty() {
                let place = if self.all {
                    "any namespace".to_string()
                } else {
                    format!("namespace {:?}", self.ns)
                };
                format!("No TmdbSyncs found in {place}.\n")
            } else {
                healths
                    .iter()
                    .map(|(s, h)| render::status(s, h, self.colour))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        } else if name.is_some() {
            encode(&healths[0].1, output)?
        } else {
            let all: Vec<_> = healths.iter().map(|(_, h)| h).collect();
            encode(&all, output)?
        };
        if !watching || output != Output::Text {
            return emit(&text);
        }
        // A watch frame: on a terminal it replaces the last one; elsewhere frames follow one
        // another, each closed by a rule.
        let header = format!(
            "Updated {} UTC; watching (Ctrl-C stops)\n\n",
            now.format("%Y-%m-%d %H:%M:%S")
        );
        let frame = if self.terminal {
            format!("\x1b[H\x1b[2J{header}{text}")
        } else {
            format!("{header}{text}{}\n", "─".repeat(60))
        };
        emit(&frame)
    }

    async fn runs(
        &self,
        name: Option<&str>,
        since: Option<chrono::TimeDelta>,
    ) -> Result<(), PluginError> {
        let output = self.structured()?;
        if let Some(n) = name {
            self.sync(n).await?;
        }
        let now = Utc::now();
        let mut runs: Vec<SyncRun> = self
            .listing_api::<SyncRun>()
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|r| name.is_none_or(|n| r.spec.sync_ref.name == n))
            .filter(|r| since.is_none_or(|d| model::started_at(r).is_none_or(|t| t >= now - d)))
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse((model::started_at(r), r.name_any())));
        let rows: Vec<RunRow> = runs.iter().map(|r| RunRow::of(r, now)).collect();
        let text = match output {
            Output::Text => render::runs_table(&rows, self.all, name.is_none(), self.colour),
            o => encode(&rows, o)?,
        };
        emit(&text).map(drop)
    }

    async fn describe(&self, name: &str) -> Result<(), PluginError> {
        let output = self.structured()?;
        let run = self.api::<SyncRun>().get_opt(name).await?.ok_or_else(|| {
            PluginError::NotFound(format!(
                "SyncRun {name:?} not found in namespace {:?} (list them: kubectl tmdbsync runs -n {})",
                self.ns, self.ns
            ))
        })?;
        let job_name = run
            .status
            .as_ref()
            .and_then(|s| s.job_name.clone())
            .unwrap_or_else(|| run.name_any());
        let job = self.api::<Job>().get_opt(&job_name).await?;
        let pods: Vec<PodState> = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&format!("job-name={job_name}")))
            .await?
            .items
            .iter()
            .map(PodState::of)
            .collect();
        let mut events = Vec::new();
        let mut objects = vec![("SyncRun", run.name_any())];
        if job.is_some() {
            objects.push(("Job", job_name.clone()));
        }
        objects.extend(pods.iter().map(|p| ("Pod", p.name.clone())));
        for (kind, obj) in objects {
            let fields = format!("involvedObject.kind={kind},involvedObject.name={obj}");
            events.extend(
                self.api::<Event>()
                    .list(&ListParams::default().fields(&fields))
                    .await?
                    .items,
            );
        }
        events.sort_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.as_second()))
        });
        let d = RunDescription {
            next_steps: describe::next_steps(&run, &pods),
            run,
            job: job.as_ref().map(JobState::of),
            pods,
            events: events.iter().map(EventLine::of).collect(),
        };
        let text = match output {
            Output::Text => describe::text(&d, self.colour),
            o => encode(&d, o)?,
        };
        emit(&text).map(drop)
    }

    async fn suspend(&self, name: &str, suspend: bool) -> Result<(), PluginError> {
        let sync = self.sync(name).await?;
        let ns = &self.ns;
        let (verb, other) = if suspend {
            ("paused", "resume")
        } else {
            ("resumed", "pause")
        };
        if sync.spec.suspend == suspend {
            println!(
                "tmdbsync/{name} is already {verb} (spec.suspend: {suspend}); nothing changed"
            );
            return Ok(());
        }
        self.api::<TmdbSync>()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"suspend": suspend}})),
            )
            .await?;
        if suspend {
            println!("tmdbsync/{name} paused: no new run starts; running Jobs finish.");
        } else {
            println!("tmdbsync/{name} resumed: runs are scheduled again.");
        }
        println!("See it:   kubectl tmdbsync status {name} -n {ns}");
        println!("Undo it:  kubectl tmdbsync {other} {name} -n {ns}");
        Ok(())
    }

    async fn run_now(&self, r: &RunNow) -> Result<(), PluginError> {
        let kind = RunKind::from(r.run_type);
        if r.pages.is_some() && kind != RunKind::Bulk {
            return Err(PluginError::Usage(
                "--pages applies to --type bulk only".into(),
            ));
        }
        if r.window.is_some() && kind != RunKind::Delta {
            return Err(PluginError::Usage(
                "--window applies to --type delta only".into(),
            ));
        }
        self.sync(&r.name).await?;
        let ty = format!("{kind:?}").to_lowercase();
        let mut run = SyncRun::new(
            "",
            SyncRunSpec {
                sync_ref: SyncRef {
                    name: r.name.clone(),
                },
                run_type: kind,
                trigger: Trigger::Manual,
                pages: r.pages,
                window: r.window.clone(),
                stages: None,
                parallelism: None,
            },
        );
        run.metadata.name = None;
        run.metadata.generate_name = Some(format!("{}-{ty}-", r.name));
        let created = self
            .api::<SyncRun>()
            .create(&PostParams::default(), &run)
            .await?;
        let run_name = created.name_any();
        let ns = &self.ns;
        let what = match (&r.pages, &r.window) {
            (Some(p), _) => format!(", pages {}-{}", p.from, p.to),
            (_, Some(w)) => format!(", days {}..{}", w.start, w.end),
            _ => String::new(),
        };
        if self.text() {
            println!(
                "syncrun/{run_name} created (Manual {kind:?} run of tmdbsync/{}{what})",
                r.name
            );
            println!("Follow it:   kubectl tmdbsync describe {run_name} -n {ns}");
            println!(
                "Wait for it: kubectl wait --for=condition=Succeeded syncrun/{run_name} -n {ns} --timeout=1h"
            );
        } else {
            print!("{}", encode(&created, self.structured()?)?);
        }
        Ok(())
    }

    async fn reset(&self, r: &Reset) -> Result<(), PluginError> {
        use crate::plan::reset::{RESET_REQUESTED_AT, RESET_WHAT, ResetKind};
        let sync = self.sync(&r.name).await?;
        let kind = match r.delta_since {
            Some(day) => ResetKind::DeltaSince(day),
            None => ResetKind::Bulk,
        };
        let total = sync
            .status
            .as_ref()
            .and_then(|s| s.progress.as_ref())
            .map_or(0, |p| p.total_pages);
        let ns = &self.ns;
        let name = &r.name;
        println!("Reset of tmdbsync/{name} in namespace {ns}: the controller will");
        println!("  {}", kind.plan(total));
        if r.confirm.as_deref() != Some(name.as_str()) {
            let flag = match kind {
                ResetKind::Bulk => "--bulk".to_string(),
                ResetKind::DeltaSince(d) => format!("--delta-since {d}"),
            };
            println!("Nothing done. To carry it out:");
            println!("  kubectl tmdbsync reset {name} {flag} --confirm={name} -n {ns}");
            return Ok(());
        }
        let token = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.api::<TmdbSync>()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {
                    RESET_REQUESTED_AT: token,
                    RESET_WHAT: kind.annotation(),
                }}})),
            )
            .await?;
        println!("Requested ({RESET_REQUESTED_AT}={token}).");
        println!(
            "The controller acknowledges it in status.lastHandledResetAt and records an Event:"
        );
        println!(
            "  kubectl get tmdbsync {name} -n {ns} -o jsonpath='{{.status.lastHandledResetAt}}'"
        );
        println!("  kubectl describe tmdbsync {name} -n {ns}");
        Ok(())
    }

    async fn report(&self, name: &str, days: u32) -> Result<(), PluginError> {
        let sync = self.sync(name).await?;
        let runs = self.runs_in(&self.ns).await?;
        let now = Utc::now();
        let report = SyncReport::build(
            &model::report_inputs(&sync, &runs, now),
            &crate::plan::facts::sync_facts(&sync),
            days,
        );
        let text = match self.output {
            None | Some(Output::Csv) | Some(Output::Text) => {
                crate::web::download::report_csv(&report)
                    .map_err(|e| PluginError::Output(e.to_string()))?
            }
            Some(o) => encode(&report, o)?,
        };
        emit(&text).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn all_namespaces_goes_with_listing_status_and_runs_only() {
        let check = |args: &[&str]| {
            let cli = Cli::try_parse_from(
                std::iter::once("kubectl-tmdbsync").chain(args.iter().copied()),
            )
            .unwrap();
            across_namespaces(&cli).map_err(|e| e.exit_code())
        };
        for fine in [
            &["status", "-A"][..],
            &["runs", "-A", "--since", "1d"],
            &["status", "-w", "-A"],
            &["status", "cinegraph"],
            &["pause", "cinegraph", "-n", "media"],
        ] {
            assert_eq!(check(fine), Ok(()), "{fine:?}");
        }
        for usage in [
            &["status", "cinegraph", "-A"][..],
            &["runs", "cinegraph", "-A"],
            &["describe", "run-1", "-A"],
            &["pause", "cinegraph", "-A"],
            &["report", "cinegraph", "-A"],
        ] {
            assert_eq!(check(usage), Err(2), "{usage:?}");
        }
    }
}
