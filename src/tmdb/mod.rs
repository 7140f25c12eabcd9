//! TMDb: the rate-limited, retrying HTTP client, its wire models and the daily ID export reader.

pub mod client;
pub mod clock;
pub mod export;
pub mod models;
pub mod pacer;

pub use client::{TmdbClient, TmdbConfig};
pub use clock::ServerClock;

use crate::model::ErrorCategory;

use std::fmt;

/// Why a TMDb call failed, after the client's retries.
#[derive(Debug, thiserror::Error)]
pub enum TmdbError {
    /// HTTP 401 (status_code 7): the key is wrong or revoked. Fatal for the run.
    #[error("TMDb rejected the API key (HTTP 401, status_code {status_code}): check the API key")]
    Unauthorized { status_code: i32 },
    /// HTTP 404 (status_code 34, or 6 for an invalid id): the resource does not exist.
    #[error("not found on TMDb (HTTP 404, status_code {status_code})")]
    NotFound { status_code: i32 },
    /// HTTP 429 kept coming after backing off as TMDb asked.
    #[error("rate limited by TMDb after {attempts} attempts")]
    RateLimited { attempts: u32 },
    /// Any other HTTP error status (5xx after retries, or a 4xx such as 422). `message` is TMDb's
    /// `status_message` or the start of the body, with secrets redacted.
    #[error("TMDb answered HTTP {status}{}: {message}", status_code_note(*code))]
    Api {
        status: u16,
        code: Option<i32>,
        message: String,
    },
    /// `/configuration` is not found under the configured API root: the URL is wrong (it misses
    /// `/3`, or points elsewhere). Retrying cannot help.
    #[error(
        "{base_url} has no TMDb API (GET /configuration answered 404): check --tmdb-url / TMDB_URL; \
         TMDb's API root ends in /3, e.g. https://api.themoviedb.org/3"
    )]
    WrongBaseUrl { base_url: String },
    /// The daily export is not what TMDb publishes (not gzip, or too many malformed lines).
    #[error("{0}")]
    MalformedExport(String),
    /// A 200 whose body is not the JSON we expect.
    #[error("malformed TMDb response: {0}")]
    Malformed(String),
    /// Connection refused or reset, DNS, TLS: the request did not complete.
    #[error("network error talking to TMDb: {0}")]
    Network(String),
    /// No response within a timeout; the text says which one and its flag.
    #[error("TMDb did not answer in time: {0}")]
    Timeout(String),
}

impl TmdbError {
    /// The category this error is counted under.
    pub fn category(&self) -> ErrorCategory {
        match self {
            TmdbError::Unauthorized { .. } => ErrorCategory::Auth,
            TmdbError::NotFound { .. } | TmdbError::Api { .. } | TmdbError::WrongBaseUrl { .. } => {
                ErrorCategory::Api
            }
            TmdbError::RateLimited { .. } => ErrorCategory::RateLimit,
            TmdbError::Malformed(_) | TmdbError::MalformedExport(_) => ErrorCategory::Data,
            TmdbError::Network(_) | TmdbError::Timeout(_) => ErrorCategory::Network,
        }
    }

    /// The HTTP status behind this error, when there was a response.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            TmdbError::Unauthorized { .. } => Some(401),
            TmdbError::NotFound { .. } | TmdbError::WrongBaseUrl { .. } => Some(404),
            TmdbError::RateLimited { .. } => Some(429),
            TmdbError::Api { status, .. } => Some(*status),
            TmdbError::Malformed(_) => Some(200),
            TmdbError::MalformedExport(_) | TmdbError::Network(_) | TmdbError::Timeout(_) => None,
        }
    }

    /// Whether the whole run must stop (bad credentials), rather than skip one movie.
    pub fn is_fatal(&self) -> bool {
        matches!(self, TmdbError::Unauthorized { .. })
    }

    /// Whether the configuration is wrong (retrying cannot help): the API root is not TMDb's.
    pub fn is_config(&self) -> bool {
        matches!(self, TmdbError::WrongBaseUrl { .. })
    }
}

/// ` (status_code 11)` when TMDb sent one, nothing otherwise.
fn status_code_note(code: Option<i32>) -> String {
    code.map(|c| format!(" (status_code {c})"))
        .unwrap_or_default()
}

/// An API key that never prints itself (Debug and Display are redacted).
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; surrounding whitespace (a trailing newline from a file or secret) is trimmed.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into().trim().to_string())
    }

    /// The key itself, for building a request; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_read_as_sentences_with_or_without_a_status_code() {
        let with = TmdbError::Api {
            status: 503,
            code: Some(11),
            message: "Internal error".into(),
        };
        assert_eq!(
            with.to_string(),
            "TMDb answered HTTP 503 (status_code 11): Internal error"
        );
        let without = TmdbError::Api {
            status: 502,
            code: None,
            message: "Bad Gateway".into(),
        };
        assert_eq!(without.to_string(), "TMDb answered HTTP 502: Bad Gateway");
        let root = TmdbError::WrongBaseUrl {
            base_url: "http://proxy".into(),
        };
        assert!(root.is_config() && !root.is_fatal());
        assert!(root.to_string().contains("ends in /3"));
    }
}
