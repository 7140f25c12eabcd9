//! The health reads at scale, timed against the database in `DATABASE_URL` (used by
//! `scripts/bench-scale.sh`): what the controller reads on every TmdbSync reconcile
//! (`health_inputs` without recent runs, and the metric totals) and what `tmdbsync status` reads
//! (`health_inputs` with the recent runs). Prints one line per read: the median and the slowest of
//! `HEALTH_READS` (default 10) reads, in milliseconds, after one warm-up read.

use std::time::{Duration, Instant};

use tmdbsync::store::{Store, health};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    let reads: usize = std::env::var("HEALTH_READS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let store = Store::connect_read_only(&url, 2).await?;
    let controller = time(reads, || async {
        health::health_inputs(&store, 0).await?;
        health::metric_totals(&store).await?;
        Ok(())
    })
    .await?;
    let status = time(reads, || async {
        health::health_inputs(&store, 20).await?;
        Ok(())
    })
    .await?;
    for (name, (median, max)) in [("controller", controller), ("status", status)] {
        println!(
            "{name} median_ms={:.1} max_ms={:.1}",
            median.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

async fn time<F, Fut>(reads: usize, read: F) -> anyhow::Result<(Duration, Duration)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), tmdbsync::store::StoreError>>,
{
    read().await?;
    let mut took = Vec::with_capacity(reads);
    for _ in 0..reads.max(1) {
        let start = Instant::now();
        read().await?;
        took.push(start.elapsed());
    }
    took.sort();
    Ok((
        took[took.len() / 2],
        *took.last().expect("one read at least"),
    ))
}
