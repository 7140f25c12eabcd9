//! Shared controller state: the client, settings, secret access (with a short-lived cache of the
//! values read), a cache of database pools and per-object failure counts for backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};

use super::Error;
use crate::api::SecretKeyRef;
use crate::store::Store;

/// Settings of the controller process.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Watch only this namespace (all when `None`).
    pub namespace: Option<String>,
    /// Image of the worker pods when a TmdbSync does not name one.
    pub worker_image: String,
    /// `ttlSecondsAfterFinished` of run Jobs: long enough to read the outcome after a restart.
    pub job_ttl_seconds: i32,
    /// How often a running SyncRun's counters are mirrored from Postgres.
    pub mirror_interval: Duration,
    /// Resources of worker pods when a TmdbSync's `jobTemplate.resources` is unset.
    pub job_resources: k8s_openapi::api::core::v1::ResourceRequirements,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            worker_image: "ghcr.io/tmdbsync/tmdbsync:latest".into(),
            job_ttl_seconds: 86_400,
            mirror_interval: Duration::from_secs(5),
            job_resources: crate::api::tmdb_sync::default_job_resources(),
        }
    }
}

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretProblem {
    NotFound(String),
    KeyMissing { secret: String, key: String },
}

impl std::fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretProblem::NotFound(name) => write!(f, "secret {name:?} not found"),
            SecretProblem::KeyMissing { secret, key } => {
                write!(f, "secret {secret:?} has no key {key:?}")
            }
        }
    }
}

/// The state every reconcile shares.
pub struct Context {
    pub client: Client,
    pub config: ControllerConfig,
    pub metrics: std::sync::Arc<crate::telemetry::metrics::Metrics>,
    /// What `/readyz` reports; the controller's watches report to it.
    pub readiness: crate::telemetry::readiness::Readiness,
    recorder: Recorder,
    /// One pool per database URL, created by the first reconcile that needs it (the others
    /// needing the same one wait for it; other databases do not).
    stores: Mutex<HashMap<String, std::sync::Arc<tokio::sync::OnceCell<Store>>>>,
    failures: Mutex<HashMap<String, u32>>,
    runs: OnceLock<super::runs::RunCache>,
    secrets: Mutex<HashMap<(String, String), ReadSecret>>,
}

/// How long a Secret read is reused. The controller may only `get` Secrets (it does not list or
/// watch them, which would let it read every Secret of the cluster), so without this every
/// sync's periodic wake-up read its two or three Secrets again: 0.67 requests/s for 100 syncs,
/// for values that rarely change. A Secret or key found missing is never cached (it is read again
/// on every retry, every 30 s), and a sync whose database cannot be reached forgets its cached
/// values ([`Context::forget_secrets`]), so a rotated database URL is seen at once.
pub const SECRET_CACHE: Duration = Duration::from_secs(3600);

/// The non-empty values of one Secret, and when they were read.
struct ReadSecret {
    at: Instant,
    values: BTreeMap<String, String>,
}

impl Context {
    /// Builds the context; `instance` names this replica in events.
    pub fn new(
        client: Client,
        config: ControllerConfig,
        instance: Option<String>,
        metrics: std::sync::Arc<crate::telemetry::metrics::Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: "tmdbsync-controller".into(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            config,
            metrics,
            readiness: Default::default(),
            stores: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            runs: OnceLock::new(),
            secrets: Mutex::new(HashMap::new()),
        }
    }

