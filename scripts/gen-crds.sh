#!/usr/bin/env bash
# Regenerates the CRDs from the Rust types into crds/ and the chart's crds/ (tests fail on drift).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tmdbsync/target}"
cargo run -q --bin tmdbsync -- crd > crds/tmdbsync.io.yaml
cp crds/tmdbsync.io.yaml charts/tmdbsync/crds/tmdbsync.io.yaml
