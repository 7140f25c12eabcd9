//! A seeded, bounded property test: a real TMDb payload and a real export line, mutated the way
//! user-edited records go wrong (random nulls, type swaps, U+0000 and other control characters,
//! escaped lone surrogates, huge and negative numbers, deep nesting, megabyte strings, duplicate
//! credit rows, keys with NUL), go through the production parser and the production store. Never a
//! panic, never a failed batch: every movie is stored, or refused by the parser with a reason.

mod support;

use std::cell::Cell;
use std::io::Write;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};
use support::TestDb;
use tmdbsync::model::movie::FetchedMovie;
use tmdbsync::store::movies;
use tmdbsync::tmdb::export::{ExportReader, ExportRecord};

/// Stands for an escaped lone surrogate: a `Value` cannot hold one, so the serialized text gets
/// `\ud800` where this private-use character was.
const LONE_SURROGATE_MARK: char = '\u{e000}';

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/tmdb/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

#[derive(Debug, Clone)]
enum Mutation {
    Null,
    SwapType,
    Text(String),
    Number(Value),
    Nest(usize),
    Megabyte,
    DuplicateCredits,
    NulKey,
    Remove,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let text = prop_oneof![
        Just("a\0b".to_string()),
        Just("\0".to_string()),
        Just("\u{1}\u{1f}\t\n\r\\\"".to_string()),
        Just(format!("x{LONE_SURROGATE_MARK}y")),
        Just("🎬 שלום مرحبا".to_string()),
        "\\PC{0,40}",
    ];
    let number = prop_oneof![
        Just(json!(3_000_000_000_u64)),
        Just(json!(-2_147_483_649_i64)),
        Just(json!(9_223_372_036_854_775_808_u64)),
        Just(json!(1e300)),
        Just(json!(-1e300)),
        Just(json!(-1)),
        Just(json!(0.5)),
        any::<i64>().prop_map(|n| json!(n)),
    ];
    prop_oneof![
        Just(Mutation::Null),
        Just(Mutation::SwapType),
        text.prop_map(Mutation::Text),
        number.prop_map(Mutation::Number),
        (1usize..110).prop_map(Mutation::Nest),
        Just(Mutation::Megabyte),
        Just(Mutation::DuplicateCredits),
        Just(Mutation::NulKey),
        Just(Mutation::Remove),
    ]
}

/// Every node of `v` in pre-order, as a path of keys and indexes.
fn paths(v: &Value, at: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                at.push(PathStep::Key(k.clone()));
                paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate().take(8) {
                at.push(PathStep::Index(i));
                paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn node<'a>(v: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        PathStep::Key(k) => &mut v[k.as_str()],
        PathStep::Index(i) => &mut v[*i],
    })
}

fn apply(doc: &mut Value, at: usize, m: &Mutation) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let path = &all[1 + at % (all.len() - 1)];
    match m {
        Mutation::DuplicateCredits => {
            if let Some(cast) = doc
                .get_mut("credits")
                .and_then(|c| c.get_mut("cast"))
                .and_then(Value::as_array_mut)
            {
                let copy = cast.clone();
                cast.extend(copy);
            }
        }
        Mutation::NulKey | Mutation::Remove => {
            let (last, parent) = path.split_last().expect("not the root");
            let parent = node(doc, parent);
            if let (PathStep::Key(k), Value::Object(map)) = (last, parent) {
                let value = map.remove(k).unwrap_or(Value::Null);
                if matches!(m, Mutation::NulKey) {
                    map.insert(format!("{k}\0"), value);
                }
            }
        }
        _ => {
            let target = node(doc, path);
            *target = match m {
                Mutation::Null => Value::Null,
                Mutation::SwapType => match target.take() {
                    Value::String(s) => json!(s.len()),
                    Value::Number(n) => json!(n.to_string()),
                    Value::Bool(b) => json!(b.to_string()),
                    Value::Object(m) => Value::Array(m.into_iter().map(|(_, v)| v).collect()),
                    Value::Array(a) => json!({ "items": a }),
                    Value::Null => json!({}),
                },
                Mutation::Text(s) => json!(s),
                Mutation::Number(n) => n.clone(),
                Mutation::Nest(depth) => {
                    (0..*depth).fold(json!("deep"), |inner, _| Value::Array(vec![inner]))
                }
                Mutation::Megabyte => json!("é".repeat(512 * 1024)),
                _ => unreachable!(),
            };
        }
    }
}

fn serialize(doc: &Value) -> Vec<u8> {
    serde_json::to_string(doc)
        .unwrap()
        .replace(LONE_SURROGATE_MARK, "\\ud800")
        .into_bytes()
}

