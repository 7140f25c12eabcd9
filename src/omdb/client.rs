//! `GET {base}?i=tt…&apikey=…`: one request per lookup; the caller counts calls against the daily
//! limit before making each one.

use std::time::{Duration, Instant};

use super::{OmdbError, OmdbLookup, models};
use crate::tmdb::ApiKey;
use crate::tmdb::client::{
    DEFAULT_CONNECT_TIMEOUT_SECS, DEFAULT_READ_TIMEOUT_SECS, DEFAULT_TIMEOUT_SECS, error_chain,
    one_line, secs,
};

/// Where OMDb is and how to call it.
#[derive(Debug, Clone)]
pub struct OmdbConfig {
    /// Base URL, e.g. `https://www.omdbapi.com/`.
    pub base_url: String,
    pub api_key: ApiKey,
    /// Longest one lookup may take, answer included (`--timeout-secs`).
    pub timeout: Duration,
    /// Longest a TCP + TLS connect may take (`--connect-timeout-secs`).
    pub connect_timeout: Duration,
    /// Longest a lookup may wait for the next bytes of the answer (`--read-timeout-secs`).
    pub read_timeout: Duration,
}

impl OmdbConfig {
    /// Settings with the TMDb client's default timeouts (20 s overall, 10 s connect, 15 s read).
    pub fn new(base_url: impl Into<String>, api_key: ApiKey) -> Self {
        OmdbConfig {
            base_url: base_url.into(),
            api_key,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS),
            read_timeout: Duration::from_secs(DEFAULT_READ_TIMEOUT_SECS),
        }
    }
}

/// A cheap-to-clone OMDb client.
#[derive(Clone)]
pub struct OmdbClient {
    http: reqwest::Client,
    config: OmdbConfig,
}

impl OmdbClient {
    /// Builds the client (no request is made).
    pub fn new(config: OmdbConfig) -> Result<Self, OmdbError> {
        let http = crate::http::http_client_builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("tmdbsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OmdbError::Network(e.without_url().to_string()))?;
        Ok(OmdbClient { http, config })
    }

    /// Looks a movie up by IMDb id (`tt0066921`). Error messages never carry the key, whatever
    /// the server sent back.
    pub async fn by_imdb_id(&self, imdb_id: &str) -> Result<OmdbLookup, OmdbError> {
        let started = Instant::now();
        let response = self
            .http
            .get(&self.config.base_url)
            .query(&[("i", imdb_id), ("apikey", self.config.api_key.expose())])
            .send()
            .await
            .map_err(|e| self.network_error(e, started))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| self.network_error(e, started))?;
        // An error page may echo the request URL: the key goes before the body is read further
        // (an error message cut short would otherwise keep part of it).
        let key = self.config.api_key.expose();
        let body = if key.len() >= 4 && body.contains(key) {
            body.replace(key, crate::redact::REDACTED)
        } else {
            body
        };
        models::interpret(status, &body).map_err(|e| self.redact_error(e))
    }

    fn redact(&self, text: &str) -> String {
        crate::redact::redact(text, &[self.config.api_key.expose()])
    }

    /// The error with any echoed key removed from its message, on one line.
    fn redact_error(&self, e: OmdbError) -> OmdbError {
        match e {
            OmdbError::Api { status, message } => OmdbError::Api {
                status,
                message: one_line(&self.redact(&message), 200),
            },
            OmdbError::Malformed(m) => OmdbError::Malformed(one_line(&self.redact(&m), 200)),
            OmdbError::Network(m) => OmdbError::Network(self.redact(&m)),
            other => other,
        }
    }

    fn network_error(&self, e: reqwest::Error, started: Instant) -> OmdbError {
        let c = &self.config;
        OmdbError::Network(if !e.is_timeout() {
            self.redact(&error_chain(&e.without_url()))
        } else if e.is_connect() {
            format!(
                "could not connect within {} s (--connect-timeout-secs)",
                secs(c.connect_timeout)
            )
        } else if started.elapsed() + Duration::from_millis(50) >= c.timeout {
            format!(
                "no complete answer within {} s (--timeout-secs)",
                secs(c.timeout)
            )
        } else {
            format!(
                "no data for {} s (--read-timeout-secs)",
                secs(c.read_timeout)
            )
        })
    }
}
