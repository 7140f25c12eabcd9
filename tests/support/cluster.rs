//! End-to-end harness on the real control plane (`scripts/testenv.sh`) with one shared
//! `tmdbsync-node-agent` per machine.
//!
//! ```ignore
//! mod support;
//! use support::cluster::*;
//!
//! #[tokio::test]
//! async fn my_e2e() {
//!     let cluster = Cluster::shared();           // control plane up, agent running
//!     let ns = cluster.namespace("my-e2e");      // fresh namespace, deleted on drop
//!     let jobs: Api<Job> = Api::namespaced(cluster.client(), &ns);
//!     // ... create things, then:
//!     let job = wait_for(&jobs, "x", Duration::from_secs(60), |j| is_complete(j)).await;
//!     let log = cluster.pod_log(&ns, "x-0-abcde");
//! }
//! ```
//!
//! * [`Cluster::shared`] runs `scripts/testenv.sh up` once per test process (the script serializes
//!   concurrent callers with a flock on `$STATE.lock`, so parallel test binaries are fine), loads the
//!   admin kubeconfig and makes sure the machine-wide node agent runs.
//! * The node agent is started by the first test process that needs it, detached (`setsid`), and
//!   reused by every later one while it lives: `$STATE/node-agent.pid` under the flock
//!   `$STATE/node-agent.lock`. The process that starts it first builds it (`cargo build --workspace
//!   --bin tmdbsync-node-agent`: it lives in the dev-only workspace member `testenv/`). Its log is
//!   `$STATE/logs/node-agent.log`, pod logs are `$STATE/pod-logs/<namespace>_<pod>.log`.
//!   `scripts/testenv.sh down` stops it with the control plane; a rebuilt agent binary is only
//!   picked up after that (or after killing the pid).
//! * Images: `busybox` runs `/bin/sh`; `tmdbsync` runs `$STATE/bin/tmdbsync`, a symlink that every
//!   test process points at its own `CARGO_BIN_EXE_tmdbsync` when it calls `shared()`, so pods run
//!   the binary of the most recent test process. Two checkouts testing at the same time would
//!   therefore share one binary.
//! * Every call builds no state bound to a tokio runtime except [`Cluster::client`], which makes a
//!   new client for the calling runtime (each `#[tokio::test]` has its own runtime, and a client's
//!   background worker dies with the runtime that created it).
//! * [`helm_bin`] finds the helm of `scripts/testenv.sh env` without starting anything (for
//!   `helm lint`/`template`); [`Cluster::helm`] runs it against the control plane.
//! * `TMDBSYNC_KEEP_NAMESPACES=1` keeps test namespaces for inspection.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::Write as _;
use std::ops::Deref;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The Node the shared agent registers.
pub const NODE_NAME: &str = "tmdbsync-local";

/// A running test control plane plus the shared node agent.
pub struct Cluster {
    state_dir: PathBuf,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    config: kube::Config,
    pod_logs: PathBuf,
    agent_pid: u32,
}

static SHARED: OnceLock<Cluster> = OnceLock::new();
static REAL_NODE: OnceLock<Cluster> = OnceLock::new();
static NO_NODE: OnceLock<Cluster> = OnceLock::new();

/// What runs pods for a [`Cluster`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    /// The shared `tmdbsync-node-agent`.
    Agent,
    /// A real kubelet (`scripts/testenv-node.sh`).
    Kubelet,
    /// Nothing: pods stay unscheduled.
    None,
}

/// The Node that `scripts/testenv-node.sh` registers (a real kubelet).
pub const KUBELET_NODE_NAME: &str = "tmdbsync-kubelet";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The node agent's binary name (in the dev-only workspace member `testenv/`).
const AGENT: &str = "tmdbsync-node-agent";

fn tmdbsync_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tmdbsync"))
}

/// Builds the node agent of this checkout and returns its path. It belongs to the workspace member
/// `tmdbsync-testenv`, whose binaries the product's tests cannot depend on, so the test asks cargo
/// (the one running it, `$CARGO`) for it. `--workspace` resolves features as the product's builds
/// do and so reuses their dependencies; `-p tmdbsync-testenv` would rebuild kube and its stack.
fn build_agent() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = run_checked(
        Command::new(cargo).current_dir(repo_root()).args([
            "build",
            "--workspace",
            "--bin",
            AGENT,
            "--message-format=json-render-diagnostics",
        ]),
        "cargo build --workspace --bin tmdbsync-node-agent",
    );
    out.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == AGENT)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no tmdbsync-node-agent executable")
}

/// Runs `cmd` and returns its stdout; panics with its output when it cannot run or fails.
fn run_checked(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    stdout_ok(out, what)
}

