//! tmdbsync mirrors The Movie Database (TMDb) movie catalog into Postgres and keeps it fresh.
//!
//! The same engine runs standalone (`tmdbsync run`) and as Kubernetes Job workers.

/// The custom resources TmdbSync and SyncRun.
pub mod api;
/// The operator's reconcilers, Job builder and context.
pub mod controller;
/// Process exit codes and how errors map to them.
pub mod exit;
/// The host this process runs on (lease holders, run owners).
pub mod host;
/// The process-wide HTTP client setup (TLS provider).
pub mod http;
/// Domain records: a movie, a catalog entry, an OMDb record, an error category.
pub mod model;
/// OMDb client and models (enrichment).
pub mod omdb;
/// Pure decisions: delta windows, page ranges, Sync Health (no I/O).
pub mod plan;
/// `kubectl tmdbsync`: the kubectl plugin's commands over the Kubernetes API.
pub mod plugin;
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
