//! Poison records on demand: with `glitch_rate` > 0 a seeded fraction of movies is served with the
//! damage real TMDb data carries (NUL characters, numbers out of range, wrong JSON types, lone
//! surrogates, broken export lines), each movie always the same way, and [`GlitchKind::expected`]
//! says what a correct engine ends up with, so tests can still prove exact counts.
//!
//! A glitched movie has exactly one [`GlitchKind`]; it shows either in its `/3/movie/{id}` body or
//! in its line of the daily export ([`GlitchKind::target`]), never in discover, latest, changes or
//! `/movie/{id}/credits`. With `glitch_rate` 0 nothing here runs and every byte served is as before.

use super::catalog::Catalog;
use super::synth::{hash, unit};
use super::{AppState, Sim, lock};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Where a glitch shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlitchTarget {
    /// The movie's `/3/movie/{id}` body (details with appends).
    Details,
    /// The movie's line in every daily export (`movie_ids_MM_DD_YYYY.json.gz`).
    Export,
}

/// What a correct engine does with a movie that carries a glitch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExpectedOutcome {
    /// Catalogued and stored; every typed column holds what was sent. Text is only cleaned of what
    /// Postgres refuses (NUL removed from `text` columns and from `raw`).
    Stored,
    /// Catalogued and stored, but a value that cannot be typed is dropped and a `data` warning is
    /// recorded: see [`GlitchKind::dropped`] for which column is left NULL or which rows are skipped.
    StoredWithWarning,
    /// The movie's export line is not a usable record: the catalog run counts one malformed line and
    /// that export does not list the id (so a bulk run never reaches it through the catalog).
    ExportLineMalformed,
}

impl ExpectedOutcome {
    /// Snake-case name used in `/__sim/glitches`.
    pub fn name(self) -> &'static str {
        match self {
            ExpectedOutcome::Stored => "stored",
            ExpectedOutcome::StoredWithWarning => "stored_with_warning",
            ExpectedOutcome::ExportLineMalformed => "export_line_malformed",
        }
    }
}

