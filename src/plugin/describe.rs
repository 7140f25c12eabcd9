//! `kubectl tmdbsync describe RUN`: the chain SyncRun → Job → pods with their states, the events
//! of all three, the run's sampled failures (`status.errorSample`) and the next command to run.
//! [`RunDescription`] is what `-o json|yaml` prints; [`text`] renders it.

use std::fmt::Write;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::ResourceExt;
use serde::Serialize;

use super::render::Colour;
use crate::api::sync_run::ErrorSample;
use crate::api::{RunPhase, SyncRun};
use crate::report::thousands;

/// A run and what executes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDescription {
    pub run: SyncRun,
    /// The run's Job (absent before it starts or after it was cleaned up).
    pub job: Option<JobState>,
    pub pods: Vec<PodState>,
    /// Events of the run, its Job and its pods, oldest first.
    pub events: Vec<EventLine>,
    /// What to do next, each a sentence and, where there is one, a command.
    pub next_steps: Vec<NextStep>,
}

/// A Job's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobState {
    pub name: String,
    pub active: i32,
    pub succeeded: i32,
    pub failed: i32,
    /// `Type=Status (Reason: message)` of each true condition.
    pub conditions: Vec<String>,
}

/// A pod's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PodState {
    pub name: String,
    pub phase: String,
    /// The worker container: `running`, `waiting: Reason`, `terminated: Reason (exit N)`.
    pub state: String,
    pub restarts: i32,
}

/// An event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventLine {
    /// `SyncRun/x`, `Job/x`, `Pod/x`.
    pub object: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub last_seen: Option<String>,
}

/// One next step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextStep {
    pub why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl JobState {
    /// The state of `job`.
    pub fn of(job: &Job) -> JobState {
        let st = job.status.clone().unwrap_or_default();
        JobState {
            name: job.name_any(),
            active: st.active.unwrap_or(0),
            succeeded: st.succeeded.unwrap_or(0),
            failed: st.failed.unwrap_or(0),
            conditions: st
                .conditions
                .unwrap_or_default()
                .iter()
                .filter(|c| c.status == "True")
                .map(|c| {
                    format!(
                        "{}=True ({}: {})",
                        c.type_,
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default()
                    )
                })
                .collect(),
        }
    }
}

impl PodState {
    /// The state of `pod` (its first container, the worker).
    pub fn of(pod: &Pod) -> PodState {
        let st = pod.status.clone().unwrap_or_default();
        let cs = st.container_statuses.unwrap_or_default().into_iter().next();
        let state = cs.as_ref().and_then(|c| c.state.clone()).map_or_else(
            || "not started".to_string(),
            |s| {
                if let Some(t) = s.terminated {
                    format!(
                        "terminated: {} (exit {})",
                        t.reason.unwrap_or_default(),
                        t.exit_code
                    )
                } else if let Some(w) = s.waiting {
                    format!("waiting: {}", w.reason.unwrap_or_default())
                } else {
                    "running".to_string()
                }
            },
        );
        PodState {
            name: pod.name_any(),
            phase: st.phase.unwrap_or_default(),
            state,
            restarts: cs.map_or(0, |c| c.restart_count),
        }
    }
}

impl EventLine {
    /// The line of `e`.
    pub fn of(e: &Event) -> EventLine {
        EventLine {
            object: format!(
                "{}/{}",
                e.involved_object.kind.clone().unwrap_or_default(),
                e.involved_object.name.clone().unwrap_or_default()
            ),
            type_: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
            count: e.count.unwrap_or(1),
            last_seen: e
                .last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string())),
        }
    }
}