#[test]
fn mutated_real_payloads_are_stored_or_refused_with_a_reason() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = TestDb::start();
    let store = rt.block_on(db.store());
    let original: Value = serde_json::from_slice(&fixture(
        "tmdb_movie_550_append_credits_release_dates_external_ids_keywords_images.json",
    ))
    .unwrap();
    let config = Config {
        cases: 120,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let stored = Cell::new(0u32);
    let refused_by_parser = Cell::new(0u32);
    let next = Cell::new(1_000_000i64);
    let strategy = proptest::collection::vec((any::<usize>(), mutation()), 1..8);
    let result = runner.run(&strategy, |mutations| {
        let mut doc = original.clone();
        for (at, m) in &mutations {
            apply(&mut doc, *at, m);
        }
        next.set(next.get() + 1);
        let next_id = next.get();
        doc["id"] = json!(next_id);
        let body = serialize(&doc);
        let movie = match FetchedMovie::from_body(&body) {
            Ok(m) => m,
            Err(reason) => {
                // The only body a parser may refuse here is one nested past serde_json's limit.
                prop_assert!(reason.contains("recursion limit"), "refused: {reason}");
                refused_by_parser.set(refused_by_parser.get() + 1);
                return Ok(());
            }
        };
        prop_assert_eq!(movie.details.id, next_id);
        let outcome = rt.block_on(async {
            let mut tx = store.begin().await.unwrap();
            let result =
                movies::upsert_movies_isolated(&mut tx, std::slice::from_ref(&movie)).await;
            tx.commit().await.unwrap();
            result
        });
        let (counts, refused) =
            outcome.map_err(|e| TestCaseError::fail(format!("store failed: {e}")))?;
        prop_assert!(
            refused.is_empty(),
            "the database refused a sanitized movie: {refused:?}"
        );
        prop_assert_eq!(counts.inserted, 1);
        let (title, raw_ok): (String, bool) = rt
            .block_on(
                sqlx::query_as(
                    "SELECT title, jsonb_typeof(raw) = 'object' FROM movies WHERE id = $1",
                )
                .bind(next_id)
                .fetch_one(store.pool()),
            )
            .unwrap();
        prop_assert_eq!(title, movie.details.title.clone().unwrap_or_default());
        prop_assert!(raw_ok);
        stored.set(stored.get() + 1);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (stored, refused) = (stored.get(), refused_by_parser.get());
    println!("mutated payloads: {stored} stored, {refused} refused by the parser (nesting)");
    assert!(stored >= 100, "most cases reach the store: {stored}");
}

#[test]
fn mutated_real_export_lines_load_or_are_counted_malformed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = TestDb::start();
    let store = rt.block_on(db.store());
    let sample = String::from_utf8(fixture("movie_ids_export_sample.jsonl")).unwrap();
    let lines: Vec<Value> = sample
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let config = Config {
        cases: 48,
        max_shrink_iters: 32,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let day = Cell::new(chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
    let line_mutations = proptest::collection::vec(
        (any::<usize>(), any::<usize>(), mutation(), any::<bool>()),
        1..12,
    );
    let result = runner.run(&line_mutations, |mutations| {
        let mut docs = lines.clone();
        let mut raw_junk = Vec::new();
        for (which, at, m, junk) in &mutations {
            let doc = &mut docs[which % lines.len()];
            apply(doc, *at, m);
            if *junk {
                raw_junk.push(*which % lines.len());
            }
        }
        let mut bytes = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let mut line = serialize(doc);
            if raw_junk.contains(&i) {
                // Bytes no JSON encoder writes: invalid UTF-8 and a raw NUL inside the line.
                let at = line.len() / 2;
                line.splice(at..at, [0xff, 0x00, 0xfe]);
            }
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let gz = gz.finish().unwrap();
        day.set(day.get().succ_opt().unwrap());
        let day = day.get();
        let (records, summary) = rt.block_on(async {
            let mut reader = ExportReader::from_gzip(std::io::Cursor::new(gz));
            let mut records = Vec::new();
            while let Some(r) = reader
                .next_record()
                .await
                .expect("a line never fails the file")
            {
                records.push(match r {
                    ExportRecord::Movie(m) => Some(m),
                    ExportRecord::Malformed => None,
                });
            }
            let stream =
                futures::stream::iter(records.clone().into_iter().map(Ok::<_, std::io::Error>));
            let summary =
                tmdbsync::store::catalog::load_export(&store, day, false, stream, |_| {}).await;
            (records, summary)
        });
        prop_assert_eq!(records.len(), lines.len(), "one record per line");
        let summary = summary.map_err(|e| TestCaseError::fail(format!("the file failed: {e}")))?;
        prop_assert_eq!(
            summary.malformed as usize,
            records.iter().filter(|r| r.is_none()).count()
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
