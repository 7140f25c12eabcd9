//! Runs a container as a local process in its own process group, with stdout/stderr appended to a
//! per-pod log file.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::process::{Child, Command};

use super::AgentError;
use super::image::CommandLine;
use super::status::Terminated;

/// Environment variables of the agent that a container never inherits.
const SCRUBBED_ENV: &[&str] = &["KUBECONFIG", "RUST_LOG_AGENT"];

/// A running container process.
#[derive(Debug)]
pub struct Process {
    child: Child,
    pid: i32,
    /// When it started.
    pub started_at: Timestamp,
}

impl Process {
    /// Starts `cmd` with the agent's environment (minus `KUBECONFIG`) overlaid by `env`, appending its
    /// output to `log_file`.
    pub fn spawn(
        cmd: &CommandLine,
        env: &BTreeMap<String, String>,
        working_dir: Option<&str>,
        log_file: &Path,
    ) -> Result<Self, AgentError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_file)
            .map_err(|e| AgentError::Io(format!("open {}", log_file.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| AgentError::Io(format!("dup {}", log_file.display()), e))?;
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .kill_on_drop(true);
        for var in SCRUBBED_ENV {
            if !env.contains_key(*var) {
                command.env_remove(var);
            }
        }
        if let Some(dir) = working_dir {
            command.current_dir(dir);
        }
        let child = command
            .spawn()
            .map_err(|e| AgentError::Spawn(cmd.program.display().to_string(), e))?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        Ok(Self {
            child,
            pid,
            started_at: Timestamp::now(),
        })
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self) -> Terminated {
        let status = self.child.wait().await;
        let finished_at = Timestamp::now();
        let (exit_code, signal) = match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(code), _) => (code, None),
                (None, Some(sig)) => (128 + sig, Some(sig)),
                (None, None) => (255, None),
            },
            Err(_) => (255, None),
        };
        Terminated {
            exit_code,
            signal,
            started_at: self.started_at,
            finished_at,
        }
    }

    /// Sends SIGTERM to the process group, then SIGKILL after `grace`; returns how it ended.
    pub async fn terminate(&mut self, grace: Duration) -> Terminated {
        self.signal(libc::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(_) => {}
            Err(_) => self.signal(libc::SIGKILL),
        }
        let t = self.wait().await;
        // Children of the container that outlived it (e.g. `sh -c` pipelines).
        self.signal(libc::SIGKILL);
        t
    }

    fn signal(&self, sig: i32) {
        if self.pid > 0 {
            // SAFETY: kill(2) with a negative pid signals the process group we created; no memory is
            // touched.
            unsafe {
                libc::kill(-self.pid, sig);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sh(script: &str) -> CommandLine {
        CommandLine {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
        }
    }

    #[tokio::test]
    async fn runs_and_reports_exit_code() {
        let dir = std::env::temp_dir().join(format!("na-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("p.log");
        let env = BTreeMap::from([("X".to_string(), "hello".to_string())]);
        let mut p = Process::spawn(&sh("echo $X; exit 3"), &env, None, &log).unwrap();
        let t = p.wait().await;
        assert_eq!(t.exit_code, 3);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "hello\n");
        let mut p = Process::spawn(&sh("sleep 30"), &env, None, &log).unwrap();
        let t = p.terminate(Duration::from_secs(5)).await;
        assert_eq!(t.signal, Some(libc::SIGTERM));
        assert_eq!(t.exit_code, 143);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
