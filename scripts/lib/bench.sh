# What the benchmark scripts share: a release build of tmdbsync ($BIN), a work dir ($WORK) removed
# on exit, and in it a private Postgres (scripts/lib/pg.sh) and the TMDb simulator. Source it from
# the repository root after `set -euo pipefail`, naming the work dir:
#
#   . scripts/lib/bench.sh tmdbsync-bench
#   fresh_db; start_sim 1500 --rps 50     # sets DATABASE_URL, SIM, TMDB_URL and TMDB_EXPORT_URL
#   "$BIN" run --stages catalog; sql "SELECT count(*) FROM movies"

bash scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tmdbsync/target}"
cargo build --release --locked --quiet
BIN="$CARGO_TARGET_DIR/release/tmdbsync"
. scripts/lib/pg.sh

WORK=$(mktemp -d "/tmp/$1.XXXXXX")
SIM_PID=""
cleanup() { [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; pg_stop "$WORK/pg"; rm -rf "$WORK"; }
trap cleanup EXIT
export TMDBSYNC_LOG_FORMAT=text RUST_LOG=warn TMDB_API_KEY=bench

# start_sim MOVIES [SIMULATE FLAGS...]: (re)starts the simulator and points tmdbsync at it.
start_sim() {
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null || true
  rm -f "$WORK/sim.out"
  "$BIN" simulate --addr 127.0.0.1:0 --movies "$1" "${@:2}" >"$WORK/sim.out" 2>"$WORK/sim.log" &
  SIM_PID=$!
  for _ in $(seq 1 200); do grep -q listening "$WORK/sim.out" 2>/dev/null && break; sleep 0.1; done
  SIM=$(grep -o 'http://[0-9.:]*' "$WORK/sim.out" | head -n 1)
  export TMDB_URL="$SIM/3" TMDB_EXPORT_URL="$SIM/p/exports"
}
# fresh_db: a new, empty Postgres in $WORK/pg as DATABASE_URL.
fresh_db() { pg_stop "$WORK/pg"; rm -rf "$WORK/pg"; pg_start "$WORK/pg"; export DATABASE_URL="$PG_URL"; }
# sql QUERY: its result, unaligned, without headers.
sql() { psql -X -q -t -A "$DATABASE_URL" -c "$1"; }
