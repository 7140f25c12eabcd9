//! Real-world data: the recorded TMDb and OMDb responses (tests/fixtures/tmdb) parsed by the
//! production models and stored through the production store, field by field; records Postgres
//! cannot hold as sent (U+0000, lone surrogates, numbers out of range, wrong types) stored with
//! what fits; a record the database still refuses quarantined without failing its batch.

mod support;

use std::io::Write;

use serde_json::{Value, json};
use sqlx::Row;
use support::{ALL_PAGES, EngineSetup, TestDb, pages, sim_config};
use tmdbsync::model::movie::FetchedMovie;
use tmdbsync::omdb::OmdbLookup;
use tmdbsync::sim::SimConfig;
use tmdbsync::stage::bulk;
use tmdbsync::stage::{RunLabel, catalog};
use tmdbsync::store::{Store, movies};
use tmdbsync::tmdb::export::{ExportReader, ExportRecord};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/tmdb/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn store_one(store: &Store, movie: &FetchedMovie) -> movies::UpsertCounts {
    let mut tx = store.begin().await.expect("tx");
    let counts = movies::upsert_movies(&mut tx, std::slice::from_ref(movie))
        .await
        .expect("stored");
    tx.commit().await.expect("commit");
    counts
}

#[tokio::test]
async fn fight_club_as_recorded_is_stored_field_by_field() {
    let db = TestDb::start();
    let store = db.store().await;
    let body =
        fixture("tmdb_movie_550_append_credits_release_dates_external_ids_keywords_images.json");
    let sent: Value = serde_json::from_slice(&body).unwrap();
    let movie = FetchedMovie::from_body(&body).expect("the recorded body parses");
    assert_eq!(movie.warnings, 0, "a real body has no oddity");
    let d = &movie.details;
    assert_eq!(d.id, 550);
    assert_eq!(d.title.as_deref(), Some("Fight Club"));
    assert_eq!(d.imdb_id(), Some("tt0137523"));
    let credits = d.credits.as_ref().expect("credits append");
    assert_eq!((credits.cast.len(), credits.crew.len()), (75, 188));
    assert_eq!(d.genres.len(), sent["genres"].as_array().unwrap().len());
    assert_eq!(store_one(&store, &movie).await.inserted, 1);

    let row = sqlx::query(
        "SELECT title, original_title, original_language, release_date::text AS rd, runtime,
             status, adult, popularity, vote_average, vote_count, budget, revenue, imdb_id, raw,
             overview
         FROM movies WHERE id = 550",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        row.get::<String, _>("title"),
        sent["title"].as_str().unwrap()
    );
    assert_eq!(
        row.get::<Option<String>, _>("original_title").as_deref(),
        sent["original_title"].as_str()
    );
    assert_eq!(
        row.get::<Option<String>, _>("original_language").as_deref(),
        sent["original_language"].as_str()
    );
    assert_eq!(
        row.get::<Option<String>, _>("overview").as_deref(),
        sent["overview"].as_str()
    );
    assert_eq!(
        row.get::<Option<String>, _>("rd").as_deref(),
        sent["release_date"].as_str()
    );
    assert_eq!(
        row.get::<Option<i32>, _>("runtime").map(i64::from),
        sent["runtime"].as_i64()
    );
    assert_eq!(
        row.get::<Option<String>, _>("status").as_deref(),
        sent["status"].as_str()
    );
    assert_eq!(
        row.get::<bool, _>("adult"),
        sent["adult"].as_bool().unwrap()
    );
    assert_eq!(
        row.get::<Option<f64>, _>("popularity"),
        sent["popularity"].as_f64()
    );
    assert_eq!(
        row.get::<Option<f64>, _>("vote_average"),
        sent["vote_average"].as_f64()
    );
    assert_eq!(
        row.get::<Option<i32>, _>("vote_count").map(i64::from),
        sent["vote_count"].as_i64()
    );
    assert_eq!(row.get::<Option<i64>, _>("budget"), sent["budget"].as_i64());
    assert_eq!(
        row.get::<Option<i64>, _>("revenue"),
        sent["revenue"].as_i64()
    );
    assert_eq!(
        row.get::<Option<String>, _>("imdb_id").as_deref(),
        sent["external_ids"]["imdb_id"].as_str()
    );
    let raw: Value = row.get("raw");
    assert_eq!(
        raw, sent,
        "raw round-trips what TMDb sent, every append included"
    );
    assert!(raw["release_dates"]["results"].as_array().unwrap().len() > 10);
    assert!(!raw["keywords"]["keywords"].as_array().unwrap().is_empty());
    assert!(raw["images"]["backdrops"].is_array());

    let distinct_credits: std::collections::BTreeSet<&str> = sent["credits"]["cast"]
        .as_array()
        .unwrap()
        .iter()
        .chain(sent["credits"]["crew"].as_array().unwrap())
        .map(|c| c["credit_id"].as_str().unwrap())
        .collect();
    let stored_credits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM credits WHERE movie_id = 550")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(stored_credits, distinct_credits.len() as i64);
    let cast: i64 =
        sqlx::query_scalar("SELECT count(*) FROM credits WHERE movie_id = 550 AND kind = 'cast'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(cast, 75);
    let norton: (String, Option<i32>) = sqlx::query_as(
        "SELECT c.character, c.cast_order FROM credits c JOIN people p ON p.id = c.person_id
         WHERE c.movie_id = 550 AND p.name = 'Edward Norton'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let sent_norton = sent["credits"]["cast"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Edward Norton")
        .unwrap();
    assert_eq!(norton.0, sent_norton["character"].as_str().unwrap());
    assert_eq!(norton.1.map(i64::from), sent_norton["order"].as_i64());
    let genres: Vec<String> = sqlx::query_scalar(
        "SELECT g.name FROM movie_genres mg JOIN genres g ON g.id = mg.genre_id
         WHERE mg.movie_id = 550 ORDER BY g.name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut sent_genres: Vec<String> = sent["genres"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    sent_genres.sort();
    assert_eq!(genres, sent_genres);
}

#[tokio::test]
async fn the_latest_stub_with_empty_date_and_null_imdb_id_is_stored() {
    let db = TestDb::start();
    let store = db.store().await;
    let body = fixture("tmdb_movie_latest.json");
    let sent: Value = serde_json::from_slice(&body).unwrap();
    let movie = FetchedMovie::from_body(&body).expect("parses");
    assert_eq!(
        movie.warnings, 0,
        "an empty date is TMDb's normal 'unknown'"
    );
    assert_eq!(movie.details.id, sent["id"].as_i64().unwrap());
    assert!(movie.details.release_date.is_none() && movie.details.imdb_id().is_none());
    assert!(
        movie.details.credits.is_none(),
        "no append was asked: missing appends are no error"
    );
    store_one(&store, &movie).await;
    let (date, raw): (Option<chrono::NaiveDate>, Value) =
        sqlx::query_as("SELECT release_date, raw FROM movies WHERE id = $1")
            .bind(movie.details.id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((date, raw), (None, sent));
}

#[test]
fn recorded_lists_and_error_bodies_parse_with_the_production_models() {
    use tmdbsync::model::movie::Credits;
    use tmdbsync::tmdb::models::{ApiErrorBody, ChangesPage, DiscoverPage};
    for (name, total_pages, adult_true) in [
        ("tmdb_movie_changes_page1.json", 62, 1),
        ("tmdb_movie_changes_page3.json", 57, 6),
    ] {
        let page: ChangesPage = serde_json::from_slice(&fixture(name)).unwrap();
        assert_eq!(page.results.len(), 100, "{name}");
        assert_eq!(page.total_pages, Some(total_pages), "{name}");
        let adult = page
            .results
            .iter()
            .filter(|r| r.adult == Some(true))
            .count();
        assert_eq!(adult, adult_true, "{name}");
    }
    let discover: DiscoverPage =
        serde_json::from_slice(&fixture("tmdb_discover_movie_page1.json")).unwrap();
    assert_eq!(
        (discover.results.len(), discover.total_pages),
        (20, Some(38020))
    );
    assert!(discover.results.iter().all(|m| m.title.is_some()));
    let credits: Credits = serde_json::from_slice(&fixture("tmdb_movie_550_credits.json")).unwrap();
    assert!(!credits.cast.is_empty() && !credits.crew.is_empty());
    for (name, code) in [
        ("tmdb_error_400_invalid_page_status22.json", 22),
        ("tmdb_error_401_invalid_api_key_status7.json", 7),
        ("tmdb_error_404_invalid_id_status6_movie0.json", 6),
        ("tmdb_error_404_not_found_status34.json", 34),
        ("tmdb_error_422_invalid_date_range_status20.json", 20),
    ] {
        let e: ApiErrorBody = serde_json::from_slice(&fixture(name)).unwrap();
        assert_eq!(e.status_code, Some(code), "{name}");
        assert!(e.status_message.is_some_and(|m| !m.is_empty()), "{name}");
    }
}

#[tokio::test]
async fn recorded_omdb_bodies_are_stored_through_the_production_store() {
    let db = TestDb::start();
    let store = db.store().await;
    let body = String::from_utf8(fixture("omdb_tt0066921_by_id.json")).unwrap();
    let OmdbLookup::Found(found) = tmdbsync::omdb::models::interpret(200, &body).unwrap() else {
        panic!("found");
    };
    assert_eq!(found.imdb_id, "tt0066921");
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&found.raw).unwrap(), sent);
    let omdb_nul = r#"{"Title":"A\u0000B","imdbID":"tt1","Response":"True","imdbVotes":12,"Ratings":{"x":1},"Metascore":"999999"}"#;
    let OmdbLookup::Found(odd) = tmdbsync::omdb::models::interpret(200, omdb_nul).unwrap() else {
        panic!("an odd OMDb body is still a found movie");
    };
    assert_eq!(odd.title.as_deref(), Some("AB"));
    assert_eq!(
        odd.imdb_votes,
        Some(12),
        "a number where OMDb sends a string is read"
    );
    assert_eq!(odd.metascore, None, "a metascore past smallint is null");
    assert!(!odd.raw.contains("\\u0000"));
    // Both go through the store the OMDb stage uses.
    let sql_movie = |id: i64, imdb: &str| {
        format!(
            r#"{{"id":{id},"title":"m{id}","imdb_id":"{imdb}","credits":{{"cast":[],"crew":[]}}}}"#
        )
    };
    for (id, imdb) in [(1_i64, "tt0066921"), (2, "tt1")] {
        let m = FetchedMovie::from_body(sql_movie(id, imdb).as_bytes()).unwrap();
        store_one(&store, &m).await;
    }
    let now: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT details_at FROM movie_pipeline WHERE movie_id = 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let candidate = |id: i64, imdb: &str| tmdbsync::store::omdb::OmdbCandidate {
        movie_id: id,
        imdb_id: imdb.into(),
        details_at: now,
    };
    let mut tx = store.begin().await.unwrap();
    tmdbsync::store::omdb::record_outcomes(
        &mut tx,
        &[
            (
                candidate(1, "tt0066921"),
                tmdbsync::store::omdb::OmdbOutcome::Found(found),
            ),
            (
                candidate(2, "tt1"),
                tmdbsync::store::omdb::OmdbOutcome::Found(odd),
            ),
        ],
    )
    .await
    .expect("OMDb outcomes stored");
    tx.commit().await.unwrap();
    let rows: Vec<(i64, Option<f64>, Option<i32>, Value)> = sqlx::query_as(
        "SELECT movie_id, imdb_rating, imdb_votes, raw FROM omdb_ratings ORDER BY movie_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].1, rows[0].2), (Some(8.3), Some(691_997)));
    assert_eq!(rows[0].3, sent);
    assert_eq!(rows[1].3["Title"], "AB");
}

/// A movie body with everything real catalogues contain that the simulator never sends.
fn poison_body(id: i64) -> String {
    let overview = "x".repeat(100 * 1024);
    format!(
        r#"{{"id":{id},"title":"Nul\u0000Title 🎬 שלום \"q\" back\\slash","original_title":"tab\tand\nnewline",
        "overview":"{overview}\u0000","release_date":"","runtime":"142","vote_count":3000000000,
        "budget":99999999999999999999,"revenue":-5,"popularity":"12.5","adult":null,
        "genres":{{"id":18}},"imdb_id":"tt\u0000123",
        "credits":{{"cast":[{{"id":"not-a-number","name":"skipped","credit_id":"c0"}},
            {{"id":7,"name":"Dup\u0000","credit_id":"c1","character":"\ud800lone","order":99999999999}},
            {{"id":7,"name":"Dup","credit_id":"c1","character":"again","order":1}}],
          "crew":null}},
        "keywords":{{"keywords":[{{"id":1,"name":"k\u0000ey"}}]}},
        "odd\u0000key":{{"nested":[[[[[[[["deep"]]]]]]]]}},"unknown_field":true}}"#
    )
}

#[tokio::test]
async fn a_poisoned_record_is_stored_with_what_fits_and_keeps_the_rest_byte_for_byte() {
    let db = TestDb::start();
    let store = db.store().await;
    let movie = FetchedMovie::from_body(poison_body(42).as_bytes()).expect("parses");
    assert!(movie.warnings >= 8, "oddities counted: {}", movie.warnings);
    let d = &movie.details;
    assert_eq!(d.runtime, Some(142), "a numeric string is read");
    assert_eq!(d.vote_count, None, "past i32: null");
    assert_eq!(d.budget, None, "past i64: null");
    assert_eq!(d.revenue, Some(-5));
    assert_eq!(d.popularity, Some(12.5));
    assert!(
        d.genres.is_empty(),
        "an object where an array belongs is empty"
    );
    let cast = &d.credits.as_ref().unwrap().cast;
    assert_eq!(cast.len(), 2, "the entry with an unusable id is dropped");
    store_one(&store, &movie).await;
    let row = sqlx::query(
        "SELECT title, original_title, overview, runtime, vote_count, budget, imdb_id, raw FROM movies WHERE id = 42",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        row.get::<String, _>("title"),
        "NulTitle 🎬 שלום \"q\" back\\slash"
    );
    assert_eq!(
        row.get::<Option<String>, _>("original_title").as_deref(),
        Some("tab\tand\nnewline")
    );
    assert_eq!(
        row.get::<Option<String>, _>("overview").map(|o| o.len()),
        Some(100 * 1024)
    );
    assert_eq!(row.get::<Option<i32>, _>("runtime"), Some(142));
    assert_eq!(row.get::<Option<i32>, _>("vote_count"), None);
    assert_eq!(
        row.get::<Option<String>, _>("imdb_id").as_deref(),
        Some("tt123")
    );
    let raw: Value = row.get("raw");
    assert_eq!(
        raw["vote_count"],
        json!(3_000_000_000_u64),
        "raw keeps what TMDb sent"
    );
    assert_eq!(raw["runtime"], "142");
    assert!(raw["oddkey"]["nested"].is_array(), "keys lose only U+0000");
    assert_eq!(raw["credits"]["cast"][1]["character"], "\u{fffd}lone");
    let credits: Vec<(String, Option<String>, Option<i32>)> =
        sqlx::query_as("SELECT credit_id, character, cast_order FROM credits WHERE movie_id = 42")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        credits,
        vec![("c1".into(), Some("\u{fffd}lone".into()), None)],
        "duplicate credit rows are stored once; an order past i32 is null"
    );
}

#[tokio::test]
async fn export_lines_nobody_can_store_are_skipped_and_counted_never_failing_the_file() {
    let db = TestDb::start();
    let store = db.store().await;
    let mut text = String::from_utf8(fixture("movie_ids_export_sample.jsonl")).unwrap();
    let good = text.lines().filter(|l| !l.trim().is_empty()).count();
    text.push_str(concat!(
        r#"{"adult":false,"id":900001,"original_title":"N\u0000UL","popularity":1.5,"video":false}"#,
        "\n",
        r#"{"adult":false,"id":"900002","original_title":"string id","popularity":"2.5","video":false}"#,
        "\n",
        "not json at all\n",
        r#"{"adult":false,"id":"nope","original_title":"x"}"#,
        "\n",
    ));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"{\"adult\":false,\"id\":900003,\"original_title\":\"bad \xff utf8\",\"popularity\":0.1}\n");
    bytes.extend_from_slice(&vec![b'a'; 100 * 1024]);
    bytes.push(b'\n');
    bytes.extend_from_slice(
        b"{\"adult\":false,\"id\":900004,\"popularity\":0.2,\"extra\":{\"x\":[1]}}\n",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();

    let mut reader = ExportReader::from_gzip(std::io::Cursor::new(gz));
    let mut lines = Vec::new();
    while let Some(r) = reader.next_record().await.expect("no line fails the file") {
        lines.push(match r {
            ExportRecord::Movie(m) => Some(m),
            ExportRecord::Malformed => None,
        });
    }
    let malformed = lines.iter().filter(|l| l.is_none()).count();
    assert_eq!(malformed, 3, "not json, an unusable id, a 100 KiB line");
    let stream = futures::stream::iter(lines.into_iter().map(Ok::<_, std::io::Error>));
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let summary = tmdbsync::store::catalog::load_export(&store, date, false, stream, |_| {})
        .await
        .expect("the file loads");
    assert_eq!(summary.malformed, 3);
    assert_eq!(summary.total_ids as usize, good + 4);
    let titles: Vec<(i64, Option<String>, Option<f64>)> = sqlx::query_as(
        "SELECT id, original_title, popularity FROM catalog_ids WHERE id >= 900001 ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        titles,
        vec![
            (900001, Some("NUL".into()), Some(1.5)),
            (900002, Some("string id".into()), Some(2.5)),
            (900003, Some("bad \u{fffd} utf8".into()), Some(0.1)),
            (900004, None, Some(0.2)),
        ]
    );
}

#[tokio::test]
async fn a_movie_the_database_refuses_is_quarantined_and_the_next_run_retries_it() {
    let setup = EngineSetup::start(sim_config(300, 11), 2000).await;
    let (engine, store, _) = setup.parts();
    let label = RunLabel::default();
    assert!(catalog::run(engine, &label).await.unwrap().succeeded);
    // Two catalog ids the database will refuse: a trigger stands in for any per-row failure.
    let refused: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM catalog_ids WHERE NOT adult ORDER BY ordinal OFFSET 37 LIMIT 2",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    // The ids are numbers this test read from the database.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.id IN ({}, {}) THEN RAISE EXCEPTION 'refused for the test: movie %', NEW.id; END IF;
         RETURN NEW; END $$;
         CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON movies FOR EACH ROW EXECUTE FUNCTION refuse();",
        refused[0], refused[1]
    )))
    .execute(store.pool())
    .await
    .unwrap();
    let all = pages(1000);
    let first = bulk::run(engine, all, &label)
        .await
        .expect("the stage completes");
    assert!(first.succeeded, "{}", first.message);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM movies")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let served: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog_ids WHERE NOT adult")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        stored,
        served - 2,
        "everything but the two refused movies is stored"
    );
    let errors: Vec<(String, Option<i64>, String)> =
        sqlx::query_as("SELECT category, movie_id, message FROM sync_errors ORDER BY movie_id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    let mut refused = refused;
    refused.sort();
    for (e, id) in errors.iter().zip(&refused) {
        assert_eq!((e.0.as_str(), e.1), ("data", Some(*id)));
        assert!(
            e.2.contains("refused for the test"),
            "the database's reason: {}",
            e.2
        );
    }
    let run_errors: i32 =
        sqlx::query_scalar("SELECT errors_count FROM sync_runs WHERE run_type = 'bulk'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(run_errors, 2);
    let open_pages: Vec<i32> =
        sqlx::query_scalar("SELECT page FROM bulk_pages WHERE status <> 'done' ORDER BY page")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let refused_pages: Vec<i32> = sqlx::query_scalar(
        "SELECT DISTINCT ((ordinal - 1) / 20 + 1)::int FROM catalog_ids WHERE id = ANY($1) ORDER BY 1",
    )
    .bind(&refused)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        open_pages, refused_pages,
        "the pages of the quarantined movies stay open"
    );

    sqlx::raw_sql("DROP TRIGGER refuse ON movies")
        .execute(store.pool())
        .await
        .unwrap();
    let second = bulk::run(engine, all, &label).await.unwrap();
    assert!(second.succeeded);
    let retried: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM movies WHERE id = ANY($1) ORDER BY id")
            .bind(&refused)
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        retried, refused,
        "the next run stored the quarantined movies"
    );
    let imported: i32 = sqlx::query_scalar(
        "SELECT movies_imported FROM sync_runs WHERE run_type = 'bulk' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        imported, 2,
        "only the quarantined movies were fetched again"
    );
}

