//! OMDb: a small client for lookups by IMDb id and the parsed body (ratings, box office, awards).
//! The API key travels as a query parameter, so no error or log line ever carries a request URL.

pub mod client;
pub mod models;

pub use client::{OmdbClient, OmdbConfig};

use crate::model::ErrorCategory;
use crate::model::omdb::OmdbMovie;

/// OMDb's public endpoint.
pub const DEFAULT_URL: &str = "https://www.omdbapi.com/";

/// What OMDb said about one IMDb id.
#[derive(Debug, Clone, PartialEq)]
pub enum OmdbLookup {
    /// The movie, parsed, with the body as received.
    Found(Box<OmdbMovie>),
    /// `Movie not found!`: OMDb does not know this id.
    NotFound,
    /// `Incorrect IMDb ID.`: the id is malformed.
    IncorrectId,
}

/// Why an OMDb call failed.
#[derive(Debug, thiserror::Error)]
pub enum OmdbError {
    /// `Invalid API key!`: fatal for the run (exit code 3, like TMDb's 401).
    #[error("OMDb rejected the API key: check the OMDb API key")]
    InvalidKey,
    /// `Request limit reached!`: the key's daily quota is spent; stop for the day.
    #[error("OMDb's daily request limit is reached")]
    LimitReached,
    /// Another error answer (`Error getting data.`, a 5xx).
    #[error("OMDb answered HTTP {status}: {message}")]
    Api { status: u16, message: String },
    /// A body that is not OMDb's JSON.
    #[error("malformed OMDb response: {0}")]
    Malformed(String),
    /// The request did not complete (the message never contains the URL, which holds the key).
    #[error("network error talking to OMDb: {0}")]
    Network(String),
}

impl OmdbError {
    /// Whether the whole run must stop.
    pub fn is_fatal(&self) -> bool {
        matches!(self, OmdbError::InvalidKey)
    }

    /// The `sync_errors.category` this error is recorded under.
    pub fn category(&self) -> ErrorCategory {
        match self {
            OmdbError::InvalidKey => ErrorCategory::Auth,
            OmdbError::LimitReached => ErrorCategory::RateLimit,
            OmdbError::Api { .. } => ErrorCategory::Api,
            OmdbError::Malformed(_) => ErrorCategory::Data,
            OmdbError::Network(_) => ErrorCategory::Network,
        }
    }

    /// The HTTP status behind this error, when there was a response.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            OmdbError::InvalidKey | OmdbError::LimitReached => Some(401),
            OmdbError::Api { status, .. } => Some(*status),
            OmdbError::Malformed(_) => Some(200),
            OmdbError::Network(_) => None,
        }
    }
}
