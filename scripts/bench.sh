#!/usr/bin/env bash
# Benchmarks, each measured in one run, figures printed as a Markdown table (paste into BENCHMARKS.md):
#  1. rate efficiency: detail requests/s achieved ÷ budget (budget 40, simulator allows 50)
#  2. ingest headroom: movies fully stored per second with no rate limit (20,000 movies), and the
#     ratio to a plain COPY of the same rows
#  3. catalog refresh: 1,000,000 export lines into catalog_ids: time and peak RSS
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh tmdbsync-bench
RATE_MOVIES="${RATE_MOVIES:-1500}"
INGEST_MOVIES="${INGEST_MOVIES:-20000}"
CATALOG_MOVIES="${CATALOG_MOVIES:-1000000}"

stat() { curl -fsS "$SIM/__sim/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# 1. Rate efficiency
fresh_db; start_sim "$RATE_MOVIES" --rps 50
"$BIN" run --stages catalog >/dev/null 2>&1
curl -fsS -X POST "$SIM/__sim/stats/reset" >/dev/null
"$BIN" run --stages bulk --pages 100000 --rps 40 --concurrency 20 2>"$WORK/rate.log" >/dev/null
RATE_SECS=$(sql "SELECT extract(epoch FROM completed_at - started_at) FROM sync_runs WHERE run_type='bulk'")
RATE_DETAILS=$(stat 'd["requests"]["details"]')
RATE_429=$(stat 'd["rate_limited"]')
RATE_MAX=$(stat 'd["max_requests_in_any_second"]')
RATE=$(python3 -c "print(f'{$RATE_DETAILS/$RATE_SECS:.2f}')")
RATE_EFF=$(python3 -c "print(f'{$RATE_DETAILS/$RATE_SECS/40:.3f}')")

# 2. Ingest headroom
fresh_db; start_sim "$INGEST_MOVIES"
"$BIN" run --stages catalog >/dev/null 2>&1
"$BIN" run --stages bulk --pages 100000 --rps 100000 --concurrency 64 --max-connections 64 2>"$WORK/ingest.log" >/dev/null
INGEST_SECS=$(sql "SELECT extract(epoch FROM completed_at - started_at) FROM sync_runs WHERE run_type='bulk'")
INGEST_N=$(sql "SELECT movies_imported FROM sync_runs WHERE run_type='bulk'")
INGEST_RATE=$(python3 -c "print(f'{$INGEST_N/$INGEST_SECS:.0f}')")
CREDITS=$(sql "SELECT count(*) FROM credits")
for t in movies people credits movie_genres; do sql "\\copy $t TO '$WORK/$t.copy'"; done
sql "CREATE TABLE b_movies (LIKE movies INCLUDING ALL); CREATE TABLE b_people (LIKE people INCLUDING ALL);
     CREATE TABLE b_credits (LIKE credits INCLUDING ALL); CREATE TABLE b_movie_genres (LIKE movie_genres INCLUDING ALL)"
COPY_START=$(date +%s.%N)
for t in movies people credits movie_genres; do sql "\\copy b_$t FROM '$WORK/$t.copy'"; done
COPY_SECS=$(python3 -c "print($(date +%s.%N) - $COPY_START)")
COPY_RATE=$(python3 -c "print(f'{$INGEST_N/$COPY_SECS:.0f}')")
COPY_RATIO=$(python3 -c "print(f'{$INGEST_RATE/$COPY_RATE:.2f}')")

# 3. Catalog refresh
fresh_db; start_sim "$CATALOG_MOVIES"
warm_export
/usr/bin/time -v "$BIN" run --stages catalog 2>"$WORK/catalog.log" >/dev/null
CAT_SECS=$(sql "SELECT extract(epoch FROM completed_at - started_at) FROM sync_runs WHERE run_type='catalog'")
CAT_LINES=$(sql "SELECT total_ids FROM catalog_exports")
CAT_RSS_KB=$(grep 'Maximum resident set size' "$WORK/catalog.log" | awk '{print $NF}')
CAT_WALL=$(grep 'Elapsed (wall clock)' "$WORK/catalog.log" | awk '{print $NF}')

cat <<MD
| benchmark | figure | goal |
|---|---|---|
| rate efficiency (budget 40 rps, simulator allows 50, $RATE_MOVIES movies) | $RATE req/s achieved = **$RATE_EFF** of budget; $RATE_429 answers 429; max $RATE_MAX requests in any second | ≥ 0.95 |
| ingest headroom (no rate limit, $INGEST_N movies, $CREDITS credits) | **$INGEST_RATE movies/s** ($INGEST_SECS s) | ≥ 1,000/s |
| plain COPY of the same rows (movies, people, credits, genres) | $COPY_RATE movies/s (${COPY_SECS} s); ingest/COPY = **$COPY_RATIO** | — |
| catalog refresh ($CAT_LINES export lines) | **${CAT_SECS} s** in the run (process wall $CAT_WALL), peak RSS **$((CAT_RSS_KB / 1024)) MB** | < 30 s, < 100 MB |
MD
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m); date: $(date -u +%Y-%m-%d)"
