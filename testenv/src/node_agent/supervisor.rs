//! Runs one pod bound to the agent's node: resolves its container's environment and command line,
//! runs it as a local process, reports status, restarts it per `restartPolicy`, and kills it when the
//! pod is deleted.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::env::{EnvSources, resolve_env};
use super::image::CommandLine;
use super::kubeconfig::{projected_token, write_pod_kubeconfig};
use super::process::Process;
use super::status::{
    ContainerState, FIELD_MANAGER, Report, Terminated, status_apply, terminal_phase,
};
use super::{AgentError, Shared};

/// The latest view of a pod, sent from the watch loop to its supervisor.
#[derive(Debug, Clone)]
pub struct PodView {
    /// The pod as last seen.
    pub pod: Pod,
    /// True once the pod object is gone from the API.
    pub gone: bool,
}

/// How long to wait before retrying a container that could not be configured.
const CONFIG_RETRY: Duration = Duration::from_secs(3);
/// Restart backoff cap for `restartPolicy: Always/OnFailure`.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why the supervisor stopped waiting.
enum Stop {
    Deleting,
    Gone,
    Shutdown,
}

fn stop_reason(view: &PodView) -> Option<Stop> {
    if view.gone {
        Some(Stop::Gone)
    } else if view.pod.metadata.deletion_timestamp.is_some() {
        Some(Stop::Deleting)
    } else {
        None
    }
}

/// Waits until the pod is being deleted, gone, or the agent shuts down.
async fn stopped(rx: &mut watch::Receiver<PodView>, shutdown: &CancellationToken) -> Stop {
    loop {
        let reason = stop_reason(&rx.borrow());
        if let Some(s) = reason {
            return s;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Stop::Shutdown,
            changed = rx.changed() => if changed.is_err() { return Stop::Gone },
        }
    }
}

/// Grace period of a deletion: `metadata.deletionGracePeriodSeconds`, else the pod's
/// `terminationGracePeriodSeconds`, else 30 s.
pub fn grace_period(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(secs.max(0) as u64)
}

/// Deletes `pod` with grace 0 (the kubelet's last step once its containers are gone).
pub async fn force_delete(shared: &Shared, pod: &Pod) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), ns);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => tracing::info!(pod = %name, namespace = %ns, "deleted pod"),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(pod = %name, error = %e, "deleting pod failed"),
    }
}

struct Run {
    shared: Arc<Shared>,
    pod: Pod,
    container: Container,
    start_time: Timestamp,
    restart_count: i32,
    last_state: Option<Terminated>,
}

impl Run {
    fn ns(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    async fn report(&self, phase: &'static str, state: ContainerState) {
        let report = Report {
            pod_name: self.name().to_string(),
            container: self.container.name.clone(),
            image: self.container.image.clone().unwrap_or_default(),
            phase,
            state,
            last_state: self.last_state.clone(),
            restart_count: self.restart_count,
            start_time: self.start_time,
        };
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), self.ns());
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        if let Err(e) = api
            .patch_status(self.name(), &pp, &Patch::Apply(status_apply(&report)))
            .await
        {
            tracing::warn!(pod = %self.name(), namespace = %self.ns(), error = %e, "status update failed");
        }
    }

    /// Resolves env and the command line; writes the pod kubeconfig when a token is automounted.
    async fn prepare(
        &self,
    ) -> Result<(CommandLine, std::collections::BTreeMap<String, String>), AgentError> {
        let sources = EnvSources::fetch(&self.shared.client, self.ns(), &self.container).await?;
        let mut env = resolve_env(&self.pod, &self.container, &sources)?;
        env.entry("HOSTNAME".into())
            .or_insert_with(|| self.name().to_string());
        if let Some((audience, expiration)) = projected_token(&self.pod) {
            let uid = self.pod.metadata.uid.as_deref().unwrap_or_default();
            let dir =
                self.shared
                    .config
                    .work_dir
                    .join(format!("{}_{}_{uid}", self.ns(), self.name()));
            let path = write_pod_kubeconfig(
                &self.shared.client,
                &self.shared.api_server,
                &self.pod,
                audience,
                expiration,
                &dir,
            )
            .await?;
            env.entry("KUBECONFIG".into())
                .or_insert_with(|| path.display().to_string());
        }
        let image = self.container.image.as_deref().unwrap_or_default();
        let command = self.container.command.clone().unwrap_or_default();
        let args = self.container.args.clone().unwrap_or_default();
        let cmd = self
            .shared
            .config
            .image_map
            .command_line(image, &command, &args, &env)?;
        Ok((cmd, env))
    }

    /// The phase while not terminal.
    fn live_phase(&self) -> &'static str {
        if self.restart_count > 0 {
            "Running"
        } else {
            "Pending"
        }
    }
}

