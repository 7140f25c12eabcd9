//! The `/3/...` TMDb endpoints: rate limit, auth, faults, then dispatch.

use super::catalog::{Catalog, Movie, NO_DATE};
use super::faults::{Fault, fault_response, tmdb_error, too_many};
use super::glitch;
use super::payload::{self, Ctx};
use super::synth::hash;
use super::{AppState, Sim, lock};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type Params = HashMap<String, String>;

/// A TMDb API error answered with its real status code and body.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("resource not found")]
    NotFound,
    #[error("invalid id")]
    InvalidId,
    #[error("invalid page")]
    Page,
    #[error("invalid date range")]
    Range,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, msg) = match self {
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                34,
                "The resource you requested could not be found.",
            ),
            ApiError::InvalidId => (
                StatusCode::NOT_FOUND,
                6,
                "Invalid id: The pre-requisite id is invalid or not found.",
            ),
            ApiError::Page => (
                StatusCode::BAD_REQUEST,
                22,
                "Invalid page: Pages start at 1 and max at 500. They are expected to be an integer.",
            ),
            ApiError::Range => (
                StatusCode::UNPROCESSABLE_ENTITY,
                20,
                "Invalid date range: Should be a range no longer than 14 days.",
            ),
        };
        tmdb_error(status, code, msg)
    }
}

fn page(q: &Params) -> Result<u64, ApiError> {
    page_up_to(q, 500)
}

/// The `page` parameter, refused past `last` as TMDb refuses it past 500.
fn page_up_to(q: &Params, last: u32) -> Result<u64, ApiError> {
    match q.get("page") {
        None => Ok(1),
        Some(p) => p
            .parse::<u64>()
            .ok()
            .filter(|p| (1..=u64::from(last)).contains(p))
            .ok_or(ApiError::Page),
    }
}

fn authorized(q: &Params, h: &HeaderMap) -> bool {
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let key = q
        .get("api_key")
        .map(String::as_str)
        .or(bearer)
        .unwrap_or("");
    !key.trim().is_empty() && key != "invalid"
}

fn ctx(cat: &Catalog) -> Ctx {
    Ctx {
        seed: cat.seed,
        people: cat.people,
        today: cat.date().num_days_from_ce(),
    }
}

enum Endpoint {
    Configuration,
    Discover,
    Changes,
    Latest,
    Details(String),
    Credits(String),
    Unknown,
}

fn classify(path: &str) -> Endpoint {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["configuration"] => Endpoint::Configuration,
        ["discover", "movie"] => Endpoint::Discover,
        ["movie", "changes"] => Endpoint::Changes,
        ["movie", "latest"] => Endpoint::Latest,
        ["movie", id] => Endpoint::Details((*id).to_string()),
        ["movie", id, "credits"] => Endpoint::Credits((*id).to_string()),
        _ => Endpoint::Unknown,
    }
}

