//! Daily `movie_ids_MM_DD_YYYY.json.gz` exports, reconstructed exactly for any past day.

use super::catalog::{Catalog, movie_original_title, popularity};
use super::glitch;
use super::synth::hash;
use chrono::NaiveDate;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;

/// Parses `movie_ids_MM_DD_YYYY.json.gz` into its date.
pub fn parse_name(name: &str) -> Option<NaiveDate> {
    let date = name.strip_prefix("movie_ids_")?.strip_suffix(".json.gz")?;
    NaiveDate::parse_from_str(date, "%m_%d_%Y").ok()
}

/// Whether the export marks a movie as a video (deterministic, ~2 %).
pub fn is_video(seed: u64, id: u32) -> bool {
    hash(seed, &[id as u64, 0x71de0]).is_multiple_of(50)
}

/// Builds the gzipped export of the movies live on `day`, with `malformed` broken lines spread in.
pub fn generate(cat: &Catalog, day: u16, malformed: u64) -> std::io::Result<Vec<u8>> {
    let seed = cat.seed;
    let bumps = cat.versions_after(day);
    let mut order: Vec<(u64, u32)> = cat
        .movies
        .iter()
        .enumerate()
        .filter(|(_, m)| m.live_at(day))
        .map(|(i, m)| (hash(seed, &[m.id as u64, 0xe4]), i as u32))
        .collect();
    order.sort_unstable();
    let total = order.len() as u64;
    let mut gz = GzEncoder::new(Vec::with_capacity(order.len() * 24), Compression::fast());
    let mut buf = Vec::with_capacity(1 << 16);
    let mut next_bad = 1u64;
    for (k, (_, i)) in order.iter().enumerate() {
        let m = &cat.movies[*i as usize];
        let version = m.version - bumps.get(&m.id).copied().unwrap_or(0);
        while next_bad <= malformed && (k as u64) >= next_bad * total / (malformed + 1) {
            writeln!(
                buf,
                "{{\"adult\":false,\"id\":{},\"original_title\":\"Bro",
                m.id
            )?;
            next_bad += 1;
        }
        let title = serde_json::to_string(&movie_original_title(seed, m.id, version))?;
        let line = format!(
            "{{\"adult\":{},\"id\":{},\"original_title\":{},\"popularity\":{},\"video\":{}}}",
            m.adult,
            m.id,
            title,
            popularity(seed, m.id, version),
            is_video(seed, m.id)
        );
        match glitch::export_glitch(seed, m.id, cat.glitch_rate) {
            Some(kind) => buf.extend(glitch::glitched_export_line(kind, &line)),
            None => buf.extend_from_slice(line.as_bytes()),
        }
        buf.push(b'\n');
        if buf.len() > 60_000 {
            gz.write_all(&buf)?;
            buf.clear();
        }
    }
    while next_bad <= malformed {
        buf.extend_from_slice(b"{\"adult\":false,\"id\":\n");
        next_bad += 1;
    }
    gz.write_all(&buf)?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn lines(bytes: &[u8]) -> Vec<String> {
        let mut s = String::new();
        GzDecoder::new(bytes).read_to_string(&mut s).unwrap();
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn past_export_is_reconstructed_after_advance() {
        let start = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let mut c = Catalog::new(3, 5000, 10, start);
        let before = generate(&c, 0, 0).unwrap();
        c.advance(2);
        assert_eq!(lines(&generate(&c, 0, 0).unwrap()), lines(&before));
        let today = lines(&generate(&c, 2, 3).unwrap());
        let bad = today
            .iter()
            .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
            .count();
        assert_eq!(bad, 3);
        assert_eq!(today.len() - 3, c.live_count());
        assert_eq!(parse_name("movie_ids_03_01_2025.json.gz"), Some(start));
    }
}
