//! A movie as tmdbsync stores it: the typed fields of TMDb's `/movie/{id}` answer (with the
//! credits, external ids, release dates and keywords appends) and the body itself, kept as `raw`.
//!
//! tmdbsync mirrors TMDb, so the domain record has TMDb's shape and is read straight from the body
//! in one lenient pass (see [`super::lenient`]): every field but the id is optional, a value of the
//! wrong type or out of range becomes `None` (counted as an oddity) instead of failing the record,
//! unknown fields are ignored here and kept in `raw`. No intermediate copy: the ingest benchmark
//! depends on it. The TMDb client produces these records; the store writes them.

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;

use super::lenient;

/// A movie as fetched: typed fields plus the whole payload.
#[derive(Debug, Clone)]
pub struct FetchedMovie {
    pub details: MovieDetails,
    /// The response body as received (valid JSON), stored as `movies.raw`; only what Postgres
    /// cannot store (U+0000, lone surrogates) is repaired.
    pub raw: String,
    /// Oddities met reading it (a value of the wrong type or out of range, a repaired body):
    /// counted as the run's data warnings.
    pub warnings: u32,
}

impl FetchedMovie {
    /// Reads a `/movie/{id}` body: made storable (U+0000 and lone surrogates out, invalid UTF-8
    /// replaced, nothing else touched), its typed fields parsed leniently straight from it, and
    /// the body kept as the raw payload (no intermediate JSON tree, no re-serialization). Fails
    /// only when the body is not JSON or has no usable id.
    pub fn from_body(body: &[u8]) -> Result<FetchedMovie, String> {
        let (text, repairs) = crate::sanitize::storable_json_text(body);
        let (details, oddities) =
            lenient::collecting(|| serde_json::from_str::<MovieDetails>(&text));
        match details {
            Ok(mut details) => Ok(FetchedMovie {
                warnings: oddities + u32::from(repairs.any()) + details.fit_indexed_columns(),
                details,
                raw: text.into_owned(),
            }),
            // A key repeated in one object (as `"a"` and `"a\u0000"` become once repaired) is
            // refused by the typed parse; read it as `jsonb` would, the last value winning.
            Err(e) if e.to_string().starts_with("duplicate field") => {
                let normal: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                let text = normal.to_string();
                let (details, oddities) =
                    lenient::collecting(|| serde_json::from_str::<MovieDetails>(&text));
                let mut details = details.map_err(|e| e.to_string())?;
                Ok(FetchedMovie {
                    warnings: oddities + 1 + details.fit_indexed_columns(),
                    details,
                    raw: text,
                })
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `GET /movie/{id}` with `append_to_response=credits,external_ids,release_dates,keywords`.
#[derive(Debug, Clone, Deserialize)]
pub struct MovieDetails {
    /// TMDb movie id.
    #[serde(deserialize_with = "lenient::required")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub original_title: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub original_language: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub overview: Option<String>,
    /// `""` in the wire format when unknown; parsed to `None`.
    #[serde(default, deserialize_with = "lenient::opt")]
    pub release_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub runtime: Option<i32>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub adult: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub popularity: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub vote_average: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub vote_count: Option<i32>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub budget: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub revenue: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub imdb_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub genres: Vec<Genre>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub credits: Option<Credits>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub external_ids: Option<ExternalIds>,
}

/// Longest imdb id or credit id kept (TMDb's are 9-10 and 24 characters): a longer one is not an id.
const MAX_ID_TEXT: usize = 64;
/// Longest person name kept whole: names are indexed (`lower(name)`), and a b-tree entry must stay
/// under ~2.7 KB. A longer name is cut at a character boundary (`raw` keeps it whole).
const MAX_NAME_BYTES: usize = 1024;

impl MovieDetails {
    /// Makes the values that land in indexed columns fit them: an imdb or credit id longer than
    /// any real one is dropped (a credit then gets a generated id), a person name past 1 KiB is
    /// cut. Returns how many values were changed (data warnings).
    pub fn fit_indexed_columns(&mut self) -> u32 {
        let mut changed = 0;
        let mut drop_long = |id: &mut Option<String>| {
            if id.as_ref().is_some_and(|s| s.len() > MAX_ID_TEXT) {
                *id = None;
                changed += 1;
            }
        };
        drop_long(&mut self.imdb_id);
        if let Some(e) = &mut self.external_ids {
            drop_long(&mut e.imdb_id);
        }
        if let Some(c) = &mut self.credits {
            for credit in &mut c.cast {
                drop_long(&mut credit.credit_id);
            }
            for credit in &mut c.crew {
                drop_long(&mut credit.credit_id);
            }
            let people = c
                .cast
                .iter_mut()
                .map(|x| &mut x.person)
                .chain(c.crew.iter_mut().map(|x| &mut x.person));
            for person in people {
                for name in [&mut person.name, &mut person.original_name] {
                    if let Some(n) = name
                        && n.len() > MAX_NAME_BYTES
                    {
                        let mut end = MAX_NAME_BYTES;
                        while !n.is_char_boundary(end) {
                            end -= 1;
                        }
                        n.truncate(end);
                        changed += 1;
                    }
                }
            }
        }
        changed
    }

    /// The IMDb id from the top level or the `external_ids` append, ignoring empty strings.
    pub fn imdb_id(&self) -> Option<&str> {
        self.imdb_id
            .as_deref()
            .or(self
                .external_ids
                .as_ref()
                .and_then(|e| e.imdb_id.as_deref()))
            .filter(|s| !s.is_empty())
    }
}

/// A genre as TMDb names it.
#[derive(Debug, Clone, Deserialize)]
pub struct Genre {
    #[serde(deserialize_with = "lenient::required")]
    pub id: i32,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub name: Option<String>,
}

/// The `credits` append (or `/movie/{id}/credits`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Credits {
    #[serde(default, deserialize_with = "lenient::list")]
    pub cast: Vec<CastCredit>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub crew: Vec<CrewCredit>,
}

/// The person fields common to cast and crew entries.
#[derive(Debug, Clone, Deserialize)]
pub struct CreditPerson {
    #[serde(deserialize_with = "lenient::required")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub original_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub gender: Option<i16>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub known_for_department: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub popularity: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub profile_path: Option<String>,
}

/// One cast entry.
#[derive(Debug, Clone, Deserialize)]
pub struct CastCredit {
    #[serde(flatten)]
    pub person: CreditPerson,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub credit_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub character: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub order: Option<i32>,
}

/// One crew entry.
#[derive(Debug, Clone, Deserialize)]
pub struct CrewCredit {
    #[serde(flatten)]
    pub person: CreditPerson,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub credit_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub department: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub job: Option<String>,
}

/// The `external_ids` append.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExternalIds {
    #[serde(default, deserialize_with = "lenient::opt")]
    pub imdb_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub wikidata_id: Option<String>,
}
