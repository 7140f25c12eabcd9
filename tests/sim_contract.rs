//! Contract test: the simulator's JSON has the field names and types of real recorded
//! TMDb / OMDb responses (`tests/fixtures/tmdb`), and its behaviours match the spec.

use chrono::NaiveDate;
use flate2::read::GzDecoder;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::Read;
use tmdbsync::sim::{SimConfig, SimHandle, spawn};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tmdb");
const KEY: &str = "api_key=testkey";
const APPENDS: &str = "credits,release_dates,external_ids,keywords,images";

fn fixture(name: &str) -> Value {
    let path = format!("{FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Paths where `sim` lacks a field of `real` or has another JSON type. Null on either side is
/// compatible with anything. Arrays: the first three elements of each side are compared pairwise;
/// with `strict`, an empty sim array where the recording has elements is a mismatch.
fn mismatches(real: &Value, sim: &Value, path: &str, strict: bool, out: &mut Vec<String>) {
    if real.is_null() || sim.is_null() {
        return;
    }
    if kind(real) != kind(sim) {
        out.push(format!(
            "{path}: recorded {} but simulator {}",
            kind(real),
            kind(sim)
        ));
        return;
    }
    match (real, sim) {
        (Value::Object(r), Value::Object(s)) => {
            for (k, rv) in r {
                match s.get(k) {
                    Some(sv) => mismatches(rv, sv, &format!("{path}.{k}"), strict, out),
                    None => out.push(format!("{path}.{k}: missing")),
                }
            }
        }
        (Value::Array(r), Value::Array(s)) => {
            if strict && !r.is_empty() && s.is_empty() {
                out.push(format!("{path}[]: simulator array is empty"));
            }
            for rv in r.iter().take(3) {
                for sv in s.iter().take(3) {
                    mismatches(rv, sv, &format!("{path}[]"), strict, out);
                }
            }
        }
        _ => {}
    }
}

fn assert_shape(real: &Value, sim: &Value, strict: bool, what: &str) {
    let mut out = Vec::new();
    mismatches(real, sim, "$", strict, &mut out);
    out.dedup();
    assert!(out.is_empty(), "{what}: shape mismatches: {out:#?}");
}

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 15).unwrap()
}

fn config(movies: u64, adult: u64, seed: u64) -> SimConfig {
    SimConfig {
        movies,
        adult_movies: adult,
        seed,
        start_date: start(),
        ..SimConfig::default()
    }
}

async fn sim(cfg: SimConfig) -> SimHandle {
    spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("spawn simulator")
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn get(c: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    let r = c.get(url).send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}")),
    )
}

async fn post(c: &reqwest::Client, url: &str, body: Value) -> Value {
    let r = c.post(url).json(&body).send().await.expect("post");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.expect("json")
}

async fn live_ids(c: &reqwest::Client, s: &SimHandle) -> Vec<(u64, bool)> {
    let (_, cat) = get(c, &format!("{}/__sim/catalog", s.base_url())).await;
    cat["live"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_u64().unwrap(), m["adult"].as_bool().unwrap()))
        .collect()
}

async fn today(c: &reqwest::Client, s: &SimHandle) -> NaiveDate {
    let (_, v) = get(c, &format!("{}/__sim/clock", s.base_url())).await;
    v["date"].as_str().unwrap().parse().unwrap()
}

fn is_full(d: &Value) -> bool {
    let nonempty = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty());
    !d["imdb_id"].is_null()
        && [
            "genres",
            "production_companies",
            "production_countries",
            "spoken_languages",
        ]
        .iter()
        .all(|k| nonempty(&d[k]))
        && nonempty(&d["credits"]["cast"])
        && nonempty(&d["credits"]["crew"])
        && nonempty(&d["release_dates"]["results"])
        && nonempty(&d["keywords"]["keywords"])
        && ["backdrops", "logos", "posters"]
            .iter()
            .all(|k| nonempty(&d["images"][k]))
}

