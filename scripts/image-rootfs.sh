#!/usr/bin/env bash
# Builds the release binary and lays out the product image's root filesystem in OUT_DIR: the one
# step that both image builds share (scripts/build-image.sh here, the Dockerfile's builder stage
# elsewhere), so the two images hold the same files.
#
#   scripts/image-rootfs.sh OUT_DIR
#
# The binary is glibc linked statically (`+crt-static` on the host's gnu target): no loader or
# shared libraries in the image. glibc >= 2.34 has its `files` and `dns` name services built in, so
# a static binary resolves host names through /etc/hosts and DNS without libnss. The build cache is
# $CARGO_TARGET_DIR (default target/): <triple>/release/, apart from the debug builds.
#
# Root filesystem: /usr/local/bin/tmdbsync, /etc/passwd and /etc/group (root and nonroot 65532),
# /etc/nsswitch.conf (hosts: files, then DNS), /etc/ssl/certs/ca-certificates.crt (the build
# machine's CA bundle), /tmp (1777) and /home/nonroot. Everything owned by root; the image runs as
# 65532 with a read-only root filesystem.
set -euo pipefail

out="${1:?usage: scripts/image-rootfs.sh OUT_DIR}"
cd "$(dirname "$0")/.."
log() { echo "[image-rootfs] $*" >&2; }

triple=$(rustc -vV | sed -n 's/^host: //p')
case "$triple" in
  *-linux-gnu) ;;
  *) echo "[image-rootfs] the static build needs a *-linux-gnu host toolchain, not $triple" >&2; exit 1 ;;
esac
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca_bundle" ] || { echo "[image-rootfs] $ca_bundle is missing (apt-get install ca-certificates)" >&2; exit 1; }

# Called from a `cargo test` (tests/image.rs), the environment holds the test's package variables;
# cargo would take CARGO_MANIFEST_DIR and the like as changed inputs of build scripts (ring's) and
# rebuild half the tree. Build with the environment of a shell.
for var in $(compgen -e); do
  case "$var" in
    CARGO_MANIFEST_*|CARGO_PKG_*|CARGO_CRATE_NAME|CARGO_BIN_EXE_*|CARGO_BIN_NAME|CARGO_PRIMARY_PACKAGE|CARGO_TARGET_TMPDIR|OUT_DIR|RUST_TEST_THREADS)
      unset "$var" ;;
  esac
done
target_dir="${CARGO_TARGET_DIR:-target}"
log "cargo build --release --target $triple (static; cache in $target_dir/$triple/release)"
# --target keeps RUSTFLAGS off build scripts and proc macros, which cannot be linked statically.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo build --release --locked --target "$triple" -p tmdbsync --bin tmdbsync
bin="$target_dir/$triple/release/tmdbsync"
if command -v ldd >/dev/null 2>&1 && ldd "$bin" 2>&1 | grep -q '=>'; then
  echo "[image-rootfs] $bin is dynamically linked:" >&2
  ldd "$bin" >&2
  exit 1
fi

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp" "$out/home/nonroot"
install -m 0755 "$bin" "$out/usr/local/bin/tmdbsync"
install -m 0644 "$ca_bundle" "$out/etc/ssl/certs/ca-certificates.crt"
cat > "$out/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat > "$out/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
# Without this file glibc asks DNS before /etc/hosts.
echo 'hosts: files dns' > "$out/etc/nsswitch.conf"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"
chmod 1777 "$out/tmp"
log "root filesystem in $out ($(du -sh "$out" | cut -f1))"