/// What to do next about `run` (nothing for a clean success).
pub fn next_steps(run: &SyncRun, pods: &[PodState]) -> Vec<NextStep> {
    let ns = run.metadata.namespace.clone().unwrap_or_default();
    let name = run.name_any();
    let sync = &run.spec.sync_ref.name;
    let ty = format!("{:?}", run.spec.run_type).to_lowercase();
    let st = run.status.clone().unwrap_or_default();
    let again = format!("kubectl tmdbsync run-now {sync} --type {ty} -n {ns}");
    let logs = format!("kubectl logs job/{name} -n {ns} --all-containers --tail=100");
    let step = |why: &str, command: Option<String>| NextStep {
        why: why.into(),
        command,
    };
    match st.phase.unwrap_or(RunPhase::Pending) {
        RunPhase::Failed => match st.reason.as_deref().unwrap_or_default() {
            "AuthFailed" => vec![
                step(
                    "TMDb refused the API key: put a valid key in the Secret spec.tmdb.apiKeySecretRef names",
                    Some(format!("kubectl describe tmdbsync {sync} -n {ns}")),
                ),
                step("then run it again", Some(again)),
            ],
            "InvalidSpec" | "InvalidConfig" | "CatalogEmpty" | "SyncNotFound" => vec![
                step(
                    "the run cannot work as specified: read the message above and fix the TmdbSync or the run",
                    Some(format!("kubectl describe tmdbsync {sync} -n {ns}")),
                ),
                step("then run it again", Some(again)),
            ],
            _ => {
                let mut v = vec![];
                if !pods.is_empty() {
                    v.push(step("read why the worker stopped", Some(logs)));
                }
                v.push(step(
                    "run it again once the cause is fixed (pages and days already done are skipped)",
                    Some(again),
                ));
                v
            }
        },
        RunPhase::Succeeded if st.errors > 0 => vec![step(
            "some movies failed after every try; the next scheduled run retries them, or run it now",
            Some(again),
        )],
        RunPhase::Succeeded => vec![],
        RunPhase::Running => vec![step(
            "follow the worker's log",
            Some(format!(
                "kubectl logs -f job/{name} -n {ns} --all-containers"
            )),
        )],
        RunPhase::Pending => vec![step(
            "wait for it to start (it queues behind the sync's running run), or watch the runs",
            Some(format!("kubectl tmdbsync runs {sync} -n {ns}")),
        )],
    }
}

fn sample_line(e: &ErrorSample) -> String {
    format!(
        "  {:<10} {:<14} {:<6} {}",
        e.movie_id.map_or("-".into(), |m| m.to_string()),
        e.category,
        e.http_status.map_or("-".into(), |s| s.to_string()),
        e.message
    )
}