/// The stdout of a command that succeeded; panics with its stdout and stderr when it failed.
pub fn stdout_ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A live process with this pid whose command line mentions `needle` (not a zombie, not a reused pid).
fn process_alive(pid: u32, needle: &str) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "pid (comm) S ...": the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, None | Some("Z") | Some("X")) {
        return false;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains(needle)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The helm binary `scripts/testenv.sh env` puts on `PATH` (built by
/// `scripts/build-control-plane.sh`); found without starting the control plane.
pub fn helm_bin() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let script = repo_root().join("scripts/testenv.sh");
        let env = run_checked(Command::new(&script).arg("env"), "scripts/testenv.sh env");
        env.lines()
            .filter_map(|l| l.trim_start_matches("export ").strip_prefix("PATH="))
            .flat_map(|dirs| dirs.split(':'))
            .map(|d| Path::new(d).join("helm"))
            .find(|p| p.is_file())
            .expect("no helm on the PATH of `testenv.sh env` (bash scripts/build-control-plane.sh)")
    })
}

impl Cluster {
    /// The machine's test cluster: starts the control plane (once per process) and the shared node
    /// agent (once per machine) when needed. Blocks (seconds on the first call); safe to call from
    /// sync code, from inside any tokio runtime and from many threads or processes at once.
    pub fn shared() -> &'static Cluster {
        SHARED.get_or_init(|| Cluster::start(Node::Agent))
    }

    /// The machine's test control plane with a real node instead of the node agent
    /// (`scripts/testenv-node.sh up`: containerd, runc, CNI, a kubelet and kube-scheduler); the
    /// opt-in tier of `tests/kubelet_node.rs`. Never in the same process as [`Cluster::shared`].
    pub fn real_node() -> &'static Cluster {
        REAL_NODE.get_or_init(|| Cluster::start(Node::Kubelet))
    }

    /// The machine's test control plane without a node (nothing runs pods; no node agent is built
    /// or started): for tests that create no pods, like the controller benchmark.
    pub fn control_plane_only() -> &'static Cluster {
        NO_NODE.get_or_init(|| Cluster::start(Node::None))
    }

    fn start(node: Node) -> Cluster {
        let t0 = Instant::now();
        let script = repo_root().join("scripts/testenv.sh");
        run_checked(Command::new(&script).arg("up"), "scripts/testenv.sh up");
        let env = run_checked(Command::new(&script).arg("env"), "scripts/testenv.sh env");
        let mut kubeconfig = None;
        let mut kubectl = None;
        for line in env.lines() {
            let line = line.trim_start_matches("export ");
            if let Some(path) = line.strip_prefix("KUBECONFIG=") {
                kubeconfig = Some(PathBuf::from(path));
            } else if let Some(dirs) = line.strip_prefix("PATH=") {
                kubectl = dirs
                    .split(':')
                    .map(|d| Path::new(d).join("kubectl"))
                    .find(|p| p.is_file());
            }
        }
        let kubeconfig = kubeconfig.expect("`testenv.sh env` printed no KUBECONFIG");
        let kubectl = kubectl.expect("`testenv.sh env` printed no PATH with kubectl");
        let state_dir = kubeconfig
            .parent()
            .expect("kubeconfig lives in the state dir")
            .to_path_buf();
        let config = load_config(&kubeconfig);
        let mut cluster = Cluster {
            pod_logs: state_dir.join("pod-logs"),
            state_dir,
            kubeconfig,
            kubectl,
            config,
            agent_pid: 0,
        };
        if node == Node::Kubelet {
            run_checked(
                Command::new(repo_root().join("scripts/testenv-node.sh")).arg("up"),
                "scripts/testenv-node.sh up",
            );
        } else if node == Node::Agent {
            cluster.agent_pid = cluster.ensure_agent();
        }
        eprintln!(
            "[cluster] ready in {:.1}s (KUBECONFIG={}, node agent pid {})",
            t0.elapsed().as_secs_f64(),
            cluster.kubeconfig.display(),
            cluster.agent_pid
        );
        cluster
    }

    /// Starts the machine-wide node agent unless a live one is recorded in the pid file; returns
    /// its pid. Serialized across processes by a flock on `$STATE/node-agent.lock`.
    fn ensure_agent(&self) -> u32 {
        let lock = File::options()
            .create(true)
            .append(true)
            .open(self.state_dir.join("node-agent.lock"))
            .expect("open the node agent lock file");
        lock.lock().expect("flock the node agent lock file");

        // Pods of image `tmdbsync` run whatever this link points at: make it our binary.
        let bin_dir = self.state_dir.join("bin");
        fs::create_dir_all(&bin_dir).expect("create the state bin dir");
        let link = bin_dir.join("tmdbsync");
        let tmp = bin_dir.join(format!(".tmdbsync.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(tmdbsync_bin(), &tmp).expect("symlink the tmdbsync binary");
        fs::rename(&tmp, &link).expect("replace the tmdbsync symlink");

        let pid_file = self.state_dir.join("node-agent.pid");
        let recorded = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = recorded.filter(|&pid| process_alive(pid, AGENT)) {
            return pid;
        }

        let agent = build_agent();
        fs::create_dir_all(self.state_dir.join("logs")).expect("create the logs dir");
        fs::create_dir_all(&self.pod_logs).expect("create the pod logs dir");
        let log_path = self.state_dir.join("logs/node-agent.log");
        let log = File::create(&log_path).expect("create the node agent log");
        let mut cmd = Command::new(&agent);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--node-name", NODE_NAME])
            .arg("--image-map")
            .arg(format!("tmdbsync={}", link.display()))
            .args(["--image-map", "busybox=/bin/sh"])
            .arg("--log-dir")
            .arg(&self.pod_logs)
            .env_remove("KUBECONFIG")
            .current_dir(&self.state_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log file"))
            .stderr(log);
        // SAFETY: setsid is async-signal-safe; it detaches the agent from our session and process
        // group so it outlives this test process and ignores its terminal signals.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", agent.display()));
        let pid = child.id();
        // Not waited for: when this process exits the agent is re-parented and keeps running.
        drop(child);
        let mut f = File::create(&pid_file).expect("write the node agent pid file");
        writeln!(f, "{pid}").expect("write the node agent pid file");

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if !process_alive(pid, AGENT) {
                let _ = fs::remove_file(&pid_file);
                panic!(
                    "the node agent exited during startup; last lines of {}:\n{}",
                    log_path.display(),
                    tail(&log_path, 30)
                );
            }
            if fs::read_to_string(&log_path)
                .unwrap_or_default()
                .contains("node registered")
                && self.node_ready()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {NODE_NAME} not Ready 30 s after starting the agent; last lines of {}:\n{}",
                log_path.display(),
                tail(&log_path, 30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        pid
    }

    fn node_ready(&self) -> bool {
        let out = self.kubectl([
            "get",
            "node",
            NODE_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "True"
    }

    /// A new admin client bound to the calling tokio runtime (call inside one). Cheap enough to call
    /// per test; don't keep one across `#[tokio::test]`s.
    pub fn client(&self) -> Client {
        tmdbsync::http::install_crypto_provider();
        Client::try_from(self.config.clone()).expect("build a kube client")
    }

    /// The admin `kube::Config` (to derive other clients from).
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// The admin kubeconfig file.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubectl binary of the control plane's version.
    pub fn kubectl_path(&self) -> &Path {
        &self.kubectl
    }

    /// The testenv state dir (`$TMDBSYNC_TESTENV_DIR`, default `/tmp/tmdbsync-testenv`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The shared node agent's pid.
    pub fn agent_pid(&self) -> u32 {
        self.agent_pid
    }

    /// The node agent's own log.
    pub fn agent_log(&self) -> PathBuf {
        self.state_dir.join("logs/node-agent.log")
    }

    /// Where the agent writes pod logs: `<dir>/<namespace>_<pod>.log` (stdout + stderr, appended
    /// across restarts of the container).
    pub fn pod_logs_dir(&self) -> &Path {
        &self.pod_logs
    }

    /// The log of pod `namespace/pod` ("" when it has not written anything / not started).
    pub fn pod_log(&self, namespace: &str, pod: &str) -> String {
        fs::read_to_string(self.pod_logs.join(format!("{namespace}_{pod}.log"))).unwrap_or_default()
    }

    /// Runs the real kubectl with the admin kubeconfig; returns its output whatever the exit code.
    pub fn kubectl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.admin_command(&self.kubectl, args, None)
    }

    /// Runs helm with the admin kubeconfig; returns its output whatever the exit code.
    pub fn helm<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.admin_command(helm_bin(), args, None)
    }

    /// Runs kubectl with `stdin` as its standard input (e.g. `apply -f -`); returns its output
    /// whatever the exit code.
    pub fn kubectl_input<I, S>(&self, args: I, stdin: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.admin_command(&self.kubectl, args, Some(stdin))
    }

    /// Runs kubectl and returns its stdout; panics with stderr when it fails.
    pub fn kubectl_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        stdout_ok(self.kubectl(&args), &format!("kubectl {args:?}"))
    }

    /// Runs kubectl with `stdin` as its standard input (e.g. `apply -f -`); returns stdout, panics
    /// with stderr when it fails.
    pub fn kubectl_stdin<I, S>(&self, args: I, stdin: &str) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        stdout_ok(
            self.kubectl_input(&args, stdin),
            &format!("kubectl {args:?}"),
        )
    }

    /// Runs `program` with the admin kubeconfig and `stdin` (else none) and waits for its output.
    fn admin_command<I, S>(&self, program: &Path, args: I, stdin: Option<&str>) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(program)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(input.as_bytes())
                .expect("write the command's stdin");
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for {}: {e}", program.display()))
    }

    /// Everything the pods of namespace `ns` wrote (the agent's log files of its pods, one after
    /// the other).
    pub fn namespace_pod_logs(&self, ns: &str) -> String {
        let prefix = format!("{ns}_");
        let mut all = String::new();
        for entry in fs::read_dir(&self.pod_logs).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                all.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        all
    }

    /// Creates a fresh namespace `<prefix>-<random>` (label `tmdbsync-test=true`) and waits for its
    /// `default` ServiceAccount (pods are rejected before it exists). Deleted when the returned
    /// value is dropped or [`cleanup`](TestNamespace::cleanup)ed.
    pub fn namespace(&self, prefix: &str) -> TestNamespace {
        let prefix: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(50)
            .collect();
        let name = format!("{}-{:08x}", prefix.trim_matches('-'), fastrand::u32(..));
        let manifest = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"tmdbsync-test": "true"}},
        });
        self.kubectl_stdin(["create", "-f", "-"], &manifest.to_string());
        let ns = TestNamespace {
            name,
            kubectl: self.kubectl.clone(),
            kubeconfig: self.kubeconfig.clone(),
            done: false,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .kubectl(["-n", &ns.name, "get", "serviceaccount", "default"])
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "no default ServiceAccount in {} after 30 s",
                ns.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ns
    }
}

