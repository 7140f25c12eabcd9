//! Postgres: the mirrored catalog and the sync bookkeeping. All SQL lives here, set-based (UNNEST,
//! COPY, INSERT … SELECT) with bound parameters.

pub mod catalog;
pub mod collaborations;
pub mod gone;
pub mod health;
pub mod movies;
pub mod omdb;
pub mod pages;
pub mod pipeline;
pub mod pqs;
pub mod runs;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

/// A database failure, with what we were doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL could not be parsed (the URL itself is not repeated: it may hold a password).
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// Could not connect at all.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A statement failed.
    #[error("database error while {context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl StoreError {
    /// Whether retrying the same transaction may succeed (deadlock, serialization, lost connection).
    pub fn is_transient(&self) -> bool {
        let source = match self {
            StoreError::Query { source, .. } | StoreError::Connect(source) => source,
            _ => return false,
        };
        match source {
            sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
            _ => false,
        }
    }
}

impl StoreError {
    /// Whether the database refused the data of a record (a data exception, a constraint, a
    /// size limit, or a trigger raising an exception) rather than failing as a whole: storing the
    /// records one by one can then keep the others.
    pub fn is_record_data_error(&self) -> bool {
        let StoreError::Query {
            source: sqlx::Error::Database(db),
            ..
        } = self
        else {
            return false;
        };
        db.code().is_some_and(|code| {
            code.starts_with("22")
                || code.starts_with("23")
                || code.starts_with("54")
                || code == "P0001"
        })
    }
}

/// Shorthand used by every store function.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Extension to attach a context to sqlx errors.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Query { context, source })
    }
}

/// A connection pool to the tmdbsync database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects (and fails fast, within `connect_timeout`, when the database is unreachable).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::InvalidUrl(
                "it must start with postgres:// or postgresql://".into(),
            ));
        }
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::InvalidUrl(match e {
                sqlx::Error::Configuration(c) => c.to_string(),
                _ => "unparsable".into(),
            })
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.application_name("tmdbsync"))
            .await
            .map_err(StoreError::Connect)?;
        Ok(Store { pool })
    }

    /// Applies pending migrations (idempotent; safe to run from several processes). A database
    /// already migrated by a newer version is accepted, so an older worker or controller keeps
    /// running during a rolling upgrade (migrations only ever add).
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_ignore_missing(true);
        migrator.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// The pool, for callers that run several store functions in one transaction.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.context("starting a transaction")
    }
}
