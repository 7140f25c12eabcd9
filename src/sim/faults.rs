//! Fault injection settings, per-second rate limiting and request statistics.

use super::glitch::GlitchCounts;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};

/// Fault settings, changeable at run time via `POST /__sim/faults`.
#[derive(Clone, Debug, Serialize)]
pub struct Faults {
    /// Probability of an HTTP 500/502/503.
    pub error_rate: f64,
    /// Probability of an HTTP 200 with a truncated JSON body.
    pub malformed_rate: f64,
    /// Probability of the connection being dropped mid-body.
    pub reset_rate: f64,
    /// Probability of the response being delayed `timeout_ms`.
    pub timeout_rate: f64,
    /// Delay for the timeout fault.
    pub timeout_ms: u64,
    /// Requests per wall-clock second allowed on `/3/...` (None = unlimited).
    pub rps: Option<u32>,
    /// Whether 429s carry `Retry-After: 1`.
    pub retry_after: bool,
    /// Delay added to every response.
    pub latency_ms: u64,
    /// Malformed lines put into exports generated from now on.
    pub export_malformed_lines: u64,
    /// Whether the current simulated day's export is published.
    pub publish_today_export: bool,
    /// OMDb requests allowed per simulated day (None = unlimited).
    pub omdb_daily_limit: Option<u64>,
    /// Movie ids whose detail (and credits) requests always fail with HTTP 500.
    pub fail_ids: Vec<u32>,
}

fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A partial update of [`Faults`]; absent fields stay unchanged, `null` clears nullable ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    error_rate: Option<f64>,
    malformed_rate: Option<f64>,
    reset_rate: Option<f64>,
    timeout_rate: Option<f64>,
    timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "some")]
    rps: Option<Option<u32>>,
    retry_after: Option<bool>,
    latency_ms: Option<u64>,
    export_malformed_lines: Option<u64>,
    publish_today_export: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    omdb_daily_limit: Option<Option<u64>>,
    fail_ids: Option<Vec<u32>>,
}

impl Faults {
    /// Initial settings from the simulator config.
    pub fn new(error_rate: f64, rps: Option<u32>, latency_ms: u64) -> Self {
        Faults {
            error_rate,
            malformed_rate: 0.0,
            reset_rate: 0.0,
            timeout_rate: 0.0,
            timeout_ms: 30_000,
            rps,
            retry_after: true,
            latency_ms,
            export_malformed_lines: 0,
            publish_today_export: true,
            omdb_daily_limit: None,
            fail_ids: Vec::new(),
        }
    }

    /// Applies a partial update.
    pub fn apply(&mut self, p: FaultsPatch) {
        macro_rules! set {
            ($($f:ident),*) => { $(if let Some(v) = p.$f { self.$f = v; })* };
        }
        set!(
            error_rate,
            malformed_rate,
            reset_rate,
            timeout_rate,
            timeout_ms,
            rps,
            retry_after,
            latency_ms,
            export_malformed_lines,
            publish_today_export,
            omdb_daily_limit,
            fail_ids
        );
        self.fail_ids.sort_unstable();
        self.fail_ids.dedup();
    }

    /// Draws (randomly, per request) which fault, if any, hits this request.
    pub fn draw(&self) -> Fault {
        let u = fastrand::f64();
        let mut acc = self.error_rate;
        if u < acc {
            return Fault::Error(*[500u16, 502, 503].get(fastrand::usize(..3)).unwrap_or(&500));
        }
        acc += self.malformed_rate;
        if u < acc {
            return Fault::Malformed;
        }
        acc += self.reset_rate;
        if u < acc {
            return Fault::Reset;
        }
        acc += self.timeout_rate;
        if u < acc {
            return Fault::Timeout(self.timeout_ms);
        }
        Fault::None
    }
}

/// The fault drawn for one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Serve normally.
    None,
    /// HTTP error with this status.
    Error(u16),
    /// HTTP 200 with invalid JSON.
    Malformed,
    /// Drop the connection mid-body.
    Reset,
    /// Delay this many milliseconds, then serve normally.
    Timeout(u64),
}

/// The response for an immediate fault (None for `Fault::None` / `Fault::Timeout`).
pub fn fault_response(f: Fault) -> Option<Response> {
    let json_ct = [(header::CONTENT_TYPE, "application/json;charset=utf-8")];
    match f {
        Fault::Error(500) => Some(tmdb_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            11,
            "Internal error: Something went wrong, contact TMDB.",
        )),
        Fault::Error(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            Some(
                (
                    status,
                    [(header::CONTENT_TYPE, "text/html")],
                    format!("<html><body><h1>{code}</h1></body></html>"),
                )
                    .into_response(),
            )
        }
        Fault::Malformed => Some(
            (
                StatusCode::OK,
                json_ct,
                "{\"page\":1,\"results\":[{\"adult\":fal",
            )
                .into_response(),
        ),
        Fault::Reset => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"adult\":false,\"id\":")),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated reset",
                )),
            ];
            let body = Body::from_stream(futures::stream::iter(chunks));
            Some((StatusCode::OK, json_ct, body).into_response())
        }
        Fault::None | Fault::Timeout(_) => None,
    }
}