/// Loads the admin config. `Config::from_custom_kubeconfig` is async: run it on a private runtime
/// in a plain thread so this works from sync code and from inside another runtime.
fn load_config(path: &Path) -> kube::Config {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            let kc = Kubeconfig::read_from(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
        })
    })
    .join()
    .expect("loading the kubeconfig panicked")
}

/// A namespace created by [`Cluster::namespace`]; derefs to its name.
pub struct TestNamespace {
    name: String,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    done: bool,
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace now (without waiting for it to be gone); Drop does the same.
    pub fn cleanup(mut self) {
        self.delete();
    }

    /// Leaves the namespace in place (for inspection) instead of deleting it.
    pub fn keep(mut self) {
        eprintln!("[cluster] keeping namespace {}", self.name);
        self.done = true;
    }

    fn delete(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        if std::env::var_os("TMDBSYNC_KEEP_NAMESPACES").is_some_and(|v| v == "1") {
            eprintln!(
                "[cluster] keeping namespace {} (TMDBSYNC_KEEP_NAMESPACES=1)",
                self.name
            );
            return;
        }
        let out = Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "[cluster] deleting namespace {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("[cluster] deleting namespace {}: {e}", self.name),
        }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[cluster] test failed: deleting namespace {} (TMDBSYNC_KEEP_NAMESPACES=1 keeps it)",
                self.name
            );
        }
        self.delete();
    }
}

