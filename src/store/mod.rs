//! Postgres: the mirrored catalog and the sync bookkeeping. All SQL lives here, set-based (UNNEST,
//! COPY, INSERT … SELECT) with bound parameters.

pub mod catalog;
pub mod collaborations;
pub mod gone;
pub mod health;
pub mod history;
pub mod movies;
pub mod omdb;
pub mod pages;
pub mod pipeline;
pub mod pqs;
pub mod retry;
pub mod runs;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Postgres, Transaction};

/// A database failure, with what we were doing. Messages are sentences: the database's own
/// message and SQLSTATE, never the driver's internals (source file and line).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL could not be parsed (the URL itself is not repeated: it may hold a password).
    #[error(
        "invalid database URL: {0} (check --database-url / DATABASE_URL: postgres://user:password@host/database)"
    )]
    InvalidUrl(String),
    /// Could not connect at all.
    #[error("cannot connect to the database: {}{}", describe(.0), fix_hint(.0))]
    Connect(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {}{}", describe_migrate(.0), migrate_fix_hint(.0))]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A statement failed.
    #[error(
        "database error while {context}: {}{}",
        describe(source),
        fix_hint(source)
    )]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database has no tmdbsync schema: it is empty, or another application's.
    #[error(
        "this is not a tmdbsync database (it is empty or another application's): check \
         --database-url / DATABASE_URL, or run `tmdbsync migrate` to create the schema"
    )]
    NotTmdbsync,
    /// The schema is older than this binary: migrations are pending.
    #[error(
        "the tmdbsync schema needs migrating ({} not applied): run `tmdbsync migrate` with this \
         version first",
        .pending.join(", ")
    )]
    NeedsMigration {
        /// The pending migrations, `0004_name`.
        pending: Vec<String>,
    },
    /// The run was declared dead (it missed its heartbeats for a whole lease, e.g. the process
    /// was frozen or cut off) and is no longer `running`: this process must not write for it.
    #[error(
        "run {run} was declared dead while this process still worked for it (no heartbeat for a \
         whole lease) and another run may have taken over: this process stopped writing, and \
         nothing it did after that was stored"
    )]
    RunTakenOver {
        /// The `sync_runs` id.
        run: i64,
    },
}

/// SQLSTATEs no retry can fix: bad password, unknown role or database, missing privilege, a
/// read-only server asked to write.
const CONFIG_SQLSTATES: [&str; 5] = ["28P01", "28000", "3D000", "42501", "25006"];

/// The SQLSTATE of a database error.
fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// A database error as a sentence: the server's message, detail and hint, and its SQLSTATE.
/// (sqlx's own Display of a Postgres error ends in the server's C source line.)
pub fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => {
            let mut s = db.message().to_string();
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                if let Some(detail) = pg.detail() {
                    s.push_str(&format!(" ({detail})"));
                }
                if let Some(hint) = pg.hint() {
                    s.push_str(&format!("; hint: {hint}"));
                }
            }
            if let Some(code) = db.code() {
                s.push_str(&format!(" [SQLSTATE {code}]"));
            }
            crate::redact::redact_patterns(&s)
        }
        sqlx::Error::PoolTimedOut => {
            "no connection could be opened within 10 s (is the server up and reachable?)".into()
        }
        sqlx::Error::Io(io) => format!("the connection failed ({io})"),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        other => crate::redact::redact_patterns(&other.to_string()),
    }
}

fn describe_migrate(e: &sqlx::migrate::MigrateError) -> String {
    use sqlx::migrate::MigrateError as M;
    match e {
        M::Execute(e) => describe(e),
        M::ExecuteMigration(e, version) => format!("migration {version}: {}", describe(e)),
        other => other.to_string(),
    }
}

/// What to do about an error no retry can fix, as a sentence to append.
fn fix_hint(e: &sqlx::Error) -> &'static str {
    match sqlstate(e).as_deref() {
        Some("28P01" | "28000") => ": check the user and password in --database-url / DATABASE_URL",
        Some("3D000") => ": check the database name in --database-url / DATABASE_URL",
        Some("42501") => ": grant the database user the privileges it needs",
        Some("25006") => {
            ": the server is read-only (a replica); point --database-url at the primary"
        }
        _ => "",
    }
}

fn migrate_fix_hint(e: &sqlx::migrate::MigrateError) -> &'static str {
    use sqlx::migrate::MigrateError as M;
    match e {
        M::Execute(e) | M::ExecuteMigration(e, _) => match sqlstate(e).as_deref() {
            Some("42501") => {
                ": the database user may not create tmdbsync's tables; grant it CREATE on the \
                 database and schema, or run `tmdbsync migrate` once as a user who may"
            }
            _ => fix_hint(e),
        },
        _ => "",
    }
}

impl StoreError {
    /// Whether the configuration is at fault and retrying cannot help (exit code 4): a bad URL,
    /// password, role or database name, a missing privilege, a read-only server, no or an old schema.
    pub fn is_config(&self) -> bool {
        use sqlx::migrate::MigrateError as M;
        let source = match self {
            StoreError::InvalidUrl(_)
            | StoreError::NotTmdbsync
            | StoreError::NeedsMigration { .. } => return true,
            StoreError::Connect(e) | StoreError::Query { source: e, .. } => e,
            StoreError::Migrate(M::Execute(e) | M::ExecuteMigration(e, _)) => e,
            StoreError::Migrate(_) | StoreError::RunTakenOver { .. } => return false,
        };
        sqlstate(source).is_some_and(|c| CONFIG_SQLSTATES.contains(&c.as_str()))
    }

