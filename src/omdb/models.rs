//! OMDb's JSON body: every value is a string, `"N/A"` when unknown. Parsed here into typed fields
//! (null for "N/A"); the body itself is kept as received.

use serde::Deserialize;

use super::{OmdbError, OmdbLookup};
use crate::model::lenient;
use crate::model::omdb::{Awards, OmdbMovie};

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "Response", default, deserialize_with = "lenient::opt")]
    response: Option<String>,
    #[serde(rename = "Error", default, deserialize_with = "lenient::opt")]
    error: Option<String>,
    #[serde(rename = "Title", default, deserialize_with = "lenient::opt")]
    title: Option<String>,
    #[serde(rename = "Year", default, deserialize_with = "lenient::opt")]
    year: Option<String>,
    #[serde(rename = "imdbRating", default, deserialize_with = "lenient::opt")]
    imdb_rating: Option<String>,
    #[serde(rename = "imdbVotes", default, deserialize_with = "lenient::opt")]
    imdb_votes: Option<String>,
    #[serde(rename = "imdbID", default, deserialize_with = "lenient::opt")]
    imdb_id: Option<String>,
    #[serde(rename = "Metascore", default, deserialize_with = "lenient::opt")]
    metascore: Option<String>,
    #[serde(rename = "BoxOffice", default, deserialize_with = "lenient::opt")]
    box_office: Option<String>,
    #[serde(rename = "Awards", default, deserialize_with = "lenient::opt")]
    awards: Option<String>,
    #[serde(rename = "Ratings", default, deserialize_with = "lenient::list")]
    ratings: Vec<WireRating>,
}

#[derive(Deserialize)]
struct WireRating {
    #[serde(rename = "Source", deserialize_with = "lenient::required")]
    source: String,
    #[serde(rename = "Value", deserialize_with = "lenient::required")]
    value: String,
}

/// Reads an OMDb answer (any HTTP status: OMDb sends its errors as JSON, some with a 401). The
/// body is made storable first (U+0000 and lone surrogates out, see [`crate::sanitize`]) and read
/// leniently: a field of an unexpected type is null, never a failed lookup.
pub fn interpret(status: u16, body: &str) -> Result<OmdbLookup, OmdbError> {
    let (body, _) = crate::sanitize::storable_json_text(body.as_bytes());
    let body: &str = &body;
    let wire: Wire = match serde_json::from_str(body) {
        Ok(w) => w,
        Err(_) if status >= 400 => {
            return Err(OmdbError::Api {
                status,
                message: snippet(body),
            });
        }
        Err(e) => return Err(OmdbError::Malformed(e.to_string())),
    };
    if wire.response.as_deref() == Some("True") && status < 400 {
        return parse_found(wire, body).map(|m| OmdbLookup::Found(Box::new(m)));
    }
    let message = wire.error.unwrap_or_default();
    match message.as_str() {
        "Movie not found!" => Ok(OmdbLookup::NotFound),
        "Incorrect IMDb ID." => Ok(OmdbLookup::IncorrectId),
        "Invalid API key!" | "No API key provided." => Err(OmdbError::InvalidKey),
        "Request limit reached!" => Err(OmdbError::LimitReached),
        _ => Err(OmdbError::Api { status, message }),
    }
}

fn snippet(body: &str) -> String {
    body.chars().take(120).collect()
}

fn parse_found(w: Wire, body: &str) -> Result<OmdbMovie, OmdbError> {
    let imdb_id = known(w.imdb_id)
        .ok_or_else(|| OmdbError::Malformed("a found movie without imdbID".into()))?;
    let rotten_tomatoes = w
        .ratings
        .iter()
        .find(|r| r.source == "Rotten Tomatoes")
        .and_then(|r| r.value.trim().trim_end_matches('%').parse().ok());
    Ok(OmdbMovie {
        imdb_id,
        title: known(w.title),
        year: known(w.year).and_then(|y| y.get(..4).and_then(|y| y.parse().ok())),
        imdb_rating: known(w.imdb_rating).and_then(|r| r.parse().ok()),
        imdb_votes: known(w.imdb_votes).and_then(|v| digits(&v)),
        metascore: known(w.metascore).and_then(|m| m.parse().ok()),
        rotten_tomatoes,
        box_office: known(w.box_office).and_then(|b| digits(&b)),
        awards: known(w.awards).map(|a| parse_awards(&a)),
        raw: body.to_string(),
    })
}

/// `None` for a missing, empty or `"N/A"` value.
fn known(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s != "N/A")
}

/// `"$389,804,217"` → 389804217; `"691,997"` → 691997.
fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    if d.is_empty() { None } else { d.parse().ok() }
}