#[test]
fn comparer_detects_missing_fields_and_type_changes() {
    let real = json!({"a": 1, "b": [{"c": "x"}], "d": null, "e": {"f": true}});
    let mut out = Vec::new();
    mismatches(
        &real,
        &json!({"a": 2.5, "b": [{"c": "y"}], "d": 3, "e": {"f": false}, "z": 1}),
        "$",
        true,
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
    mismatches(
        &real,
        &json!({"a": "1", "b": [{"c": 1}], "e": {}}),
        "$",
        true,
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            "$.a: recorded number but simulator string",
            "$.b[].c: recorded string but simulator number",
            "$.d: missing",
            "$.e.f: missing"
        ]
    );
    out.clear();
    mismatches(
        &real,
        &json!({"a": 1, "b": [], "d": null, "e": {"f": true}}),
        "$",
        true,
        &mut out,
    );
    assert_eq!(out, vec!["$.b[]: simulator array is empty"]);
}

#[tokio::test]
async fn movie_details_with_appends_match_recorded_shape() {
    let s = sim(config(1500, 15, 7)).await;
    let c = client();
    let real =
        fixture("tmdb_movie_550_append_credits_release_dates_external_ids_keywords_images.json");
    let mut full = None;
    for (i, (id, _)) in live_ids(&c, &s).await.into_iter().take(60).enumerate() {
        let url = format!(
            "{}/movie/{id}?{KEY}&append_to_response={APPENDS}",
            s.tmdb_url()
        );
        let (status, body) = get(&c, &url).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert_eq!(body["id"].as_u64(), Some(id));
        assert_shape(&real, &body, false, &format!("movie {id} (#{i})"));
        if full.is_none() && is_full(&body) {
            full = Some(body);
        }
    }
    let full = full.expect("some movie among the first 60 has every array non-empty");
    assert_shape(&real, &full, true, "full movie");
    let id = full["id"].as_u64().unwrap();
    let (_, only) = get(
        &c,
        &format!(
            "{}/movie/{id}?{KEY}&append_to_response=credits",
            s.tmdb_url()
        ),
    )
    .await;
    assert!(only.get("credits").is_some());
    for absent in ["keywords", "images", "external_ids", "release_dates"] {
        assert!(
            only.get(absent).is_none(),
            "{absent} included without being asked for"
        );
    }
    let (_, plain) = get(&c, &format!("{}/movie/{id}?{KEY}", s.tmdb_url())).await;
    assert!(plain.get("credits").is_none());
    s.shutdown().await;
}

