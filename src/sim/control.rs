//! `/__sim/...` control endpoints, the daily export files and the OMDb endpoint.

use super::catalog::{credits_rev, title_rev};
use super::export;
use super::faults::{FaultsPatch, Stats};
use super::glitch::{GlitchCounts, glitch_for};
use super::omdb;
use super::payload::{Ctx, imdb_id, tmdb_id_from_imdb};
use super::{AppState, lock};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Datelike;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

type Params = HashMap<String, String>;

/// `POST /__sim/advance?days=D` (default 1).
pub async fn advance(State(sim): State<AppState>, Query(q): Query<Params>) -> Response {
    let Some(days) = q.get("days").map_or(Some(1), |d| d.parse::<u16>().ok()) else {
        return (
            StatusCode::BAD_REQUEST,
            "days must be a non-negative integer",
        )
            .into_response();
    };
    let report = {
        let mut cat = sim.write();
        if cat.day as u32 + days as u32 >= u16::MAX as u32 - 1 {
            return (StatusCode::BAD_REQUEST, "too many days").into_response();
        }
        let r = cat.advance(days);
        tracing::debug!(days, date = %cat.date(), changed = r.changed.len(), deleted = r.deleted.len(), added = r.added.len(), "simulator advanced");
        r
    };
    lock(&sim.sorted).clear();
    Json(report).into_response()
}

/// `GET /__sim/faults`.
pub async fn get_faults(State(sim): State<AppState>) -> Response {
    Json(sim.faults()).into_response()
}

/// `POST /__sim/faults` with a partial JSON body.
pub async fn set_faults(State(sim): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultsPatch>(&body) {
        Ok(p) => {
            let mut f = lock(&sim.faults);
            f.apply(p);
            tracing::debug!(faults = ?*f, "simulator faults changed");
            Json(f.clone()).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// `GET /__sim/stats[?ids=true][&seconds=true]`.
pub async fn stats(State(sim): State<AppState>, Query(q): Query<Params>) -> Response {
    let flag = |name: &str| q.get(name).is_some_and(|v| v == "true" || v == "1");
    let v = lock(&sim.stats).to_json(flag("ids"), flag("seconds"));
    Json(with_load(&sim, v)).into_response()
}

/// `POST /__sim/stats/reset` (the peaks start again from what is open now).
pub async fn reset_stats(State(sim): State<AppState>) -> Response {
    *lock(&sim.stats) = Stats::default();
    sim.connections.reset_peak();
    sim.in_flight.reset_peak();
    let v = lock(&sim.stats).to_json(false, false);
    Json(with_load(&sim, v)).into_response()
}

/// Adds the open connections and `/3/` requests in flight, now and at their peak.
fn with_load(sim: &AppState, mut v: serde_json::Value) -> serde_json::Value {
    v["open_connections"] = json!(sim.connections.now());
    v["max_open_connections"] = json!(sim.connections.peak());
    v["requests_in_flight"] = json!(sim.in_flight.now());
    v["max_requests_in_flight"] = json!(sim.in_flight.peak());
    v
}

/// `GET /__sim/clock`: the simulated date.
pub async fn clock(State(sim): State<AppState>) -> Response {
    let cat = sim.read();
    Json(json!({"date": cat.date().to_string(), "start_date": cat.start.to_string(), "day": cat.day, "live": cat.live_count()})).into_response()
}

/// `GET /__sim/catalog`: ground truth of live and deleted ids (built as text: it can hold 1M rows).
pub async fn catalog(State(sim): State<AppState>) -> Response {
    use std::fmt::Write;
    let cat = sim.read();
    let mut out = String::with_capacity(cat.movies.len() * 28 + 64);
    let _ = write!(out, "{{\"date\":\"{}\",\"live\":[", cat.date());
    for (i, m) in cat.movies.iter().filter(|m| !m.deleted()).enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}{{\"id\":{},\"adult\":{}}}", m.id, m.adult);
    }
    out.push_str("],\"deleted\":[");
    for (i, m) in cat.movies.iter().filter(|m| m.deleted()).enumerate() {
        let _ = write!(out, "{}{}", if i == 0 { "" } else { "," }, m.id);
    }
    out.push_str("]}");
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

/// `GET /__sim/movie/{id}`: internal state of one movie.
pub async fn movie(State(sim): State<AppState>, Path(id): Path<String>) -> Response {
    let cat = sim.read();
    let Some(m) = id.parse::<u32>().ok().and_then(|id| cat.get(id)) else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "unknown id"}))).into_response();
    };
    let mut body = json!({
        "id": m.id, "version": m.version, "deleted": m.deleted(), "adult": m.adult,
        "credits_version": credits_rev(cat.seed, m.id, m.version),
        "title_version": title_rev(cat.seed, m.id, m.version),
        "popularity": m.popularity,
        "imdb_id": imdb_id(cat.seed, m.id),
        "added_date": cat.date_of(m.added_day).to_string(),
        "deleted_date": m.deleted().then(|| cat.date_of(m.deleted_day).to_string()),
    });
    if let Some(kind) = glitch_for(cat.seed, m.id, cat.glitch_rate) {
        body["glitch"] = json!(kind.name());
    }
    Json(body).into_response()
}

