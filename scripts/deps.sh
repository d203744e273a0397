#!/usr/bin/env bash
# Install the Debian packages Yunhai needs for development and tests.
#
# Idempotent: when every package is already installed this only runs one
# dpkg-query per package and exits (well under a second). Otherwise it runs
# `apt-get update` followed by a non-interactive `apt-get install` of the list.
# Uses sudo only when not running as root.
set -euo pipefail

PACKAGES=(postgresql awscli rclone s3cmd python3 make g++ ca-certificates qemu-system-x86 qemu-utils busybox-static kmod cpio ovmf xz-utils chromium fonts-wqy-zenhei iproute2)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps.sh: dpkg-query not found; this script supports Debian/Ubuntu only." >&2
  echo "deps.sh: please install manually: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  # Status is e.g. "install ok installed" or "hold ok installed"; anything else
  # (including "unknown package", which makes dpkg-query fail) counts as missing.
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  case "$status" in
    *"ok installed"*) ;;
    *) missing+=("$pkg") ;;
  esac
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "deps.sh: missing Debian packages: ${missing[*]}" >&2

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps.sh: not root and sudo is not available; run as root or install: ${PACKAGES[*]}" >&2
    exit 1
  fi
  SUDO=sudo
fi

$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${PACKAGES[@]}"
