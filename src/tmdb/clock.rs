//! "Today" as TMDb sees it: taken from the `Date` header of its responses, so the engine follows the
//! simulator's clock in tests and is immune to a skewed local clock in production.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// The server's time, learned from response headers; falls back to the local clock until one came.
#[derive(Debug, Default)]
pub struct ServerClock {
    seen: Mutex<Option<(DateTime<Utc>, Instant)>>,
}

impl ServerClock {
    /// Records a `Date` header value (RFC 7231 format); unparsable values are ignored.
    pub fn observe_header(&self, value: &str) {
        if let Ok(t) = httpdate::parse_http_date(value) {
            let t: DateTime<Utc> = t.into();
            *self.seen.lock().expect("clock lock") = Some((t, Instant::now()));
        }
    }

    /// Whether any server time has been seen.
    pub fn has_server_time(&self) -> bool {
        self.seen.lock().expect("clock lock").is_some()
    }

    /// The server's current time: the last header plus the time elapsed since, or the local clock.
    pub fn now(&self) -> DateTime<Utc> {
        match *self.seen.lock().expect("clock lock") {
            Some((t, at)) => t + TimeDelta::from_std(at.elapsed()).unwrap_or_default(),
            None => Utc::now(),
        }
    }

    /// The server's current UTC date.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}
