//! A movie's OMDb record as tmdbsync stores it (`omdb_ratings`): typed ratings, votes, box office
//! and awards, and the body as received. The OMDb client reads it from OMDb's all-string JSON.

/// A found movie: the typed fields tmdbsync stores, and the body as received.
#[derive(Debug, Clone, PartialEq)]
pub struct OmdbMovie {
    pub imdb_id: String,
    pub title: Option<String>,
    pub year: Option<i32>,
    /// IMDb user rating, 0-10.
    pub imdb_rating: Option<f64>,
    pub imdb_votes: Option<i32>,
    /// Metacritic, 0-100.
    pub metascore: Option<i16>,
    /// Rotten Tomatoes' Tomatometer, percent.
    pub rotten_tomatoes: Option<i16>,
    /// US box office in dollars.
    pub box_office: Option<i64>,
    pub awards: Option<Awards>,
    /// The body, unchanged.
    pub raw: String,
}

/// The awards sentence and the counts read from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Awards {
    pub text: String,
    pub oscar_wins: i16,
    pub oscar_nominations: i16,
    /// All wins, Oscars included.
    pub wins: i32,
    /// All nominations, Oscar nominations included.
    pub nominations: i32,
}
