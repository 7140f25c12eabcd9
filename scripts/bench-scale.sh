#!/usr/bin/env bash
# The whole catalogue on one machine: a private Postgres (fsync off) and the simulator with MOVIES
# movies (default 1,100,000, of which ADULT_MOVIES adult: default 3,000 per 1.1 M), then each step
# as its own `tmdbsync` process, with no rate limit (the simulator runs on the same cores):
#   catalog, bulk (every page in one run), status, full enrichment (OMDb within its daily limit,
#   collaborations, PQS), then one simulated day: catalog refresh, delta of the day's changes,
#   incremental enrichment, status again.
# For each step it prints the wall time and the peak RSS of the process (/usr/bin/time -v), the
# rows it leaves and the database size; then the health reads (median and slowest of 10, as the
# controller and `tmdbsync status` do them: benches/health_read.rs) and the projection for TMDb's
# real budget (40 requests/s, one request a movie). Output is Markdown (paste into BENCHMARKS.md).
# Usage: bash scripts/bench-scale.sh [MOVIES]
set -euo pipefail
cd "$(dirname "$0")/.."
MOVIES="${1:-1100000}"
ADULT_MOVIES="${ADULT_MOVIES:-$((MOVIES * 3000 / 1100000))}"
CONCURRENCY="${CONCURRENCY:-64}"
. scripts/lib/bench.sh tmdbsync-bench-scale
cargo bench --locked --quiet --bench health_read --no-run 2>/dev/null
HEALTH_READ=$(ls -t "$CARGO_TARGET_DIR"/release/deps/health_read-* | grep -v '\.d$' | head -n 1)
cp "$HEALTH_READ" "$WORK/health_read" && HEALTH_READ="$WORK/health_read"
export OMDB_API_KEY=bench

fresh_db
start_sim "$MOVIES" --adult-movies "$ADULT_MOVIES"
export OMDB_URL="$SIM/omdb/"
n() { python3 -c "print(f'{int(\"$1\"):,}')"; }

ROWS=""
MAX_RSS=0
STEP=0
# step NAME ROWS-SQL tmdbsync-args...: runs one process, records wall, peak RSS, rows, db size.
step() {
  local name="$1" rows_sql="$2"; shift 2
  STEP=$((STEP + 1))
  local log="$WORK/step$STEP.log" rc=0
  /usr/bin/time -v "$BIN" "$@" >"$WORK/step$STEP.out" 2>"$log" || rc=$?
  # 5: completed, some movies still failing (listed in sync_errors); anything else is a failure.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
    echo "step $name failed (exit $rc):" >&2; tail -n 30 "$log" >&2; exit 1
  fi
  local wall rss_kb rows size warns
  wall=$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}')
  rss_kb=$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')
  [ "$rss_kb" -gt "$MAX_RSS" ] && MAX_RSS=$rss_kb
  rows=$(sql "$rows_sql")
  size=$(sql "SELECT pg_size_pretty(pg_database_size(current_database()))")
  warns=$(grep -c 'WARN' "$log" || true)
  ROWS+="| $name | $wall | $((rss_kb / 1024)) MB | $rows | $size | $warns |"$'\n'
  echo "  $name: wall $wall, peak RSS $((rss_kb / 1024)) MB, $rows, $size, $warns WARN lines" >&2
}

FAST=(--rps 100000 --concurrency "$CONCURRENCY" --max-connections "$CONCURRENCY")
MOVIE_ROWS="SELECT format('%s movies, %s credits', (SELECT count(*) FROM movies), (SELECT count(*) FROM credits))"
ENRICH_ROWS="SELECT format('%s collaborations, %s person scores, %s OMDb ratings', (SELECT count(*) FROM collaborations), (SELECT count(*) FROM person_quality_scores), (SELECT count(*) FROM omdb_ratings))"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)

echo "== $MOVIES movies ($ADULT_MOVIES adult); work dir $WORK" >&2
warm_export
step catalog "SELECT format('%s catalog ids', count(*)) FROM catalog_ids" run --stages catalog
step bulk "$MOVIE_ROWS" run --stages bulk --pages 10000000 "${FAST[@]}"
step status "SELECT format('%s runs', count(*)) FROM sync_runs" status
STATUS_READS=$("$HEALTH_READ")
step "enrichment (full)" "$ENRICH_ROWS" run --stages omdb,collaborations,pqs
curl -fsS -X POST "$SIM/__sim/advance?days=1" >/dev/null
warm_export
step "day: catalog refresh" "SELECT format('%s catalog ids', count(*)) FROM catalog_ids" run --stages catalog
step "day: delta" "$MOVIE_ROWS" run --stages delta "${FAST[@]}"
DELTA_IDS=$(sql "SELECT COALESCE(sum(changed_ids), 0) FROM delta_days")
step "day: enrichment" "$ENRICH_ROWS" run --stages omdb,collaborations,pqs
step "status (after the day)" "SELECT format('%s runs', count(*)) FROM sync_runs" status
DAY_READS=$("$HEALTH_READ")
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
TOTAL_SECS=$(( $(date +%s) - START ))

read -r BULK_N BULK_SECS <<<"$(sql "SELECT movies_imported, round(extract(epoch FROM completed_at - started_at)::numeric, 1) FROM sync_runs WHERE run_type = 'bulk' ORDER BY id LIMIT 1" | tr '|' ' ')"
LISTED=$(sql "SELECT count(*) FROM catalog_ids WHERE NOT adult")
slow() { grep -h 'slow statement' "$WORK"/*.log 2>/dev/null | wc -l; }

cat <<MD
| step | wall | peak RSS | rows after | database | WARN lines |
|---|---|---|---|---|---|
${ROWS%$'\n'}

Health reads (median / slowest of 10, one connection):
* after bulk: $(echo "$STATUS_READS" | tr '\n' ';' | sed 's/;$//; s/;/; /g')
* after the day: $(echo "$DAY_READS" | tr '\n' ';' | sed 's/;$//; s/;/; /g')

Bulk: $(n "$BULK_N") movies in $BULK_SECS s = $(python3 -c "print(f'{$BULK_N / $BULK_SECS:.0f}')") movies/s with no rate limit; peak RSS of any step: $((MAX_RSS / 1024)) MB;
sqlx slow-statement warnings in all steps: $(slow). A day's delta listed $(n "$DELTA_IDS") changed ids.

Projection for TMDb's budget (40 requests/s, one request a movie; the engine is not the limit
while it ingests faster than 40 movies/s):
* whole catalogue ($(n "$LISTED") listed, non-adult movies): $(python3 -c "s=$LISTED/40; print(f'{s/3600:.1f} h of requests')") —
  one bulk run of every page ($(python3 -c "import math; print(math.ceil($LISTED/(40*86400)))") day(s) at the full budget); with the seed's
  pagesPerRun 200 once a day, $(python3 -c "import math; print(math.ceil($LISTED/4000))") days;
* a day's delta ($(n "$DELTA_IDS") ids): $(python3 -c "print(f'{$DELTA_IDS/40/60:.1f} min')") of requests.

machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m); load average before $LOAD_BEFORE, after $LOAD_AFTER; total $TOTAL_SECS s; date: $(date -u +%Y-%m-%d)
MD
