//! OMDb-shaped bodies (`/omdb/?i=tt…`), derived from the same synthetic movie.

use super::catalog::{Movie, NO_DATE};
use super::payload::{Ctx, credits, details};
use super::synth::{Rng, hash, sentence};
use chrono::NaiveDate;
use serde_json::{Value, json};

/// `{"Response":"False","Error":msg}`.
pub fn error(msg: &str) -> Value {
    json!({"Response": "False", "Error": msg})
}

/// Whether a known movie is (deterministically, ~3 %) missing from OMDb.
pub fn missing(seed: u64, id: u32) -> bool {
    hash(seed, &[id as u64, 0x0bdb]) % 100 < 3
}

fn names(list: &Value, pred: impl Fn(&Value) -> bool, n: usize) -> String {
    let v: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| pred(p))
        .filter_map(|p| p["name"].as_str())
        .take(n)
        .collect();
    if v.is_empty() {
        "N/A".into()
    } else {
        v.join(", ")
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => "N/A".into(),
    }
}

/// The OMDb body for a movie with the given imdb id.
pub fn body(c: &Ctx, m: &Movie, imdb: &str) -> Value {
    let d = details(c, m);
    let cr = credits(c, m);
    let mut r = Rng::new(c.seed, &[m.id as u64, m.version as u64, 0x0bdc]);
    let date = NaiveDate::from_num_days_from_ce_opt(m.release).filter(|_| m.release != NO_DATE);
    let fmt =
        |d: Option<NaiveDate>| d.map_or("N/A".to_string(), |d| d.format("%d %b %Y").to_string());
    let imdb_rating = (r.range(15, 95) as f64) / 10.0;
    let mut ratings =
        vec![json!({"Source": "Internet Movie Database", "Value": format!("{imdb_rating:.1}/10")})];
    let rt = r.chance(0.7).then(|| r.range(5, 100));
    let meta = r.chance(0.5).then(|| r.range(10, 99));
    if let Some(rt) = rt {
        ratings.push(json!({"Source": "Rotten Tomatoes", "Value": format!("{rt}%")}));
    }
    if let Some(m) = meta {
        ratings.push(json!({"Source": "Metacritic", "Value": format!("{m}/100")}));
    }
    let genres: Vec<&str> = d["genres"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str())
        .collect();
    let votes = r.range(5, 2_000_000);
    let box_office = r
        .chance(0.3)
        .then(|| format!("${}", group(r.range(10_000, 900_000_000))));
    json!({
        "Title": s(&d["title"]),
        "Year": date.map_or("N/A".to_string(), |d| d.format("%Y").to_string()),
        "Rated": *r.pick(&["R", "PG-13", "PG", "G", "Not Rated", "N/A"]),
        "Released": fmt(date),
        "Runtime": d["runtime"].as_u64().filter(|n| *n > 0).map_or("N/A".into(), |n| format!("{n} min")),
        "Genre": if genres.is_empty() { "N/A".into() } else { genres.join(", ") },
        "Director": names(&cr["crew"], |p| p["job"] == "Director", 3),
        "Writer": names(&cr["crew"], |p| p["department"] == "Writing", 3),
        "Actors": names(&cr["cast"], |_| true, 4),
        "Plot": s(&d["overview"]),
        "Language": s(&d["spoken_languages"][0]["english_name"]),
        "Country": s(&d["production_countries"][0]["name"]),
        "Awards": if r.chance(0.3) { format!("{} wins & {} nominations.", r.range(1, 20), r.range(1, 40)) } else { "N/A".into() },
        "Poster": d["poster_path"].as_str().map_or("N/A".into(), |p| format!("https://m.media-amazon.com/images/M{p}")),
        "Ratings": ratings,
        "Metascore": meta.map_or("N/A".into(), |m| m.to_string()),
        "imdbRating": format!("{imdb_rating:.1}"),
        "imdbVotes": group(votes),
        "imdbID": imdb,
        "Type": "movie",
        "DVD": fmt(date.filter(|_| r.chance(0.5)).map(|d| d + chrono::Days::new(120))),
        "BoxOffice": box_office.unwrap_or_else(|| "N/A".into()),
        "Production": if r.chance(0.5) { sentence(&mut r, 2).trim_end_matches('.').to_string() } else { "N/A".into() },
        "Website": "N/A",
        "Response": "True",
    })
}

/// Formats an integer with thousands separators (`691,997`).
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_thousands() {
        assert_eq!(super::group(691_997), "691,997");
        assert_eq!(super::group(12), "12");
        assert_eq!(super::group(1_000_000), "1,000,000");
    }
}