/// Handles every `/3/...` request.
pub async fn handle(
    State(sim): State<AppState>,
    Path(path): Path<String>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    let _in_flight = sim.in_flight.enter();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let count = lock(&sim.windows).hit(now);
    let faults = sim.faults();
    let ep = classify(&path);
    {
        let mut st = lock(&sim.stats);
        let detail = match &ep {
            Endpoint::Details(id) => id.parse::<u32>().ok(),
            _ => None,
        };
        st.count_request(now, count, detail);
        if faults.rps.is_some_and(|rps| count > rps as u64) {
            st.rate_limited += 1;
            return too_many(faults.retry_after);
        }
    }
    if !authorized(&q, &h) {
        return tmdb_error(
            StatusCode::UNAUTHORIZED,
            7,
            "Invalid API key: You must be granted a valid key.",
        );
    }
    {
        let mut st = lock(&sim.stats);
        match &ep {
            Endpoint::Configuration => st.configuration += 1,
            Endpoint::Discover => st.discover += 1,
            Endpoint::Changes => st.changes += 1,
            Endpoint::Latest => st.latest += 1,
            Endpoint::Details(_) => st.details += 1,
            Endpoint::Credits(_) | Endpoint::Unknown => {}
        }
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if !matches!(ep, Endpoint::Configuration) {
        let pinned = match &ep {
            Endpoint::Details(id) | Endpoint::Credits(id) => id
                .parse::<u32>()
                .is_ok_and(|id| faults.fail_ids.binary_search(&id).is_ok()),
            _ => false,
        };
        let f = if pinned {
            Fault::Error(500)
        } else {
            faults.draw()
        };
        if f != Fault::None {
            lock(&sim.stats).errors_injected += 1;
        }
        if let Some(r) = fault_response(f) {
            return r;
        }
        if let Fault::Timeout(ms) = f {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
    match ep {
        Endpoint::Configuration => Json(configuration()).into_response(),
        Endpoint::Discover => discover(&sim, &q),
        Endpoint::Changes => changes(&sim.read(), &q),
        Endpoint::Latest => {
            let cat = sim.read();
            match cat.latest() {
                Some(m) => Json(payload::details(&ctx(&cat), m)).into_response(),
                None => ApiError::NotFound.into_response(),
            }
        }
        Endpoint::Details(id) => details(&sim, &id, &q),
        Endpoint::Credits(id) => match lookup(&sim.read(), &id) {
            Ok((c, m)) => {
                let mut v = payload::credits(&c, &m);
                v["id"] = json!(m.id);
                Json(v).into_response()
            }
            Err(e) => e.into_response(),
        },
        Endpoint::Unknown => ApiError::NotFound.into_response(),
    }
}

fn lookup(cat: &Catalog, id: &str) -> Result<(Ctx, Movie), ApiError> {
    let Ok(n) = id.parse::<i64>() else {
        return Err(ApiError::NotFound);
    };
    if n <= 0 {
        return Err(ApiError::InvalidId);
    }
    match u32::try_from(n).ok().and_then(|n| cat.get(n)) {
        Some(m) if !m.deleted() => Ok((ctx(cat), *m)),
        _ => Err(ApiError::NotFound),
    }
}

fn details(sim: &Sim, id: &str, q: &Params) -> Response {
    let appends: Vec<&str> = q
        .get("append_to_response")
        .map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if appends.len() > 20 {
        return tmdb_error(
            StatusCode::BAD_REQUEST,
            18,
            "Validation failed: append_to_response accepts at most 20 items.",
        );
    }
    let (found, glitch_rate) = {
        let cat = sim.read();
        (lookup(&cat, id), cat.glitch_rate)
    };
    match found {
        Ok((c, m)) => {
            let body = payload::details_with(&c, &m, &appends);
            lock(&sim.stats).details_ids.insert(m.id);
            glitch::details_response(sim, c.seed, m.id, glitch_rate, &body)
                .unwrap_or_else(|| Json(body).into_response())
        }
        Err(e) => e.into_response(),
    }
}

fn configuration() -> Value {
    json!({
        "images": {
            "base_url": "http://image.tmdb.org/t/p/",
            "secure_base_url": "https://image.tmdb.org/t/p/",
            "backdrop_sizes": ["w300", "w780", "w1280", "original"],
            "logo_sizes": ["w45", "w92", "w154", "w185", "w300", "w500", "original"],
            "poster_sizes": ["w92", "w154", "w185", "w342", "w500", "w780", "original"],
            "profile_sizes": ["w45", "w185", "h632", "original"],
            "still_sizes": ["w92", "w185", "w300", "original"]
        },
        "change_keys": ["adult", "air_date", "also_known_as", "alternative_titles", "biography", "birthday",
            "budget", "cast", "certifications", "character_names", "created_by", "crew", "deathday", "episode",
            "episode_number", "episode_run_time", "freebase_id", "freebase_mid", "general", "genres", "guest_stars",
            "homepage", "images", "imdb_id", "languages", "name", "network", "origin_country", "original_name",
            "original_title", "overview", "parts", "place_of_birth", "plot_keywords", "production_code",
            "production_companies", "production_countries", "releases", "revenue", "runtime", "season",
            "season_number", "season_regular", "spoken_languages", "status", "tagline", "title", "translations",
            "tvdb_id", "tvrage_id", "type", "video", "videos"]
    })
}

fn parse_date(q: &Params, key: &str) -> Result<Option<NaiveDate>, ApiError> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ApiError::Range),
    }
}

