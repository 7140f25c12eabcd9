#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test (unit, Postgres + simulator integration,
# contract tests against the recordings in tests/fixtures/tmdb). Installs missing system packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tmdbsync/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

bash scripts/install-deps.sh
echo "== control plane binaries (built once from the Kubernetes Go modules, cached outside the clone)"
bash scripts/build-control-plane.sh >/dev/null
# End-to-end tests bring up the control plane and the node agent on demand; stop them at the end.
trap 'bash scripts/testenv.sh down >/dev/null 2>&1 || true' EXIT
# The workspace: the product (tmdbsync) and its test tools (testenv/: the node agent).
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"
