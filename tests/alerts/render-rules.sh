#!/usr/bin/env bash
# Renders the chart's alert rules (charts/tmdbsync/files/alert-rules.yaml, a Helm template) into a
# plain Prometheus rules file on stdout: `helm template` of the chart with --show-only
# templates/prometheusrule.yaml and prometheusRule.enabled=true (values checked against the chart's
# schema), then the PrometheusRule's `spec`. Extra arguments go to helm
# (e.g. --set alerts.for.runFailed=0s).
#
# helm: $HELM, else `helm` on PATH, else the one scripts/build-control-plane.sh builds and caches.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
chart="$root/charts/tmdbsync"

find_helm() {
  if [ -n "${HELM:-}" ]; then echo "$HELM"; return; fi
  if command -v helm >/dev/null 2>&1; then command -v helm; return; fi
  . "$root/scripts/lib/testenv.sh"
  local cache="$HELM_BIN/helm"
  if [ ! -x "$cache" ]; then
    echo "[render-rules] building helm (scripts/build-control-plane.sh)" >&2
    bash "$root/scripts/build-control-plane.sh" >/dev/null
  fi
  [ -x "$cache" ] || { echo "[render-rules] no helm at $cache" >&2; exit 1; }
  echo "$cache"
}
helm="$(find_helm)"

manifest="$("$helm" template tmdbsync "$chart" --show-only templates/prometheusrule.yaml \
  --set prometheusRule.enabled=true "$@")"

# Everything under the manifest's top-level `spec:` key, de-indented by two spaces.
rules="$(printf '%s\n' "$manifest" | awk '
  /^spec:[[:space:]]*$/ { inside = 1; next }
  inside && /^[^[:space:]#-]/ { inside = 0 }
  inside && /^---/ { inside = 0 }
  inside { sub(/^  /, ""); print }
')"
if ! printf '%s\n' "$rules" | grep -q '^groups:'; then
  echo "[render-rules] the PrometheusRule has no spec.groups:" >&2
  printf '%s\n' "$manifest" >&2
  exit 1
fi
printf '%s\n' "$rules"
