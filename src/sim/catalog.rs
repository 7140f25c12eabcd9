//! The synthetic catalog: a compact per-movie record plus day-by-day evolution logs.

use super::synth::{Rng, hash, language_index, original_title, unit};
use chrono::{Datelike, NaiveDate};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Day index meaning "never" (e.g. a movie that is not deleted).
pub const NEVER: u16 = u16::MAX;
/// Release value meaning an empty `release_date`.
pub const NO_DATE: i32 = i32::MIN;

/// Per-movie state kept in memory; everything else is derived from (seed, id, version).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Movie {
    /// TMDb id.
    pub id: u32,
    /// Release date as days from CE, or [`NO_DATE`].
    pub release: i32,
    /// Current popularity (rounded to 3 decimals).
    pub popularity: f32,
    /// Number of times the movie changed since it appeared.
    pub version: u16,
    /// Day index the movie appeared on (0 = initial catalog).
    pub added_day: u16,
    /// Day index the movie was deleted on, or [`NEVER`].
    pub deleted_day: u16,
    /// Adult flag.
    pub adult: bool,
}

impl Movie {
    /// Whether the movie existed and was not deleted on `day`.
    pub fn live_at(&self, day: u16) -> bool {
        self.added_day <= day && day < self.deleted_day
    }
    /// Whether the movie has been deleted.
    pub fn deleted(&self) -> bool {
        self.deleted_day != NEVER
    }
}

/// Ids touched on one simulated day.
#[derive(Clone, Debug, Default)]
pub struct DayLog {
    /// Movies whose version was bumped.
    pub changed: Vec<u32>,
    /// Movies deleted.
    pub deleted: Vec<u32>,
    /// Movies that appeared.
    pub added: Vec<u32>,
}

/// Union of the ids touched by an advance of several days.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct AdvanceReport {
    /// Ids that changed (not added nor deleted in the window).
    pub changed: Vec<u32>,
    /// Ids deleted in the window.
    pub deleted: Vec<u32>,
    /// Ids added in the window (and not deleted).
    pub added: Vec<u32>,
}

/// The whole simulated catalog.
pub struct Catalog {
    /// Seed for every derived attribute.
    pub seed: u64,
    /// Date of day index 0.
    pub start: NaiveDate,
    /// Current day index.
    pub day: u16,
    /// All movies ever seen, sorted by id.
    pub movies: Vec<Movie>,
    /// `logs[d]` = ids touched on day d (`logs[0]` is empty).
    pub logs: Vec<DayLog>,
    /// Size of the shared people pool.
    pub people: u64,
    /// Fraction of movies served as poison records (see [`super::glitch`]).
    pub glitch_rate: f64,
    adult_ratio: f64,
    live: usize,
}

/// Popularity of a movie at a version: Pareto-distributed base (long tail ≈ 0.6) times a wobble.
pub fn popularity(seed: u64, id: u32, version: u16) -> f32 {
    let u = unit(hash(seed, &[id as u64, 0x9090])).max(1e-9);
    let base = (0.6 * u.powf(-1.0 / 1.5)).min(9000.0);
    let wobble = if version == 0 {
        1.0
    } else {
        0.8 + 0.4 * unit(hash(seed, &[id as u64, version as u64, 0x9091]))
    };
    ((base * wobble * 1000.0).round() / 1000.0) as f32
}

/// Title revision at `version`: every change retitles the movie (the last word rotates).
pub fn title_rev(_seed: u64, _id: u32, version: u16) -> u64 {
    version as u64
}

/// Number of credit revisions up to `version` (about 60 % of changes touch the credits).
pub fn credits_rev(seed: u64, id: u32, version: u16) -> u64 {
    (1..=version)
        .filter(|v| hash(seed, &[id as u64, *v as u64, 0xc4ed]) % 10 < 6)
        .count() as u64
}

/// The original title of a movie at a version.
pub fn movie_original_title(seed: u64, id: u32, version: u16) -> String {
    let lang = language_index(seed, id as u64);
    original_title(seed, id as u64, title_rev(seed, id, version), lang)
}

