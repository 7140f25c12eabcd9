# What the benchmark scripts share: a release build of tmdbsync ($BIN, a private copy, so a rebuild
# during a long run does not change the binary under it), a work dir ($WORK) removed on exit, and in
# it a private Postgres (scripts/lib/pg.sh) and the TMDb simulator. Source it from the repository
# root after `set -euo pipefail`, naming the work dir:
#
#   . scripts/lib/bench.sh tmdbsync-bench
#   fresh_db; start_sim 1500 --rps 50     # sets DATABASE_URL, SIM, TMDB_URL and TMDB_EXPORT_URL
#   "$BIN" run --stages catalog; sql "SELECT count(*) FROM movies"
#
# TMDBSYNC_BENCH_BIN=path measures another build instead (e.g. an older commit's, for a
# before/after pair run under the same conditions).

bash scripts/install-deps.sh
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tmdbsync/target}"
if [ -n "${TMDBSYNC_BENCH_BIN:-}" ]; then
  BIN="$TMDBSYNC_BENCH_BIN"
else
  cargo build --release --locked --quiet --bin tmdbsync
  BIN="$CARGO_TARGET_DIR/release/tmdbsync"
fi
. scripts/lib/pg.sh

WORK=$(mktemp -d "/tmp/$1.XXXXXX")
SIM_PID=""
cleanup() { [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; pg_stop "$WORK/pg"; rm -rf "$WORK"; }
trap cleanup EXIT
cp "$BIN" "$WORK/tmdbsync" && BIN="$WORK/tmdbsync"
export TMDBSYNC_LOG_FORMAT=text RUST_LOG="${RUST_LOG:-warn}" TMDB_API_KEY=bench

# start_sim MOVIES [SIMULATE FLAGS...]: (re)starts the simulator and points tmdbsync at it.
start_sim() {
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null || true
  rm -f "$WORK/sim.out"
  "$BIN" simulate --addr 127.0.0.1:0 --movies "$1" "${@:2}" >"$WORK/sim.out" 2>"$WORK/sim.log" &
  SIM_PID=$!
  for _ in $(seq 1 600); do grep -q listening "$WORK/sim.out" 2>/dev/null && break; sleep 0.1; done
  SIM=$(grep -o 'http://[0-9.:]*' "$WORK/sim.out" | head -n 1)
  [ -n "$SIM" ] || { echo "the simulator did not start:" >&2; cat "$WORK/sim.log" >&2; exit 1; }
  export TMDB_URL="$SIM/3" TMDB_EXPORT_URL="$SIM/p/exports"
}
# warm_export: fetches today's export once, so a timed catalog step measures the engine, not the
# simulator's gzip of a million lines.
warm_export() {
  local name
  name=$(python3 - "$SIM" <<'PY'
import sys, urllib.request, email.utils
r = urllib.request.urlopen(sys.argv[1] + "/3/configuration?api_key=bench")
print(email.utils.parsedate_to_datetime(r.headers["Date"]).strftime("movie_ids_%m_%d_%Y.json.gz"))
PY
)
  curl -fsS -o /dev/null "$SIM/p/exports/$name"
}
# fresh_db: a new, empty Postgres in $WORK/pg as DATABASE_URL.
fresh_db() { pg_stop "$WORK/pg"; rm -rf "$WORK/pg"; pg_start "$WORK/pg"; export DATABASE_URL="$PG_URL"; }
# sql QUERY: its result, unaligned, without headers.
sql() { psql -X -q -t -A "$DATABASE_URL" -c "$1"; }
