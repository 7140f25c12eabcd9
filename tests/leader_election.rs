//! Lease leader election (`tmdbsync::controller::leader`) on the real control plane, with short
//! timings: lease 3 s, renew deadline 2 s, retry 0.5 s.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use support::cluster::*;
use tmdbsync::controller::leader::{Error, LeaderElector, LeaseTiming};

const LEASE: &str = "tmdbsync-leader";

fn timing() -> LeaseTiming {
    LeaseTiming {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    }
}

fn elector(client: &Client, ns: &str, identity: &str) -> LeaderElector {
    LeaderElector::new(client.clone(), ns, LEASE, identity, timing())
}

async fn lease(client: &Client, ns: &str) -> Lease {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get(LEASE)
        .await
        .unwrap()
}

fn holder(l: &Lease) -> Option<String> {
    l.spec.as_ref().and_then(|s| s.holder_identity.clone())
}

fn transitions(l: &Lease) -> i32 {
    l.spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .unwrap_or(-1)
}

fn renew_time(l: &Lease) -> Timestamp {
    l.spec.as_ref().unwrap().renew_time.as_ref().unwrap().0
}

fn acquire_time(l: &Lease) -> Timestamp {
    l.spec.as_ref().unwrap().acquire_time.as_ref().unwrap().0
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("tmdbsync=debug")
        .with_test_writer()
        .try_init();
}

/// Two candidates race for one lease: exactly one wins; the other stays out while the winner renews
/// and takes over promptly once the winner releases.
#[tokio::test]
async fn one_leader_and_fast_handover_on_release() {
    init_tracing();
    let cluster = Cluster::shared();
    let ns = cluster.namespace("leader-release");
    let client = cluster.client();
    let a = elector(&client, &ns, "candidate-a");
    let b = elector(&client, &ns, "candidate-b");

    let (winner, loser) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            r = a.acquire() => { r.unwrap(); (a, b) }
            r = b.acquire() => { r.unwrap(); (b, a) }
        }
    })
    .await
    .expect("one candidate acquires");
    let winner_id = winner.identity().to_string();
    let loser_id = loser.identity().to_string();
    let first = lease(&client, &ns).await;
    assert_eq!(holder(&first).as_deref(), Some(winner_id.as_str()));
    assert_eq!(
        transitions(&first),
        0,
        "a new lease starts at 0 transitions"
    );

    let handle = winner.renew_in_background();
    // Longer than the lease duration: the loser must not get in while the winner renews.
    let blocked = tokio::time::timeout(Duration::from_secs(4), loser.acquire()).await;
    assert!(blocked.is_err(), "{loser_id} acquired a renewed lease");
    assert!(handle.is_leader());
    let renewed = lease(&client, &ns).await;
    assert_eq!(holder(&renewed).as_deref(), Some(winner_id.as_str()));
    assert!(
        renew_time(&renewed) > renew_time(&first),
        "renewTime advances"
    );
    assert_eq!(
        acquire_time(&renewed),
        acquire_time(&first),
        "renewing keeps acquireTime"
    );
    assert_eq!(transitions(&renewed), 0);

    handle.release().await;
    let released = lease(&client, &ns).await;
    assert_eq!(holder(&released), None, "release clears the holder");
    assert_eq!(
        released.spec.as_ref().unwrap().lease_duration_seconds,
        Some(1)
    );

    let t0 = Instant::now();
    tokio::time::timeout(Duration::from_secs(3 + 3), loser.acquire())
        .await
        .expect("the other candidate takes over within lease_duration + 3 s")
        .unwrap();
    let took = t0.elapsed();
    eprintln!("handover after release took {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "a released lease is taken at the next retry, took {took:?}"
    );
    let taken = lease(&client, &ns).await;
    assert_eq!(holder(&taken).as_deref(), Some(loser_id.as_str()));
    assert_eq!(
        transitions(&taken),
        1,
        "takeover increments leaseTransitions"
    );
    assert!(acquire_time(&taken) > acquire_time(&first));
    assert_eq!(taken.spec.as_ref().unwrap().lease_duration_seconds, Some(3));
}

/// A holder that stops renewing (crash: the handle is dropped without release) loses the lease to
/// the other candidate once `renewTime + leaseDurationSeconds` has passed, not before.
#[tokio::test]
async fn takeover_after_the_holder_stops_renewing() {
    init_tracing();
    let cluster = Cluster::shared();
    let ns = cluster.namespace("leader-expiry");
    let client = cluster.client();
    let a = elector(&client, &ns, "crashing");
    let b = elector(&client, &ns, "successor");

    a.acquire().await.unwrap();
    let handle = a.renew_in_background();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(handle); // stops renewing, no release
    let stopped = Instant::now();
    let last = lease(&client, &ns).await;
    assert_eq!(holder(&last).as_deref(), Some("crashing"));

    tokio::time::timeout(Duration::from_secs(3 + 3), b.acquire())
        .await
        .expect("the successor takes over within lease_duration + 3 s")
        .unwrap();
    let took = stopped.elapsed();
    eprintln!("takeover after the holder stopped renewing took {took:?}");
    // The last renewal happened at most one retry period (+ request time) before the drop.
    assert!(
        took >= Duration::from_secs(2),
        "the lease was taken before it expired ({took:?})"
    );
    let taken = lease(&client, &ns).await;
    assert_eq!(holder(&taken).as_deref(), Some("successor"));
    assert_eq!(transitions(&taken), 1);
    let expiry = renew_time(&last) + Duration::from_secs(3);
    assert!(
        acquire_time(&taken) >= expiry,
        "acquired at {} before the old lease expired at {expiry}",
        acquire_time(&taken)
    );
}

