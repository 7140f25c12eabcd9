//! The catalog loader against a real private Postgres: stable ordinals, popularity refresh,
//! malformed lines, reopened pages.

mod support;

use std::io::Write;

use chrono::NaiveDate;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures::stream;
use support::TestDb;
use tmdbsync::model::catalog::ExportLine;
use tmdbsync::store::catalog::{self, load_export};
use tmdbsync::tmdb::export::{ExportReader, ExportRecord};

fn line(id: i64, popularity: f64, adult: bool) -> ExportLine {
    ExportLine {
        id,
        adult: Some(adult),
        original_title: Some(format!("Title\t{id} \\ \"quoted\" Ünïcødé 映画")),
        popularity: Some(popularity),
        video: Some(false),
    }
}

fn ok_stream(
    lines: Vec<Option<ExportLine>>,
) -> impl futures::Stream<Item = Result<Option<ExportLine>, std::io::Error>> {
    stream::iter(lines.into_iter().map(Ok))
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[tokio::test]
async fn ordinals_follow_popularity_at_first_sight_and_stay_stable() {
    let db = TestDb::start();
    let store = db.store().await;
    let first = vec![
        Some(line(10, 1.0, false)),
        Some(line(20, 9.0, false)),
        None,
        Some(line(30, 5.0, true)),
    ];
    let s = load_export(&store, day("2026-01-01"), false, ok_stream(first), |_| {})
        .await
        .unwrap();
    assert_eq!(
        (s.total_ids, s.adult_ids, s.new_ids, s.malformed, s.lines),
        (3, 1, 3, 1, 4)
    );

    let ordinals: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, ordinal FROM catalog_ids ORDER BY ordinal")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(ordinals, vec![(20, 1), (30, 2), (10, 3)]);

    // Next day: popularity flips, id 20 disappears, id 40 is new. Old ordinals stay; 40 is appended.
    let second = vec![
        Some(line(10, 99.0, false)),
        Some(line(30, 0.1, true)),
        Some(line(40, 50.0, false)),
    ];
    let s = load_export(&store, day("2026-01-02"), false, ok_stream(second), |_| {})
        .await
        .unwrap();
    assert_eq!((s.total_ids, s.new_ids), (3, 1));
    let ordinals: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, ordinal FROM catalog_ids ORDER BY ordinal")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(ordinals, vec![(20, 1), (30, 2), (10, 3), (40, 4)]);
    let title: String = sqlx::query_scalar("SELECT original_title FROM catalog_ids WHERE id = 10")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(title, "Title\t10 \\ \"quoted\" Ünïcødé 映画");

    let entries = catalog::page_entries(&store, 1, 1).await.unwrap();
    let listed: Vec<(i64, bool)> = entries.iter().map(|e| (e.id, e.listed)).collect();
    assert_eq!(
        listed,
        vec![(20, false), (30, true), (10, true), (40, true)]
    );

    // Reloading the same export is idempotent.
    let again = vec![
        Some(line(10, 99.0, false)),
        Some(line(30, 0.1, true)),
        Some(line(40, 50.0, false)),
    ];
    let s = load_export(&store, day("2026-01-02"), false, ok_stream(again), |_| {})
        .await
        .unwrap();
    assert_eq!(s.new_ids, 0);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog_ids")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 4);
}

#[tokio::test]
async fn new_ids_reopen_the_partial_last_page() {
    let db = TestDb::start();
    let store = db.store().await;
    let lines: Vec<_> = (1..=30)
        .map(|i| Some(line(i, 100.0 - i as f64, false)))
        .collect();
    load_export(&store, day("2026-01-01"), false, ok_stream(lines), |_| {})
        .await
        .unwrap();
    sqlx::query("INSERT INTO bulk_pages (page, status) VALUES (1, 'done'), (2, 'done')")
        .execute(store.pool())
        .await
        .unwrap();
    let lines: Vec<_> = (1..=35)
        .map(|i| Some(line(i, 100.0 - i as f64, false)))
        .collect();
    load_export(&store, day("2026-01-02"), false, ok_stream(lines), |_| {})
        .await
        .unwrap();
    let pages: Vec<i32> = sqlx::query_scalar("SELECT page FROM bulk_pages ORDER BY page")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(
        pages,
        vec![1],
        "page 2 held ordinals 21-30 and now also 31-35: it must be reopened"
    );
}

#[tokio::test]
async fn gzip_export_reader_counts_malformed_lines_and_reads_the_recorded_sample() {
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tmdb/movie_ids_export_sample.jsonl"
    ))
    .expect("the recorded export sample in tests/fixtures/tmdb");
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(sample.as_bytes()).unwrap();
    gz.write_all(b"{not json\n\n").unwrap();
    let bytes = gz.finish().unwrap();
    let mut reader = ExportReader::from_gzip(std::io::Cursor::new(bytes));
    let mut ids = Vec::new();
    let mut malformed = 0;
    while let Some(r) = reader.next_record().await.unwrap() {
        match r {
            ExportRecord::Movie(m) => ids.push(m.id),
            ExportRecord::Malformed => malformed += 1,
        }
    }
    assert_eq!(
        ids.len(),
        sample.lines().filter(|l| !l.trim().is_empty()).count()
    );
    assert_eq!(&ids[..3], &[3924, 6124, 8773]);
    assert_eq!(malformed, 1);
}