/// The description as text: run, job, pods, failures, events, next steps.
pub fn text(d: &RunDescription, c: Colour) -> String {
    let mut s = String::new();
    let run = &d.run;
    let st = run.status.clone().unwrap_or_default();
    let phase = format!("{:?}", st.phase.unwrap_or(RunPhase::Pending));
    let _ = writeln!(
        s,
        "SyncRun {}/{}  ({:?} {:?} run of TmdbSync {})",
        run.metadata.namespace.clone().unwrap_or_default(),
        run.name_any(),
        run.spec.trigger,
        run.spec.run_type,
        run.spec.sync_ref.name
    );
    let _ = writeln!(
        s,
        "Phase: {} ({}: {})",
        c.phase(&phase),
        st.reason.clone().unwrap_or_else(|| "-".into()),
        st.message.clone().unwrap_or_default()
    );
    let pages = st
        .planned_pages
        .or(run.spec.pages)
        .map(|p| format!(" (pages {}-{})", p.from, p.to))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "Started: {}  Completed: {}  Duration: {}",
        st.started_at.as_deref().unwrap_or("-"),
        st.completed_at.as_deref().unwrap_or("-"),
        st.duration.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        s,
        "Pages {}/{}{pages}  imported {}  updated {}  skipped {}  deleted {}  errors {}  data warnings {}",
        st.pages_processed,
        st.pages_total,
        thousands(st.movies_imported.into()),
        thousands(st.movies_updated.into()),
        thousands(st.movies_skipped.into()),
        thousands(st.movies_deleted.into()),
        thousands(st.errors.into()),
        thousands(st.data_warnings.into())
    );
    let _ = writeln!(s);
    match &d.job {
        Some(j) => {
            let _ = writeln!(
                s,
                "Job {}: {} active, {} succeeded, {} failed",
                j.name, j.active, j.succeeded, j.failed
            );
            for cond in &j.conditions {
                let _ = writeln!(s, "  {cond}");
            }
        }
        None => {
            let _ = writeln!(
                s,
                "Job: none (not started yet, or cleaned up after its TTL)"
            );
        }
    }
    let _ = writeln!(s, "Pods");
    if d.pods.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for p in &d.pods {
        let _ = writeln!(
            s,
            "  {:<40} {:<10} {}  restarts {}",
            p.name, p.phase, p.state, p.restarts
        );
    }
    let _ = writeln!(s);
    if st.errors > 0 {
        let _ = writeln!(
            s,
            "Failures (sample of {} of {})",
            st.error_sample.len(),
            thousands(st.errors.into())
        );
        let _ = writeln!(
            s,
            "  {:<10} {:<14} {:<6} MESSAGE",
            "MOVIE", "CATEGORY", "HTTP"
        );
        for e in &st.error_sample {
            let _ = writeln!(s, "{}", sample_line(e));
        }
    } else {
        let _ = writeln!(s, "Failures: none");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Events");
    if d.events.is_empty() {
        let _ = writeln!(s, "  none (events expire after an hour)");
    }
    for e in &d.events {
        let _ = writeln!(
            s,
            "  {:<8} {:<14} {:<36} {}{}",
            e.type_,
            e.reason,
            e.object,
            e.message,
            if e.count > 1 {
                format!(" (x{})", e.count)
            } else {
                String::new()
            }
        );
    }
    if !d.next_steps.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "Next");
        for n in &d.next_steps {
            let _ = writeln!(s, "  {}", n.why);
            if let Some(cmd) = &n.command {
                let _ = writeln!(s, "    $ {cmd}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_run(reason: &str) -> SyncRun {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tmdbsync.io/v1alpha1", "kind": "SyncRun",
            "metadata": {"name": "cinegraph-bulk-x", "namespace": "media"},
            "spec": {"syncRef": {"name": "cinegraph"}, "type": "Bulk"},
            "status": {"phase": "Failed", "reason": reason, "message": "boom", "errors": 12,
                       "errorSample": [{"movieId": 550, "category": "http_5xx", "httpStatus": 503,
                                        "message": "TMDb answered 503"}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_failed_run_shows_its_failures_and_the_next_commands() {
        let run = failed_run("RetriesExhausted");
        let pods = vec![PodState {
            name: "cinegraph-bulk-x-0-abcde".into(),
            phase: "Failed".into(),
            state: "terminated: Error (exit 1)".into(),
            restarts: 0,
        }];
        let d = RunDescription {
            next_steps: next_steps(&run, &pods),
            run,
            job: None,
            pods,
            events: vec![],
        };
        let t = text(&d, Colour(false));
        for part in [
            "SyncRun media/cinegraph-bulk-x  (Manual Bulk run of TmdbSync cinegraph)",
            "Phase: Failed (RetriesExhausted: boom)",
            "Job: none",
            "terminated: Error (exit 1)",
            "Failures (sample of 1 of 12)",
            "  550        http_5xx       503    TMDb answered 503",
            "$ kubectl logs job/cinegraph-bulk-x -n media --all-containers --tail=100",
            "$ kubectl tmdbsync run-now cinegraph --type bulk -n media",
        ] {
            assert!(t.contains(part), "{part}\n{t}");
        }
        let auth = next_steps(&failed_run("AuthFailed"), &[]);
        assert!(auth[0].why.contains("API key"));
    }
}