/// Reads OMDb's awards sentence: `Won 2 Oscars. Another 5 wins & 10 nominations.`,
/// `Nominated for 4 Oscars. Another 9 wins & 19 nominations.`, `3 wins & 4 nominations.`,
/// and the newer `… 164 wins & 223 nominations total` (totals that already include the Oscars).
pub fn parse_awards(text: &str) -> Awards {
    let mut a = Awards {
        text: text.to_string(),
        ..Default::default()
    };
    for sentence in text.split('.').map(str::trim).filter(|s| !s.is_empty()) {
        let words: Vec<&str> = sentence.split_whitespace().collect();
        let lead = |prefix: &[&str]| {
            words.len() > prefix.len() + 1
                && words
                    .iter()
                    .zip(prefix)
                    .all(|(w, p)| w.eq_ignore_ascii_case(p))
        };
        if lead(&["Won"]) || lead(&["Nominated", "for"]) {
            let at = if lead(&["Won"]) { 1 } else { 2 };
            let n: i32 = words[at].parse().unwrap_or(0);
            let oscars = if words[at + 1].starts_with("Oscar") {
                i16::try_from(n).unwrap_or(i16::MAX)
            } else {
                0
            };
            if at == 1 {
                a.wins = a.wins.saturating_add(n);
                a.oscar_wins = a.oscar_wins.saturating_add(oscars);
            } else {
                a.nominations = a.nominations.saturating_add(n);
                a.oscar_nominations = a.oscar_nominations.saturating_add(oscars);
            }
            continue;
        }
        let total = words
            .last()
            .is_some_and(|w| w.eq_ignore_ascii_case("total"));
        for pair in words.windows(2) {
            let Ok(n) = pair[0].parse::<i32>() else {
                continue;
            };
            let noun = pair[1].to_ascii_lowercase();
            let slot = if noun.starts_with("win") {
                &mut a.wins
            } else if noun.starts_with("nomination") {
                &mut a.nominations
            } else {
                continue;
            };
            *slot = if total { n } else { slot.saturating_add(n) };
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tmdb");
        std::fs::read_to_string(format!("{dir}/{name}")).expect("fixture")
    }

    fn found(body: &str) -> OmdbMovie {
        match interpret(200, body).expect("parsed") {
            OmdbLookup::Found(m) => *m,
            other => panic!("not found: {other:?}"),
        }
    }

    #[test]
    fn a_clockwork_orange_parses_ratings_votes_and_oscar_nominations_with_na_box_office_null() {
        let m = found(&fixture("omdb_tt0066921_by_id.json"));
        assert_eq!(m.imdb_id, "tt0066921");
        assert_eq!(m.title.as_deref(), Some("A Clockwork Orange"));
        assert_eq!(m.year, Some(1971));
        assert_eq!(m.imdb_rating, Some(8.3));
        assert_eq!(m.imdb_votes, Some(691_997));
        assert_eq!(m.metascore, Some(80));
        assert_eq!(m.rotten_tomatoes, Some(90));
        assert_eq!(m.box_office, None, "\"N/A\" is null");
        let a = m.awards.expect("awards");
        assert_eq!((a.oscar_wins, a.oscar_nominations), (0, 4));
        assert_eq!((a.wins, a.nominations), (9, 23));
        assert!(m.raw.contains("\"Website\""), "the body is kept whole");
    }

    #[test]
    fn guardians_vol_2_parses_box_office_dollars() {
        let m = found(&fixture("omdb_tt3896198_by_id.json"));
        assert_eq!(m.box_office, Some(389_804_217));
        assert_eq!(m.imdb_rating, Some(7.7));
        assert_eq!(m.imdb_votes, Some(397_820));
        assert_eq!((m.metascore, m.rotten_tomatoes), (Some(67), Some(83)));
        let a = m.awards.expect("awards");
        assert_eq!(
            (a.oscar_wins, a.oscar_nominations, a.wins, a.nominations),
            (0, 1, 12, 43)
        );
    }

    #[test]
    fn error_bodies_become_outcomes_or_errors() {
        let bodies: serde_json::Value =
            serde_json::from_str(&fixture("omdb_error_bodies.json")).unwrap();
        let body = |k: &str| bodies[k].to_string();
        assert_eq!(
            interpret(200, &body("movie_not_found")).unwrap(),
            OmdbLookup::NotFound
        );
        assert_eq!(
            interpret(200, &body("incorrect_imdb_id")).unwrap(),
            OmdbLookup::IncorrectId
        );
        assert!(matches!(
            interpret(401, &body("request_limit_reached")),
            Err(OmdbError::LimitReached)
        ));
        let key = interpret(401, &body("invalid_api_key")).unwrap_err();
        assert!(key.is_fatal(), "{key}");
        let data = interpret(200, &body("error_getting_data")).unwrap_err();
        assert!(matches!(data, OmdbError::Api { .. }) && !data.is_fatal());
        assert!(matches!(
            interpret(502, "<html>bad gateway</html>"),
            Err(OmdbError::Api { status: 502, .. })
        ));
        assert!(matches!(interpret(200, "{"), Err(OmdbError::Malformed(_))));
    }

    #[test]
    fn awards_sentences_in_their_several_shapes() {
        let cases = [
            (
                "Won 2 Oscars. Another 5 wins & 10 nominations.",
                (2, 0, 7, 10),
            ),
            ("Won 1 BAFTA Film Award. Another 2 wins.", (0, 0, 3, 0)),
            ("Nominated for 1 Golden Globe. Another 1 win.", (0, 0, 1, 1)),
            ("3 wins & 40 nominations.", (0, 0, 3, 40)),
            ("1 win.", (0, 0, 1, 0)),
            ("2 nominations.", (0, 0, 0, 2)),
            (
                "Won 3 Oscars. 164 wins & 223 nominations total",
                (3, 0, 164, 223),
            ),
        ];
        for (text, (ow, on, w, n)) in cases {
            let a = parse_awards(text);
            assert_eq!(
                (a.oscar_wins, a.oscar_nominations, a.wins, a.nominations),
                (ow, on, w, n),
                "{text}"
            );
        }
    }
}