async fn latency(sim: &AppState) {
    let ms = lock(&sim.faults).latency_ms;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn export_404() -> Response {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

/// `GET /p/exports/movie_ids_MM_DD_YYYY.json.gz`.
pub async fn export(State(sim): State<AppState>, Path(file): Path<String>) -> Response {
    lock(&sim.stats).export += 1;
    latency(&sim).await;
    let faults = sim.faults();
    let day = {
        let cat = sim.read();
        let day = export::parse_name(&file).and_then(|d| cat.day_of(d));
        match day {
            Some(d) if d < cat.day || faults.publish_today_export => d,
            _ => return export_404(),
        }
    };
    let mut cache = sim.exports.lock().await;
    let cached = cache
        .files
        .iter()
        .find(|(d, _)| *d == day)
        .map(|(_, b)| b.clone());
    let bytes = match cached {
        Some(b) => b,
        None => {
            // A file keeps the malformed-line count it was first published with.
            let bad = *cache
                .malformed
                .entry(day)
                .or_insert(faults.export_malformed_lines);
            let s = sim.clone();
            let started = std::time::Instant::now();
            let built =
                tokio::task::spawn_blocking(move || export::generate(&s.read(), day, bad)).await;
            let Ok(Ok(data)) = built else {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "export generation failed",
                )
                    .into_response();
            };
            tracing::info!(
                file,
                bytes = data.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "export generated"
            );
            let b = Bytes::from(data);
            cache.files.push_back((day, b.clone()));
            while cache.files.len() > 4 {
                cache.files.pop_front();
            }
            b
        }
    };
    drop(cache);
    let glitched = GlitchCounts::in_export(&sim.read(), day);
    lock(&sim.stats).glitches.merge(&glitched);
    ([(header::CONTENT_TYPE, "application/gzip")], bytes).into_response()
}

/// `GET /omdb/?i=tt…&apikey=…`.
pub async fn omdb(State(sim): State<AppState>, Query(q): Query<Params>) -> Response {
    lock(&sim.stats).omdb += 1;
    latency(&sim).await;
    let unauthorized = |msg| (StatusCode::UNAUTHORIZED, Json(omdb::error(msg))).into_response();
    let key = q.get("apikey").map(String::as_str).unwrap_or("");
    if key.trim().is_empty() || key == "invalid" {
        return unauthorized("Invalid API key!");
    }
    let limit = lock(&sim.faults).omdb_daily_limit;
    let day = sim.read().day;
    let used = lock(&sim.windows).omdb_hit(day);
    if limit.is_some_and(|l| used > l) {
        return unauthorized("Request limit reached!");
    }
    let i = q.get("i").map(String::as_str).unwrap_or("");
    let num = i
        .strip_prefix("tt")
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u64>().ok());
    let Some(num) = num else {
        return Json(omdb::error("Incorrect IMDb ID.")).into_response();
    };
    let cat = sim.read();
    let c = Ctx {
        seed: cat.seed,
        people: cat.people,
        today: cat.date().num_days_from_ce(),
    };
    let found = tmdb_id_from_imdb(num)
        .and_then(|id| cat.get(id))
        .filter(|m| {
            imdb_id(cat.seed, m.id).as_deref() == Some(i) && !omdb::missing(cat.seed, m.id)
        });
    match found {
        Some(m) => Json(omdb::body(&c, m, i)).into_response(),
        None => Json(omdb::error("Movie not found!")).into_response(),
    }
}