/// When another identity overwrites the lease, the leader's next renewal sees it and `lost()`
/// resolves; `release()` then leaves the new holder alone.
#[tokio::test]
async fn lost_when_another_identity_holds_the_lease() {
    init_tracing();
    let cluster = Cluster::shared();
    let ns = cluster.namespace("leader-stolen");
    let client = cluster.client();
    let a = elector(&client, &ns, "leader");
    a.acquire().await.unwrap();
    let handle = a.renew_in_background();
    let lost = handle.lost();

    let api = Api::<Lease>::namespaced(client.clone(), &ns);
    let mut l = api.get(LEASE).await.unwrap();
    let spec = l.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    spec.lease_duration_seconds = Some(60);
    // A replace with the read resourceVersion can race with a renewal: retry on 409.
    loop {
        match api.replace(LEASE, &PostParams::default(), &l).await {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let fresh = api.get(LEASE).await.unwrap();
                l.metadata.resource_version = fresh.metadata.resource_version;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let t0 = Instant::now();
    tokio::time::timeout(Duration::from_secs(2), lost)
        .await
        .expect("lost() resolves at the next renewal");
    eprintln!("lost() after the lease was taken: {:?}", t0.elapsed());
    assert!(!handle.is_leader());
    handle.release().await;
    assert_eq!(
        holder(&lease(&client, &ns).await).as_deref(),
        Some("intruder")
    );
}

/// A client whose RBAC allows leases only while the RoleBinding exists.
fn service_account_client(cluster: &Cluster, ns: &str) -> Client {
    let rbac = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "candidate"}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "leases"},
             "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                        "verbs": ["get", "create", "update"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "candidate-leases"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "leases"},
             "subjects": [{"kind": "ServiceAccount", "name": "candidate", "namespace": ns}]},
        ],
    });
    cluster.kubectl_stdin(["-n", ns, "apply", "-f", "-"], &rbac.to_string());
    let token = cluster.kubectl_ok(["-n", ns, "create", "token", "candidate"]);
    let mut config = cluster.config().clone();
    config.auth_info =
        serde_json::from_value(serde_json::json!({ "token": token.trim() })).unwrap();
    tmdbsync::http::install_crypto_provider();
    Client::try_from(config).unwrap()
}

/// Renewals that keep failing (RBAC revoked) make `lost()` resolve once `renew_deadline` has passed
/// since the last successful renewal; acquiring without RBAC fails at once instead of spinning.
#[tokio::test]
async fn lost_after_renew_deadline_when_renewals_fail() {
    init_tracing();
    let cluster = Cluster::shared();
    let ns = cluster.namespace("leader-deadline");
    let client = service_account_client(cluster, &ns);
    let a = elector(&client, &ns, "rbac-candidate");
    a.acquire().await.unwrap();
    let handle = a.renew_in_background();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(handle.is_leader());

    cluster.kubectl_ok(["-n", &ns, "delete", "rolebinding", "candidate-leases"]);
    let revoked = Instant::now();
    tokio::time::timeout(Duration::from_secs(2 + 2), handle.lost())
        .await
        .expect("lost() resolves about renew_deadline after the last renewal");
    let took = revoked.elapsed();
    eprintln!("lost() after RBAC was revoked: {took:?}");
    // The last success started at most one retry period (+ a request) before the revocation; a
    // leader that gave up at its first failed renewal would report within ~0.5 s.
    assert!(
        took >= Duration::from_secs(1),
        "lost() fired before the renew deadline ({took:?})"
    );
    assert!(!handle.is_leader());
    // Nobody else took it: the record still names the old leader, which simply expires.
    let admin = cluster.client();
    assert_eq!(
        holder(&lease(&admin, &ns).await).as_deref(),
        Some("rbac-candidate")
    );
    drop(handle);

    let b = elector(&client, &ns, "no-rbac");
    let err = tokio::time::timeout(Duration::from_secs(5), b.acquire())
        .await
        .expect("a forbidden acquire fails instead of retrying forever")
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { source: kube::Error::Api(s), .. } if s.code == 403),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_timing_is_rejected() {
    let cluster = Cluster::shared();
    let client = cluster.client();
    let bad = LeaseTiming {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    };
    let e = LeaderElector::new(client, "default", "never-created", "x", bad)
        .acquire()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidTiming(_)), "{e:?}");
}