#[tokio::test]
async fn a_glitchy_catalog_imports_exactly_stored_plus_quarantined_plus_gone() {
    use std::collections::BTreeSet;
    let glitchy = SimConfig {
        adult_movies: 20,
        glitch_rate: 0.2,
        ..sim_config(1500, 5)
    };
    let setup = EngineSetup::start(glitchy, 2000).await;
    let (engine, store, sim) = setup.parts();
    let label = RunLabel::default();
    let c = catalog::run(engine, &label).await.expect("catalog");
    assert!(c.succeeded, "{}", c.message);
    // Days pass before bulk: TMDb deletes some listed ids, which then answer 404 (gone).
    let advanced = support::sim_post(sim, "/__sim/advance?days=2", json!({})).await;
    let deleted: BTreeSet<i64> = advanced["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let b = bulk::run(engine, ALL_PAGES, &label).await.expect("bulk");
    assert!(b.succeeded, "{}", b.message);

    let truth = support::sim_get(sim, "/__sim/glitches").await;
    let glitched = truth["movies"].as_array().unwrap();
    let by_kind = |kind: &str| -> BTreeSet<i64> {
        glitched
            .iter()
            .filter(|g| g["kind"] == kind)
            .map(|g| g["id"].as_i64().unwrap())
            .collect()
    };
    let lost_lines: BTreeSet<i64> = glitched
        .iter()
        .filter(|g| g["expected"] == "export_line_malformed")
        .map(|g| g["id"].as_i64().unwrap())
        .collect();
    assert!(!lost_lines.is_empty(), "some export lines are cut");
    let ids = |sql: &'static str| {
        let store = store.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_all(store.pool())
                .await
                .unwrap()
                .into_iter()
                .collect::<BTreeSet<i64>>()
        }
    };
    let catalog_ids = ids("SELECT id FROM catalog_ids WHERE NOT adult").await;
    let stored = ids("SELECT id FROM movies WHERE deleted_at IS NULL").await;
    let quarantined =
        ids("SELECT DISTINCT movie_id FROM sync_errors WHERE category = 'data' AND movie_id IS NOT NULL").await;
    let gone = ids("SELECT id FROM catalog_gone").await;
    assert!(
        catalog_ids.is_disjoint(&lost_lines),
        "a cut line lists no id"
    );
    assert!(stored.is_disjoint(&gone) && stored.is_disjoint(&quarantined));
    let accounted: BTreeSet<i64> = stored
        .union(&quarantined)
        .chain(gone.iter())
        .copied()
        .collect();
    assert_eq!(
        accounted, catalog_ids,
        "stored + quarantined + gone = catalog"
    );
    assert!(
        quarantined.is_empty(),
        "every glitch is storable: {quarantined:?}"
    );
    let deleted_listed: BTreeSet<i64> = deleted.intersection(&catalog_ids).copied().collect();
    assert!(!deleted_listed.is_empty());
    assert_eq!(
        gone, deleted_listed,
        "exactly the ids TMDb deleted are gone"
    );

    // What each glitch left in the typed columns.
    let nullable = [
        ("vote_count_beyond_i32", "vote_count IS NULL"),
        ("runtime_beyond_i32", "runtime IS NULL"),
        ("budget_beyond_i64", "budget IS NULL AND revenue IS NULL"),
        ("runtime_as_string", "runtime IS NOT NULL"),
        ("popularity_as_string", "popularity IS NOT NULL"),
        ("lone_surrogate", "title LIKE '%\u{fffd}%'"),
        ("nul_in_title", "title <> '' AND raw->>'title' = title"),
        ("huge_overview", "length(overview) >= 200 * 1024"),
        (
            "genres_as_object",
            "NOT EXISTS (SELECT 1 FROM movie_genres g WHERE g.movie_id = m.id)",
        ),
    ];
    for (kind, holds) in nullable {
        // Adult movies are not imported; gone ones answer 404.
        let want: BTreeSet<i64> = by_kind(kind)
            .intersection(&catalog_ids)
            .filter(|id| !gone.contains(id))
            .copied()
            .collect();
        assert!(!want.is_empty(), "{kind} appears");
        let sql = format!("SELECT id FROM movies m WHERE id = ANY($1) AND {holds}");
        let got: BTreeSet<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(want.iter().copied().collect::<Vec<_>>())
            .fetch_all(store.pool())
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(got, want, "{kind}: {holds}");
    }
    let warned_kinds: BTreeSet<&str> = [
        "nul_in_title",
        "nul_in_overview",
        "nul_in_cast_character",
        "nul_in_unknown_key",
    ]
    .into_iter()
    .collect();
    let expected_warnings = glitched
        .iter()
        .filter(|g| g["target"] == "details")
        .filter(|g| {
            g["expected"] == "stored_with_warning"
                || warned_kinds.contains(g["kind"].as_str().unwrap())
        })
        .filter(|g| stored.contains(&g["id"].as_i64().unwrap()))
        .count();
    let warnings: i32 =
        sqlx::query_scalar("SELECT data_warnings FROM sync_runs WHERE run_type = 'bulk'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        warnings as usize, expected_warnings,
        "one warning per odd movie stored"
    );
}