#[tokio::test]
async fn too_many_appends_are_rejected_with_400() {
    let s = sim(config(200, 0, 1)).await;
    let c = client();
    let id = live_ids(&c, &s).await[0].0;
    let appends = vec!["credits"; 21].join(",");
    let (status, body) = get(
        &c,
        &format!(
            "{}/movie/{id}?{KEY}&append_to_response={appends}",
            s.tmdb_url()
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["success"], json!(false));
    assert_eq!(body["status_code"], json!(18));
    s.shutdown().await;
}

#[tokio::test]
async fn changes_feed_matches_recorded_shape() {
    let s = sim(config(5000, 100, 3)).await;
    let c = client();
    post(
        &c,
        &format!("{}/__sim/advance?days=1", s.base_url()),
        json!({}),
    )
    .await;
    let (status, body) = get(&c, &format!("{}/movie/changes?{KEY}", s.tmdb_url())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["total_results"].as_u64().unwrap() > 0);
    assert_shape(
        &fixture("tmdb_movie_changes_page1.json"),
        &body,
        true,
        "changes page 1",
    );
    assert_shape(
        &fixture("tmdb_movie_changes_page3.json"),
        &body,
        true,
        "changes page 3",
    );
    s.shutdown().await;
}

#[tokio::test]
async fn discover_matches_recorded_shape_with_uncapped_totals_and_sorting() {
    let s = sim(config(12_000, 50, 11)).await;
    let c = client();
    let (status, body) = get(&c, &format!("{}/discover/movie?{KEY}", s.tmdb_url())).await;
    assert_eq!(status, StatusCode::OK);
    assert_shape(
        &fixture("tmdb_discover_movie_page1.json"),
        &body,
        true,
        "discover",
    );
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    assert!(results.iter().all(|m| m["adult"] == json!(false)));
    let pops: Vec<f64> = results
        .iter()
        .map(|m| m["popularity"].as_f64().unwrap())
        .collect();
    assert!(
        pops.windows(2).all(|w| w[0] >= w[1]),
        "popularity.desc not sorted: {pops:?}"
    );
    // Videos (about 2 % of the export) only with include_video=true, as on TMDb.
    let without_videos = body["total_results"].as_u64().unwrap();
    assert!(
        (11_500..12_000).contains(&without_videos),
        "{without_videos}"
    );
    let (_, all) = get(
        &c,
        &format!("{}/discover/movie?{KEY}&include_video=true", s.tmdb_url()),
    )
    .await;
    assert_eq!(all["total_results"].as_u64(), Some(12_000));
    assert_eq!(
        all["total_pages"].as_u64(),
        Some(600),
        "totals must not be capped at 500 pages"
    );
    let (status, last) = get(
        &c,
        &format!("{}/discover/movie?{KEY}&page=500", s.tmdb_url()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(last["results"].as_array().unwrap().len(), 20);
    let url = format!(
        "{}/discover/movie?{KEY}&sort_by=primary_release_date.asc&primary_release_date.gte=2000-01-01&primary_release_date.lte=2000-12-31&include_adult=true",
        s.tmdb_url()
    );
    let (_, dated) = get(&c, &url).await;
    let dates: Vec<&str> = dated["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["release_date"].as_str().unwrap())
        .collect();
    assert!(!dates.is_empty());
    assert!(dates.iter().all(|d| d.starts_with("2000-")), "{dates:?}");
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{dates:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn latest_matches_recorded_shape_and_is_highest_live_id() {
    let s = sim(config(800, 0, 5)).await;
    let c = client();
    let (status, body) = get(&c, &format!("{}/movie/latest?{KEY}", s.tmdb_url())).await;
    assert_eq!(status, StatusCode::OK);
    assert_shape(&fixture("tmdb_movie_latest.json"), &body, true, "latest");
    let max = live_ids(&c, &s).await.iter().map(|m| m.0).max().unwrap();
    assert_eq!(body["id"].as_u64(), Some(max));
    assert!(body.get("credits").is_none());
    s.shutdown().await;
}

#[tokio::test]
async fn error_bodies_equal_recorded_ones() {
    let s = sim(config(300, 0, 2)).await;
    let c = client();
    let t = s.tmdb_url();
    let cases = [
        (
            format!("{t}/discover/movie?{KEY}&page=501"),
            400,
            "tmdb_error_400_invalid_page_status22.json",
        ),
        (
            format!("{t}/discover/movie?{KEY}&page=0"),
            400,
            "tmdb_error_400_invalid_page_status22.json",
        ),
        (
            format!("{t}/discover/movie?{KEY}&page=abc"),
            400,
            "tmdb_error_400_invalid_page_status22.json",
        ),
        (
            format!("{t}/movie/changes?{KEY}&start_date=2025-01-01&end_date=2025-01-16"),
            422,
            "tmdb_error_422_invalid_date_range_status20.json",
        ),
        (
            format!("{t}/movie/550?api_key=invalid"),
            401,
            "tmdb_error_401_invalid_api_key_status7.json",
        ),
        (
            format!("{t}/movie/550"),
            401,
            "tmdb_error_401_invalid_api_key_status7.json",
        ),
        (
            format!("{t}/movie/0?{KEY}"),
            404,
            "tmdb_error_404_invalid_id_status6_movie0.json",
        ),
        (
            format!("{t}/movie/-5?{KEY}"),
            404,
            "tmdb_error_404_invalid_id_status6_movie0.json",
        ),
        (
            format!("{t}/movie/999999999?{KEY}"),
            404,
            "tmdb_error_404_not_found_status34.json",
        ),
        (
            format!("{t}/movie/abc?{KEY}"),
            404,
            "tmdb_error_404_not_found_status34.json",
        ),
        (
            format!("{t}/tv/1?{KEY}"),
            404,
            "tmdb_error_404_not_found_status34.json",
        ),
        (
            format!("{}/nope", s.base_url()),
            404,
            "tmdb_error_404_not_found_status34.json",
        ),
    ];
    for (url, status, file) in cases {
        let (got, body) = get(&c, &url).await;
        assert_eq!(got.as_u16(), status, "{url}");
        assert_eq!(body, fixture(file), "{url}");
    }
    let r = c
        .get(format!("{}/nope", s.base_url()))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().contains_key("date"),
        "unknown paths carry the simulated Date too"
    );
    let date = httpdate::parse_http_date(r.headers()["date"].to_str().unwrap()).unwrap();
    assert_eq!(
        chrono::DateTime::<chrono::Utc>::from(date).date_naive(),
        start()
    );
    let r = c
        .get(format!("{t}/configuration"))
        .bearer_auth("invalid")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(format!("{t}/configuration"))
        .bearer_auth("real-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let conf: Value = r.json().await.unwrap();
    assert!(conf["images"]["secure_base_url"].is_string() && conf["change_keys"].is_array());
    s.shutdown().await;
}

#[tokio::test]
async fn omdb_matches_recorded_shape_and_error_bodies() {
    let s = sim(config(400, 0, 9)).await;
    let c = client();
    let o = s.omdb_url();
    let mut found = 0;
    let mut not_found = 0;
    for (id, _) in live_ids(&c, &s).await.into_iter().take(150) {
        let (_, m) = get(&c, &format!("{}/movie/{id}?{KEY}", s.tmdb_url())).await;
        let Some(imdb) = m["imdb_id"].as_str() else {
            continue;
        };
        let (status, body) = get(&c, &format!("{o}?i={imdb}&apikey=k")).await;
        assert_eq!(status, StatusCode::OK);
        if body["Response"] == json!("True") {
            found += 1;
            assert_eq!(body["imdbID"], json!(imdb));
            assert_shape(&fixture("omdb_tt0066921_by_id.json"), &body, true, imdb);
            assert_shape(&fixture("omdb_tt3896198_by_id.json"), &body, true, imdb);
        } else {
            not_found += 1;
            assert_eq!(body, fixture("omdb_error_bodies.json")["movie_not_found"]);
        }
    }
    assert!(
        found > 100 && not_found < found / 10,
        "found {found}, not found {not_found}"
    );
    let errors = fixture("omdb_error_bodies.json");
    let cases = [
        (
            format!("{o}?i=tt9999999999&apikey=k"),
            200,
            "movie_not_found",
        ),
        (format!("{o}?i=12345&apikey=k"), 200, "incorrect_imdb_id"),
        (format!("{o}?i=ttabc&apikey=k"), 200, "incorrect_imdb_id"),
        (
            format!("{o}?i=tt0066921&apikey=invalid"),
            401,
            "invalid_api_key",
        ),
        (format!("{o}?i=tt0066921"), 401, "invalid_api_key"),
    ];
    for (url, status, key) in cases {
        let (got, body) = get(&c, &url).await;
        assert_eq!(got.as_u16(), status, "{url}");
        assert_eq!(body, errors[key], "{url}");
    }
    post(
        &c,
        &format!("{}/__sim/faults", s.base_url()),
        json!({"omdb_daily_limit": 2}),
    )
    .await;
    // The earlier requests today already exceed the limit of 2.
    let (status, body) = get(&c, &format!("{o}?i=tt0066921&apikey=k")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, errors["request_limit_reached"]);
    post(
        &c,
        &format!("{}/__sim/advance?days=1", s.base_url()),
        json!({}),
    )
    .await;
    let (status, _) = get(&c, &format!("{o}?i=tt0066921&apikey=k")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a new simulated day resets the OMDb limit"
    );
    s.shutdown().await;
}

async fn export_lines(
    c: &reqwest::Client,
    s: &SimHandle,
    date: NaiveDate,
) -> (StatusCode, Vec<String>) {
    let url = format!(
        "{}/movie_ids_{}.json.gz",
        s.export_url(),
        date.format("%m_%d_%Y")
    );
    let r = c.get(&url).send().await.unwrap();
    let status = r.status();
    if status != StatusCode::OK {
        return (status, Vec::new());
    }
    let ct = r.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        ct == "application/gzip" || ct == "application/octet-stream",
        "{ct}"
    );
    let gz = r.bytes().await.unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "not gzip");
    let mut text = String::new();
    GzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
    (status, text.lines().map(str::to_string).collect())
}

#[tokio::test]
async fn export_is_gzip_unsorted_flags_adult_and_follows_the_clock() {
    let s = sim(config(3000, 60, 4)).await;
    let c = client();
    let sample: Vec<Value> =
        std::fs::read_to_string(format!("{FIXTURES}/movie_ids_export_sample.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let (status, lines) = export_lines(&c, &s, start()).await;
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for row in rows.iter().take(50) {
        for real in &sample {
            assert_shape(real, row, true, "export line");
        }
    }
    let ids: Vec<u64> = rows.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert!(
        ids.windows(2).any(|w| w[0] > w[1]),
        "export must not be sorted by id"
    );
    let live = live_ids(&c, &s).await;
    assert_eq!(
        ids.iter().copied().collect::<HashSet<_>>(),
        live.iter().map(|m| m.0).collect::<HashSet<_>>()
    );
    let adult: HashSet<u64> = rows
        .iter()
        .filter(|r| r["adult"] == json!(true))
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(adult.len(), 60);
    assert_eq!(
        adult,
        live.iter()
            .filter(|m| m.1)
            .map(|m| m.0)
            .collect::<HashSet<_>>()
    );

    let next = start().succ_opt().unwrap();
    assert_eq!(
        export_lines(&c, &s, next).await.0,
        StatusCode::NOT_FOUND,
        "future export"
    );
    assert_eq!(
        export_lines(&c, &s, start().pred_opt().unwrap()).await.0,
        StatusCode::NOT_FOUND
    );
    post(
        &c,
        &format!("{}/__sim/faults", s.base_url()),
        json!({"publish_today_export": false, "export_malformed_lines": 4}),
    )
    .await;
    post(
        &c,
        &format!("{}/__sim/advance?days=1", s.base_url()),
        json!({}),
    )
    .await;
    assert_eq!(
        export_lines(&c, &s, next).await.0,
        StatusCode::NOT_FOUND,
        "today's export unpublished"
    );
    let (status, again) = export_lines(&c, &s, start()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(again == lines, "an earlier day's export does not change");
    post(
        &c,
        &format!("{}/__sim/faults", s.base_url()),
        json!({"publish_today_export": true}),
    )
    .await;
    let (status, today) = export_lines(&c, &s, next).await;
    assert_eq!(status, StatusCode::OK);
    let bad = today
        .iter()
        .filter(|l| serde_json::from_str::<Value>(l).is_err())
        .count();
    assert_eq!(bad, 4);
    assert_eq!(today.len() - 4, live_ids(&c, &s).await.len());
    s.shutdown().await;
}

async fn all_changes(
    c: &reqwest::Client,
    s: &SimHandle,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1.. {
        let url = format!(
            "{}/movie/changes?{KEY}&start_date={from}&end_date={to}&page={page}",
            s.tmdb_url()
        );
        let (status, body) = get(c, &url).await;
        assert_eq!(status, StatusCode::OK);
        out.extend(body["results"].as_array().unwrap().iter().cloned());
        if page >= body["total_pages"].as_u64().unwrap() {
            break;
        }
    }
    out
}

#[tokio::test]
async fn advance_reports_ids_that_appear_in_changes_and_deleted_ones_404() {
    let s = sim(config(20_000, 2000, 8)).await;
    let c = client();
    let before = today(&c, &s).await;
    let rep = post(
        &c,
        &format!("{}/__sim/advance?days=3", s.base_url()),
        json!({}),
    )
    .await;
    assert_eq!(today(&c, &s).await, before + chrono::Days::new(3));
    let ids = |k: &str| -> Vec<u64> {
        rep[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let (changed, deleted, added) = (ids("changed"), ids("deleted"), ids("added"));
    assert!(
        changed.len() > 300 && deleted.len() > 20 && added.len() > 60,
        "{} {} {}",
        changed.len(),
        deleted.len(),
        added.len()
    );
    let feed = all_changes(
        &c,
        &s,
        before + chrono::Days::new(1),
        before + chrono::Days::new(3),
    )
    .await;
    let feed_ids: HashSet<u64> = feed.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(
        feed_ids.len(),
        feed.len(),
        "changes feed must be de-duplicated"
    );
    for id in changed.iter().chain(&deleted).chain(&added) {
        assert!(feed_ids.contains(id), "{id} missing from /movie/changes");
    }
    assert_eq!(feed_ids.len(), changed.len() + deleted.len() + added.len());
    assert!(
        feed.iter().any(|r| r["adult"] == json!(true)),
        "adult ids are flagged true"
    );
    assert!(
        feed.iter().any(|r| r["adult"].is_null()),
        "some adult values are null like the real feed"
    );
    let (_, old) = get(
        &c,
        &format!(
            "{}/movie/changes?{KEY}&start_date={before}&end_date={before}",
            s.tmdb_url()
        ),
    )
    .await;
    assert_eq!(
        old["total_results"],
        json!(0),
        "the start day has no changes"
    );
    for id in deleted.iter().take(10) {
        let (status, body) = get(&c, &format!("{}/movie/{id}?{KEY}", s.tmdb_url())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "deleted {id}");
        assert_eq!(body["status_code"], json!(34));
    }
    for id in changed.iter().take(10).chain(added.iter().take(10)) {
        let (status, _) = get(&c, &format!("{}/movie/{id}?{KEY}", s.tmdb_url())).await;
        assert_eq!(status, StatusCode::OK, "live {id}");
    }
    let r = c
        .get(format!("{}/configuration?{KEY}", s.tmdb_url()))
        .send()
        .await
        .unwrap();
    let date = httpdate::parse_http_date(r.headers()["date"].to_str().unwrap()).unwrap();
    let date = chrono::DateTime::<chrono::Utc>::from(date).date_naive();
    assert_eq!(
        date,
        before + chrono::Days::new(3),
        "Date header follows the simulated clock"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn same_seed_gives_identical_bodies_and_different_seed_differs() {
    let fresh = sim(config(2000, 10, 21)).await;
    let (a, b, other) = (
        sim(config(2000, 10, 21)).await,
        sim(config(2000, 10, 21)).await,
        sim(config(2000, 10, 22)).await,
    );
    let c = client();
    let ids = live_ids(&c, &a).await;
    assert_eq!(ids, live_ids(&c, &b).await);
    assert_ne!(ids, live_ids(&c, &other).await);
    let fetch = |s: &SimHandle, id: u64| {
        format!(
            "{}/movie/{id}?{KEY}&append_to_response={APPENDS}",
            s.tmdb_url()
        )
    };
    for (id, _) in ids.iter().take(5) {
        let (x, y, z) = (
            get(&c, &fetch(&a, *id)).await.1,
            get(&c, &fetch(&b, *id)).await.1,
            get(&c, &fetch(&other, *id)).await.1,
        );
        assert_eq!(x, y, "movie {id}");
        assert_ne!(x, z, "movie {id} with another seed");
    }
    let ra = post(
        &c,
        &format!("{}/__sim/advance?days=2", a.base_url()),
        json!({}),
    )
    .await;
    let rb = post(
        &c,
        &format!("{}/__sim/advance?days=2", b.base_url()),
        json!({}),
    )
    .await;
    assert_eq!(ra, rb);
    let id = ra["changed"][0].as_u64().expect("a change");
    let changed = get(&c, &fetch(&a, id)).await.1;
    assert_eq!(changed, get(&c, &fetch(&b, id)).await.1);
    let unchanged = get(&c, &fetch(&fresh, id)).await.1;
    assert_ne!(
        changed["title"], unchanged["title"],
        "a change retitles the movie"
    );
    for s in [a, b, other, fresh] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after_and_counts_it() {
    let s = sim(SimConfig {
        rps: Some(10),
        ..config(500, 0, 3)
    })
    .await;
    let c = client();
    let id = live_ids(&c, &s).await[0].0;
    let url = format!("{}/movie/{id}?{KEY}", s.tmdb_url());
    let responses = futures::future::join_all((0..50).map(|_| c.get(&url).send())).await;
    let mut limited = 0;
    for r in responses {
        let r = r.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
            assert_eq!(r.headers()["retry-after"], "1");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["status_code"], json!(25));
        } else {
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
    assert!((30..50).contains(&limited), "limited {limited} of 50");
    let (_, stats) = get(&c, &format!("{}/__sim/stats?ids=true", s.base_url())).await;
    assert_eq!(stats["rate_limited"], json!(limited));
    assert_eq!(stats["requests"]["details"], json!(50 - limited));
    assert_eq!(stats["details_ids"], json!([id]));
    assert!(stats["max_requests_in_any_second"].as_u64().unwrap() >= 25);
    post(
        &c,
        &format!("{}/__sim/faults", s.base_url()),
        json!({"retry_after": false}),
    )
    .await;
    let responses = futures::future::join_all((0..30).map(|_| c.get(&url).send())).await;
    let no_header = responses
        .iter()
        .flatten()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS);
    assert!(no_header.clone().count() > 0);
    assert!(
        no_header
            .into_iter()
            .all(|r| r.headers().get("retry-after").is_none())
    );
    post(
        &c,
        &format!("{}/__sim/stats/reset", s.base_url()),
        json!({}),
    )
    .await;
    let (_, stats) = get(&c, &format!("{}/__sim/stats", s.base_url())).await;
    assert_eq!(stats["rate_limited"], json!(0));
    assert_eq!(stats["requests"]["details"], json!(0));
    s.shutdown().await;
}

#[tokio::test]
async fn faults_reset_error_malformed_timeout_are_random_and_retryable() {
    let s = sim(config(300, 0, 6)).await;
    let c = client();
    let id = live_ids(&c, &s).await[0].0;
    let url = format!("{}/movie/{id}?{KEY}", s.tmdb_url());
    let faults = format!("{}/__sim/faults", s.base_url());
    let set = post(&c, &faults, json!({"reset_rate": 1.0})).await;
    assert_eq!(set["reset_rate"], json!(1.0));
    assert_eq!(set["timeout_ms"], json!(30000));
    let outcome = match c.get(&url).send().await {
        Ok(r) => r.text().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(
        outcome.is_err(),
        "reset fault must surface as a client error"
    );
    post(&c, &faults, json!({"reset_rate": 0.0, "error_rate": 1.0})).await;
    let r = c.get(&url).send().await.unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());
    post(
        &c,
        &faults,
        json!({"error_rate": 0.0, "malformed_rate": 1.0}),
    )
    .await;
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
    post(
        &c,
        &faults,
        json!({"malformed_rate": 0.0, "timeout_rate": 1.0, "timeout_ms": 300}),
    )
    .await;
    let t = std::time::Instant::now();
    assert_eq!(c.get(&url).send().await.unwrap().status(), StatusCode::OK);
    assert!(t.elapsed().as_millis() >= 300);
    let (status, _) = get(&c, &format!("{}/configuration?{KEY}", s.tmdb_url())).await;
    assert_eq!(status, StatusCode::OK, "configuration is never faulted");
    post(&c, &faults, json!({"timeout_rate": 0.0, "error_rate": 0.5})).await;
    let mut codes = HashSet::new();
    for _ in 0..40 {
        codes.insert(c.get(&url).send().await.unwrap().status().as_u16());
    }
    assert!(
        codes.contains(&200) && codes.iter().any(|s| *s >= 500),
        "{codes:?}"
    );
    let (_, stats) = get(&c, &format!("{}/__sim/stats", s.base_url())).await;
    assert!(stats["errors_injected"].as_u64().unwrap() >= 5);
    assert_eq!(stats["requests"]["details"], json!(44));
    let set = post(&c, &faults, json!({"error_rate": 0.0, "fail_ids": [id]})).await;
    assert_eq!(set["fail_ids"], json!([id]));
    for _ in 0..3 {
        assert_eq!(
            c.get(&url).send().await.unwrap().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    post(&c, &faults, json!({"fail_ids": []})).await;
    assert_eq!(c.get(&url).send().await.unwrap().status(), StatusCode::OK);
    s.shutdown().await;
}

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The digest was taken over HTTP before glitches existed: without `glitch_rate` the simulator
/// serves byte-identical details bodies and export files.
#[tokio::test]
async fn without_glitches_details_and_export_bytes_are_unchanged() {
    let s = sim(config(2000, 20, 11)).await;
    let c = client();
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (id, _) in live_ids(&c, &s).await.into_iter().take(300) {
        let url = format!(
            "{}/movie/{id}?{KEY}&append_to_response={APPENDS}",
            s.tmdb_url()
        );
        h = fnv(h, &c.get(&url).send().await.unwrap().bytes().await.unwrap());
    }
    let url = format!(
        "{}/movie_ids_{}.json.gz",
        s.export_url(),
        start().format("%m_%d_%Y")
    );
    let gz = c.get(&url).send().await.unwrap().bytes().await.unwrap();
    let mut text = Vec::new();
    GzDecoder::new(&gz[..]).read_to_end(&mut text).unwrap();
    h = fnv(h, &text);
    assert_eq!(format!("{h:016x}"), "dd782734c8dac169");
    s.shutdown().await;
}

async fn raw(c: &reqwest::Client, url: &str) -> Vec<u8> {
    let r = c.get(url).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    r.bytes().await.expect("body").to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glitches_are_fixed_by_seed_parse_except_lone_surrogates_and_are_counted() {
    use tmdbsync::sim::glitch::{GlitchKind, GlitchTarget, glitch_for};
    let glitchy = || SimConfig {
        glitch_rate: 0.2,
        ..config(5000, 0, 21)
    };
    let (a, b, clean) = (
        sim(glitchy()).await,
        sim(glitchy()).await,
        sim(config(5000, 0, 21)).await,
    );
    let c = client();
    let (_, list) = get(&c, &format!("{}/__sim/glitches", a.base_url())).await;
    let glitched = list["movies"].as_array().unwrap();
    for g in glitched {
        let kind = glitch_for(21, g["id"].as_u64().unwrap() as u32, 0.2).expect("glitched");
        assert_eq!(g["kind"], json!(kind.name()));
        assert_eq!(g["expected"], json!(kind.expected().name()));
    }
    let live = live_ids(&c, &a).await;
    let ratio = glitched.len() as f64 / live.len() as f64;
    assert!((0.18..0.22).contains(&ratio), "glitched {ratio}");
    let first_of = |k: GlitchKind| {
        glitched
            .iter()
            .find(|g| g["kind"] == json!(k.name()))
            .and_then(|g| g["id"].as_u64())
            .unwrap_or_else(|| panic!("{k:?} never drawn in 5000 movies"))
    };
    let details_url = |s: &SimHandle, id: u64| {
        let appends = "credits,external_ids,release_dates,keywords";
        format!(
            "{}/movie/{id}?{KEY}&append_to_response={appends}",
            s.tmdb_url()
        )
    };
    let mut served = 0;
    for kind in GlitchKind::ALL.iter().copied() {
        let id = first_of(kind);
        let body = raw(&c, &details_url(&a, id)).await;
        assert_eq!(body, raw(&c, &details_url(&b, id)).await, "{kind:?}");
        let plain = raw(&c, &details_url(&clean, id)).await;
        let parsed = serde_json::from_slice::<Value>(&body);
        if kind.target() == GlitchTarget::Export {
            assert_eq!(body, plain, "{kind:?} leaves the details body alone");
            continue;
        }
        served += 1;
        assert_ne!(body, plain, "{kind:?} must change the body");
        match kind {
            GlitchKind::LoneSurrogate => assert!(parsed.is_err(), "{kind:?} parsed"),
            _ => assert_eq!(parsed.expect("valid JSON")["id"], json!(id), "{kind:?}"),
        }
        let (_, state) = get(&c, &format!("{}/__sim/movie/{id}", a.base_url())).await;
        assert_eq!(state["glitch"], json!(kind.name()));
    }
    let unglitched = live
        .iter()
        .map(|m| m.0)
        .filter(|id| glitched.iter().all(|g| g["id"] != json!(id)));
    for id in unglitched.take(20) {
        assert_eq!(
            raw(&c, &details_url(&a, id)).await,
            raw(&c, &details_url(&clean, id)).await
        );
    }
    let url = format!(
        "{}/movie_ids_{}.json.gz",
        a.export_url(),
        start().format("%m_%d_%Y")
    );
    let mut text = Vec::new();
    GzDecoder::new(&raw(&c, &url).await[..])
        .read_to_end(&mut text)
        .unwrap();
    let lines = text.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    assert_eq!(lines.count(), live.len(), "one line per live movie");
    let in_export = glitched
        .iter()
        .filter(|g| g["target"] == json!("export"))
        .count();
    let (_, stats) = get(&c, &format!("{}/__sim/stats", a.base_url())).await;
    assert_eq!(stats["glitches"]["details"], json!(served));
    assert_eq!(stats["glitches"]["export_lines"], json!(in_export));
    assert_eq!(stats["glitches"]["by_kind"]["nul_in_title"], json!(1));
    let (_, stats) = get(&c, &format!("{}/__sim/stats", clean.base_url())).await;
    assert_eq!(
        stats["glitches"],
        json!({"details": 0, "export_lines": 0, "by_kind": {}})
    );
    for s in [a, b, clean] {
        s.shutdown().await;
    }
}
