//! Progress: indicatif bars on a terminal, a log line every few seconds otherwise (Job pods, CI).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How stages report progress.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    bars: bool,
}

impl Progress {
    /// Bars when stderr is a terminal, log lines otherwise.
    pub fn auto() -> Self {
        Progress {
            bars: std::io::stderr().is_terminal(),
        }
    }

    /// Log lines only.
    pub fn lines() -> Self {
        Progress { bars: false }
    }

    /// Starts tracking one task of `total` units.
    pub fn task(&self, label: &'static str, total: u64, unit: &'static str) -> ProgressTask {
        let bar = self.bars.then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:40.cyan/blue}] {pos}/{len} {msg} ({per_sec}, eta {eta})",
                )
                .expect("valid template")
                .progress_chars("█▉▊▋▌▍▎▏ "),
            );
            bar.set_prefix(label);
            bar.set_message(unit);
            bar
        });
        ProgressTask {
            bar,
            label,
            unit,
            total,
            position: 0,
            started: Instant::now(),
            last_log: Instant::now(),
        }
    }
}

/// One task's progress.
pub struct ProgressTask {
    bar: Option<ProgressBar>,
    label: &'static str,
    unit: &'static str,
    total: u64,
    position: u64,
    started: Instant,
    last_log: Instant,
}

const LOG_EVERY: Duration = Duration::from_secs(5);

impl ProgressTask {
    /// Advances by `n` units.
    pub fn inc(&mut self, n: u64) {
        self.set(self.position + n);
    }

    /// Sets the position.
    pub fn set(&mut self, position: u64) {
        self.position = position;
        match &self.bar {
            Some(bar) => bar.set_position(position),
            None if self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                let rate = position as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
                tracing::info!(
                    stage = self.label,
                    done = position,
                    total = self.total,
                    rate = format!("{rate:.1}/s"),
                    "{} progress: {position}/{} {}",
                    self.label,
                    self.total,
                    self.unit
                );
            }
            None => {}
        }
    }

    /// Ends the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