/// A TMDb error body `{"success":false,"status_code":..,"status_message":..}` with a status.
pub fn tmdb_error(status: StatusCode, code: u32, msg: &str) -> Response {
    let body = json!({"success": false, "status_code": code, "status_message": msg});
    (status, axum::Json(body)).into_response()
}

/// The HTTP 429 TMDb answers when over the rate limit.
pub fn too_many(retry_after: bool) -> Response {
    let mut r = tmdb_error(
        StatusCode::TOO_MANY_REQUESTS,
        25,
        "Your request count (#) is over the allowed limit of (40).",
    );
    if retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// Request counters reported by `GET /__sim/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Counter per endpoint name.
    pub details: u64,
    /// `/3/movie/changes` requests.
    pub changes: u64,
    /// `/3/discover/movie` requests.
    pub discover: u64,
    /// Export downloads.
    pub export: u64,
    /// OMDb requests.
    pub omdb: u64,
    /// `/3/movie/latest` requests.
    pub latest: u64,
    /// `/3/configuration` requests.
    pub configuration: u64,
    /// Requests answered 429.
    pub rate_limited: u64,
    /// Faults injected (errors, malformed, resets, timeouts).
    pub errors_injected: u64,
    /// Max `/3/` requests received in one wall-clock second.
    pub max_per_second: u64,
    /// Ids of detail requests answered 200.
    pub details_ids: HashSet<u32>,
    /// Detail requests received per id, whatever the answer (429s and faults included).
    pub details_requests: HashMap<u32, u32>,
    /// `/3/` requests received per unix second (429s included), the last [`SECONDS_KEPT`].
    pub per_second: VecDeque<(u64, u64)>,
    /// Glitched details bodies and export lines served.
    pub glitches: GlitchCounts,
}

/// Seconds of per-second request counts kept.
pub const SECONDS_KEPT: usize = 3600;

impl Stats {
    /// Counts a `/3/` request received in unix second `second` (the `nth` of that second), for
    /// detail id `detail` if it asks for one: the per-second and per-id counts.
    pub fn count_request(&mut self, second: u64, nth: u64, detail: Option<u32>) {
        self.max_per_second = self.max_per_second.max(nth);
        match self.per_second.back_mut() {
            Some((s, n)) if *s == second => *n = (*n).max(nth),
            _ => {
                self.per_second.push_back((second, nth));
                if self.per_second.len() > SECONDS_KEPT {
                    self.per_second.pop_front();
                }
            }
        }
        if let Some(id) = detail {
            *self.details_requests.entry(id).or_default() += 1;
        }
    }

    /// The stats JSON (with the sorted id list and requests per id if `ids`, and the requests
    /// of each recent second if `seconds`).
    pub fn to_json(&self, ids: bool, seconds: bool) -> Value {
        let mut v = json!({
            "requests": {"details": self.details, "changes": self.changes, "discover": self.discover,
                "export": self.export, "omdb": self.omdb, "latest": self.latest, "configuration": self.configuration},
            "rate_limited": self.rate_limited,
            "errors_injected": self.errors_injected,
            "max_requests_in_any_second": self.max_per_second,
            "details_ids_unique": self.details_ids.len(),
            "glitches": self.glitches.to_json(),
        });
        if ids {
            let mut list: Vec<u32> = self.details_ids.iter().copied().collect();
            list.sort_unstable();
            v["details_ids"] = json!(list);
            let by_id: std::collections::BTreeMap<String, u32> = self
                .details_requests
                .iter()
                .map(|(id, n)| (id.to_string(), *n))
                .collect();
            v["details_requests_by_id"] = json!(by_id);
        }
        if seconds {
            let list: Vec<[u64; 2]> = self.per_second.iter().map(|(s, n)| [*s, *n]).collect();
            v["requests_per_second"] = json!(list);
        }
        v
    }
}

/// Per-second window for the TMDb rate limit and per-day OMDb counting.
#[derive(Debug, Default)]
pub struct Windows {
    sec: u64,
    sec_count: u64,
    omdb_day: u16,
    omdb_count: u64,
}

impl Windows {
    /// Records a `/3/` request at unix second `now`; returns the count within that second.
    pub fn hit(&mut self, now: u64) -> u64 {
        if now != self.sec {
            self.sec = now;
            self.sec_count = 0;
        }
        self.sec_count += 1;
        self.sec_count
    }

    /// Records an OMDb request on simulated day `day`; returns the count for that day.
    pub fn omdb_hit(&mut self, day: u16) -> u64 {
        if day != self.omdb_day {
            self.omdb_day = day;
            self.omdb_count = 0;
        }
        self.omdb_count += 1;
        self.omdb_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_keeps_absent_fields_and_clears_null() {
        let mut f = Faults::new(0.1, Some(40), 0);
        f.apply(serde_json::from_str(r#"{"reset_rate":0.5}"#).unwrap());
        assert_eq!((f.error_rate, f.reset_rate, f.rps), (0.1, 0.5, Some(40)));
        f.apply(serde_json::from_str(r#"{"rps":null}"#).unwrap());
        assert_eq!(f.rps, None);
    }
}
