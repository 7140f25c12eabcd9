# Shell helpers: a private Postgres in a temp dir (unix socket only). Source this file.
# pg_start DIR  -> starts a server under DIR and sets PG_URL; pg_stop DIR -> stops it.

pg_bin() {
  if [ -n "${TMDBSYNC_PG_BIN:-}" ]; then echo "$TMDBSYNC_PG_BIN"; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  local dir="$1" bin
  bin=$(pg_bin)
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$dir"
    chmod o+x "$(dirname "$dir")"   # mktemp -d makes 0700 parents the postgres user cannot enter
  fi
  pg_as "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-k $dir -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB -c max_connections=100" \
    start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
  PG_URL="postgres:///postgres?host=$dir&user=postgres"
  export PG_URL
}

pg_stop() {
  local dir="$1"
  [ -d "$dir/data" ] && pg_as "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}