macro_rules! glitch_kinds {
    ($($(#[doc = $doc:literal])+ $kind:ident = $name:literal, $target:ident, $outcome:ident, [$($col:literal),*];)+) => {
        /// One kind of damage a glitched movie is served with.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum GlitchKind {
            $($(#[doc = $doc])+ $kind,)+
        }

        impl GlitchKind {
            /// Every kind, in the order a movie's kind is drawn from.
            pub const ALL: &'static [GlitchKind] = &[$(GlitchKind::$kind),+];

            /// Snake-case name used in `/__sim/stats` and `/__sim/glitches`.
            pub fn name(self) -> &'static str {
                match self { $(GlitchKind::$kind => $name,)+ }
            }

            /// Whether the glitch shows in the details body or in the export line.
            pub fn target(self) -> GlitchTarget {
                match self { $(GlitchKind::$kind => GlitchTarget::$target,)+ }
            }

            /// What a correct engine ends up with for this movie.
            pub fn expected(self) -> ExpectedOutcome {
                match self { $(GlitchKind::$kind => ExpectedOutcome::$outcome,)+ }
            }

            /// What a correct engine leaves out for a [`ExpectedOutcome::StoredWithWarning`] kind:
            /// `movies` columns stored NULL, `movie_genres` when the genre list is skipped, `credits`
            /// when one cast row is skipped, `title` when a lone surrogate is replaced by U+FFFD.
            pub fn dropped(self) -> &'static [&'static str] {
                match self { $(GlitchKind::$kind => &[$($col),*],)+ }
            }
        }
    };
}

glitch_kinds! {
    /// `title` has a NUL (`\u0000`) in the middle.
    NulInTitle = "nul_in_title", Details, Stored, [];
    /// `overview` has a NUL in the middle.
    NulInOverview = "nul_in_overview", Details, Stored, [];
    /// The first cast entry's `character` has a NUL.
    NulInCastCharacter = "nul_in_cast_character", Details, Stored, [];
    /// An unknown field `x_user_tags` is an object whose key has a NUL (only `raw` sees it).
    NulInUnknownKey = "nul_in_unknown_key", Details, Stored, [];
    /// `title` has `\u0001` and `\u001f`; `overview` has DEL and an ANSI escape.
    ControlCharacters = "control_characters", Details, Stored, [];
    /// `title` has a tab; `overview` has `\n`, `\r\n` and a tab.
    TabsAndNewlines = "tabs_and_newlines", Details, Stored, [];
    /// `title` has double quotes, an apostrophe and backslashes; `overview` reads like SQL injection.
    BackslashesAndQuotes = "backslashes_and_quotes", Details, Stored, [];
    /// `title` has 4-byte emoji, a ZWJ sequence, Hebrew under a right-to-left override, and Arabic.
    EmojiAndRtl = "emoji_and_rtl", Details, Stored, [];
    /// `vote_count` is 3000000000 (beyond the `integer` column).
    VoteCountBeyondI32 = "vote_count_beyond_i32", Details, StoredWithWarning, ["vote_count"];
    /// `runtime` is 2147483648 (one beyond the `integer` column).
    RuntimeBeyondI32 = "runtime_beyond_i32", Details, StoredWithWarning, ["runtime"];
    /// `runtime` is -5: it fits the column and is stored as sent.
    RuntimeNegative = "runtime_negative", Details, Stored, [];
    /// `budget` and `revenue` are 99999999999999999999 (beyond i64; serde_json reads an f64).
    BudgetBeyondI64 = "budget_beyond_i64", Details, StoredWithWarning, ["budget", "revenue"];
    /// `popularity` is a string (`"12.5"`): read as the number it holds, with a warning.
    PopularityAsString = "popularity_as_string", Details, StoredWithWarning, [];
    /// `runtime` is a string (`"120"`): read as the number it holds, with a warning.
    RuntimeAsString = "runtime_as_string", Details, StoredWithWarning, [];
    /// `genres` is an object `{"28":"Action"}` instead of an array.
    GenresAsObject = "genres_as_object", Details, StoredWithWarning, ["movie_genres"];
    /// `credits.cast` is null (the crew is still there).
    CastNull = "cast_null", Details, Stored, [];
    /// The first cast entry's `id` is a numeric string: read as the id it holds, with a warning.
    CastIdAsString = "cast_id_as_string", Details, StoredWithWarning, [];
    /// The `credits` append is missing although it was requested.
    CreditsMissing = "credits_missing", Details, Stored, [];
    /// `release_date` is `""` (stored NULL, as for any unknown date).
    ReleaseDateEmpty = "release_date_empty", Details, Stored, [];
    /// An unknown field `x_tree` nests 64 levels of arrays and objects (serde_json allows 128).
    DeepNesting = "deep_nesting", Details, Stored, [];
    /// `overview` is 200 KiB long.
    HugeOverview = "huge_overview", Details, Stored, [];
    /// The first cast and the first crew entries appear twice (same `credit_id`): stored once.
    DuplicateCredits = "duplicate_credits", Details, Stored, [];
    /// `title` has an escaped lone surrogate `\ud800`: serde_json refuses the whole body.
    LoneSurrogate = "lone_surrogate", Details, StoredWithWarning, ["title"];
    /// The export line's `original_title` starts with `\u0000`.
    ExportNulInTitle = "export_nul_in_title", Export, Stored, [];
    /// The export line is cut after `"original_title":"`: not JSON.
    ExportNotJson = "export_not_json", Export, ExportLineMalformed, [];
    /// The export line's `id` is a numeric string (`"id":"123"`): read as the id it holds.
    ExportIdAsString = "export_id_as_string", Export, Stored, [];
    /// The export line's `popularity` is a string.
    ExportPopularityAsString = "export_popularity_as_string", Export, Stored, [];
    /// The export line's `original_title` has invalid UTF-8 bytes (0xFF, 0xC3 0x28); the rest of
    /// the line, id included, is intact, so a lossy decode recovers the record.
    ExportInvalidUtf8 = "export_invalid_utf8", Export, Stored, [];
    /// The export line has an extra unknown field `x_source`.
    ExportUnknownField = "export_unknown_field", Export, Stored, [];
}

/// The glitch of movie `id`, if any: a fraction `rate` of ids, drawn from (seed, id) only, so the
/// same ids glitch the same way on every request, every day and in every process. Raising `rate`
/// keeps the ids glitched at a lower rate, with the same kinds.
pub fn glitch_for(seed: u64, id: u32, rate: f64) -> Option<GlitchKind> {
    if unit(hash(seed, &[id as u64, 0x611c4])) >= rate || rate.is_nan() {
        return None;
    }
    let kinds = GlitchKind::ALL;
    Some(kinds[(hash(seed, &[id as u64, 0x611c5]) % kinds.len() as u64) as usize])
}

/// The glitch of movie `id` if it shows in the details body.
pub fn details_glitch(seed: u64, id: u32, rate: f64) -> Option<GlitchKind> {
    glitch_for(seed, id, rate).filter(|k| k.target() == GlitchTarget::Details)
}

/// The glitch of movie `id` if it shows in the export line.
pub fn export_glitch(seed: u64, id: u32, rate: f64) -> Option<GlitchKind> {
    glitch_for(seed, id, rate).filter(|k| k.target() == GlitchTarget::Export)
}

// serde_json's Value holds neither an integer beyond u64 nor a lone surrogate: these private-use
// placeholders (never in synthetic text) are swapped for the raw text after serialization.
const BIG_SENTINEL: &str = "\u{E000}big-integer\u{E000}";
const SURROGATE_SENTINEL: &str = "\u{E001}";

/// The first credited cast member of a details body, if it has the credits append.
fn first_cast(o: &mut Map<String, Value>) -> Option<&mut Value> {
    o.get_mut("credits")?
        .get_mut("cast")?
        .as_array_mut()?
        .first_mut()
}

fn str_field<'a>(o: &'a Map<String, Value>, key: &str) -> &'a str {
    o.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `s` with `insert` at its middle character boundary.
