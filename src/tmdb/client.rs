//! The TMDb HTTP client: one `reqwest` connection pool with a cap on open connections, an adaptive
//! request pacer (see [`super::pacer`]), and the retry policy of the design (Retry-After on 429,
//! exponential backoff with jitter on 5xx/timeouts/resets, 401 fatal, 404 = not found).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::models::{ApiErrorBody, ChangesPage, DiscoverPage};
use super::pacer::Pacer;
use super::{ApiKey, ServerClock, TmdbError};
use crate::model::movie::FetchedMovie;

/// The appends one details request asks for: everything the store needs in one call.
pub const DETAIL_APPENDS: &str = "credits,external_ids,release_dates,keywords";

/// Default overall timeout of one API request, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 20;
/// Default connect timeout, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Default read (idle) timeout of an API request, in seconds.
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 15;
/// Default time the export download may receive nothing, in seconds.
pub const DEFAULT_EXPORT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Default overall timeout of the export download, in seconds (the file is tens of MB).
pub const DEFAULT_EXPORT_TIMEOUT_SECS: u64 = 1800;

/// How the client talks to TMDb.
#[derive(Debug, Clone)]
pub struct TmdbConfig {
    /// API root, e.g. `https://api.themoviedb.org/3`.
    pub base_url: String,
    /// A v3 key (sent as `api_key`) or a v4 read token (sent as a Bearer header).
    pub api_key: ApiKey,
    /// Requests per second this client may make (the budget): never more in any second, fewer
    /// while TMDb answers 429.
    pub requests_per_second: u32,
    /// Most connections open at once (TMDb allows about 20 per IP).
    pub max_connections: usize,
    /// Longest one API request may take, answer included (`--timeout-secs`).
    pub timeout: Duration,
    /// Longest a TCP + TLS connect may take, for API requests and the export (`--connect-timeout-secs`).
    pub connect_timeout: Duration,
    /// Longest an API request may wait for the next bytes of the answer (`--read-timeout-secs`).
    pub read_timeout: Duration,
    /// Longest the export download may go without receiving data (`--export-idle-timeout-secs`).
    pub export_idle_timeout: Duration,
    /// Longest the whole export download may take (`--export-timeout-secs`).
    pub export_timeout: Duration,
    /// Tries for a retryable failure (5xx, timeout, reset, malformed body) before giving up.
    pub max_attempts: u32,
    /// Tries for a 429 before giving up; each waits as TMDb asks, and the whole client slows down.
    pub max_rate_limited_attempts: u32,
    /// First backoff delay; doubled each retry, with ±50 % jitter.
    pub backoff_base: Duration,
    /// `language` parameter for details, when set.
    pub language: Option<String>,
}

impl TmdbConfig {
    /// Defaults from the design: 40 rps, 20 connections, 3 tries.
    pub fn new(base_url: impl Into<String>, api_key: ApiKey) -> Self {
        TmdbConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key,
            requests_per_second: 40,
            max_connections: 20,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS),
            read_timeout: Duration::from_secs(DEFAULT_READ_TIMEOUT_SECS),
            export_idle_timeout: Duration::from_secs(DEFAULT_EXPORT_IDLE_TIMEOUT_SECS),
            export_timeout: Duration::from_secs(DEFAULT_EXPORT_TIMEOUT_SECS),
            max_attempts: 3,
            max_rate_limited_attempts: 12,
            backoff_base: Duration::from_millis(250),
            language: None,
        }
    }
}

/// Counters of responses by class, for run summaries and metrics.
#[derive(Debug, Default)]
pub struct RequestStats {
    pub ok: AtomicU64,
    pub not_found: AtomicU64,
    pub rate_limited: AtomicU64,
    pub client_error: AtomicU64,
    pub server_error: AtomicU64,
    pub network_error: AtomicU64,
    pub malformed: AtomicU64,
    pub retries: AtomicU64,
}

/// The status classes requests are counted under (the `status_class` metric label).
pub const STATUS_CLASSES: [&str; 6] = ["2xx", "404", "429", "4xx", "5xx", "network"];

