//! tmdbsync mirrors The Movie Database (TMDb) movie catalog into Postgres and keeps it fresh.
//!
//! The same engine runs standalone (`tmdbsync run`) and as Kubernetes Job workers.

/// The custom resources TmdbSync and SyncRun.
pub mod api;
/// The operator's reconcilers, Job builder and context.
pub mod controller;
/// OMDb client and models (enrichment).
pub mod omdb;
/// Pure decisions: delta windows, page ranges, Sync Health (no I/O).
pub mod plan;
/// Scrubbing API keys and URL credentials from text that came from outside.
pub mod redact;
/// The Sync Health report rendered for a terminal.
pub mod report;
/// Makes wire text storable in Postgres (U+0000, lone surrogates, invalid UTF-8).
pub mod sanitize;
/// The TMDb/OMDb simulator used by the demo, tests and benchmarks.
pub mod sim;
/// Catalog, bulk and delta stages.
pub mod stage;
/// Postgres schema access.
pub mod store;
/// Tracing setup.
pub mod telemetry;
/// TMDb client, wire models, export reader.
pub mod tmdb;
/// HTTP: the controller's endpoints and the Sync Health web page.
pub mod web;

/// Process exit codes, shared by `tmdbsync run` and the Job workers (the Job's podFailurePolicy
/// fails the Job at once on the fatal ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done.
    Success = 0,
    /// Failed, worth retrying (network, database, TMDb outage, a broken export file).
    Retryable = 1,
    /// Bad command-line usage (clap's own code).
    Usage = 2,
    /// Fatal: TMDb or OMDb refused the credentials.
    Credentials = 3,
    /// Fatal: the configuration cannot work (bad URL or scheme, zero timeout, wrong database
    /// password, missing privileges, not a tmdbsync database, schema not migrated, empty catalog
    /// for bulk, bad range, an API root that is not TMDb's).
    Config = 4,
    /// `tmdbsync run` completed, but some movies still failed after every try (rows in
    /// `sync_errors`; their pages stay open and the delta watermark holds, so the next run retries
    /// them). Not fatal. Job workers exit 0 instead: a failed pod would be retried or fail the Job,
    /// and the run did complete (its SyncRun shows the errors).
    CompletedWithErrors = 5,
}

impl From<&stage::StageError> for ExitCode {
    fn from(e: &stage::StageError) -> Self {
        match e {
            stage::StageError::Credentials(_) | stage::StageError::OmdbCredentials(_) => {
                ExitCode::Credentials
            }
            stage::StageError::Config(_) => ExitCode::Config,
            stage::StageError::Store(e) if e.is_config() => ExitCode::Config,
            stage::StageError::Tmdb(e) if e.is_config() => ExitCode::Config,
            stage::StageError::Tmdb(_)
            | stage::StageError::Store(_)
            | stage::StageError::Busy(_) => ExitCode::Retryable,
        }
    }
}

impl From<&store::StoreError> for ExitCode {
    fn from(e: &store::StoreError) -> Self {
        if e.is_config() {
            ExitCode::Config
        } else {
            ExitCode::Retryable
        }
    }
}

/// A `reqwest` client builder with the process-wide TLS provider installed. kube (ring) and
/// reqwest/sqlx would otherwise leave rustls unable to pick a provider.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// Installs rustls' ring provider as the process default (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
