#!/usr/bin/env bash
# The controller at scale (issue 13, point 4) on the real control plane: 100 TmdbSyncs and 10,000
# finished SyncRuns, then the release controller (leader election on, as the chart runs it) starts,
# settles and idles. Prints the time to settle, its RSS, reconcile p50/p99 per kind and the API
# requests per second it causes while idle (with a per verb/resource table). Targets: RSS < 64 MiB,
# p99 < 100 ms, idle requests near zero (no self-triggered reconcile loop). The load and how each
# figure is taken: tests/controller_scale.rs.
#
#   scripts/bench-controller.sh
#   SYNCS=10 RUNS_PER_SYNC=10 IDLE_SECS=30 BASELINE_SECS=10 scripts/bench-controller.sh   # a quick look
#
# Uses its own control plane (TMDBSYNC_TESTENV_DIR, default /tmp/tmdbsync-bench-controller), stopped
# at the end unless KEEP_TESTENV=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tmdbsync/target}"
export TMDBSYNC_TESTENV_DIR="${TMDBSYNC_TESTENV_DIR:-/tmp/tmdbsync-bench-controller}"
export SYNCS="${SYNCS:-100}" RUNS_PER_SYNC="${RUNS_PER_SYNC:-100}"
export BASELINE_SECS="${BASELINE_SECS:-60}" IDLE_SECS="${IDLE_SECS:-300}"

# Built before the control plane starts, so the build's load is over when the clock runs.
cargo test --release --locked --test controller_scale --no-run
bash scripts/testenv.sh up >/dev/null
[ "${KEEP_TESTENV:-0}" = 1 ] || trap 'bash scripts/testenv.sh down >/dev/null' EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo test --release --locked --test controller_scale -- --ignored --nocapture controller_at_scale
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
