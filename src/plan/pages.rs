//! Bulk page ranges: which pages the next run takes, and how pages shard over Job pods.

/// Movies per bulk page (the page size of TMDb's list endpoints): page `p` holds catalog ordinals
/// `(p - 1) * 20 + 1 ..= p * 20`.
pub const PAGE_SIZE: i64 = 20;

/// Pages `from..=to` (1-based) of the catalog, 20 ordinals each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PageRange {
    pub from: i32,
    pub to: i32,
}

impl PageRange {
    /// Number of pages in the range.
    pub fn len(&self) -> i32 {
        (self.to - self.from + 1).max(0)
    }

    /// Whether the range holds no page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pages of this range that shard `index` of `count` processes (round robin, so every
    /// shard gets popular and obscure pages alike).
    pub fn shard(&self, index: u32, count: u32) -> impl Iterator<Item = i32> + '_ {
        (self.from..=self.to).filter(move |p| self.in_shard(*p, index, count))
    }

    /// Whether shard `index` of `count` processes `page` of this range.
    pub fn in_shard(&self, page: i32, index: u32, count: u32) -> bool {
        let count = count.max(1) as i32;
        (self.from..=self.to).contains(&page) && (page - self.from) % count == index as i32
    }

    /// The range cut into consecutive ranges of at most `pages` pages (at least 1), in order.
    pub fn chunks(&self, pages: i32) -> impl Iterator<Item = PageRange> + '_ {
        let pages = pages.max(1);
        (0..(self.len() as u32).div_ceil(pages as u32) as i32).map(move |i| PageRange {
            from: self.from + i * pages,
            to: (self.from + (i + 1) * pages - 1).min(self.to),
        })
    }
}

/// The next bulk range: `pages_per_run` pages from the first open page, within the catalog.
/// `None` when every page is done.
pub fn next_bulk_range(
    first_open: Option<i32>,
    total_pages: i32,
    pages_per_run: i32,
) -> Option<PageRange> {
    let from = first_open?;
    if from > total_pages || pages_per_run < 1 {
        return None;
    }
    Some(PageRange {
        from,
        to: (from + pages_per_run - 1).min(total_pages),
    })
}

/// Number of pages needed for `ordinals` catalog entries.
pub fn total_pages(max_ordinal: i64) -> i32 {
    (max_ordinal.max(0) as u64).div_ceil(PAGE_SIZE as u64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_range_cases() {
        let cases = [
            (Some(1), 250, 200, Some((1, 200))),
            (Some(201), 250, 200, Some((201, 250))),
            (Some(250), 250, 200, Some((250, 250))),
            (None, 250, 200, None),
            (Some(251), 250, 200, None),
            (Some(1), 0, 200, None),
        ];
        for (first_open, total, per_run, want) in cases {
            let got = next_bulk_range(first_open, total, per_run).map(|r| (r.from, r.to));
            assert_eq!(got, want, "first_open={first_open:?} total={total}");
        }
    }

    #[test]
    fn shards_partition_the_range() {
        let r = PageRange { from: 5, to: 27 };
        let mut all: Vec<i32> = (0..4)
            .flat_map(|i| r.shard(i, 4).collect::<Vec<_>>())
            .collect();
        all.sort();
        assert_eq!(all, (5..=27).collect::<Vec<_>>());
        assert_eq!(r.shard(0, 1).count(), 23);
    }

    #[test]
    fn chunks_cover_the_range_in_order() {
        let r = PageRange { from: 5, to: 27 };
        let got: Vec<(i32, i32)> = r.chunks(10).map(|c| (c.from, c.to)).collect();
        assert_eq!(got, vec![(5, 14), (15, 24), (25, 27)]);
        let one: Vec<(i32, i32)> = r.chunks(100).map(|c| (c.from, c.to)).collect();
        assert_eq!(one, vec![(5, 27)]);
        assert_eq!(r.chunks(0).count(), 23);
        assert_eq!(PageRange { from: 3, to: 2 }.chunks(10).count(), 0);
        // Shard membership is the range's, whatever the chunk.
        let in_chunks: Vec<i32> = r
            .chunks(4)
            .flat_map(|c| {
                (c.from..=c.to)
                    .filter(|p| r.in_shard(*p, 1, 3))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(in_chunks, r.shard(1, 3).collect::<Vec<_>>());
        assert!(!r.in_shard(4, 0, 1));
    }

    #[test]
    fn pages_round_up() {
        assert_eq!(total_pages(0), 0);
        assert_eq!(total_pages(1), 1);
        assert_eq!(total_pages(20), 1);
        assert_eq!(total_pages(21), 2);
        assert_eq!(total_pages(5000), 250);
    }
}
