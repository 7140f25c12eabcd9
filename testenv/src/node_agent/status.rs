//! Builds the pod status the agent applies (server-side apply on `pods/status`), like a kubelet would.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::env::LOCAL_IP;

/// The field manager of everything the agent writes.
pub const FIELD_MANAGER: &str = "tmdbsync-node-agent";

/// The state of the (first) container as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Not started (e.g. `CreateContainerConfigError`, `ErrImagePull`, `CrashLoopBackOff`).
    Waiting {
        /// Kubelet-style reason.
        reason: String,
        /// Human-readable message.
        message: String,
    },
    /// Its process runs.
    Running {
        /// When the process started.
        started_at: Timestamp,
    },
    /// Its process exited.
    Terminated(Terminated),
}

/// A finished run of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    /// Exit code (128 + signal for a killed process).
    pub exit_code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// When the process started.
    pub started_at: Timestamp,
    /// When it exited.
    pub finished_at: Timestamp,
}

impl Terminated {
    /// `Completed` for exit code 0, else `Error`.
    pub fn reason(&self) -> &'static str {
        if self.exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "exitCode": self.exit_code,
            "reason": self.reason(),
            "startedAt": time(self.started_at),
            "finishedAt": time(self.finished_at),
        });
        if let Some(sig) = self.signal {
            v["signal"] = json!(sig);
        }
        v
    }
}

/// Everything one status report says.
#[derive(Debug, Clone)]
pub struct Report {
    /// Pod name.
    pub pod_name: String,
    /// The container's name.
    pub container: String,
    /// The container's image.
    pub image: String,
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    pub phase: &'static str,
    /// Current state.
    pub state: ContainerState,
    /// The previous run, after a restart.
    pub last_state: Option<Terminated>,
    /// Restarts so far.
    pub restart_count: i32,
    /// When the agent took the pod.
    pub start_time: Timestamp,
}

fn time(t: Timestamp) -> Value {
    serde_json::to_value(Time(t)).unwrap_or(Value::Null)
}

/// The phase a terminated container gives a pod that is not restarted.
pub fn terminal_phase(exit_code: i32) -> &'static str {
    if exit_code == 0 {
        "Succeeded"
    } else {
        "Failed"
    }
}

/// The server-side-apply body for `pods/status`.
pub fn status_apply(r: &Report) -> Value {
    let now = time(Timestamp::now());
    let running = matches!(r.state, ContainerState::Running { .. });
    let terminal = matches!(r.phase, "Succeeded" | "Failed");
    let cond = |type_: &str, ok: bool, reason: Option<&str>| {
        let mut c = json!({"type": type_, "status": if ok { "True" } else { "False" }, "lastTransitionTime": now});
        if let Some(reason) = reason {
            c["reason"] = json!(reason);
        }
        c
    };
    let not_ready_reason = if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let ready_reason = (!running).then_some(not_ready_reason);
    let conditions = vec![
        cond("PodReadyToStartContainers", !terminal, None),
        cond("Initialized", true, terminal.then_some("PodCompleted")),
        cond("ContainersReady", running, ready_reason),
        cond("Ready", running, ready_reason),
        cond("PodScheduled", true, None),
    ];
    let state = match &r.state {
        ContainerState::Waiting { reason, message } => {
            json!({"waiting": {"reason": reason, "message": message}})
        }
        ContainerState::Running { started_at } => {
            json!({"running": {"startedAt": time(*started_at)}})
        }
        ContainerState::Terminated(t) => json!({"terminated": t.to_json()}),
    };
    let mut cs = json!({
        "name": r.container,
        "image": r.image,
        "imageID": "",
        "ready": running,
        "started": running,
        "restartCount": r.restart_count,
        "state": state,
    });
    if let Some(last) = &r.last_state {
        cs["lastState"] = json!({"terminated": last.to_json()});
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": r.pod_name},
        "status": {
            "phase": r.phase,
            "hostIP": LOCAL_IP,
            "hostIPs": [{"ip": LOCAL_IP}],
            "podIP": LOCAL_IP,
            "podIPs": [{"ip": LOCAL_IP}],
            "startTime": time(r.start_time),
            "conditions": conditions,
            "containerStatuses": [cs],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(phase: &'static str, state: ContainerState) -> Report {
        Report {
            pod_name: "p".into(),
            container: "c".into(),
            image: "busybox".into(),
            phase,
            state,
            last_state: None,
            restart_count: 0,
            start_time: Timestamp::UNIX_EPOCH,
        }
    }

    fn cond<'a>(v: &'a Value, t: &str) -> &'a Value {
        v["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap()
    }

    #[test]
    fn running_is_ready() {
        let v = status_apply(&report(
            "Running",
            ContainerState::Running {
                started_at: Timestamp::UNIX_EPOCH,
            },
        ));
        assert_eq!(v["status"]["phase"], "Running");
        assert_eq!(v["status"]["podIP"], LOCAL_IP);
        assert_eq!(cond(&v, "Ready")["status"], "True");
        let cs = &v["status"]["containerStatuses"][0];
        assert_eq!(cs["state"]["running"]["startedAt"], "1970-01-01T00:00:00Z");
        assert_eq!(cs["ready"], true);
    }

    #[test]
    fn terminated_reports_exit_code_and_reason() {
        let t = Terminated {
            exit_code: 3,
            signal: None,
            started_at: Timestamp::UNIX_EPOCH,
            finished_at: Timestamp::UNIX_EPOCH,
        };
        assert_eq!(terminal_phase(t.exit_code), "Failed");
        assert_eq!(terminal_phase(0), "Succeeded");
        let v = status_apply(&report("Failed", ContainerState::Terminated(t)));
        let term = &v["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(term["exitCode"], 3);
        assert_eq!(term["reason"], "Error");
        assert_eq!(cond(&v, "Ready")["status"], "False");
        assert_eq!(cond(&v, "Ready")["reason"], "PodCompleted");
    }

    #[test]
    fn waiting_is_pending() {
        let w = ContainerState::Waiting {
            reason: "CreateContainerConfigError".into(),
            message: "secret \"x\" not found".into(),
        };
        let v = status_apply(&report("Pending", w));
        let waiting = &v["status"]["containerStatuses"][0]["state"]["waiting"];
        assert_eq!(waiting["reason"], "CreateContainerConfigError");
        assert_eq!(cond(&v, "ContainersReady")["reason"], "ContainersNotReady");
    }
}