#[tokio::test]
async fn a_delta_movie_the_database_refuses_holds_the_watermark_until_it_is_stored() {
    use std::collections::BTreeSet;
    let setup = EngineSetup::start(sim_config(400, 13), 2000).await;
    let (engine, store, sim) = setup.parts();
    let store = store.clone();
    let label = RunLabel::default();
    assert!(catalog::run(engine, &label).await.unwrap().succeeded);
    let all = pages(1000);
    assert!(bulk::run(engine, all, &label).await.unwrap().succeeded);
    let advanced = support::sim_post(sim, "/__sim/advance?days=2", json!({})).await;
    let changed: BTreeSet<i64> = advanced["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let victim = *changed.iter().next().expect("a changed movie");
    // The ids are numbers from the simulator.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.id = {victim} THEN RAISE EXCEPTION 'refused for the test'; END IF;
         RETURN NEW; END $$;
         CREATE TRIGGER refuse BEFORE UPDATE ON movies FOR EACH ROW EXECUTE FUNCTION refuse();"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    let watermark = || async {
        tmdbsync::store::pages::delta_watermark(&store)
            .await
            .unwrap()
    };
    let first = tmdbsync::stage::delta::run(engine, Default::default(), &label)
        .await
        .expect("the delta stage completes");
    assert!(first.succeeded, "{}", first.message);
    assert_eq!(first.counters.errors, 1, "{}", first.message);
    assert!(
        first.counters.movies_updated as usize >= changed.len() - 1,
        "the rest of the window is stored: {}",
        first.message
    );
    let held = watermark().await;
    let quarantined: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT category, movie_id FROM sync_errors")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(quarantined, vec![("data".to_string(), Some(victim))]);

    sqlx::raw_sql("DROP TRIGGER refuse ON movies")
        .execute(store.pool())
        .await
        .unwrap();
    let second = tmdbsync::stage::delta::run(engine, Default::default(), &label)
        .await
        .unwrap();
    assert!(
        second.succeeded && second.counters.errors == 0,
        "{}",
        second.message
    );
    let moved = watermark().await;
    assert!(
        moved > held,
        "the watermark moves once the movie is stored: {held:?} → {moved:?}"
    );
    let version: Option<String> = sqlx::query_scalar("SELECT title FROM movies WHERE id = $1")
        .bind(victim)
        .fetch_one(store.pool())
        .await
        .unwrap();
    let served = engine.tmdb.movie(victim).await.expect("TMDb serves it");
    assert_eq!(
        version, served.details.title,
        "the refused movie now carries TMDb's new version"
    );
}
