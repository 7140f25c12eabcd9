//! Wire-only models of the TMDb endpoints tmdbsync reads: the changes feed, discover pages and
//! error bodies. What is stored (a movie's details, an export line) is a domain record in
//! [`crate::model`]. Parsing is lenient (see [`crate::model::lenient`]).

use serde::Deserialize;

use chrono::NaiveDate;

use crate::model::lenient;

/// One page of `GET /movie/changes`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChangesPage {
    #[serde(default, deserialize_with = "lenient::list")]
    pub results: Vec<ChangedMovie>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub page: Option<u32>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub total_pages: Option<u32>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub total_results: Option<u64>,
}

/// One id in the changes feed; `adult` may be true, false or null.
#[derive(Debug, Clone, Deserialize)]
pub struct ChangedMovie {
    #[serde(deserialize_with = "lenient::required")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub adult: Option<bool>,
}

/// One page of `GET /discover/movie`.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscoverPage {
    #[serde(default, deserialize_with = "lenient::opt")]
    pub page: Option<u32>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub results: Vec<DiscoverMovie>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub total_pages: Option<u32>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub total_results: Option<u64>,
}

/// A list item of `GET /discover/movie`.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscoverMovie {
    #[serde(deserialize_with = "lenient::required")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub adult: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub original_title: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub popularity: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub release_date: Option<NaiveDate>,
}

/// TMDb's error body: `{"success":false,"status_code":34,"status_message":"…"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiErrorBody {
    #[serde(default, deserialize_with = "lenient::opt")]
    pub status_code: Option<i32>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub status_message: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub success: Option<bool>,
}
