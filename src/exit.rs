//! Process exit codes, and which errors map to which.

use crate::stage::StageError;
use crate::store::StoreError;

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

impl From<&StageError> for ExitCode {
    fn from(e: &StageError) -> Self {
        match e {
            StageError::Credentials(_) | StageError::OmdbCredentials(_) => ExitCode::Credentials,
            StageError::Config(_) => ExitCode::Config,
            StageError::Store(e) if e.is_config() => ExitCode::Config,
            StageError::Tmdb(e) if e.is_config() => ExitCode::Config,
            StageError::Tmdb(_) | StageError::Store(_) | StageError::Busy(_) => ExitCode::Retryable,
        }
    }
}

impl From<&StoreError> for ExitCode {
    fn from(e: &StoreError) -> Self {
        if e.is_config() {
            ExitCode::Config
        } else {
            ExitCode::Retryable
        }
    }
}
