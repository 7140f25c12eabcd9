//! The domain records tmdbsync stores, independent of the clients that fetch them and the store
//! that writes them: a movie with its credits ([`movie`]), a catalog entry of the daily export
//! ([`catalog`]), an OMDb record ([`omdb`]) and the category of a recorded error. `store` takes
//! these; `tmdb` and `omdb` produce them. Lenient decoding of external JSON ([`lenient`]) lives here
//! because the records are read straight from TMDb's bodies (one pass, no copy).

pub mod catalog;
pub mod lenient;
pub mod movie;
pub mod omdb;

/// The `sync_errors.category` an error is recorded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    RateLimit,
    Api,
    Data,
    Network,
    Auth,
}

impl ErrorCategory {
    /// The database and metric label of this category.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::RateLimit => "rate_limit",
            ErrorCategory::Api => "api",
            ErrorCategory::Data => "data",
            ErrorCategory::Network => "network",
            ErrorCategory::Auth => "auth",
        }
    }
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