fn release_for(seed: u64, id: u32, start: NaiveDate) -> i32 {
    let mut r = Rng::new(seed, &[id as u64, 0x3e1]);
    if r.chance(0.05) {
        return NO_DATE;
    }
    let span = 125.0 * 365.0;
    start.num_days_from_ce() + 365 - (r.f64().powf(2.5) * span) as i32
}

fn id_gap(r: &mut Rng) -> u32 {
    let g = r.below(1000) as u32;
    1 + if g < 600 {
        g % 2
    } else if g < 950 {
        g % 6
    } else {
        g % 40
    }
}

impl Catalog {
    /// Builds the initial catalog of `movies` non-adult plus `adult` adult movies.
    pub fn new(seed: u64, movies: u64, adult: u64, start: NaiveDate) -> Self {
        let total = movies + adult;
        let mut r = Rng::new(seed, &[0x1d5]);
        let mut id = 1u32;
        let mut list = Vec::with_capacity(total as usize);
        for i in 0..total {
            id += id_gap(&mut r);
            let is_adult = adult > 0 && (i + 1) * adult / total > i * adult / total;
            list.push(Catalog::fresh(seed, id, is_adult, 0, start));
        }
        Catalog {
            seed,
            start,
            day: 0,
            movies: list,
            logs: vec![DayLog::default()],
            people: (total / 2).max(60),
            glitch_rate: 0.0,
            adult_ratio: if total == 0 {
                0.0
            } else {
                adult as f64 / total as f64
            },
            live: total as usize,
        }
    }

    fn fresh(seed: u64, id: u32, adult: bool, day: u16, start: NaiveDate) -> Movie {
        Movie {
            id,
            release: release_for(seed, id, start),
            popularity: popularity(seed, id, 0),
            version: 0,
            added_day: day,
            deleted_day: NEVER,
            adult,
        }
    }

    /// The current simulated date.
    pub fn date(&self) -> NaiveDate {
        self.date_of(self.day)
    }

    /// The date of a day index.
    pub fn date_of(&self, day: u16) -> NaiveDate {
        self.start + chrono::Days::new(day as u64)
    }

    /// The day index of a date, if it is within [start, today].
    pub fn day_of(&self, date: NaiveDate) -> Option<u16> {
        let d = (date - self.start).num_days();
        (0..=self.day as i64).contains(&d).then_some(d as u16)
    }

    /// Looks a movie up by id (live or deleted).
    pub fn get(&self, id: u32) -> Option<&Movie> {
        self.movies
            .binary_search_by_key(&id, |m| m.id)
            .ok()
            .map(|i| &self.movies[i])
    }

    /// The live movie with the highest id.
    pub fn latest(&self) -> Option<&Movie> {
        self.movies.iter().rev().find(|m| !m.deleted())
    }

    /// Number of live movies.
    pub fn live_count(&self) -> usize {
        self.live
    }

    fn sample(&self, r: &mut Rng, count: usize, skip: &HashSet<u32>) -> Vec<usize> {
        let mut picked = HashSet::new();
        let mut out = Vec::new();
        let mut tries = 0;
        while out.len() < count && tries < count * 20 + 100 {
            tries += 1;
            let i = r.below(self.movies.len() as u64) as usize;
            let m = &self.movies[i];
            if !m.deleted() && !skip.contains(&m.id) && picked.insert(i) {
                out.push(i);
            }
        }
        out
    }

    fn advance_day(&mut self) {
        self.day += 1;
        let day = self.day;
        let seed = self.seed;
        let mut r = Rng::new(seed, &[day as u64, 0xda7]);
        let n = |rate: f64, r: &mut Rng| {
            let x = self.live as f64 * rate;
            x.floor() as usize + usize::from(r.chance(x.fract()))
        };
        let (n_del, n_chg, n_add) = (n(0.001, &mut r), n(0.01, &mut r), n(0.002, &mut r));
        let mut log = DayLog::default();
        for i in self.sample(&mut r, n_del, &HashSet::new()) {
            self.movies[i].deleted_day = day;
            log.deleted.push(self.movies[i].id);
        }
        self.live -= log.deleted.len();
        let gone: HashSet<u32> = log.deleted.iter().copied().collect();
        for i in self.sample(&mut r, n_chg, &gone) {
            let m = &mut self.movies[i];
            m.version += 1;
            m.popularity = popularity(seed, m.id, m.version);
            log.changed.push(m.id);
        }
        let mut id = self.movies.last().map_or(1, |m| m.id);
        for _ in 0..n_add {
            id += id_gap(&mut r);
            let adult = r.chance(self.adult_ratio);
            self.movies
                .push(Catalog::fresh(seed, id, adult, day, self.start));
            log.added.push(id);
        }
        self.live += n_add;
        log.changed.sort_unstable();
        log.deleted.sort_unstable();
        self.logs.push(log);
    }

