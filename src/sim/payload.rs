//! JSON bodies for TMDb endpoints, derived purely from (seed, movie record).

use super::catalog::{Movie, NO_DATE, credits_rev, title_rev};
use super::synth::{
    COUNTRIES, GENRES, LANGS, Rng, english_title, hash, image_path, language_index, original_title,
    person_name, sentence, unit,
};
use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};

/// What body generation needs besides the movie record.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// Catalog seed.
    pub seed: u64,
    /// Size of the shared people pool.
    pub people: u64,
    /// Today's simulated date as days from CE.
    pub today: i32,
}

const KEYWORDS: &[(u32, &str)] = &[
    (818, "based on novel or book"),
    (851, "dual identity"),
    (9715, "superhero"),
    (10183, "independent film"),
    (9748, "revenge"),
    (1721, "fight"),
    (4344, "musical"),
    (6054, "friendship"),
    (9663, "sequel"),
    (180547, "time travel"),
    (14544, "robot"),
    (3799, "ballet"),
    (12565, "murder"),
    (10084, "rescue"),
];
const COMPANIES: &[(u32, &str, &str)] = &[
    (711, "Fox 2000 Pictures", "US"),
    (508, "Regency Enterprises", "US"),
    (4, "Paramount Pictures", "US"),
    (882, "Toho", "JP"),
    (10104, "Mosfilm", "RU"),
    (104, "Gaumont", "FR"),
    (7, "DreamWorks Pictures", "US"),
    (6194, "Warner Bros. Pictures", "US"),
    (1632, "Lionsgate", "US"),
];
const CERTS: &[&str] = &["", "PG", "PG-13", "R", "12", "16", "18", "G"];
const CREW_JOBS: &[(&str, &str)] = &[
    ("Production", "Producer"),
    ("Sound", "Original Music Composer"),
    ("Camera", "Director of Photography"),
    ("Editing", "Editor"),
    ("Sound", "Sound Editor"),
    ("Production", "Casting"),
    ("Art", "Production Design"),
];
const DEPARTMENTS: &[&str] = &[
    "Acting",
    "Directing",
    "Writing",
    "Production",
    "Sound",
    "Camera",
];