impl Deref for TestNamespace {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl AsRef<str> for TestNamespace {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for TestNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Polls `api.get(name)` every 250 ms until `predicate` holds and returns the object; after
/// `timeout` panics with the last state seen (the object as JSON without managedFields, "not
/// found", or the last error).
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    mut predicate: impl FnMut(&K) -> bool,
) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + fmt::Debug,
    K::DynamicType: Default,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match api.get_opt(name).await {
            Ok(Some(obj)) if predicate(&obj) => return obj,
            Ok(Some(obj)) => {
                let mut v = serde_json::to_value(&obj).unwrap_or_default();
                if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                    meta.remove("managedFields");
                }
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| format!("{obj:?}"))
            }
            Ok(None) => "not found".to_string(),
            Err(e) => format!("error: {e}"),
        };
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {} {name}; last state:\n{last}",
                K::kind(&K::DynamicType::default())
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The names of every object `api` lists.
pub async fn names<K>(api: &Api<K>) -> Vec<String>
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug,
{
    api.list(&Default::default())
        .await
        .expect("list objects")
        .items
        .into_iter()
        .filter_map(|o| o.meta().name.clone())
        .collect()
}

/// Polls an async `check` every 250 ms until it returns `Some`, or panics with `what` after
/// `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    poll(what, timeout, || {
        let answer = check();
        async move { answer.await.ok_or_else(|| "not yet".to_string()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Polls an async `check` every 250 ms until it returns `Ok`; after `timeout` returns the last
/// `Err`, prefixed with `what`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(last) if tokio::time::Instant::now() >= deadline => {
                return Err(format!(
                    "timed out after {timeout:?} waiting for {what}; last: {last}"
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
