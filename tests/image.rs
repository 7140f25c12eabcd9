//! The product image (`scripts/build-image.sh`) run with podman and runc the way the chart and the
//! Jobs run their pods: read-only root filesystem, uid 65532, every capability dropped, no new
//! privileges. As `tmdbsync run` against the simulator and a Postgres both reached by host name it
//! imports exactly what the native binary imports; as the controller on the test control plane it
//! reconciles a TmdbSync and gets a SyncRun done.
//!
//! Skipped (with a message) only where podman is not installed; `scripts/install-deps.sh` installs
//! it, so CI runs these tests. The first test builds the image (a release build, cached under
//! `$CARGO_TARGET_DIR`).

mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::Api;
use support::cluster::{Cluster, eventually, wait_for};
use support::operator::{
    CONTROLLER_ENV, SYNC, apply, apply_secrets, controller_args, install_crds, run_succeeded,
    sync_run, tmdb_sync,
};
use support::{TestDb, http_get, output, sim_get, start_sim, stderr, tmdbsync_run};
use tmdbsync::api::{SyncRun, TmdbSync};
use tmdbsync::sim::SimHandle;
use tmdbsync::store::Store;

/// Host names the containers reach this machine's Postgres and simulator by (`--add-host`).
const DB_HOST: &str = "db.tmdbsync.test";
const TMDB_HOST: &str = "tmdb.tmdbsync.test";

/// Where the flattened admin kubeconfig appears inside the controller's container.
const KUBECONFIG_IN_CONTAINER: &str = "/etc/tmdbsync/kubeconfig";

/// The image, built once per test process; `None` when podman is not installed.
fn image() -> Option<&'static str> {
    static IMAGE: OnceLock<Option<String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if Command::new("podman").arg("--version").output().is_err() {
                eprintln!(
                    "SKIPPED: podman is not installed (bash scripts/install-deps.sh installs it); \
                     the image was neither built nor run"
                );
                return None;
            }
            let t0 = Instant::now();
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-image.sh");
            let out = Command::new("bash")
                .arg(script)
                .env("IMAGE", "localhost/tmdbsync:test")
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .expect("run scripts/build-image.sh");
            assert!(out.status.success(), "scripts/build-image.sh failed");
            let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
            eprintln!("[image] {name} built in {:.1}s", t0.elapsed().as_secs_f64());
            Some(name)
        })
        .as_deref()
}

