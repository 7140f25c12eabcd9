//! The long-running commands: `simulate`, `controller` and `dashboard`.

use super::{connect_read_only, fail, sync_facts};
use crate::{ControllerArgs, DashboardArgs, SimulateArgs};
use anyhow::Context as _;
use std::time::Duration;
use tmdbsync::exit::ExitCode;

pub(crate) async fn simulate(a: SimulateArgs) -> anyhow::Result<ExitCode> {
    let mut config = tmdbsync::sim::SimConfig {
        movies: a.movies,
        adult_movies: a.adult_movies,
        seed: a.seed,
        rps: a.rps,
        latency_ms: a.latency_ms,
        error_rate: a.error_rate,
        glitch_rate: a.glitch_rate,
        ..Default::default()
    };
    if let Some(d) = a.start_date {
        config.start_date = d;
    }
    let listener = tokio::net::TcpListener::bind(a.addr)
        .await
        .with_context(|| format!("binding {}", a.addr))?;
    let addr = listener.local_addr()?;
    println!(
        "tmdbsync simulator listening on http://{addr} (TMDb /3, exports /p/exports, OMDb /omdb/)"
    );
    tokio::select! {
        r = tmdbsync::sim::serve(config, listener) => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::Success)
}

pub(crate) async fn controller(a: ControllerArgs) -> anyhow::Result<ExitCode> {
    use tmdbsync::controller::process::{self, Election, ProcessOptions};
    let options = ProcessOptions {
        config: tmdbsync::controller::ControllerConfig {
            namespace: a.namespace,
            worker_image: a.worker_image,
            mirror_interval: Duration::from_secs(a.mirror_interval_secs),
            job_resources: a
                .job_resources
                .unwrap_or_else(tmdbsync::api::tmdb_sync::default_job_resources),
            ..Default::default()
        },
        instance: a.instance,
        metrics_addr: a.metrics_addr,
        election: a.leader_election.then(|| Election {
            lease_namespace: a.lease_namespace,
            lease_name: a.lease_name,
            lease_duration: Duration::from_secs(a.lease_duration_secs),
        }),
        api_grace: Duration::from_secs(a.api_grace_secs),
    };
    process::run(options).await?;
    Ok(ExitCode::Success)
}

/// Serves the Sync Health page of one database, read-only, until killed.
pub(crate) async fn dashboard(a: DashboardArgs) -> anyhow::Result<ExitCode> {
    let facts = match sync_facts(a.sync.as_deref()) {
        Ok(f) => f,
        Err(e) => return Ok(fail(e)),
    };
    let store = match connect_read_only(&a.db).await {
        Ok(s) => s,
        Err(e) => return Ok(fail(e)),
    };
    let listener = tokio::net::TcpListener::bind(a.addr)
        .await
        .with_context(|| format!("binding {}", a.addr))?;
    println!("tmdbsync dashboard on http://{}/", listener.local_addr()?);
    tokio::select! {
        r = tmdbsync::web::dashboard::serve_database(listener, store, facts) => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::Success)
}
