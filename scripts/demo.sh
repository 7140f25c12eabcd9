#!/usr/bin/env bash
# The demo: a private Postgres, the TMDb simulator, `tmdbsync run` (catalog, bulk, delta, enrichment:
# OMDb ratings, collaborations, person quality score), a simulated day later another delta and
# enrichment run, then `tmdbsync status`. The simulator serves 1 % glitchy records (NUL characters,
# numbers out of range, wrong types: see src/sim/glitch.rs). Everything is torn down at the end.
# Usage: bash scripts/demo.sh [MOVIES]   (default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
MOVIES="${1:-5000}"
bash scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tmdbsync/target}"
cargo build --release --locked --quiet
BIN="$CARGO_TARGET_DIR/release/tmdbsync"
. scripts/lib/pg.sh

WORK=$(mktemp -d /tmp/tmdbsync-demo.XXXXXX)
SIM_PID=""
cleanup() {
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null || true
  pg_stop "$WORK/pg"
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== starting a private Postgres in $WORK/pg"
pg_start "$WORK/pg"
echo "== starting the TMDb simulator ($MOVIES movies, 50 adult)"
"$BIN" simulate --addr 127.0.0.1:0 --movies "$MOVIES" --adult-movies 50 --seed 42 --glitch-rate 0.01 >"$WORK/sim.out" 2>"$WORK/sim.log" &
SIM_PID=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/sim.out" 2>/dev/null && break; sleep 0.1; done
SIM=$(grep -o 'http://[0-9.:]*' "$WORK/sim.out" | head -n 1)
[ -n "$SIM" ] || { echo "simulator did not start" >&2; cat "$WORK/sim.log" >&2; exit 1; }
echo "   simulator at $SIM"

export TMDBSYNC_LOG_FORMAT="${TMDBSYNC_LOG_FORMAT:-text}"
export OMDB_URL="$SIM/omdb/" OMDB_API_KEY="demo-omdb-key"
export DATABASE_URL="$PG_URL" TMDB_API_KEY="demo-key" TMDB_URL="$SIM/3" TMDB_EXPORT_URL="$SIM/p/exports"
# Exit code 5: the run completed, but some (glitchy) movies still fail; the next run retries them.
run() { "$BIN" run "$@" || { rc=$?; [ "$rc" -eq 5 ] || exit "$rc"; echo "   (exit code 5: completed with movies still failing)"; }; }
echo "== tmdbsync run (catalog, bulk, delta, enrich)"
run --stages catalog,bulk,delta,enrich --pages 1000 --rps 200 --omdb-daily-limit 100000
echo "== one simulated day passes"
curl -fsS -X POST "$SIM/__sim/advance?days=1" | head -c 200; echo " ..."
echo "== tmdbsync run --stages delta,enrich"
run --stages delta,enrich --rps 200 --omdb-daily-limit 100000
echo "== tmdbsync status"
"$BIN" status
# The same panel as the web page, saved as one self-contained file (kept after the demo).
PAGE="${DEMO_PAGE:-/tmp/tmdbsync-demo-sync-health.html}"
"$BIN" status --format html >"$PAGE"
echo "== the Sync Health page is saved: $PAGE (open it in a browser; \`tmdbsync dashboard\` serves it live)"