    /// The context reporting to `readiness` (the one `/readyz` serves).
    pub fn with_readiness(mut self, readiness: crate::telemetry::readiness::Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// Makes reconciles read SyncRuns from `cache` (built by the controller's SyncRun watch)
    /// instead of listing them from the API server. Set once, by [`super::run`].
    pub fn cache_runs(&self, cache: super::runs::RunCache) {
        let _ = self.runs.set(cache);
    }

    /// The SyncRun cache, when the controller runs one.
    pub fn run_cache(&self) -> Option<&super::runs::RunCache> {
        self.runs.get()
    }

    /// Reads one key of a Secret (reusing a read of the last [`SECRET_CACHE`]). The value is
    /// returned, never logged.
    pub async fn secret_value(
        &self,
        namespace: &str,
        r: &SecretKeyRef,
    ) -> Result<Result<String, SecretProblem>, Error> {
        let id = (namespace.to_string(), r.name.clone());
        let cached = {
            let secrets = self.secrets.lock().expect("secrets lock");
            secrets
                .get(&id)
                .filter(|s| s.at.elapsed() < SECRET_CACHE)
                .and_then(|s| s.values.get(&r.key).cloned())
        };
        if let Some(value) = cached {
            return Ok(Ok(value));
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let Some(secret) = api.get_opt(&r.name).await? else {
            self.secrets.lock().expect("secrets lock").remove(&id);
            return Ok(Err(SecretProblem::NotFound(r.name.clone())));
        };
        let values = secret_values(secret);
        let value = values.get(&r.key).cloned();
        let mut secrets = self.secrets.lock().expect("secrets lock");
        match value {
            Some(v) => {
                let at = Instant::now();
                secrets.insert(id, ReadSecret { at, values });
                Ok(Ok(v))
            }
            None => {
                secrets.remove(&id);
                Ok(Err(SecretProblem::KeyMissing {
                    secret: r.name.clone(),
                    key: r.key.clone(),
                }))
            }
        }
    }

    /// Forgets the cached Secret values of `namespace`: the next reads ask the API server.
    pub fn forget_secrets(&self, namespace: &str) {
        (self.secrets.lock().expect("secrets lock")).retain(|(ns, _), _| ns != namespace);
    }

    /// A pooled connection to the database at `url` (cached per URL).
    pub async fn store(&self, url: &str) -> Result<Store, Error> {
        let cell = {
            let mut stores = self.stores.lock().expect("stores lock");
            stores.entry(url.to_string()).or_default().clone()
        };
        let store = cell
            .get_or_try_init(|| async {
                let store = Store::connect(url, 4).await?;
                store.migrate().await?;
                Ok::<_, Error>(store)
            })
            .await?;
        Ok(store.clone())
    }

    /// Publishes an event on `reference` (errors are logged, not returned: events are best effort).
    pub async fn event(
        &self,
        reference: &ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            tracing::warn!(error = %e, reason, "could not publish an event");
        }
    }

    /// Counts a failed reconcile of `key` and returns the backoff before the next try.
    pub fn failed(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().expect("failures lock");
        let n = f.entry(key.to_string()).or_insert(0);
        *n += 1;
        Duration::from_secs((2u64 << (*n).min(8)).min(300))
    }

    /// Resets the failure count of `key` after a good reconcile.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().expect("failures lock").remove(key);
    }
}

/// A Secret's non-empty values by key: `data` decoded and trimmed, over `stringData` as given.
fn secret_values(secret: Secret) -> BTreeMap<String, String> {
    let data = secret.data.unwrap_or_default().into_iter();
    let decoded = data.map(|(k, v)| (k, String::from_utf8_lossy(&v.0).trim().to_string()));
    let mut values: BTreeMap<String, String> = secret.string_data.unwrap_or_default();
    values.extend(decoded);
    values.retain(|_, v| !v.is_empty());
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn secret_values_decode_data_over_string_data_trimmed_and_drop_empty_ones() {
        let secret = Secret {
            data: Some(BTreeMap::from([
                ("url".into(), ByteString(b"postgres://db/x\n".to_vec())),
                ("empty".into(), ByteString(b"  ".to_vec())),
                ("both".into(), ByteString(b"from-data".to_vec())),
            ])),
            string_data: Some(BTreeMap::from([
                ("api-key".into(), "k".into()),
                ("both".into(), "from-string-data".into()),
            ])),
            ..Default::default()
        };
        let values = secret_values(secret);
        assert_eq!(
            values,
            BTreeMap::from([
                ("api-key".to_string(), "k".to_string()),
                ("both".to_string(), "from-data".to_string()),
                ("url".to_string(), "postgres://db/x".to_string()),
            ])
        );
    }
}