    /// Moves the clock `days` days forward and reports the union of touched ids.
    pub fn advance(&mut self, days: u16) -> AdvanceReport {
        let first = self.day + 1;
        for _ in 0..days {
            self.advance_day();
        }
        let (mut changed, mut deleted, mut added) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for log in &self.logs[first as usize..] {
            changed.extend(&log.changed);
            deleted.extend(&log.deleted);
            added.extend(&log.added);
        }
        let added: BTreeSet<u32> = added.difference(&deleted).copied().collect();
        AdvanceReport {
            changed: changed
                .iter()
                .filter(|id| !deleted.contains(id) && !added.contains(id))
                .copied()
                .collect(),
            deleted: deleted.into_iter().collect(),
            added: added.into_iter().collect(),
        }
    }

    /// Serves a deleted movie again (TMDb restoring an id) without listing it in the changes feed.
    /// Returns whether `id` was deleted.
    pub fn restore(&mut self, id: u32) -> bool {
        let Ok(i) = self.movies.binary_search_by_key(&id, |m| m.id) else {
            return false;
        };
        if !self.movies[i].deleted() {
            return false;
        }
        self.movies[i].deleted_day = NEVER;
        self.live += 1;
        true
    }

    /// Ids touched (changed, deleted or added) on days `from..=to`, sorted and de-duplicated.
    pub fn changes(&self, from: u16, to: u16) -> Vec<u32> {
        let mut ids = BTreeSet::new();
        for d in from..=to.min(self.day) {
            let log = &self.logs[d as usize];
            ids.extend(log.changed.iter().chain(&log.deleted).chain(&log.added));
        }
        ids.into_iter().collect()
    }

    /// For each movie changed after `day`, how many versions it gained since then.
    pub fn versions_after(&self, day: u16) -> HashMap<u32, u16> {
        let mut out = HashMap::new();
        for log in &self.logs[(day as usize + 1).min(self.logs.len())..] {
            for id in &log.changed {
                *out.entry(*id).or_insert(0) += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
    }

    #[test]
    fn same_seed_gives_same_catalog_and_evolution() {
        let mut a = Catalog::new(9, 3000, 30, start());
        let mut b = Catalog::new(9, 3000, 30, start());
        assert_eq!(a.movies, b.movies);
        assert_eq!(a.advance(5).changed, b.advance(5).changed);
        assert_eq!(a.movies, b.movies);
        let c = Catalog::new(10, 3000, 30, start());
        assert_ne!(a.movies[..3000], c.movies[..3000]);
        assert_eq!(c.movies.iter().filter(|m| m.adult).count(), 30);
    }

    #[test]
    fn advance_bookkeeping_matches_movie_state() {
        let mut c = Catalog::new(1, 20_000, 0, start());
        let max_before = c.movies.last().unwrap().id;
        let rep = c.advance(3);
        assert!(!rep.changed.is_empty() && !rep.deleted.is_empty() && !rep.added.is_empty());
        for id in &rep.deleted {
            assert!(c.get(*id).unwrap().deleted());
        }
        for id in &rep.changed {
            assert!(c.get(*id).unwrap().version > 0);
        }
        assert!(rep.added.iter().all(|id| *id > max_before));
        let feed = c.changes(1, 3);
        for id in rep.changed.iter().chain(&rep.deleted).chain(&rep.added) {
            assert!(feed.binary_search(id).is_ok());
        }
        assert_eq!(
            c.live_count(),
            c.movies.iter().filter(|m| !m.deleted()).count()
        );
    }
}
