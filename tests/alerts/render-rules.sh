#!/usr/bin/env bash
# Renders charts/tmdbsync/files/alert-rules.yaml (a Helm template) into a plain Prometheus rules
# file on stdout. Extra arguments go to `helm template` (e.g. --set alerts.for.runFailed=0s).
#
# With the chart's templates/prometheusrule.yaml present, the real chart is rendered
# (--show-only that template) and the PrometheusRule's `spec` is taken out of it. Without it (or when
# that renders nothing, e.g. disabled by default), a throwaway chart in a temp dir renders the file
# with the same `tpl` call and the chart's values.yaml (when there is one).
#
# helm: $HELM, else `helm` on PATH, else the one scripts/build-control-plane.sh builds and caches.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
chart="$root/charts/tmdbsync"
rules="$chart/files/alert-rules.yaml"

find_helm() {
  if [ -n "${HELM:-}" ]; then echo "$HELM"; return; fi
  if command -v helm >/dev/null 2>&1; then command -v helm; return; fi
  local version cache
  version="$(sed -n 's/^HELM_VERSION="\${HELM_VERSION:-\(.*\)}"$/\1/p' "$root/scripts/build-control-plane.sh")"
  cache="${TMDBSYNC_CACHE:-$HOME/.cache/tmdbsync}/control-plane/helm-${HELM_VERSION:-$version}/bin/helm"
  if [ ! -x "$cache" ]; then
    echo "[render-rules] building helm (scripts/build-control-plane.sh)" >&2
    bash "$root/scripts/build-control-plane.sh" >/dev/null
  fi
  [ -x "$cache" ] || { echo "[render-rules] no helm at $cache" >&2; exit 1; }
  echo "$cache"
}
helm="$(find_helm)"

# The PrometheusRule's spec, de-indented: everything under the top-level `spec:` key.
spec_of() {
  awk '
    /^spec:[[:space:]]*$/ { inside = 1; next }
    inside && /^[^[:space:]#-]/ { inside = 0 }
    inside && /^---/ { inside = 0 }
    inside { sub(/^  /, ""); print }
  '
}

if [ -f "$chart/templates/prometheusrule.yaml" ] && [ -f "$chart/Chart.yaml" ]; then
  errors="$(mktemp)"
  trap 'rm -f "$errors"' EXIT
  out="$("$helm" template tmdbsync "$chart" --show-only templates/prometheusrule.yaml "$@" 2>"$errors" | spec_of || true)"
  if printf '%s\n' "$out" | grep -q '^groups:'; then
    echo "[render-rules] rendered with the chart's templates/prometheusrule.yaml" >&2
    printf '%s\n' "$out"
    exit 0
  fi
  echo "[render-rules] the chart's PrometheusRule rendered no groups ($(tr '\n' ' ' < "$errors")); using a throwaway chart" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp" "${errors:-}"' EXIT
mkdir -p "$tmp/chart/templates" "$tmp/chart/files"
cat > "$tmp/chart/Chart.yaml" <<'YAML'
apiVersion: v2
name: tmdbsync-alert-rules
version: 0.0.0
YAML
cp "$rules" "$tmp/chart/files/alert-rules.yaml"
if [ -f "$chart/values.yaml" ]; then cp "$chart/values.yaml" "$tmp/chart/values.yaml"; fi
printf '%s\n' '{{ tpl (.Files.Get "files/alert-rules.yaml") . }}' > "$tmp/chart/templates/rules.yaml"
"$helm" template tmdbsync "$tmp/chart" --show-only templates/rules.yaml "$@" | sed '/^---$/d; /^# Source: /d'