impl RequestStats {
    /// Responses so far per [`STATUS_CLASSES`] entry (a malformed 200 counts as 2xx).
    pub fn by_class(&self) -> [u64; 6] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            get(&self.ok) + get(&self.malformed),
            get(&self.not_found),
            get(&self.rate_limited),
            get(&self.client_error),
            get(&self.server_error),
            get(&self.network_error),
        ]
    }

    /// Total requests sent.
    pub fn total(&self) -> u64 {
        [
            &self.ok,
            &self.not_found,
            &self.rate_limited,
            &self.client_error,
            &self.server_error,
            &self.network_error,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// A rate-limited, retrying TMDb client. Cheap to clone; clones share the budget, the adaptive
/// rate, a `Retry-After` pause and the pool.
#[derive(Clone)]
pub struct TmdbClient {
    api: reqwest::Client,
    download: reqwest::Client,
    config: Arc<TmdbConfig>,
    pacer: Arc<Pacer>,
    connections: Arc<Semaphore>,
    clock: Arc<ServerClock>,
    stats: Arc<RequestStats>,
}

enum Attempt<T> {
    Done(T),
    Retry(TmdbError, Option<Duration>),
    /// A 429, with its `Retry-After` (already imposed on every request of the client).
    RateLimited(Option<Duration>),
}

impl TmdbClient {
    /// Builds the client; fails only if the TLS backend cannot initialise.
    pub fn new(config: TmdbConfig) -> Result<Self, TmdbError> {
        let build_error = |e: reqwest::Error| TmdbError::Network(e.without_url().to_string());
        let api = crate::http::http_client_builder()
            .pool_max_idle_per_host(config.max_connections)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.timeout)
            .build()
            .map_err(build_error)?;
        // The export is one long download: its own idle and overall limits, not the API's.
        let download = crate::http::http_client_builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.export_idle_timeout)
            .timeout(config.export_timeout)
            .build()
            .map_err(build_error)?;
        Ok(TmdbClient {
            api,
            download,
            connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
            pacer: Arc::new(Pacer::new(config.requests_per_second)),
            config: Arc::new(config),
            clock: Arc::new(ServerClock::default()),
            stats: Arc::new(RequestStats::default()),
        })
    }

    /// The clock fed by TMDb's `Date` headers.
    pub fn clock(&self) -> &ServerClock {
        &self.clock
    }

    /// Response counters.
    pub fn stats(&self) -> &RequestStats {
        &self.stats
    }

    /// The request rate allowed now, in requests per second: the budget, or less while TMDb
    /// answers 429 (see [`super::pacer::AdaptiveRate`]).
    pub fn allowed_rate(&self) -> f64 {
        self.pacer.rate()
    }

    /// The HTTP client of the export download (its connect, idle and overall timeouts).
    pub fn http(&self) -> &reqwest::Client {
        &self.download
    }

    /// The settings the client was built with.
    pub fn config(&self) -> &TmdbConfig {
        &self.config
    }

    /// Removes the API key and any other secret from text that came from outside.
    pub fn redact(&self, text: &str) -> String {
        crate::redact::redact(text, &[self.config.api_key.expose()])
    }

    /// The configured number of tries for a retryable failure.
    pub fn max_attempts(&self) -> u32 {
        self.config.max_attempts
    }

    /// `GET /configuration`: a cheap call that checks the key and learns the server's date. A 404
    /// means the API root is wrong ([`TmdbError::WrongBaseUrl`]).
    pub async fn check_credentials(&self) -> Result<(), TmdbError> {
        match self.get_json::<Value>("/configuration", &[]).await {
            Ok(_) => Ok(()),
            Err(TmdbError::NotFound { .. }) => Err(TmdbError::WrongBaseUrl {
                base_url: crate::redact::redact_patterns(&self.config.base_url),
            }),
            Err(e) => Err(e),
        }
    }

    /// `GET /movie/{id}` with every append the store needs.
    pub async fn movie(&self, id: i64) -> Result<FetchedMovie, TmdbError> {
        self.movie_counted(id).await.0
    }

    /// [`TmdbClient::movie`], with the number of requests it made (every try, 429s included).
    pub async fn movie_counted(&self, id: i64) -> (Result<FetchedMovie, TmdbError>, u32) {
        let mut query = vec![("append_to_response", DETAIL_APPENDS.to_string())];
        if let Some(lang) = &self.config.language {
            query.push(("language", lang.clone()));
        }
        let (movie, requests) = self
            .get_counted(&format!("/movie/{id}"), &query, FetchedMovie::from_body)
            .await;
        let result = movie.and_then(|movie| {
            if movie.details.id == id {
                Ok(movie)
            } else {
                Err(TmdbError::Malformed(format!(
                    "asked for movie {id}, got {}",
                    movie.details.id
                )))
            }
        });
        (result, requests)
    }

    /// One page of `GET /movie/changes` for `[start, end]` (at most 14 days apart).
    pub async fn changes(
        &self,
        start: NaiveDate,
        end: NaiveDate,
        page: u32,
    ) -> Result<ChangesPage, TmdbError> {
        let query = [
            ("start_date", start.format("%Y-%m-%d").to_string()),
            ("end_date", end.format("%Y-%m-%d").to_string()),
            ("page", page.to_string()),
        ];
        self.get_json("/movie/changes", &query).await
    }

    /// One page of `GET /discover/movie` with the given filters.
    pub async fn discover(&self, query: &[(&str, String)]) -> Result<DiscoverPage, TmdbError> {
        self.get_json("/discover/movie", query).await
    }

    /// A GET with the full retry policy, decoded as `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, TmdbError> {
        self.get_decoded(path, query, |body| {
            serde_json::from_slice::<T>(body).map_err(|e| e.to_string())
        })
        .await
    }

    /// A GET with the full retry policy; `decode` turns a 200 body into `T` (an `Err` counts as a
    /// malformed response and is retried).
    pub async fn get_decoded<T>(
        &self,
        path: &str,
        query: &[(&str, String)],
        decode: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, TmdbError> {
        self.get_counted(path, query, decode).await.0
    }

    /// [`TmdbClient::get_decoded`], with the number of requests it made. Retryable failures and
    /// 429s have separate try limits; a [`TmdbError::RateLimited`] counts every request made.
    async fn get_counted<T>(
        &self,
        path: &str,
        query: &[(&str, String)],
        decode: impl Fn(&[u8]) -> Result<T, String>,
    ) -> (Result<T, TmdbError>, u32) {
        let mut requests = 0u32;
        let mut failures = 0u32;
        let mut rate_limited = 0u32;
        loop {
            requests += 1;
            let wait = match self.attempt(path, query, &decode).await {
                Attempt::Done(result) => return (result, requests),
                Attempt::Retry(err, wait) => {
                    failures += 1;
                    if failures >= self.config.max_attempts {
                        return (Err(err), requests);
                    }
                    tracing::debug!(path, attempt = failures, error = %err, "retrying TMDb request");
                    wait.unwrap_or_else(|| self.backoff(failures))
                }
                Attempt::RateLimited(retry_after) => {
                    rate_limited += 1;
                    if rate_limited >= self.config.max_rate_limited_attempts {
                        return (Err(TmdbError::RateLimited { attempts: requests }), requests);
                    }
                    // A Retry-After already holds every request in the pacer; without one, this
                    // request backs off on its own (the pacer has slowed everyone down).
                    match retry_after {
                        Some(_) => Duration::ZERO,
                        None => self.backoff(rate_limited),
                    }
                }
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt<T>(
        &self,
        path: &str,
        query: &[(&str, String)],
        decode: &impl Fn(&[u8]) -> Result<T, String>,
    ) -> Attempt<Result<T, TmdbError>> {
        // The connection first, then the slot: a granted request is sent at once, so the
        // pacer's spacing is what TMDb sees.
        let _permit = self.connections.acquire().await.expect("semaphore open");
        let granted = self.pacer.acquire().await;
        let mut request = self
            .api
            .get(format!("{}{}", self.config.base_url, path))
            .query(query);
        let key = self.config.api_key.expose();
        request = if key.starts_with("eyJ") {
            request.bearer_auth(key)
        } else {
            request.query(&[("api_key", key)])
        };
        let started = std::time::Instant::now();
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return self.network_failure(e, started),
        };
        if let Some(date) = response.headers().get(reqwest::header::DATE)
            && let Ok(date) = date.to_str()
        {
            self.clock.observe_header(date);
        }
        let status = response.status();
        let retry_after = retry_after(&response);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return self.network_failure(e, started),
        };
        let counter = |c: &AtomicU64| {
            c.fetch_add(1, Ordering::Relaxed);
        };
        if status.is_success() {
            return match decode(&body) {
                Ok(v) => {
                    counter(&self.stats.ok);
                    Attempt::Done(Ok(v))
                }
                Err(e) => {
                    counter(&self.stats.malformed);
                    let e = self.redact(&e);
                    Attempt::Retry(TmdbError::Malformed(format!("{path}: {e}")), None)
                }
            };
        }
        let error: Option<ApiErrorBody> = serde_json::from_slice(&body).ok();
        let code = error.as_ref().and_then(|e| e.status_code);
        // A proxy's error page may echo the request URL, key included: redact before anything else.
        let message = error
            .and_then(|e| e.status_message)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        let message = one_line(&self.redact(&message), 200);
        match status {
            StatusCode::UNAUTHORIZED => {
                counter(&self.stats.client_error);
                Attempt::Done(Err(TmdbError::Unauthorized {
                    status_code: code.unwrap_or(7),
                }))
            }
            StatusCode::NOT_FOUND => {
                counter(&self.stats.not_found);
                Attempt::Done(Err(TmdbError::NotFound {
                    status_code: code.unwrap_or(34),
                }))
            }
            StatusCode::TOO_MANY_REQUESTS => {
                counter(&self.stats.rate_limited);
                self.pacer.rate_limited(granted, retry_after);
                Attempt::RateLimited(retry_after)
            }
            s if s.is_server_error() => {
                counter(&self.stats.server_error);
                let err = TmdbError::Api {
                    status: s.as_u16(),
                    code,
                    message,
                };
                Attempt::Retry(err, None)
            }
            s => {
                counter(&self.stats.client_error);
                Attempt::Done(Err(TmdbError::Api {
                    status: s.as_u16(),
                    code,
                    message,
                }))
            }
        }
    }

    fn network_failure<T>(
        &self,
        e: reqwest::Error,
        started: std::time::Instant,
    ) -> Attempt<Result<T, TmdbError>> {
        self.stats.network_error.fetch_add(1, Ordering::Relaxed);
        // Never let the URL (it may carry api_key) into an error message.
        let err = if e.is_timeout() {
            TmdbError::Timeout(timeout_cause(&e, started.elapsed(), &self.config))
        } else {
            TmdbError::Network(self.redact(&error_chain(&e.without_url())))
        };
        Attempt::Retry(err, None)
    }

    fn backoff(&self, failures: u32) -> Duration {
        backoff_delay(self.config.backoff_base, failures, fastrand::f64())
    }
}

/// Which limit a timed-out request hit, with its flag, as a phrase.
fn timeout_cause(e: &reqwest::Error, elapsed: Duration, config: &TmdbConfig) -> String {
    if e.is_connect() {
        format!(
            "could not connect within {} s (--connect-timeout-secs)",
            secs(config.connect_timeout)
        )
    } else if elapsed + Duration::from_millis(50) >= config.timeout {
        format!(
            "no complete answer within {} s (--timeout-secs)",
            secs(config.timeout)
        )
    } else {
        format!(
            "no data for {} s (--read-timeout-secs)",
            secs(config.read_timeout)
        )
    }
}

/// A duration as seconds for a message: `10`, `0.5`.
pub(crate) fn secs(d: Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64());
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `text` on one line (whitespace runs collapsed), at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

/// Exponential backoff: `base * 2^(n-1)`, scaled by a jitter factor in [0.5, 1.5), capped at 30 s.
pub fn backoff_delay(base: Duration, failures: u32, unit_random: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    exp.mul_f64(0.5 + unit_random).min(Duration::from_secs(30))
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: f64 = value.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(120.0)))
}

/// The error and its sources in one line (reqwest's top-level message alone says little).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_jitters_within_half_to_one_and_a_half() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff_delay(base, 1, 0.5), Duration::from_millis(100));
        assert_eq!(backoff_delay(base, 2, 0.5), Duration::from_millis(200));
        assert_eq!(backoff_delay(base, 3, 0.5), Duration::from_millis(400));
        assert_eq!(backoff_delay(base, 3, 0.0), Duration::from_millis(200));
        assert!(backoff_delay(base, 3, 0.999) < Duration::from_millis(600));
        assert_eq!(backoff_delay(base, 40, 0.9), Duration::from_secs(30));
    }

    #[test]
    fn api_key_debug_is_redacted() {
        let key = ApiKey::new("super-secret-value\n");
        assert_eq!(key.expose(), "super-secret-value");
        assert!(!format!("{key:?}").contains("secret-value"));
    }
}