fn in_middle(s: &str, insert: &str) -> String {
    let mid = s
        .char_indices()
        .map(|(i, _)| i)
        .nth(s.chars().count() / 2)
        .unwrap_or(s.len());
    format!("{}{insert}{}", &s[..mid], &s[mid..])
}

fn edit_str(o: &mut Map<String, Value>, key: &str, f: impl FnOnce(&str) -> String) {
    let new = f(str_field(o, key));
    o.insert(key.to_string(), Value::String(new));
}

/// The serialized details body of a movie with a details glitch, or None when the kind shows in
/// the export or `body` lacks what it damages (the credits kinds without the `credits` append).
pub fn glitched_details(kind: GlitchKind, body: &Value) -> Option<Vec<u8>> {
    let mut body = body.clone();
    let o = body.as_object_mut()?;
    match kind {
        GlitchKind::NulInTitle => edit_str(o, "title", |t| in_middle(t, "\0")),
        GlitchKind::NulInOverview => edit_str(o, "overview", |t| in_middle(t, "\0")),
        GlitchKind::NulInCastCharacter => {
            let first = first_cast(o)?.as_object_mut()?;
            edit_str(first, "character", |c| in_middle(c, "\0"));
        }
        GlitchKind::NulInUnknownKey => {
            o.insert(
                "x_user_tags".into(),
                json!({"fan\u{0}edit": true, "source": "user"}),
            );
        }
        GlitchKind::ControlCharacters => {
            edit_str(o, "title", |t| format!("{}\u{1f}", in_middle(t, "\u{1}")));
            edit_str(o, "overview", |t| format!("\u{7f}\u{1b}[31m{t}\u{1b}[0m"));
        }
        GlitchKind::TabsAndNewlines => {
            edit_str(o, "title", |t| in_middle(t, "\t"));
            edit_str(o, "overview", |t| {
                format!("{t}\nSecond line.\r\n\tIndented.")
            });
        }
        GlitchKind::BackslashesAndQuotes => {
            edit_str(o, "title", |t| {
                format!(r#"{t}: "Director's Cut" \ C:\new\films\ \\server\"#)
            });
            edit_str(o, "overview", |t| {
                format!(r#"{t} '); DROP TABLE movies; -- \"quoted\" \u0041"#)
            });
        }
        GlitchKind::EmojiAndRtl => edit_str(o, "title", |t| {
            format!("{t} 🎬🍿 👨\u{200d}👩\u{200d}👧 \u{202e}שלום עולם\u{202c} مرحبا بالعالم")
        }),
        GlitchKind::VoteCountBeyondI32 => {
            o.insert("vote_count".into(), json!(3_000_000_000u64));
        }
        GlitchKind::RuntimeBeyondI32 => {
            o.insert("runtime".into(), json!(2_147_483_648u64));
        }
        GlitchKind::RuntimeNegative => {
            o.insert("runtime".into(), json!(-5));
        }
        GlitchKind::BudgetBeyondI64 => {
            o.insert("budget".into(), json!(BIG_SENTINEL));
            o.insert("revenue".into(), json!(BIG_SENTINEL));
        }
        GlitchKind::PopularityAsString => {
            let p = o.get("popularity").and_then(Value::as_f64).unwrap_or(0.0);
            o.insert("popularity".into(), json!(p.to_string()));
        }
        GlitchKind::RuntimeAsString => {
            let r = o.get("runtime").and_then(Value::as_u64).unwrap_or(120);
            o.insert("runtime".into(), json!(r.to_string()));
        }
        GlitchKind::GenresAsObject => {
            let genres: Map<String, Value> = o
                .get("genres")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|g| (g["id"].to_string(), g["name"].clone()))
                .collect();
            o.insert("genres".into(), Value::Object(genres));
        }
        GlitchKind::CastNull => {
            o.get_mut("credits")?
                .as_object_mut()?
                .insert("cast".into(), Value::Null);
        }
        GlitchKind::CastIdAsString => {
            let first = first_cast(o)?;
            first["id"] = json!(first["id"].to_string());
        }
        GlitchKind::CreditsMissing => {
            o.remove("credits")?;
        }
        GlitchKind::ReleaseDateEmpty => {
            o.insert("release_date".into(), json!(""));
        }
        GlitchKind::DeepNesting => {
            let tree = (0..64).fold(json!("leaf"), |v, level| {
                if level % 2 == 0 {
                    json!([v])
                } else {
                    json!({ "down": v })
                }
            });
            o.insert("x_tree".into(), tree);
        }
        GlitchKind::HugeOverview => edit_str(o, "overview", |t| {
            let unit = if t.is_empty() { "Lorem ipsum." } else { t };
            let mut s = String::with_capacity(205_000);
            while s.len() < 200 * 1024 {
                s.push_str(unit);
                s.push(' ');
            }
            s
        }),
        GlitchKind::DuplicateCredits => {
            let credits = o.get_mut("credits")?;
            for list in ["cast", "crew"] {
                if let Some(rows) = credits.get_mut(list).and_then(Value::as_array_mut)
                    && let Some(first) = rows.first().cloned()
                {
                    rows.push(first);
                }
            }
        }
        GlitchKind::LoneSurrogate => edit_str(o, "title", |t| in_middle(t, SURROGATE_SENTINEL)),
        GlitchKind::ExportNulInTitle
        | GlitchKind::ExportNotJson
        | GlitchKind::ExportIdAsString
        | GlitchKind::ExportPopularityAsString
        | GlitchKind::ExportInvalidUtf8
        | GlitchKind::ExportUnknownField => return None,
    }
    let text = serde_json::to_string(&body).ok()?;
    let text = match kind {
        GlitchKind::BudgetBeyondI64 => {
            text.replace(&format!("\"{BIG_SENTINEL}\""), "99999999999999999999")
        }
        GlitchKind::LoneSurrogate => text.replace(SURROGATE_SENTINEL, "\\ud800"),
        _ => text,
    };
    Some(text.into_bytes())
}

/// The bytes (without newline) of an export line with an export glitch, from the clean `line`
/// `{"adult":..,"id":..,"original_title":"..","popularity":..,"video":..}`; the clean line for
/// a details kind.
pub fn glitched_export_line(kind: GlitchKind, line: &str) -> Vec<u8> {
    const TITLE: &str = "\"original_title\":\"";
    let title_at = line.find(TITLE).map_or(line.len(), |i| i + TITLE.len());
    let value_of = |key: &str| -> Option<(usize, usize)> {
        let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
        let end = start + line[start..].find([',', '}'])?;
        Some((start, end))
    };
    let quote = |key: &str| match value_of(key) {
        Some((s, e)) => format!("{}\"{}\"{}", &line[..s], &line[s..e], &line[e..]),
        None => line.to_string(),
    };
    match kind {
        GlitchKind::ExportNulInTitle => {
            format!("{}\\u0000{}", &line[..title_at], &line[title_at..]).into_bytes()
        }
        GlitchKind::ExportNotJson => line.as_bytes()[..title_at].to_vec(),
        GlitchKind::ExportIdAsString => quote("id").into_bytes(),
        GlitchKind::ExportPopularityAsString => quote("popularity").into_bytes(),
        GlitchKind::ExportInvalidUtf8 => {
            let mut out = line.as_bytes()[..title_at].to_vec();
            out.push(0xff);
            out.extend_from_slice(&line.as_bytes()[title_at..]);
            if let Some(end) = out.windows(3).position(|w| w == b"\",\"") {
                out.splice(end..end, [0xc3, 0x28]);
            }
            out
        }
        GlitchKind::ExportUnknownField => {
            let body = line.strip_suffix('}').unwrap_or(line);
            format!("{body},\"x_source\":{{\"batch\":7,\"tags\":[\"a\",\"b\"]}}}}").into_bytes()
        }
        _ => line.as_bytes().to_vec(),
    }
}

/// Glitched records served, per kind.
#[derive(Clone, Debug, Default)]
pub struct GlitchCounts(BTreeMap<GlitchKind, u64>);

impl GlitchCounts {
    /// Counts `n` more records served with `kind`.
    pub fn add(&mut self, kind: GlitchKind, n: u64) {
        *self.0.entry(kind).or_insert(0) += n;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &GlitchCounts) {
        for (k, n) in &other.0 {
            self.add(*k, *n);
        }
    }

    /// The export glitches in the export of `day` (one per glitched live movie).
    pub fn in_export(cat: &Catalog, day: u16) -> GlitchCounts {
        let mut counts = GlitchCounts::default();
        if cat.glitch_rate > 0.0 {
            for m in cat.movies.iter().filter(|m| m.live_at(day)) {
                if let Some(k) = export_glitch(cat.seed, m.id, cat.glitch_rate) {
                    counts.add(k, 1);
                }
            }
        }
        counts
    }

    /// `{"details": n, "export_lines": n, "by_kind": {name: n}}`.
    pub fn to_json(&self) -> Value {
        let total = |t: GlitchTarget| -> u64 {
            self.0
                .iter()
                .filter(|(k, _)| k.target() == t)
                .map(|(_, n)| n)
                .sum()
        };
        let by_kind: Map<String, Value> = self
            .0
            .iter()
            .map(|(k, n)| (k.name().into(), json!(n)))
            .collect();
        json!({"details": total(GlitchTarget::Details), "export_lines": total(GlitchTarget::Export),
            "by_kind": by_kind})
    }
}

/// `GET /__sim/glitches`: the ground truth for the live catalog, `{rate, by_expected: {outcome: n},
/// movies: [{id, kind, target, expected}]}` (glitched live movies only, by id).
pub(crate) async fn list(State(sim): State<AppState>) -> Response {
    let cat = sim.read();
    let mut by_expected: BTreeMap<&str, u64> = BTreeMap::new();
    let mut movies = Vec::new();
    for m in cat.movies.iter().filter(|m| !m.deleted()) {
        if let Some(k) = glitch_for(cat.seed, m.id, cat.glitch_rate) {
            *by_expected.entry(k.expected().name()).or_insert(0) += 1;
            let target = match k.target() {
                GlitchTarget::Details => "details",
                GlitchTarget::Export => "export",
            };
            movies.push(json!({"id": m.id, "kind": k.name(), "target": target,
                "expected": k.expected().name(), "dropped": k.dropped()}));
        }
    }
    Json(json!({"rate": cat.glitch_rate, "by_expected": by_expected, "movies": movies}))
        .into_response()
}

/// The response for `/3/movie/{id}` when movie `id` has a details glitch (counted in the stats),
/// or None to serve `body` as usual.
pub(crate) fn details_response(
    sim: &Sim,
    seed: u64,
    id: u32,
    rate: f64,
    body: &Value,
) -> Option<Response> {
    let kind = details_glitch(seed, id, rate)?;
    let bytes = glitched_details(kind, body)?;
    lock(&sim.stats).glitches.add(kind, 1);
    Some(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// Parses a `--glitch-rate`: a fraction between 0 and 1.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a fraction between 0 and 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::export;
    use crate::sim::payload::{Ctx, details_with};
    use chrono::{Datelike, NaiveDate};
    use flate2::read::GzDecoder;
    use std::collections::HashSet;
    use std::io::Read;

    const SEED: u64 = 7;
    const APPENDS: &[&str] = &["credits", "external_ids", "release_dates", "keywords"];

    fn catalog(movies: u64, rate: f64) -> Catalog {
        let start = NaiveDate::from_ymd_opt(2025, 1, 15).unwrap();
        let mut cat = Catalog::new(SEED, movies, 0, start);
        cat.glitch_rate = rate;
        cat
    }

    fn depth(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn the_same_ids_glitch_every_time_and_every_kind_appears_in_5000_movies() {
        let cat = catalog(5000, 0.2);
        let draw = |seed, rate| -> Vec<Option<GlitchKind>> {
            cat.movies
                .iter()
                .map(|m| glitch_for(seed, m.id, rate))
                .collect()
        };
        let glitched = draw(SEED, 0.2);
        assert_eq!(glitched, draw(SEED, 0.2));
        assert!(draw(SEED, 0.0).iter().all(Option::is_none));
        assert!(draw(SEED, 1.0).iter().all(Option::is_some));
        let n = glitched.iter().flatten().count();
        assert!((900..=1100).contains(&n), "{n} of 5000 glitched at 0.2");
        let kinds: HashSet<GlitchKind> = glitched.iter().flatten().copied().collect();
        let missing: Vec<_> = GlitchKind::ALL
            .iter()
            .filter(|k| !kinds.contains(k))
            .collect();
        assert!(missing.is_empty(), "kinds never drawn: {missing:?}");
        for (m, k) in cat.movies.iter().zip(&glitched) {
            if let Some(low) = glitch_for(SEED, m.id, 0.05) {
                assert_eq!(
                    Some(low),
                    *k,
                    "a higher rate keeps the lower rate's glitches"
                );
            }
        }
        assert_ne!(
            glitched,
            draw(SEED + 1, 0.2),
            "another seed glitches other ids"
        );
    }

    /// What each details kind must have put into the parsed body.
    fn shows_damage(kind: GlitchKind, clean: &Value, v: &Value) -> bool {
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        let cast0 = &v["credits"]["cast"][0];
        match kind {
            GlitchKind::NulInTitle => s(&v["title"]).contains('\0'),
            GlitchKind::NulInOverview => s(&v["overview"]).contains('\0'),
            GlitchKind::NulInCastCharacter => s(&cast0["character"]).contains('\0'),
            GlitchKind::NulInUnknownKey => v["x_user_tags"]
                .as_object()
                .is_some_and(|o| o.keys().any(|k| k.contains('\0'))),
            GlitchKind::ControlCharacters => {
                s(&v["title"]).contains('\u{1}') && s(&v["title"]).contains('\u{1f}')
            }
            GlitchKind::TabsAndNewlines => {
                s(&v["title"]).contains('\t') && s(&v["overview"]).contains("\r\n")
            }
            GlitchKind::BackslashesAndQuotes => {
                s(&v["title"]).contains(r#"\\server\"#) && s(&v["title"]).contains('"')
            }
            GlitchKind::EmojiAndRtl => {
                s(&v["title"]).contains('🎬') && s(&v["title"]).contains('\u{202e}')
            }
            GlitchKind::VoteCountBeyondI32 => v["vote_count"] == json!(3_000_000_000u64),
            GlitchKind::RuntimeBeyondI32 => {
                v["runtime"].as_i64().is_some_and(|r| r > i32::MAX as i64)
            }
            GlitchKind::RuntimeNegative => v["runtime"] == json!(-5),
            GlitchKind::BudgetBeyondI64 => ["budget", "revenue"]
                .iter()
                .all(|k| v[k].is_f64() && v[k].as_f64().unwrap() > i64::MAX as f64),
            GlitchKind::PopularityAsString => {
                s(&v["popularity"]).parse::<f64>().ok() == clean["popularity"].as_f64()
            }
            GlitchKind::RuntimeAsString => s(&v["runtime"]).parse::<u32>().is_ok(),
            GlitchKind::GenresAsObject => v["genres"].as_object().is_some_and(|g| !g.is_empty()),
            GlitchKind::CastNull => {
                v["credits"]["cast"].is_null() && v["credits"]["crew"] == clean["credits"]["crew"]
            }
            GlitchKind::CastIdAsString => cast0["id"].is_string(),
            GlitchKind::CreditsMissing => v.get("credits").is_none(),
            GlitchKind::ReleaseDateEmpty => v["release_date"] == json!(""),
            GlitchKind::DeepNesting => depth(&v["x_tree"]) == 64,
            GlitchKind::HugeOverview => s(&v["overview"]).len() >= 200 * 1024,
            GlitchKind::DuplicateCredits => ["cast", "crew"].iter().all(|l| {
                let rows = v["credits"][l].as_array().unwrap();
                rows.len() == clean["credits"][l].as_array().unwrap().len() + 1
                    && rows.last() == rows.first()
            }),
            _ => false,
        }
    }

    #[test]
    fn every_details_glitch_but_lone_surrogates_parses_and_carries_its_damage() {
        let cat = catalog(200, 0.0);
        let c = Ctx {
            seed: SEED,
            people: cat.people,
            today: cat.date().num_days_from_ce(),
        };
        let m = cat.movies.iter().find(|m| {
            let b = details_with(&c, m, APPENDS);
            b["runtime"].as_u64().is_some_and(|r| r > 0) && b["overview"] != json!("")
        });
        let clean = details_with(&c, m.expect("a movie with a runtime"), APPENDS);
        for kind in GlitchKind::ALL.iter().copied() {
            let Some(bytes) = glitched_details(kind, &clean) else {
                assert_eq!(
                    kind.target(),
                    GlitchTarget::Export,
                    "{kind:?} did not apply"
                );
                continue;
            };
            assert_eq!(kind.target(), GlitchTarget::Details);
            let parsed = serde_json::from_slice::<Value>(&bytes);
            if kind == GlitchKind::LoneSurrogate {
                assert!(parsed.is_err(), "serde_json refuses a lone surrogate");
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.contains("\\ud800"));
                assert_eq!(
                    serde_json::from_str::<Value>(&text.replace("\\ud800", "\\ufffd")).unwrap()["id"],
                    clean["id"]
                );
                continue;
            }
            let v = parsed.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert!(shows_damage(kind, &clean, &v), "{kind:?}: damage not found");
            assert_eq!(v["id"], clean["id"], "{kind:?} keeps the id");
            assert_ne!(v, clean, "{kind:?} changed nothing");
        }
        let no_credits = details_with(&c, m.unwrap(), &[]);
        assert!(glitched_details(GlitchKind::CastNull, &no_credits).is_none());
        assert!(glitched_details(GlitchKind::NulInTitle, &no_credits).is_some());
    }

    #[test]
    fn export_glitches_damage_the_line_as_documented() {
        let line = r#"{"adult":false,"id":42,"original_title":"Lost Girl","popularity":1.7,"video":false}"#;
        let cases: &[(GlitchKind, &[u8])] = &[
            (
                GlitchKind::ExportNulInTitle,
                br#"{"adult":false,"id":42,"original_title":"\u0000Lost Girl","popularity":1.7,"video":false}"#,
            ),
            (
                GlitchKind::ExportNotJson,
                br#"{"adult":false,"id":42,"original_title":""#,
            ),
            (
                GlitchKind::ExportIdAsString,
                br#"{"adult":false,"id":"42","original_title":"Lost Girl","popularity":1.7,"video":false}"#,
            ),
            (
                GlitchKind::ExportPopularityAsString,
                br#"{"adult":false,"id":42,"original_title":"Lost Girl","popularity":"1.7","video":false}"#,
            ),
            (
                GlitchKind::ExportInvalidUtf8,
                b"{\"adult\":false,\"id\":42,\"original_title\":\"\xffLost Girl\xc3(\",\"popularity\":1.7,\"video\":false}",
            ),
            (
                GlitchKind::ExportUnknownField,
                br#"{"adult":false,"id":42,"original_title":"Lost Girl","popularity":1.7,"video":false,"x_source":{"batch":7,"tags":["a","b"]}}"#,
            ),
            (GlitchKind::NulInTitle, line.as_bytes()),
        ];
        for (kind, want) in cases {
            let got = glitched_export_line(*kind, line);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(want),
                "{kind:?}"
            );
            assert_eq!(&got, want, "{kind:?}");
        }
    }

    #[test]
    fn export_ids_stay_discoverable_except_on_malformed_lines() {
        let cat = catalog(5000, 0.2);
        let mut text = Vec::new();
        GzDecoder::new(&export::generate(&cat, 0, 0).unwrap()[..])
            .read_to_end(&mut text)
            .unwrap();
        let (mut discovered, mut malformed, mut strict_failures) = (HashSet::new(), 0, 0);
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            strict_failures += usize::from(serde_json::from_slice::<Value>(line).is_err());
            let lossy = String::from_utf8_lossy(line);
            // A numeric string is read as the id it holds, as the engine's lenient reader does.
            let id = |v: Value| {
                v["id"]
                    .as_u64()
                    .or_else(|| v["id"].as_str().and_then(|s| s.parse().ok()))
            };
            match serde_json::from_str::<Value>(&lossy).map(id) {
                Ok(Some(id)) => assert!(discovered.insert(id), "{id} listed twice"),
                _ => malformed += 1,
            }
        }
        let counts = GlitchCounts::in_export(&cat, 0);
        let of = |k: GlitchKind| counts.0.get(&k).copied().unwrap_or(0) as usize;
        let export_kinds = GlitchKind::ALL
            .iter()
            .filter(|k| k.target() == GlitchTarget::Export);
        assert!(export_kinds.clone().all(|k| of(*k) > 0), "{counts:?}");
        let lost: HashSet<u64> = cat
            .movies
            .iter()
            .filter(|m| {
                export_glitch(SEED, m.id, 0.2)
                    .is_some_and(|k| k.expected() == ExpectedOutcome::ExportLineMalformed)
            })
            .map(|m| m.id as u64)
            .collect();
        let expected: HashSet<u64> = cat
            .movies
            .iter()
            .map(|m| m.id as u64)
            .filter(|id| !lost.contains(id))
            .collect();
        assert_eq!(malformed, lost.len());
        assert_eq!(malformed, of(GlitchKind::ExportNotJson));
        assert_eq!(discovered, expected);
        assert_eq!(
            strict_failures,
            of(GlitchKind::ExportNotJson) + of(GlitchKind::ExportInvalidUtf8),
            "a strict parser refuses the cut lines and the invalid UTF-8 ones"
        );
        assert!(GlitchCounts::in_export(&catalog(500, 0.0), 0).0.is_empty());
    }

    #[test]
    fn rate_parses_fractions_only() {
        assert_eq!(parse_rate("0.05"), Ok(0.05));
        assert_eq!(parse_rate("1"), Ok(1.0));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("x").is_err());
    }
}
