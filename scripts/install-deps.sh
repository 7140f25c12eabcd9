#!/usr/bin/env bash
# Installs the system packages the demo and the tests need (Debian). Idempotent: installs only
# what is missing, and runs apt-get update only when it has to install something.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)

if [ "${#need[@]}" -gt 0 ]; then
  echo "[install-deps] installing: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package starts a cluster of its own; the tests start private servers instead.
if command -v pg_lsclusters >/dev/null 2>&1 && [ "${STOP_SYSTEM_POSTGRES:-1}" = 1 ]; then
  pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1, $2}' | while read -r v c; do
    pg_ctlcluster "$v" "$c" stop >/dev/null 2>&1 || true
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "[install-deps] cargo is missing: this project needs a Rust toolchain (rustup)" >&2
  exit 1
fi
