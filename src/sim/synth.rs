//! Deterministic hashing, a tiny splitmix RNG and the word lists used to make synthetic names.

/// The splitmix64 finaliser: a fast, well-mixing 64-bit hash step.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Hashes a seed with a list of words (ids, versions, stream tags) into one value.
pub fn hash(seed: u64, parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(splitmix64(seed), |acc, p| splitmix64(acc ^ splitmix64(*p)))
}

/// Maps a hash to a float in [0, 1).
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A small deterministic stream of random numbers seeded from a hash.
pub struct Rng(u64);

impl Rng {
    /// Starts a stream from a seed and some words (see [`hash`]).
    pub fn new(seed: u64, parts: &[u64]) -> Self {
        Rng(hash(seed, parts))
    }
    /// Next raw 64-bit value.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.0)
    }
    /// Uniform float in [0, 1).
    pub fn f64(&mut self) -> f64 {
        unit(self.next())
    }
    /// Uniform integer in [0, n) (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Uniform integer in [lo, hi] inclusive.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// Zipf-like skewed index in [0, n): low indices are much more likely.
    pub fn skewed(&mut self, n: u64) -> u64 {
        let u = self.f64();
        ((u * u * n as f64) as u64).min(n.saturating_sub(1))
    }
    /// A lowercase hex string of `len` characters.
    pub fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }
}

/// TMDb's real movie genre list (id, name).
pub const GENRES: &[(u32, &str)] = &[
    (28, "Action"),
    (12, "Adventure"),
    (16, "Animation"),
    (35, "Comedy"),
    (80, "Crime"),
    (99, "Documentary"),
    (18, "Drama"),
    (10751, "Family"),
    (14, "Fantasy"),
    (36, "History"),
    (27, "Horror"),
    (10402, "Music"),
    (9648, "Mystery"),
    (10749, "Romance"),
    (878, "Science Fiction"),
    (10770, "TV Movie"),
    (53, "Thriller"),
    (10752, "War"),
    (37, "Western"),
];

/// (iso_639_1, english name, native name) of the original languages used.
pub const LANGS: &[(&str, &str, &str)] = &[
    ("en", "English", "English"),
    ("ja", "Japanese", "日本語"),
    ("ru", "Russian", "Pусский"),
    ("fr", "French", "Français"),
    ("es", "Spanish", "Español"),
    ("de", "German", "Deutsch"),
];

/// (iso_3166_1, name) of production / release countries.
pub const COUNTRIES: &[(&str, &str)] = &[
    ("US", "United States of America"),
    ("GB", "United Kingdom"),
    ("JP", "Japan"),
    ("RU", "Russia"),
    ("FR", "France"),
    ("ES", "Spain"),
    ("DE", "Germany"),
    ("CA", "Canada"),
];

const EN_ADJ: &[&str] = &[
    "Dark", "Silent", "Last", "Broken", "Golden", "Hidden", "Lost", "Wild", "Crimson", "Eternal",
    "Final", "Midnight", "Frozen", "Burning", "Secret", "Little", "Great", "Lonely",
];
const EN_NOUN: &[&str] = &[
    "River", "City", "Night", "Empire", "Garden", "Storm", "Road", "Heart", "Kingdom", "Shadow",
    "Island", "Mirror", "Summer", "Machine", "Ghost", "Horizon", "Station", "Promise",
];
const JA: &[&str] = &[
    "東京", "物語", "夜", "剣", "愛", "風", "海", "花火", "少女", "侍", "春",
];
const RU: &[&str] = &[
    "Тихий",
    "Дон",
    "Война",
    "Солнце",
    "Ночь",
    "Брат",
    "Зеркало",
    "Сталкер",
];
const FR: &[&str] = &[
    "L'amour", "à", "Été", "Château", "Rêve", "Bête", "Cœur", "Noël", "Forêt",
];
const ES: &[&str] = &[
    "El", "Niño", "Señor", "Corazón", "Camión", "Jardín", "Canción", "Sueño",
];
const DE: &[&str] = &[
    "Der", "Mann", "ohne", "Namen", "Größe", "Straße", "Müller", "Nacht",
];