    /// Whether retrying the same transaction may succeed: a deadlock or serialization failure,
    /// or a connection-level failure (the server shutting down, crashing or starting up, too
    /// many connections, a connection exception of class 08, a closed or reset socket, no
    /// connection within the pool's timeout).
    pub fn is_transient(&self) -> bool {
        let source = match self {
            StoreError::Query { source, .. } | StoreError::Connect(source) => source,
            _ => return false,
        };
        match source {
            sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                matches!(
                    c.as_ref(),
                    "40P01" | "40001" | "57P01" | "57P02" | "57P03" | "53300"
                ) || c.starts_with("08")
            }),
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

/// The migrations embedded in this binary.
fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// Longest a session may sit idle inside a transaction before the server ends it: a frozen
/// process (stopped, swapped out, cut off) cannot hold its locks, and so block the runs after it,
/// for longer. tmdbsync never waits on anything else inside a transaction.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "30s";

/// A statement slower than this is logged as a warning (sqlx's slow-statement log), except the
/// statements of write transactions (see [`BATCH_SLOW_STATEMENT`]): a read or a bookkeeping
/// statement this slow is a problem worth a WARN line.
pub const SLOW_STATEMENT: Duration = Duration::from_secs(1);
/// The same for the statements of write transactions ([`Store::begin`]): set-based batches (a
/// catalog merge, 250 movies with their credits, 5,000 movies' collaborations, the health counts
/// recomputed) take seconds by design at a million movies; one that takes a minute is stuck (lock
/// waits, a lost index) and is warned about. Faster ones are logged at debug (`RUST_LOG=sqlx=debug`).
pub const BATCH_SLOW_STATEMENT: Duration = Duration::from_secs(60);
/// Connections of the pool that runs write transactions: one writer per stage at a time.
const BATCH_CONNECTIONS: u32 = 4;

/// Connection pools to the tmdbsync database: one for reads and bookkeeping, one (opened on first
/// use) for write transactions, which differ only in how slow a statement may be before it is
/// logged as a warning.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    batch: PgPool,
    /// How long work retries through an outage (see [`retry`]).
    outage_tolerance: Duration,
}

impl Store {
    /// Connects (and fails fast, within `connect_timeout`, when the database is unreachable).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        Self::connect_with(url, max_connections, false).await
    }

    /// Connects with every transaction read-only (`default_transaction_read_only`), for commands
    /// that must never write (`tmdbsync status`); works on a read replica.
    pub async fn connect_read_only(url: &str, max_connections: u32) -> Result<Self> {
        Self::connect_with(url, max_connections, true).await
    }

    async fn connect_with(url: &str, max_connections: u32, read_only: bool) -> Result<Self> {
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
        let options = if read_only {
            options.options([("default_transaction_read_only", "on")])
        } else {
            options.options([(
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_TIMEOUT,
            )])
        };
        let options = options.application_name("tmdbsync");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(
                options
                    .clone()
                    .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT),
            )
            .await
            .map_err(StoreError::Connect)?;
        let batch = PgPoolOptions::new()
            .max_connections(BATCH_CONNECTIONS.min(max_connections.max(1)))
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(
                options.log_slow_statements(log::LevelFilter::Warn, BATCH_SLOW_STATEMENT),
            );
        Ok(Store {
            pool,
            batch,
            outage_tolerance: retry::DEFAULT_OUTAGE_TOLERANCE,
        })
    }

    /// Applies pending migrations (idempotent; safe to run from several processes). A database
    /// already migrated by a newer version is accepted, so an older worker or controller keeps
    /// running during a rolling upgrade (migrations only ever add).
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = migrator();
        migrator.set_ignore_missing(true);
        migrator.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// Checks, without writing, that this is a tmdbsync database whose schema has every migration
    /// this binary knows ([`StoreError::NotTmdbsync`], [`StoreError::NeedsMigration`] otherwise).
    /// Migrations newer than this binary are fine (migrations only ever add).
    pub async fn check_schema(&self) -> Result<()> {
        let tables: (bool, bool) = sqlx::query_as(
            "SELECT to_regclass('_sqlx_migrations') IS NOT NULL, to_regclass('sync_runs') IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await
        .context("looking for the tmdbsync schema")?;
        if tables != (true, true) {
            return Err(StoreError::NotTmdbsync);
        }
        let applied: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .context("reading the applied migrations")?;
        let migrator = migrator();
        let ours: Vec<_> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .collect();
        // Another sqlx application's first migration is not ours.
        let first = ours.first().map(|m| (m.version, m.checksum.as_ref()));
        let theirs_first = applied
            .iter()
            .find(|(v, _)| Some(*v) == first.map(|f| f.0))
            .map(|(v, c)| (*v, c.as_slice()));
        if first.is_some() && theirs_first != first {
            return Err(StoreError::NotTmdbsync);
        }
        let pending: Vec<String> = ours
            .iter()
            .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
            .map(|m| format!("{:04}_{}", m.version, m.description.replace(' ', "_")))
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(StoreError::NeedsMigration { pending })
        }
    }

    /// The pool, for callers that run several store functions in one transaction.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool of write transactions, for set-based statements outside one that scan or write
    /// the whole catalog by design (an enrichment stage's pending count, a full requeue): they
    /// warn only after [`BATCH_SLOW_STATEMENT`].
    pub fn batch_pool(&self) -> &PgPool {
        &self.batch
    }

    /// Starts a write transaction (on the pool whose slow-statement warning waits for
    /// [`BATCH_SLOW_STATEMENT`]).
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.batch.begin().await.context("starting a transaction")
    }

    /// Starts a transaction holding the transaction-level advisory lock `key` (waiting for it),
    /// so that batches of concurrent runs over the same rows take turns; `what` says what is
    /// locked when that fails ("locking PQS").
    pub(crate) async fn begin_locked(
        &self,
        key: i64,
        what: &'static str,
    ) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *tx)
            .await
            .context(what)?;
        Ok(tx)
    }
}