/// `podman run` of `image` locked down like the chart's and the Jobs' pods (non-root 65532,
/// read-only root filesystem without podman's writable tmpfs dirs, no capabilities, no privilege
/// escalation, the default seccomp profile) on the host's network, with this machine's container
/// limits; `podman_args` go before the image, `args` after it.
fn hardened(
    name: &str,
    podman_args: &[impl AsRef<OsStr>],
    image: &str,
    args: &[impl AsRef<OsStr>],
) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc", "run", "--name", name])
        .args(["--read-only", "--read-only-tmpfs=false"])
        .args(["--user", "65532:65532", "--cap-drop=ALL"])
        .args(["--security-opt", "no-new-privileges"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(["--network", "host"])
        .args(podman_args)
        .arg(image)
        .args(args)
        .stdin(Stdio::null());
    cmd
}

fn container_name(what: &str) -> String {
    format!("tmdbsync-test-{what}-{:08x}", fastrand::u32(..))
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(["--runtime", "runc"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run podman")
}

/// What an import left in the database, for comparing two imports: row counts per table, run
/// outcomes, and a digest of every movie's stored fields and payload.
async fn import_fingerprint(store: &Store) -> BTreeMap<&'static str, String> {
    let queries: [(&str, &str); 11] = [
        ("movies", "SELECT count(*)::text FROM movies"),
        ("people", "SELECT count(*)::text FROM people"),
        ("credits", "SELECT count(*)::text FROM credits"),
        ("genres", "SELECT count(*)::text FROM genres"),
        ("movie_genres", "SELECT count(*)::text FROM movie_genres"),
        ("catalog_ids", "SELECT count(*)::text FROM catalog_ids"),
        (
            "bulk_pages_done",
            "SELECT count(*)::text FROM bulk_pages WHERE status = 'done'",
        ),
        ("sync_errors", "SELECT count(*)::text FROM sync_errors"),
        (
            "runs",
            "SELECT coalesce(string_agg(run_type || ':' || status || ':' || movies_imported, ',' \
             ORDER BY id), '') FROM sync_runs",
        ),
        (
            "movies_digest",
            "SELECT coalesce(md5(string_agg(concat_ws('|', id, title, imdb_id, release_date, \
             popularity, vote_count, deleted_at IS NULL, raw::text), ',' ORDER BY id)), '') \
             FROM movies",
        ),
        (
            "credits_digest",
            "SELECT coalesce(md5(string_agg(concat_ws('|', movie_id, credit_id, person_id, kind, \
             character, job), ',' ORDER BY movie_id, credit_id)), '') FROM credits",
        ),
    ];
    let mut out = BTreeMap::new();
    for (name, sql) in queries {
        let value: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(store.pool())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        out.insert(name, value);
    }
    out
}

/// `url` with its `127.0.0.1` host replaced by `host`.
fn by_name(url: &str, host: &str) -> String {
    assert!(url.contains("127.0.0.1"), "{url}");
    url.replace("127.0.0.1", host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_imports_a_catalogue_exactly_like_the_native_binary() {
    let Some(image) = image() else { return };
    let sim = start_sim(600, 13).await;
    let native_db = TestDb::start();
    let image_db = TestDb::start_tcp();
    let port = image_db.tcp_port().unwrap();
    let stages = ["--stages", "catalog,bulk,delta", "--pages", "1000"];

    let t0 = Instant::now();
    let mut native = tmdbsync_run(&native_db, &sim, "test-key");
    native.args(["--rps", "1000"]).args(stages);
    let native = output(native).await;
    assert_eq!(native.status.code(), Some(0), "{}", stderr(&native));
    let native_secs = t0.elapsed().as_secs_f64();

    // Postgres and the simulator by host name only: the container resolves them from the
    // /etc/hosts podman writes (static glibc, /etc/nsswitch.conf `hosts: files dns`).
    let t1 = Instant::now();
    let name = container_name("run");
    let db_url = format!("postgres://postgres@{DB_HOST}:{port}/postgres");
    let tmdb_url = by_name(&sim.tmdb_url(), TMDB_HOST);
    let export_url = by_name(&sim.export_url(), TMDB_HOST);
    let add_db = format!("{DB_HOST}:127.0.0.1");
    let add_tmdb = format!("{TMDB_HOST}:127.0.0.1");
    let mut args = vec!["run", "--tmdb-url", &tmdb_url, "--export-url", &export_url];
    args.extend(["--rps", "1000"]);
    args.extend(stages);
    let mut in_image = hardened(
        &name,
        &[
            "--rm",
            "--add-host",
            &add_db,
            "--add-host",
            &add_tmdb,
            // Taken from podman's environment: no secret on a command line.
            "--env",
            "TMDB_API_KEY",
            "--env",
            "DATABASE_URL",
            "--env",
            "TMDBSYNC_LOG_FORMAT=text",
        ],
        image,
        &args,
    );
    in_image
        .env("TMDB_API_KEY", "test-key")
        .env("DATABASE_URL", &db_url);
    let in_image = output(in_image).await;
    assert_eq!(
        in_image.status.code(),
        Some(0),
        "the image's run failed:\n{}",
        stderr(&in_image)
    );
    let image_secs = t1.elapsed().as_secs_f64();
    eprintln!(
        "[image] catalog,bulk,delta of 600 movies: native {native_secs:.1}s, image {image_secs:.1}s"
    );

    let native_print = import_fingerprint(&native_db.store().await).await;
    let image_print = import_fingerprint(&image_db.store().await).await;
    eprintln!("[image] {image_print:?}");
    let live = sim_get(&sim, "/__sim/catalog").await["live"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(live, 600);
    assert_eq!(native_print["movies"], "600", "{native_print:?}");
    assert_ne!(native_print["credits"], "0", "{native_print:?}");
    assert_eq!(image_print, native_print);
}

/// A `tmdbsync controller` container, removed on drop.
struct ControllerContainer {
    name: String,
    metrics_addr: SocketAddr,
    _kubeconfig_dir: tempfile::TempDir,
}

impl ControllerContainer {
    /// The hardened image as `tmdbsync controller` for namespace `ns` on the host's network, with
    /// the admin kubeconfig (flattened: certificates inline) mounted read-only.
    fn start(cluster: &Cluster, image: &str, ns: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let flat = cluster.kubectl_ok(["config", "view", "--raw", "--flatten"]);
        write_private(&kubeconfig, &flat, 65532);
        let name = container_name("controller");
        let metrics_addr = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
        let mut podman_args = vec![
            "--detach".to_string(),
            "--mount".into(),
            format!(
                "type=bind,source={},target={KUBECONFIG_IN_CONTAINER},ro=true",
                kubeconfig.display()
            ),
            "--env".into(),
            format!("KUBECONFIG={KUBECONFIG_IN_CONTAINER}"),
        ];
        for (var, value) in CONTROLLER_ENV {
            podman_args.extend(["--env".into(), format!("{var}={value}")]);
        }
        let args = controller_args(ns, metrics_addr);
        let out = hardened(&name, &podman_args, image, &args)
            .output()
            .expect("run podman");
        assert!(
            out.status.success(),
            "podman run of the controller failed: {}",
            stderr(&out)
        );
        ControllerContainer {
            name,
            metrics_addr,
            _kubeconfig_dir: dir,
        }
    }

    fn logs(&self) -> String {
        let out = podman(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// The container's main process as the host sees it.
    fn pid(&self) -> u32 {
        let out = podman(&["inspect", "--format", "{{.State.Pid}}", &self.name]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid for {}: {}", self.name, stderr(&out)))
    }
}

impl Drop for ControllerContainer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[image] controller log:\n{}", self.logs());
        }
        let _ = podman(&["rm", "--force", "--time", "2", &self.name]);
    }
}

/// Writes `text` to `path` readable by `uid` only.
fn write_private(path: &Path, text: &str, uid: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).expect("write the kubeconfig");
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown the kubeconfig");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o400))
        .expect("chmod the kubeconfig");
}

/// A `/proc/<pid>/status` field.
fn proc_status(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(PathBuf::from(format!("/proc/{pid}/status")))
        .expect("read the container process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_the_controller_on_the_test_control_plane() {
    let Some(image) = image() else { return };
    let cluster = Cluster::shared();
    install_crds(cluster);
    let ns = cluster.namespace("e2e-image");
    let sim: SimHandle = start_sim(300, 17).await;
    let db = TestDb::start_tcp();
    // The controller (in the container) and the workers (the node agent's local processes) both
    // resolve `localhost`.
    let db_url = format!(
        "postgres://postgres@localhost:{}/postgres",
        db.tcp_port().unwrap()
    );
    apply_secrets(cluster, &ns, "test-key", &db_url);
    let controller = ControllerContainer::start(cluster, image, &ns);

    eventually(
        "the controller's /healthz answers 200",
        Duration::from_secs(30),
        || {
            let url = format!("http://{}/healthz", controller.metrics_addr);
            async move { (http_get(&url).await.0 == 200).then_some(()) }
        },
    )
    .await;
    // The hardening is real: the kernel's view of the container's process.
    let pid = controller.pid();
    assert_eq!(proc_status(pid, "Uid"), "65532 65532 65532 65532");
    assert_eq!(proc_status(pid, "Gid"), "65532 65532 65532 65532");
    assert_eq!(proc_status(pid, "CapEff"), "0000000000000000");
    assert_eq!(proc_status(pid, "CapBnd"), "0000000000000000");
    assert_eq!(proc_status(pid, "NoNewPrivs"), "1");
    assert_eq!(
        proc_status(pid, "Seccomp"),
        "2",
        "the default seccomp filter"
    );
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mountinfo
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .expect("a root mount");
    let root_opts = root.split_whitespace().nth(5).unwrap_or_default();
    assert!(
        root_opts.split(',').any(|o| o == "ro"),
        "root filesystem not read-only: {root}"
    );

    apply(cluster, &ns, &tmdb_sync(&sim));
    apply(cluster, &ns, &sync_run("first", "Catalog"));
    let runs: Api<SyncRun> = Api::namespaced(cluster.client(), &ns);
    let run = run_succeeded(&runs, "first", Duration::from_secs(120)).await;
    assert!(
        run.status
            .as_ref()
            .and_then(|s| s.job_name.clone())
            .is_some(),
        "the controller made a Job: {:?}",
        run.status
    );

    let syncs: Api<TmdbSync> = Api::namespaced(cluster.client(), &ns);
    let sync = wait_for(&syncs, SYNC, Duration::from_secs(60), |s| {
        let status = s.status.as_ref();
        status.and_then(|st| st.observed_generation) == s.metadata.generation
            && status
                .and_then(|st| st.progress.as_ref())
                .is_some_and(|p| p.tmdb_total == 300)
    })
    .await;
    let conditions: Vec<_> = sync
        .status
        .as_ref()
        .map(|s| s.conditions.iter().map(|c| c.type_.clone()).collect())
        .unwrap_or_default();
    assert!(
        conditions.iter().any(|c| c == "Ready"),
        "conditions: {conditions:?}"
    );
    let logs = controller.logs();
    assert!(
        !logs.contains("test-key"),
        "the API key reached the controller's log"
    );
}
