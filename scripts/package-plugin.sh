#!/usr/bin/env bash
# Packages the kubectl plugin for krew: one archive per platform, each a reproducible tar.gz holding
# `kubectl-tmdbsync` and LICENSE, the archives' sha256, and the krew manifest written from the
# template plugins/tmdbsync.yaml.in.
#
#   scripts/package-plugin.sh [--out DIR] [--target TRIPLE]... [--binary OS/ARCH=PATH]...
#
# Without --target or --binary it builds this machine's binary
# (`cargo build --release --locked --bin kubectl-tmdbsync`). --target TRIPLE builds for a Rust
# target whose toolchain and linker are installed (x86_64/aarch64 linux gnu or musl, x86_64/aarch64
# apple darwin). --binary OS/ARCH=PATH packages a binary built elsewhere.
#
# Writes to DIR (default dist/plugin): kubectl-tmdbsync-OS-ARCH.tar.gz per platform, SHA256SUMS,
# and tmdbsync.yaml, the manifest to publish (a krew index entry, or
# `kubectl krew install --manifest=DIR/tmdbsync.yaml --archive=DIR/kubectl-tmdbsync-linux-amd64.tar.gz`).
#
# Where the archives will be downloaded from: the project has no release host yet, so the URL is
# a setting, written into each platform's `uri`:
#   TMDBSYNC_HOMEPAGE     the project's home (default https://github.com/tmdbsync/tmdbsync, a
#                         placeholder until the project has a public home)
#   TMDBSYNC_RELEASE_URL  the folder the release's archives are uploaded to (default
#                         $TMDBSYNC_HOMEPAGE/releases/download/vVERSION, GitHub's release layout)
# The version is the package's (Cargo.toml), as `vX.Y.Z`; a binary that says another version is
# refused. SOURCE_DATE_EPOCH (default: the last commit's time) stamps the archive entries, so the
# same binary always gives the same sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

out=dist/plugin
targets=()
binaries=()
while [ $# -gt 0 ]; do
    case "$1" in
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --target) targets+=("${2:?--target needs a Rust target triple}"); shift 2 ;;
    --binary) binaries+=("${2:?--binary needs OS/ARCH=PATH}"); shift 2 ;;
    -h | --help) usage ;;
    *) echo "package-plugin: unknown argument $1" >&2; usage ;;
    esac
done

version="v$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
[[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "package-plugin: no version in Cargo.toml" >&2; exit 1; }
homepage="${TMDBSYNC_HOMEPAGE:-https://github.com/tmdbsync/tmdbsync}"
release_url="${TMDBSYNC_RELEASE_URL:-$homepage/releases/download/$version}"
release_url="${release_url%/}"
case "$release_url" in
https://* | http://*) ;;
*) echo "package-plugin: TMDBSYNC_RELEASE_URL must be an http(s) URL, not $release_url" >&2; exit 1 ;;
esac
[ -f LICENSE ] || { echo "package-plugin: no LICENSE file" >&2; exit 1; }
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

# OS/ARCH of a Rust target triple, as krew's selectors name them.
platform_of() {
    case "$1" in
    x86_64-unknown-linux-gnu | x86_64-unknown-linux-musl) echo linux/amd64 ;;
    aarch64-unknown-linux-gnu | aarch64-unknown-linux-musl) echo linux/arm64 ;;
    x86_64-apple-darwin) echo darwin/amd64 ;;
    aarch64-apple-darwin) echo darwin/arm64 ;;
    *) echo "package-plugin: no krew platform for target $1" >&2; return 1 ;;
    esac
}

host_platform() {
    local os arch
    os="$(uname -s | tr '[:upper:]' '[:lower:]')"
    case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch="$(uname -m)" ;;
    esac
    echo "$os/$arch"
}

target_dir="${CARGO_TARGET_DIR:-target}"
if [ ${#targets[@]} -eq 0 ] && [ ${#binaries[@]} -eq 0 ]; then
    echo "== cargo build --release --bin kubectl-tmdbsync" >&2
    cargo build --release --locked --bin kubectl-tmdbsync
    binaries+=("$(host_platform)=$target_dir/release/kubectl-tmdbsync")
fi
for t in "${targets[@]}"; do
    p="$(platform_of "$t")"
    echo "== cargo build --release --target $t --bin kubectl-tmdbsync" >&2
    cargo build --release --locked --target "$t" --bin kubectl-tmdbsync
    binaries+=("$p=$target_dir/$t/release/kubectl-tmdbsync")
done

mkdir -p "$out"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
platforms="$stage/platforms.yaml"
: >"$platforms"
sums=()
seen=" "
for b in "${binaries[@]}"; do
    p="${b%%=*}"
    bin="${b#*=}"
    os="${p%/*}"
    arch="${p#*/}"
    [[ "$p" =~ ^[a-z0-9]+/[a-z0-9]+$ ]] || { echo "package-plugin: $p is not OS/ARCH" >&2; exit 1; }
    [ -x "$bin" ] || { echo "package-plugin: $bin is not an executable" >&2; exit 1; }
    case "$seen" in *" $p "*) echo "package-plugin: $p given twice" >&2; exit 1 ;; esac
    seen="$seen$p "
    # A binary that runs here must say the version the manifest will.
    if [ "$p" = "$(host_platform)" ]; then
        said="$("$bin" --version 2>&1 || true)"
        [ "$said" = "kubectl tmdbsync ${version#v}" ] || {
            echo "package-plugin: $bin says \"$said\", the package is ${version#v}: rebuild it" >&2
            exit 1
        }
    fi
    archive="kubectl-tmdbsync-$os-$arch.tar.gz"
    files="$stage/$os-$arch"
    mkdir -p "$files"
    install -m 0755 "$bin" "$files/kubectl-tmdbsync"
    install -m 0644 LICENSE "$files/LICENSE"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        --format=gnu -C "$files" -cf - LICENSE kubectl-tmdbsync | gzip -n >"$out/$archive"
    sha="$(sha256sum "$out/$archive" | cut -d' ' -f1)"
    sums+=("$sha  $archive")
    cat >>"$platforms" <<EOF
  - selector:
      matchLabels:
        os: $os
        arch: $arch
    uri: $release_url/$archive
    sha256: "$sha"
    bin: kubectl-tmdbsync
    files:
    - from: kubectl-tmdbsync
      to: .
    - from: LICENSE
      to: .
EOF
    echo "$out/$archive  $sha" >&2
done

printf '%s\n' "${sums[@]}" >"$out/SHA256SUMS"
manifest="$out/tmdbsync.yaml"
{
    echo "# kubectl tmdbsync $version for krew, written by scripts/package-plugin.sh from plugins/tmdbsync.yaml.in."
    awk -v platforms="$platforms" '
    /^@PLATFORMS@$/ { while ((getline line < platforms) > 0) print line; next }
    /^# / && !body { next }
    { body = 1; print }
' plugins/tmdbsync.yaml.in
} | sed -e "s|@VERSION@|$version|g" -e "s|@HOMEPAGE@|$homepage|g" >"$manifest"
if grep -n '@[A-Z_]*@' "$manifest" >&2; then
    echo "package-plugin: placeholders left in $manifest" >&2
    exit 1
fi
echo "$manifest" >&2
