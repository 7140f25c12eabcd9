//! `tmdbsync migrate` and `tmdbsync status` (read-only).

use super::{connect, connect_read_only, fail, sync_facts};
use crate::{DbArgs, Format, StatusArgs};
use tmdbsync::exit::ExitCode;

pub(crate) async fn migrate(a: DbArgs) -> anyhow::Result<ExitCode> {
    match connect(&a).await {
        Ok(_) => {
            eprintln!("tmdbsync: database is migrated");
            Ok(ExitCode::Success)
        }
        Err(e) => Ok(fail(e)),
    }
}

/// Reads only: works on a read replica, and never creates or migrates a schema.
pub(crate) async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = match connect_read_only(&a.db).await {
        Ok(s) => s,
        Err(e) => return Ok(fail(e)),
    };
    let facts = match sync_facts(a.sync.as_deref()) {
        Ok(f) => f,
        Err(e) => return Ok(fail(e)),
    };
    let health = match tmdbsync::web::dashboard::health_of(&store, &facts).await {
        Ok(h) => h,
        Err(e) => return Ok(fail((ExitCode::from(&e), e.to_string()))),
    };
    match a.format {
        Format::Text => print!("{}", tmdbsync::report::render(&health)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&health)?),
        Format::Html => print!("{}", tmdbsync::web::dashboard::health_file(&health)),
    }
    Ok(ExitCode::Success)
}