/// `YYYY-MM-DD` for a release value (empty for [`NO_DATE`]).
pub fn release_str(release: i32) -> String {
    if release == NO_DATE {
        return String::new();
    }
    NaiveDate::from_num_days_from_ce_opt(release)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The imdb id of a movie, or None for about 10 % of movies.
pub fn imdb_id(seed: u64, id: u32) -> Option<String> {
    (!hash(seed, &[id as u64, 0x1d]).is_multiple_of(10))
        .then(|| format!("tt{:07}", id as u64 * 3 + 100_000))
}

/// Inverse of the imdb-id mapping: the TMDb id a `tt` number belongs to.
pub fn tmdb_id_from_imdb(num: u64) -> Option<u32> {
    (num >= 100_000 && (num - 100_000).is_multiple_of(3)).then(|| ((num - 100_000) / 3) as u32)
}

/// Runtime minutes: null for some, 0 for some.
pub fn runtime(seed: u64, id: u32) -> Option<u32> {
    let mut r = Rng::new(seed, &[id as u64, 0x6017]);
    match r.below(100) {
        0..=5 => None,
        6..=11 => Some(0),
        12..=20 => Some(r.range(4, 40) as u32),
        _ => Some(r.range(70, 180) as u32),
    }
}

/// Genres of a movie (1–3 of TMDb's real list).
pub fn genres(seed: u64, id: u32) -> Vec<(u32, &'static str)> {
    let mut r = Rng::new(seed, &[id as u64, 0x6e7]);
    let mut out: Vec<(u32, &str)> = Vec::new();
    for _ in 0..r.range(1, 3) {
        let g = *r.pick(GENRES);
        if !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

/// (english title, original title) at the movie's current version.
pub fn titles(seed: u64, m: &Movie) -> (String, String) {
    let rev = title_rev(seed, m.id, m.version);
    let lang = language_index(seed, m.id as u64);
    let orig = original_title(seed, m.id as u64, rev, lang);
    let title = if lang == 0 {
        orig.clone()
    } else {
        english_title(seed, m.id as u64, rev)
    };
    (title, orig)
}

/// (vote_average, vote_count) at the current version.
pub fn votes(seed: u64, m: &Movie) -> (f64, u64) {
    let mut r = Rng::new(seed, &[m.id as u64, m.version as u64, 0x7073]);
    let count = (m.popularity as f64 * 8.0 * r.f64()) as u64;
    let avg = if count == 0 {
        0.0
    } else {
        (3000.0 + r.f64() * 6000.0).round() / 1000.0
    };
    (avg, count)
}

fn overview(seed: u64, m: &Movie) -> String {
    let mut r = Rng::new(seed, &[m.id as u64, m.version as u64, 0x0e7]);
    let n = r.range(8, 30) as usize;
    sentence(&mut r, n)
}

fn country(seed: u64, id: u32) -> (&'static str, &'static str) {
    match LANGS[language_index(seed, id as u64)].0 {
        "ja" => COUNTRIES[2],
        "ru" => COUNTRIES[3],
        "fr" => COUNTRIES[4],
        "es" => COUNTRIES[5],
        "de" => COUNTRIES[6],
        _ => COUNTRIES[(hash(seed, &[id as u64, 0xc0]) % 2) as usize],
    }
}

/// A discover-style list item.
pub fn list_item(c: &Ctx, m: &Movie) -> Value {
    let mut r = Rng::new(c.seed, &[m.id as u64, 0x1a6e]);
    let (title, orig) = titles(c.seed, m);
    let (va, vc) = votes(c.seed, m);
    json!({
        "adult": m.adult,
        "backdrop_path": r.chance(0.7).then(|| image_path(&mut r, "jpg")),
        "genre_ids": genres(c.seed, m.id).iter().map(|g| g.0).collect::<Vec<_>>(),
        "id": m.id,
        "original_language": LANGS[language_index(c.seed, m.id as u64)].0,
        "original_title": orig,
        "overview": overview(c.seed, m),
        "popularity": m.popularity,
        "poster_path": r.chance(0.85).then(|| image_path(&mut r, "jpg")),
        "release_date": release_str(m.release),
        "title": title,
        "video": super::export::is_video(c.seed, m.id),
        "vote_average": va,
        "vote_count": vc,
    })
}

/// Full movie details without appends.
pub fn details(c: &Ctx, m: &Movie) -> Value {
    let mut v = list_item(c, m);
    let mut r = Rng::new(c.seed, &[m.id as u64, 0xde7a]);
    let (iso, cname) = country(c.seed, m.id);
    let lang = LANGS[language_index(c.seed, m.id as u64)];
    let company = *r.pick(COMPANIES);
    let budget = if r.chance(0.4) {
        r.range(1, 200) * 1_000_000
    } else {
        0
    };
    let status = if m.release == NO_DATE || m.release > c.today {
        *r.pick(&["Post Production", "In Production", "Planned"])
    } else {
        "Released"
    };
    let o = v.as_object_mut().expect("object");
    o.remove("genre_ids");
    let extra = json!({
        "belongs_to_collection": r.chance(0.1).then(|| json!({
            "id": 10_000 + m.id / 7, "name": format!("{} Collection", o["title"].as_str().unwrap_or("")),
            "poster_path": image_path(&mut r, "jpg"), "backdrop_path": Value::Null,
        })),
        "budget": budget,
        "genres": genres(c.seed, m.id).iter().map(|(id, n)| json!({"id": id, "name": n})).collect::<Vec<_>>(),
        "homepage": if r.chance(0.3) { format!("https://example.com/movie/{}", m.id) } else { String::new() },
        "imdb_id": imdb_id(c.seed, m.id),
        "origin_country": [iso],
        "production_companies": (0..r.below(3)).map(|_| {
            let (id, name, oc) = *r.pick(COMPANIES);
            json!({"id": id, "logo_path": r.chance(0.6).then(|| image_path(&mut r, "png")), "name": name, "origin_country": oc})
        }).chain(std::iter::once(json!({"id": company.0, "logo_path": Value::Null, "name": company.1, "origin_country": company.2}))).collect::<Vec<_>>(),
        "production_countries": [{"iso_3166_1": iso, "name": cname}],
        "revenue": if budget > 0 { budget * r.range(0, 5) } else { 0 },
        "runtime": runtime(c.seed, m.id),
        "spoken_languages": [{"english_name": lang.1, "iso_639_1": lang.0, "name": lang.2}],
        "status": status,
        "tagline": if r.chance(0.6) { sentence(&mut r, 4) } else { String::new() },
    });
    if let Value::Object(e) = extra {
        o.extend(e);
    }
    v
}

/// `(id, name, gender, known_for, popularity, profile_path)` of a pooled person.
fn person(seed: u64, p: u64) -> Value {
    let mut r = Rng::new(seed, &[p, 0x9e250]);
    let name = person_name(seed, p);
    let dept = match r.below(100) {
        0..=69 => DEPARTMENTS[0],
        70..=79 => DEPARTMENTS[1],
        80..=87 => DEPARTMENTS[2],
        n => DEPARTMENTS[3 + (n % 3) as usize],
    };
    json!({
        "adult": false,
        "gender": r.below(4),
        "id": 1000 + p * 5 + r.below(5),
        "known_for_department": dept,
        "name": name,
        "original_name": name,
        "popularity": ((0.6 / unit(r.next()).max(0.01)).min(60.0) * 1000.0).round() / 1000.0,
        "profile_path": r.chance(0.7).then(|| image_path(&mut r, "jpg")),
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}

/// `{cast:[...], crew:[...]}` for a movie's current credits revision.
pub fn credits(c: &Ctx, m: &Movie) -> Value {
    let rev = credits_rev(c.seed, m.id, m.version);
    let mut r = Rng::new(c.seed, &[m.id as u64, rev, 0xc4ed]);
    let mut used = std::collections::HashSet::new();
    let mut cast = Vec::new();
    for order in 0..r.range(3, 15) {
        let p = r.skewed(c.people);
        if !used.insert(p) {
            continue;
        }
        let extra = json!({"cast_id": order + 2, "character": person_name(c.seed, p ^ 0xcafe),
            "credit_id": r.hex(24), "order": cast.len()});
        cast.push(with(person(c.seed, p), extra));
    }
    let mut jobs: Vec<(&str, &str)> = Vec::new();
    if r.chance(0.92) {
        jobs.push(("Directing", "Director"));
    }
    if r.chance(0.7) {
        jobs.push(("Writing", *r.pick(&["Writer", "Screenplay"])));
    }
    while jobs.len() < r.range(2, 8) as usize {
        jobs.push(*r.pick(CREW_JOBS));
    }
    let crew: Vec<Value> = jobs
        .into_iter()
        .map(|(dept, job)| {
            let p = (r.skewed(c.people) + c.people / 3) % c.people;
            let extra = json!({"credit_id": r.hex(24), "department": dept, "job": job});
            with(person(c.seed, p), extra)
        })
        .collect();
    json!({"cast": cast, "crew": crew})
}

fn release_dates(c: &Ctx, m: &Movie) -> Value {
    let Some(date) = NaiveDate::from_num_days_from_ce_opt(m.release) else {
        return json!({"results": []});
    };
    let mut r = Rng::new(c.seed, &[m.id as u64, 0x5e1]);
    let mut isos = vec![country(c.seed, m.id).0];
    for _ in 0..r.below(3) {
        let iso = r.pick(COUNTRIES).0;
        if !isos.contains(&iso) {
            isos.push(iso);
        }
    }
    let results: Vec<Value> = isos.iter().map(|iso| {
        let n = r.range(1, 2);
        let dates: Vec<Value> = (0..n).map(|i| {
            let d = date + chrono::Days::new(i * r.range(30, 200));
            json!({"certification": *r.pick(CERTS), "descriptors": [], "iso_639_1": "",
                "note": if i == 0 { "" } else { "Blu-ray" },
                "release_date": format!("{:04}-{:02}-{:02}T00:00:00.000Z", d.year(), d.month(), d.day()),
                "type": if i == 0 { 3 } else { 5 }})
        }).collect();
        json!({"iso_3166_1": iso, "release_dates": dates})
    }).collect();
    json!({ "results": results })
}

fn images(c: &Ctx, m: &Movie) -> Value {
    let mut r = Rng::new(c.seed, &[m.id as u64, 0x1a9e]);
    let mut list = |n: u64, w: u64, h: u64, ext: &str| -> Vec<Value> {
        (0..n).map(|_| json!({"aspect_ratio": ((w as f64 / h as f64) * 1000.0).round() / 1000.0,
            "height": h, "iso_639_1": r.chance(0.5).then_some("en"), "file_path": image_path(&mut r, ext),
            "vote_average": (r.f64() * 10_000.0).round() / 1000.0, "vote_count": r.below(40), "width": w})).collect()
    };
    json!({"backdrops": list(2, 1920, 1080, "jpg"), "logos": list(1, 1804, 389, "png"), "posters": list(3, 600, 900, "jpg")})
}

fn keywords(c: &Ctx, m: &Movie) -> Value {
    let mut r = Rng::new(c.seed, &[m.id as u64, 0x4e9]);
    let mut kws: Vec<(u32, &str)> = Vec::new();
    for _ in 0..r.range(0, 6) {
        let k = *r.pick(KEYWORDS);
        if !kws.contains(&k) {
            kws.push(k);
        }
    }
    json!({"keywords": kws.iter().map(|(id, n)| json!({"id": id, "name": n})).collect::<Vec<_>>()})
}

/// Details plus the requested supported appends (unknown appends are ignored like TMDb does).
pub fn details_with(c: &Ctx, m: &Movie, appends: &[&str]) -> Value {
    let mut v = details(c, m);
    let o = v.as_object_mut().expect("object");
    for a in appends {
        let part = match *a {
            "credits" => credits(c, m),
            "external_ids" => {
                let mut r = Rng::new(c.seed, &[m.id as u64, 0xe1d]);
                json!({"imdb_id": imdb_id(c.seed, m.id), "wikidata_id": r.chance(0.5).then(|| format!("Q{}", r.range(1000, 9_999_999))),
                    "facebook_id": r.chance(0.2).then(|| format!("Movie{}", m.id)), "instagram_id": Value::Null, "twitter_id": Value::Null})
            }
            "release_dates" => release_dates(c, m),
            "keywords" => keywords(c, m),
            "images" => images(c, m),
            _ => continue,
        };
        o.insert((*a).to_string(), part);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::catalog::Catalog;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn fnv(h: u64, bytes: &[u8]) -> u64 {
        bytes.iter().fold(h, |h, b| {
            (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// The digest was taken from the simulator before glitches existed: with `glitch_rate` 0 every
    /// details body and export line must stay byte-identical.
    #[test]
    fn bodies_and_export_without_glitches_match_the_pre_glitch_digest() {
        let start = NaiveDate::from_ymd_opt(2025, 1, 15).unwrap();
        let mut cat = Catalog::new(42, 3000, 30, start);
        cat.advance(2);
        let c = Ctx {
            seed: cat.seed,
            people: cat.people,
            today: cat.date().num_days_from_ce(),
        };
        let appends = [
            "credits",
            "external_ids",
            "release_dates",
            "keywords",
            "images",
        ];
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for m in cat.movies.iter().filter(|m| !m.deleted()).step_by(3) {
            h = fnv(
                h,
                &serde_json::to_vec(&details_with(&c, m, &appends)).unwrap(),
            );
        }
        let mut text = Vec::new();
        let gz = crate::sim::export::generate(&cat, 2, 3).unwrap();
        GzDecoder::new(&gz[..]).read_to_end(&mut text).unwrap();
        h = fnv(h, &text);
        assert_eq!(format!("{h:016x}"), "4804bc63bd0909a9");
    }
}
