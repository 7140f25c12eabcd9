//! One entry of TMDb's daily id export (`movie_ids_MM_DD_YYYY.json.gz`): what the catalog stage
//! stores in `catalog_ids`.

use serde::Deserialize;

use super::lenient;

/// One line of the daily ID export (`movie_ids_MM_DD_YYYY.json.gz`).
#[derive(Debug, Clone, Deserialize)]
pub struct ExportLine {
    #[serde(deserialize_with = "lenient::required")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub adult: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub original_title: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub popularity: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt")]
    pub video: Option<bool>,
}