const FIRST: &[&str] = &[
    "James", "Mary", "John", "Anna", "Robert", "Linda", "Michael", "Sofia", "David", "Emma",
    "José", "Zoë", "Björn", "Chloé", "Ólafur", "Søren", "Hiro", "Yuki", "Dmitri", "Olga", "Luc",
    "Marta", "Pedro", "Ines", "Kenji", "Aiko", "Ivan", "Nadia", "Tom", "Grace",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Brown",
    "García",
    "Müller",
    "Dubois",
    "Tanaka",
    "Ivanov",
    "Rossi",
    "Nakamura",
    "Petrov",
    "Martin",
    "Lee",
    "Walker",
    "Núñez",
    "Söderberg",
    "Kowalski",
    "O'Brien",
    "Novák",
    "Hall",
    "Young",
    "King",
    "Wright",
    "Lopez",
    "Hill",
    "Scott",
    "Green",
    "Adams",
];

/// Picks an original language index: mostly English.
pub fn language_index(seed: u64, id: u64) -> usize {
    let u = unit(hash(seed, &[id, 0x1a46]));
    if u < 0.7 {
        0
    } else {
        1 + ((u - 0.7) / 0.3 * (LANGS.len() - 1) as f64) as usize % (LANGS.len() - 1)
    }
}

/// The English title for a movie at a given title revision.
pub fn english_title(seed: u64, id: u64, rev: u64) -> String {
    let mut r = Rng::new(seed, &[id, 0x7171]);
    // The last noun rotates with the revision, so every revision has a different title.
    let last = EN_NOUN[((r.below(EN_NOUN.len() as u64) + rev) % EN_NOUN.len() as u64) as usize];
    match r.below(4) {
        0 => format!("The {} {last}", r.pick(EN_ADJ)),
        1 => format!("{} of the {last}", r.pick(EN_NOUN)),
        2 => format!("{} {last} {}", r.pick(EN_ADJ), r.range(2, 4)),
        _ => format!("{}: {} {last}", r.pick(EN_NOUN), r.pick(EN_ADJ)),
    }
}

/// The original-language title for a movie at a given title revision.
pub fn original_title(seed: u64, id: u64, rev: u64, lang: usize) -> String {
    let words: &[&str] = match LANGS[lang].0 {
        "ja" => JA,
        "ru" => RU,
        "fr" => FR,
        "es" => ES,
        "de" => DE,
        _ => return english_title(seed, id, rev),
    };
    let mut r = Rng::new(seed, &[id, 0x0717]);
    let sep = if lang == 1 { "" } else { " " };
    let n = r.range(2, 3);
    let mut parts: Vec<&str> = (0..n - 1).map(|_| *r.pick(words)).collect();
    let len = words.len() as u64;
    parts.push(words[((r.below(len) + rev) % len) as usize]);
    parts.join(sep)
}

/// A person's display name from the shared people pool.
pub fn person_name(seed: u64, person: u64) -> String {
    let mut r = Rng::new(seed, &[person, 0x9e09]);
    format!("{} {}", r.pick(FIRST), r.pick(LAST))
}

/// A sentence of filler text (overviews, taglines, plots).
pub fn sentence(r: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        let w = if i % 2 == 0 {
            r.pick(EN_ADJ)
        } else {
            r.pick(EN_NOUN)
        };
        if i > 0 {
            s.push(' ');
            s.push_str(&w.to_lowercase());
        } else {
            s.push_str(w);
        }
    }
    s.push('.');
    s
}

/// A TMDb-style image path like `/aB3xY9.jpg`.
pub fn image_path(r: &mut Rng, ext: &str) -> String {
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let s: String = (0..27)
        .map(|_| ALPHA[r.below(ALPHA.len() as u64) as usize] as char)
        .collect();
    format!("/{s}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_is_deterministic_and_seed_sensitive() {
        assert_eq!(hash(1, &[2, 3]), hash(1, &[2, 3]));
        assert_ne!(hash(1, &[2, 3]), hash(2, &[2, 3]));
        assert_eq!(english_title(7, 10, 0), english_title(7, 10, 0));
        for lang in 0..LANGS.len() {
            for id in 0..200 {
                assert_ne!(
                    original_title(7, id, 3, lang),
                    original_title(7, id, 4, lang)
                );
            }
        }
    }
}
