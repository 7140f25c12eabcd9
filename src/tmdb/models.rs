//! Wire models for the TMDb endpoints tmdbsync reads. Parsing is tolerant: every field but the id is
//! optional, unknown fields are ignored here and kept in the raw payload by the caller.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

/// `GET /movie/{id}` with `append_to_response=credits,external_ids,release_dates,keywords`.
#[derive(Debug, Clone, Deserialize)]
pub struct MovieDetails {
    /// TMDb movie id.
    pub id: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub original_title: Option<String>,
    #[serde(default)]
    pub original_language: Option<String>,
    #[serde(default)]
    pub overview: Option<String>,
    /// `""` in the wire format when unknown; parsed to `None`.
    #[serde(default, deserialize_with = "lenient_date")]
    pub release_date: Option<NaiveDate>,
    #[serde(default)]
    pub runtime: Option<i32>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub adult: Option<bool>,
    #[serde(default)]
    pub popularity: Option<f64>,
    #[serde(default)]
    pub vote_average: Option<f64>,
    #[serde(default)]
    pub vote_count: Option<i32>,
    #[serde(default)]
    pub budget: Option<i64>,
    #[serde(default)]
    pub revenue: Option<i64>,
    #[serde(default)]
    pub imdb_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub genres: Vec<Genre>,
    #[serde(default)]
    pub credits: Option<Credits>,
    #[serde(default)]
    pub external_ids: Option<ExternalIds>,
}

impl MovieDetails {
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
    pub id: i32,
    #[serde(default)]
    pub name: Option<String>,
}

/// The `credits` append (or `/movie/{id}/credits`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Credits {
    #[serde(default, deserialize_with = "null_as_default")]
    pub cast: Vec<CastCredit>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub crew: Vec<CrewCredit>,
}

/// The person fields common to cast and crew entries.
#[derive(Debug, Clone, Deserialize)]
pub struct CreditPerson {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub original_name: Option<String>,
    #[serde(default)]
    pub gender: Option<i16>,
    #[serde(default)]
    pub known_for_department: Option<String>,
    #[serde(default)]
    pub popularity: Option<f64>,
    #[serde(default)]
    pub profile_path: Option<String>,
}

/// One cast entry.
#[derive(Debug, Clone, Deserialize)]
pub struct CastCredit {
    #[serde(flatten)]
    pub person: CreditPerson,
    #[serde(default)]
    pub credit_id: Option<String>,
    #[serde(default)]
    pub character: Option<String>,
    #[serde(default)]
    pub order: Option<i32>,
}

/// One crew entry.
#[derive(Debug, Clone, Deserialize)]
pub struct CrewCredit {
    #[serde(flatten)]
    pub person: CreditPerson,
    #[serde(default)]
    pub credit_id: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub job: Option<String>,
}

/// The `external_ids` append.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExternalIds {
    #[serde(default)]
    pub imdb_id: Option<String>,
    #[serde(default)]
    pub wikidata_id: Option<String>,
}

/// One page of `GET /movie/changes`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChangesPage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub results: Vec<ChangedMovie>,
    #[serde(default)]
    pub page: Option<u32>,
    #[serde(default)]
    pub total_pages: Option<u32>,
    #[serde(default)]
    pub total_results: Option<u64>,
}

/// One id in the changes feed; `adult` may be true, false or null.
#[derive(Debug, Clone, Deserialize)]
pub struct ChangedMovie {
    pub id: i64,
    #[serde(default)]
    pub adult: Option<bool>,
}

/// One page of `GET /discover/movie`.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscoverPage {
    #[serde(default)]
    pub page: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub results: Vec<DiscoverMovie>,
    #[serde(default)]
    pub total_pages: Option<u32>,
    #[serde(default)]
    pub total_results: Option<u64>,
}

/// A list item of `GET /discover/movie`.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscoverMovie {
    pub id: i64,
    #[serde(default)]
    pub adult: Option<bool>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub original_title: Option<String>,
    #[serde(default)]
    pub popularity: Option<f64>,
    #[serde(default, deserialize_with = "lenient_date")]
    pub release_date: Option<NaiveDate>,
}

/// One line of the daily ID export (`movie_ids_MM_DD_YYYY.json.gz`).
#[derive(Debug, Clone, Deserialize)]
pub struct ExportLine {
    pub id: i64,
    #[serde(default)]
    pub adult: Option<bool>,
    #[serde(default)]
    pub original_title: Option<String>,
    #[serde(default)]
    pub popularity: Option<f64>,
    #[serde(default)]
    pub video: Option<bool>,
}

/// TMDb's error body: `{"success":false,"status_code":34,"status_message":"…"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiErrorBody {
    #[serde(default)]
    pub status_code: Option<i32>,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub success: Option<bool>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// TMDb sends `""` or `null` for an unknown date; anything unparsable is treated as unknown too.
fn lenient_date<'de, D>(d: D) -> Result<Option<NaiveDate>, D::Error>
where
    D: Deserializer<'de>,
{
    let s = Option::<String>::deserialize(d)?;
    Ok(s.and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(&s), "%Y-%m-%d").ok()))
}
