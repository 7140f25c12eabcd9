#!/usr/bin/env bash
# Builds the product image on this machine with podman and no registry: the release binary and root
# filesystem from scripts/image-rootfs.sh (cached under $CARGO_TARGET_DIR), then the Dockerfile's
# runtime stage (`FROM scratch`) around it. Prints the image name on stdout and its size on stderr.
#
#   scripts/build-image.sh            # localhost/tmdbsync:<version>, also tagged as the chart's default
#   IMAGE=localhost/tmdbsync:dev scripts/build-image.sh
#
# Needs podman and runc (scripts/install-deps.sh). Podman runs with `--runtime runc`: crun fails on
# machines whose cgroups are in hybrid (v1 + v2) mode.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[build-image] $*" >&2; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
IMAGE="${IMAGE:-localhost/tmdbsync:$version}"
# The chart's default image (values.yaml: ghcr.io/tmdbsync/tmdbsync, tag = appVersion), so a local
# node with `imagePullPolicy: IfNotPresent` finds it without a registry.
CHART_IMAGE="ghcr.io/tmdbsync/tmdbsync:$version"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tmdbsync/target}"
PODMAN=(podman --runtime runc)

command -v podman >/dev/null 2>&1 || { echo "[build-image] podman is missing (bash scripts/install-deps.sh)" >&2; exit 1; }
command -v runc >/dev/null 2>&1 || { echo "[build-image] runc is missing (bash scripts/install-deps.sh)" >&2; exit 1; }

t0=$(date +%s)
context="$CARGO_TARGET_DIR/image"
mkdir -p "$context"
bash scripts/image-rootfs.sh "$context/rootfs"
t1=$(date +%s)

# The runtime stage of the Dockerfile, reading the root filesystem from the build context.
awk '/^FROM scratch AS runtime/ {on = 1} on' Dockerfile \
  | sed 's|^COPY --from=builder /rootfs/ /$|COPY rootfs/ /|' > "$context/Containerfile"
grep -q '^COPY rootfs/ /$' "$context/Containerfile" || {
  echo "[build-image] the Dockerfile's runtime stage no longer copies /rootfs/ from the builder" >&2
  exit 1
}

# --timestamp 0: the same files give the same image id, so a warm rebuild leaves no dangling image.
"${PODMAN[@]}" build --quiet --pull=never --timestamp 0 \
  --label org.opencontainers.image.title=tmdbsync \
  --label "org.opencontainers.image.version=$version" \
  -f "$context/Containerfile" -t "$IMAGE" -t "$CHART_IMAGE" "$context" >/dev/null
# Earlier builds' images, now untagged.
"${PODMAN[@]}" image prune -f --filter label=org.opencontainers.image.title=tmdbsync >/dev/null
t2=$(date +%s)

size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
bin_size=$(stat -c %s "$context/rootfs/usr/local/bin/tmdbsync")
log "image $IMAGE (also $CHART_IMAGE): $((size / 1024 / 1024)) MiB ($size bytes; binary $((bin_size / 1024 / 1024)) MiB)"
log "took $((t2 - t0)) s: binary and root filesystem $((t1 - t0)) s, podman build $((t2 - t1)) s"
echo "$IMAGE"
