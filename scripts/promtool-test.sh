#!/usr/bin/env bash
# The alert rules' checks: renders charts/tmdbsync/files/alert-rules.yaml with helm
# (tests/alerts/render-rules.sh), runs `promtool check rules` on the result, then the unit tests in
# tests/alerts/*.yaml with `promtool test rules`, one test per file so that promtool's report counts
# tests rather than files. Prints "promtool: N passed, M failed" last; exits non-zero on any failure.
# Extra arguments go to helm (e.g. --set alerts.errorRatePercent=10 to see the tests catch it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v promtool >/dev/null 2>&1; then
  echo "[promtool-test] promtool is missing: run scripts/install-deps.sh (Debian package prometheus)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

bash "$root/tests/alerts/render-rules.sh" "$@" > "$work/alert-rules.yaml"
echo "== promtool check rules"
promtool check rules "$work/alert-rules.yaml"

# Split every test file into one file per test: the header (everything before `tests:`) plus one
# `  - name:` block. The unit test files keep that layout (tests: last, items indented two spaces).
split_tests() {
  local file="$1" stem
  stem="$(basename "$file" .yaml)"
  awk -v dir="$work" -v stem="$stem" '
    !in_tests { header = header $0 "\n" }
    /^tests:[[:space:]]*$/ { in_tests = 1; next }
    in_tests && /^  - / {
      n++
      out = sprintf("%s/%s-%02d.yaml", dir, stem, n)
      printf "%s", header > out
    }
    in_tests && n > 0 { print >> out }
    END { if (n == 0) { print "no tests in " FILENAME > "/dev/stderr"; exit 1 } }
  ' "$file"
}
shopt -s nullglob
sources=("$root"/tests/alerts/*.yaml)
if [ "${#sources[@]}" -eq 0 ]; then
  echo "[promtool-test] no unit tests in tests/alerts/" >&2
  exit 1
fi
for f in "${sources[@]}"; do split_tests "$f"; done

echo "== promtool test rules (${#sources[@]} files)"
cd "$work"
tests=()
for f in *.yaml; do [ "$f" = alert-rules.yaml ] || tests+=("$f"); done
status=0
promtool test rules "${tests[@]}" > report.txt 2>&1 || status=$?
cat report.txt
passed="$(grep -c '^  SUCCESS' report.txt || true)"
failed=$(( ${#tests[@]} - passed ))
echo "promtool: $passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
  exit 1
fi
