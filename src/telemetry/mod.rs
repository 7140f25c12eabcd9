//! Telemetry: logs (human-readable on a terminal, JSON lines otherwise), Prometheus metrics and
//! the readiness `/readyz` reports.

pub mod metrics;
pub mod readiness;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Whether text written to stderr may carry ANSI colours: only on a terminal, and never with
/// `NO_COLOR` set (no-color.org).
pub fn colours_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Sets up tracing to stderr. `RUST_LOG` overrides the default `info` level;
/// `TMDBSYNC_LOG_FORMAT=json|text` overrides the format. Text carries colours only on a terminal
/// (piped or redirected logs are plain).
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn,reqwest=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours_on_stderr());
    let json = std::env::var("TMDBSYNC_LOG_FORMAT")
        .map(|v| v == "json")
        .unwrap_or(!std::io::stderr().is_terminal());
    if json {
        let _ = builder.json().flatten_event(true).try_init();
    } else {
        let _ = builder.compact().try_init();
    }
}
