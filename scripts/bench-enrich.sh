#!/usr/bin/env bash
# Enrichment benchmark: collaborations + PQS on catalogs of two sizes (default 10,000 and 20,000
# movies), printed as a Markdown table (paste into BENCHMARKS.md). Each size: a fresh Postgres, the
# simulator, `tmdbsync run --stages catalog,bulk` (not timed), then `--stages collaborations` and
# `--stages pqs` (full build, timed from sync_runs), then one simulated day, a delta, and
# `--stages collaborations,pqs` again (the incremental daily case).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh tmdbsync-bench-enrich
SIZES="${ENRICH_SIZES:-10000 20000}"

n() { python3 -c "print(f'{int(\"$1\"):,}')"; }
last_run_secs() { sql "SELECT round(extract(epoch FROM completed_at - started_at)::numeric, 2) FROM sync_runs WHERE run_type = 'enrich' ORDER BY id DESC LIMIT 1"; }

ROWS=""
for N in $SIZES; do
  fresh_db; start_sim "$N"
  "$BIN" run --stages catalog,bulk --pages 100000 --rps 100000 --concurrency 64 --max-connections 64 >/dev/null 2>&1
  "$BIN" run --stages collaborations >/dev/null 2>&1
  COLLAB=$(last_run_secs)
  "$BIN" run --stages pqs >/dev/null 2>&1
  PQS=$(last_run_secs)
  MEMBERS=$(sql "SELECT count(*) FROM collaboration_members")
  PAIRS=$(sql "SELECT count(*) FROM collaborations")
  PEOPLE=$(sql "SELECT count(*) FROM person_quality_scores")
  curl -fsS -X POST "$SIM/__sim/advance?days=1" >/dev/null
  "$BIN" run --stages delta >/dev/null 2>&1
  CHANGED=$(sql "SELECT count(*) FROM movie_pipeline WHERE collaborations_at < credits_changed_at OR collaborations_at IS NULL")
  "$BIN" run --stages collaborations,pqs >/dev/null 2>&1
  INCR=$(last_run_secs)
  TOTAL=$(python3 -c "print(f'{$COLLAB + $PQS:.2f}')")
  PER_K=$(python3 -c "print(f'{($COLLAB + $PQS) / $N * 1000:.3f}')")
  ROWS+="| $(n "$N") movies ($(n "$MEMBERS") key credits, $(n "$PAIRS") pairs, $(n "$PEOPLE") people) | $COLLAB s | $PQS s | **$TOTAL s** ($PER_K s per 1,000 movies) | $INCR s for $CHANGED movies refetched by a one-day delta |"$'\n'
done

cat <<MD
| catalog | collaborations (full build) | PQS (full) | both | next day (delta changes, collaborations + PQS) |
|---|---|---|---|---|
${ROWS%$'\n'}
MD
echo
echo "goal: both stages under 60 s for 20,000 movies; time linear in catalog size"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m); date: $(date -u +%Y-%m-%d)"