/// Supervises one pod until it is terminal and reported, deleted, or the agent shuts down.
pub async fn supervise(
    shared: Arc<Shared>,
    mut rx: watch::Receiver<PodView>,
    shutdown: CancellationToken,
) {
    let pod = rx.borrow().pod.clone();
    let Some(container) = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first().cloned())
    else {
        return;
    };
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into());
    let mut run = Run {
        shared: shared.clone(),
        pod,
        container,
        start_time: Timestamp::now(),
        restart_count: 0,
        last_state: None,
    };
    let log_file = shared
        .config
        .log_dir
        .join(format!("{}_{}.log", run.ns(), run.name()));
    let mut backoff = Duration::from_secs(1);
    loop {
        let prepared = tokio::select! {
            p = run.prepare() => p,
            s = stopped(&mut rx, &shutdown) => return finish_without_process(&shared, &rx, s).await,
        };
        let (cmd, env) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let reason = match e {
                    AgentError::ContainerConfig(_) => "CreateContainerConfigError",
                    AgentError::UnmappedImage(_) => "ErrImagePull",
                    _ => "RunContainerError",
                };
                tracing::warn!(pod = %run.name(), namespace = %run.ns(), reason, error = %e, "cannot start container");
                run.report(
                    run.live_phase(),
                    ContainerState::Waiting {
                        reason: reason.into(),
                        message: e.to_string(),
                    },
                )
                .await;
                tokio::select! {
                    _ = tokio::time::sleep(CONFIG_RETRY) => continue,
                    s = stopped(&mut rx, &shutdown) => return finish_without_process(&shared, &rx, s).await,
                }
            }
        };
        let working_dir = run.container.working_dir.clone();
        let mut process = match Process::spawn(&cmd, &env, working_dir.as_deref(), &log_file) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(pod = %run.name(), error = %e, "container failed to start");
                let now = Timestamp::now();
                let t = Terminated {
                    exit_code: 128,
                    signal: None,
                    started_at: now,
                    finished_at: now,
                };
                if policy == "Never" {
                    run.report("Failed", ContainerState::Terminated(t)).await;
                    return;
                }
                run.last_state = Some(t);
                run.restart_count += 1;
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => { backoff = (backoff * 2).min(MAX_BACKOFF); continue }
                    s = stopped(&mut rx, &shutdown) => return finish_without_process(&shared, &rx, s).await,
                }
            }
        };
        tracing::info!(pod = %run.name(), namespace = %run.ns(), program = %cmd.program.display(), "container started");
        run.report(
            "Running",
            ContainerState::Running {
                started_at: process.started_at,
            },
        )
        .await;
        let exited = tokio::select! {
            t = process.wait() => t,
            s = stopped(&mut rx, &shutdown) => {
                let grace = match s {
                    Stop::Deleting => {
                        let pod = rx.borrow().pod.clone();
                        grace_period(&pod)
                    }
                    Stop::Gone | Stop::Shutdown => Duration::from_secs(2),
                };
                let t = process.terminate(grace).await;
                tracing::info!(pod = %run.name(), exit_code = t.exit_code, "container killed");
                if let Stop::Deleting = s {
                    run.report(terminal_phase(t.exit_code), ContainerState::Terminated(t)).await;
                    let pod = rx.borrow().pod.clone();
                    force_delete(&shared, &pod).await;
                }
                return;
            }
        };
        tracing::info!(pod = %run.name(), namespace = %run.ns(), exit_code = exited.exit_code, "container exited");
        let restart = match policy.as_str() {
            "Never" => false,
            "OnFailure" => exited.exit_code != 0,
            _ => true,
        };
        if !restart {
            run.report(
                terminal_phase(exited.exit_code),
                ContainerState::Terminated(exited),
            )
            .await;
            return;
        }
        if exited
            .finished_at
            .duration_since(exited.started_at)
            .as_secs()
            > 10
        {
            backoff = Duration::from_secs(1);
        }
        run.last_state = Some(exited);
        run.restart_count += 1;
        let waiting = ContainerState::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: format!(
                "back-off {}s restarting failed container",
                backoff.as_secs()
            ),
        };
        run.report("Running", waiting).await;
        tokio::select! {
            _ = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(MAX_BACKOFF),
            s = stopped(&mut rx, &shutdown) => return finish_without_process(&shared, &rx, s).await,
        }
    }
}

/// A pod deleted while no process runs: complete the deletion.
async fn finish_without_process(shared: &Shared, rx: &watch::Receiver<PodView>, stop: Stop) {
    if let Stop::Deleting = stop {
        let pod = rx.borrow().pod.clone();
        force_delete(shared, &pod).await;
    }
}