fn changes(cat: &Catalog, q: &Params) -> Response {
    let page = match page(q) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (start, end) = match (parse_date(q, "start_date"), parse_date(q, "end_date")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let end = end.unwrap_or_else(|| cat.date().max(start.unwrap_or(cat.date())));
    let start = start.unwrap_or(end);
    if (end - start).num_days() > 14 {
        return ApiError::Range.into_response();
    }
    let from = (start - cat.start).num_days().max(0);
    let to = (end - cat.start).num_days().min(cat.day as i64);
    let ids = if from > to {
        Vec::new()
    } else {
        cat.changes(from as u16, to as u16)
    };
    let total = ids.len() as u64;
    let results: Vec<Value> = ids
        .iter()
        .skip(((page - 1) * 100) as usize)
        .take(100)
        .map(|id| {
            let adult = cat.get(*id).is_some_and(|m| m.adult);
            let null = !adult && hash(cat.seed, &[*id as u64, 0xad17]).is_multiple_of(50);
            json!({"id": id, "adult": if null { Value::Null } else { json!(adult) }})
        })
        .collect();
    Json(json!({"results": results, "page": page, "total_pages": total.div_ceil(100).max(1), "total_results": total}))
        .into_response()
}

fn sorted(sim: &Sim, cat: &Catalog, sort: u8) -> Arc<Vec<u32>> {
    let key = (cat.day, sort);
    if let Some(v) = lock(&sim.sorted).get(&key) {
        return v.clone();
    }
    let mut idx: Vec<u32> = (0..cat.movies.len() as u32)
        .filter(|i| !cat.movies[*i as usize].deleted())
        .collect();
    let ms = &cat.movies;
    let date_key = |m: &Movie, asc: bool| match (m.release, asc) {
        (NO_DATE, _) => i64::MAX,
        (d, true) => d as i64,
        (d, false) => -(d as i64),
    };
    match sort {
        0 => idx.sort_by(|a, b| {
            ms[*b as usize]
                .popularity
                .total_cmp(&ms[*a as usize].popularity)
                .then(a.cmp(b))
        }),
        1 => idx.sort_by(|a, b| {
            ms[*a as usize]
                .popularity
                .total_cmp(&ms[*b as usize].popularity)
                .then(a.cmp(b))
        }),
        2 => idx.sort_by_key(|i| (date_key(&ms[*i as usize], true), *i)),
        _ => idx.sort_by_key(|i| (date_key(&ms[*i as usize], false), *i)),
    }
    let v = Arc::new(idx);
    let mut cache = lock(&sim.sorted);
    cache.retain(|k, _| k.0 == cat.day);
    cache.insert(key, v.clone());
    v
}

/// `/discover/movie` with the filters the engine uses: `primary_release_date.gte/.lte` (a date
/// filter leaves out movies without a release date), `sort_by` (popularity or primary release
/// date, either way; movies without a date sort last), `include_adult` and `include_video` (both
/// false unless given), pages up to the cap, and uncapped `total_results` / `total_pages`.
fn discover(sim: &Sim, q: &Params) -> Response {
    let page = match page_up_to(q, sim.discover_max_page) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let sort = match q.get("sort_by").map(String::as_str) {
        Some("popularity.asc") => 1,
        Some("primary_release_date.asc") => 2,
        Some("primary_release_date.desc") => 3,
        _ => 0,
    };
    let day = |k: &str| {
        q.get(k)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|d| d.num_days_from_ce())
    };
    let (gte, lte) = (
        day("primary_release_date.gte"),
        day("primary_release_date.lte"),
    );
    let adult_ok = q.get("include_adult").is_some_and(|v| v == "true");
    let video_ok = q.get("include_video").is_some_and(|v| v == "true");
    let cat = sim.read();
    let order = sorted(sim, &cat, sort);
    let c = ctx(&cat);
    let (skip, mut total, mut results) = ((page - 1) * 20, 0u64, Vec::new());
    for i in order.iter() {
        let m = &cat.movies[*i as usize];
        if (m.adult && !adult_ok)
            || (!video_ok && super::export::is_video(cat.seed, m.id))
            || ((gte.is_some() || lte.is_some()) && m.release == NO_DATE)
            || gte.is_some_and(|g| m.release < g)
            || lte.is_some_and(|l| m.release > l)
        {
            continue;
        }
        if total >= skip && results.len() < 20 {
            results.push(payload::list_item(&c, m));
        }
        total += 1;
    }
    Json(json!({"page": page, "results": results, "total_pages": total.div_ceil(20).max(1), "total_results": total}))
        .into_response()
}
