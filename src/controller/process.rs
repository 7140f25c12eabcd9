//! The `tmdbsync controller` process: the health endpoints, a heartbeat to the API server, leader
//! election and the reconcilers, and how it ends. It stops with an error when the health endpoints
//! cannot be served (a port taken) or stop, when the Lease cannot be acquired for good, and when
//! leadership is lost; `/readyz` follows [`crate::telemetry::readiness`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;

use super::leader::{self, LeaderElector, LeaseTiming, default_identity};
use super::{Context, ControllerConfig};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::readiness::{Readiness, Role};

/// Leader election: only the replica holding the Lease acts.
#[derive(Debug, Clone)]
pub struct Election {
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// How long the Lease stays valid without renewal (renewals every 2/15 of it, give up after
    /// 2/3).
    pub lease_duration: Duration,
}

/// How the controller process runs.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// The reconcilers' settings.
    pub config: ControllerConfig,
    /// This replica's name in events and in the Lease (default: host name plus a random suffix).
    pub instance: Option<String>,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    pub metrics_addr: SocketAddr,
    /// Leader election, or `None` to act at once.
    pub election: Option<Election>,
    /// How long the API server may stay silent, or a watch keep failing, before `/readyz` says
    /// not ready.
    pub api_grace: Duration,
}

/// Why the controller process stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The health endpoints' address cannot be bound (taken, or not this host's).
    #[error("cannot serve /metrics, /healthz and /readyz on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The health endpoints stopped serving.
    #[error("the health endpoints on {addr} stopped: {reason}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// No Kubernetes client configuration (in-cluster or kubeconfig).
    #[error("connecting to the Kubernetes API")]
    Connect(#[source] kube::Error),
    /// The Lease cannot be acquired and retrying cannot help (RBAC, a missing namespace).
    #[error("acquiring the leader lease")]
    Lease(#[source] leader::Error),
    /// Another replica holds the Lease now, or renewals failed for the renew deadline.
    #[error("lost the leader lease; exiting so another replica takes over")]
    LeadershipLost,
}

/// Runs the controller process until SIGTERM or SIGINT (`Ok`), or until it cannot go on.
pub async fn run(options: ProcessOptions) -> Result<(), ProcessError> {
    let readiness = Readiness::new(options.api_grace);
    let metrics = Arc::new(Metrics::new());
    let addr = options.metrics_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ProcessError::Bind { addr, source })?;
    let client = Client::try_default().await.map_err(ProcessError::Connect)?;
    let heartbeat = tokio::spawn(heartbeat(client.clone(), readiness.clone()));
    let identity = options.instance.clone().unwrap_or_else(default_identity);
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            options.config,
            Some(identity.clone()),
            metrics.clone(),
        )
        .with_readiness(readiness.clone()),
    );
    let mut server = tokio::spawn(crate::web::dashboard::serve_controller(
        listener,
        readiness.clone(),
        metrics,
        Arc::new(super::dashboard::ControllerDirectory::new(ctx.clone())),
    ));
    let result = tokio::select! {
        r = act(client, ctx, identity, options.election, readiness) => r,
        r = &mut server => Err(ProcessError::Serve {
            addr,
            reason: match r {
                Ok(Ok(())) => "the server ended".into(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            },
        }),
    };
    heartbeat.abort();
    server.abort();
    result
}

/// Stands by for the Lease (when electing), then reconciles until a signal or a lost Lease.
async fn act(
    client: Client,
    ctx: Arc<Context>,
    identity: String,
    election: Option<Election>,
    readiness: Readiness,
) -> Result<(), ProcessError> {
    let Some(election) = election else {
        tracing::info!("controller starting (no leader election)");
        readiness.set_role(Role::Active);
        super::run(client, ctx).await;
        return Ok(());
    };
    let lease = election.lease_duration;
    let timing = LeaseTiming {
        lease_duration: lease,
        renew_deadline: lease * 2 / 3,
        retry_period: lease * 2 / 15,
    };
    let answered = readiness.clone();
    let elector = LeaderElector::new(
        client.clone(),
        &election.lease_namespace,
        &election.lease_name,
        &identity,
        timing,
    )
    .on_lease_answered(move || answered.lease_answered());
    // Ready as a standby once the Lease answers: it could take over, so rolling updates proceed.
    readiness.set_role(Role::Standby);
    tracing::info!(identity = %identity, lease = %election.lease_name, "waiting to become the leader");
    tokio::select! {
        r = elector.acquire() => r.map_err(ProcessError::Lease)?,
        signal = stop_signal() => {
            tracing::info!(signal, "stopped while standing by");
            return Ok(());
        }
    }
    tracing::info!(identity = %identity, "became the leader; controller starting");
    readiness.set_role(Role::Active);
    let handle = elector.renew_in_background();
    let lost = handle.lost();
    tokio::select! {
        _ = super::run(client, ctx) => {
            handle.release().await;
            Ok(())
        }
        // Stop acting at once; Kubernetes restarts the pod, which then queues for the lease.
        _ = lost => Err(ProcessError::LeadershipLost),
    }
}

/// Resolves on SIGTERM (a pod being stopped) or SIGINT (Ctrl-C), naming it.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// How often the heartbeat asks: a third of the grace, between 1 and 10 seconds.
pub fn heartbeat_period(grace: Duration) -> Duration {
    (grace / 3).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// Asks the API server for its version every [`heartbeat_period`] and reports each answer to
/// `readiness`: a watch with nothing to deliver cannot tell a lost connection from a quiet cluster.
/// Logs at warn when the answers stop and at info when they come back.
async fn heartbeat(client: Client, readiness: Readiness) {
    let period = heartbeat_period(readiness.grace());
    let mut answering = true;
    loop {
        let problem = match tokio::time::timeout(period, client.apiserver_version()).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {period:?}")),
        };
        match problem {
            None => {
                readiness.api_answered();
                if !answering {
                    tracing::info!("the Kubernetes API server answers again");
                }
                answering = true;
            }
            Some(reason) => {
                if answering {
                    tracing::warn!(reason = %reason, "the Kubernetes API server does not answer");
                }
                answering = false;
            }
        }
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_asks_several_times_within_the_grace() {
        let s = Duration::from_secs;
        for (grace, period) in [(s(30), s(10)), (s(60), s(10)), (s(9), s(3)), (s(2), s(1))] {
            assert_eq!(heartbeat_period(grace), period, "{grace:?}");
        }
    }

    #[tokio::test]
    async fn a_taken_port_stops_the_process_with_an_error_naming_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let options = ProcessOptions {
            config: ControllerConfig::default(),
            instance: None,
            metrics_addr: addr,
            election: None,
            api_grace: Duration::from_secs(30),
        };
        let e = run(options).await.unwrap_err();
        assert!(matches!(e, ProcessError::Bind { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("cannot serve /metrics, /healthz and /readyz on {addr}")
        );
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert!(source.to_lowercase().contains("in use"), "{source}");
    }
}
