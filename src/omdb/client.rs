//! `GET {base}?i=tt…&apikey=…`: one request per lookup; the caller counts calls against the daily
//! limit before making each one.

use std::time::Duration;

use super::{OmdbError, OmdbLookup, models};
use crate::tmdb::ApiKey;

/// Where OMDb is and how to call it.
#[derive(Debug, Clone)]
pub struct OmdbConfig {
    /// Base URL, e.g. `https://www.omdbapi.com/`.
    pub base_url: String,
    pub api_key: ApiKey,
    pub timeout: Duration,
}

impl OmdbConfig {
    /// Settings with a 20 s timeout.
    pub fn new(base_url: impl Into<String>, api_key: ApiKey) -> Self {
        OmdbConfig {
            base_url: base_url.into(),
            api_key,
            timeout: Duration::from_secs(20),
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
        let http = crate::http_client_builder()
            .timeout(config.timeout)
            .user_agent(concat!("tmdbsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OmdbError::Network(e.without_url().to_string()))?;
        Ok(OmdbClient { http, config })
    }

    /// Looks a movie up by IMDb id (`tt0066921`).
    pub async fn by_imdb_id(&self, imdb_id: &str) -> Result<OmdbLookup, OmdbError> {
        let response = self
            .http
            .get(&self.config.base_url)
            .query(&[("i", imdb_id), ("apikey", self.config.api_key.expose())])
            .send()
            .await
            .map_err(|e| OmdbError::Network(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| OmdbError::Network(e.without_url().to_string()))?;
        models::interpret(status, &body)
    }
}
