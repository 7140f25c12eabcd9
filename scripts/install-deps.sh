#!/usr/bin/env bash
# Installs the system packages the demo and the tests need (Debian). Idempotent: installs only
# what is missing, and runs apt-get update only when it has to install something.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The alert rules' unit tests (promtool) and the alerting end-to-end test (prometheus, alertmanager).
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# The Sync Health page's browser test (tests/sync_health_browser.rs): headless chromium driven
# through chromium-driver; DejaVu for the screenshot's text.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# The product image (scripts/build-image.sh, tests/image.rs): podman with runc (crun fails on hybrid
# cgroups), the overlay storage driver (fuse-overlayfs where the kernel's cannot be used), CNI
# plugins for podman's default network, slirp4netns and uidmap for rootless use, the CA bundle.
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v newuidmap >/dev/null 2>&1 || need+=(uidmap)
command -v slirp4netns >/dev/null 2>&1 || need+=(slirp4netns)
command -v fuse-overlayfs >/dev/null 2>&1 || need+=(fuse-overlayfs)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)

if [ "${#need[@]}" -gt 0 ]; then
  echo "[install-deps] installing: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  # Wait for another apt-get (a parallel session or an unattended upgrade) instead of failing.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package starts a cluster of its own; the tests start private servers instead.
if command -v pg_lsclusters >/dev/null 2>&1 && [ "${STOP_SYSTEM_POSTGRES:-1}" = 1 ]; then
  pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1, $2}' | while read -r v c; do
    pg_ctlcluster "$v" "$c" stop >/dev/null 2>&1 || true
  done
fi
# The Debian packages of Prometheus and Alertmanager (and the node exporter Prometheus recommends)
# start system services on 9090/9093/9100; the tests start private processes on free ports instead.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for unit in prometheus prometheus-alertmanager prometheus-node-exporter; do
    if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit" 2>/dev/null; then
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
  done
fi
# Without systemd (containers) the packages' init scripts may still have started the daemons.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
  if [ -x "/etc/init.d/$svc" ] && "/etc/init.d/$svc" status >/dev/null 2>&1; then
    "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
  fi
done
if ! command -v cargo >/dev/null 2>&1; then
  echo "[install-deps] cargo is missing: this project needs a Rust toolchain (rustup)" >&2
  exit 1
fi
