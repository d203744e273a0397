#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) cloud image with cloud-init, from Debian packages only.
#
#   scripts/build-debian-image.sh OUT_DIR
#
# OUT_DIR receives:
#   disk.qcow2     GPT disk: p1 = EFI System Partition (FAT32, also BIOS-bootable through syslinux),
#                  p2 = ext4 root (LABEL=debian-root), last on the disk so cloud-init can grow it
#   manifest.json  what it is (kernel, cmdline, package versions, sizes, sha256, build time)
#
# Boots with either firmware, so import it as `--format qcow2 --firmware bios` or `--firmware uefi`:
#   BIOS: gptmbr.bin in the protective MBR -> syslinux on the ESP (LegacyBIOSBootable) -> vmlinuz + initrd
#   UEFI: \EFI\BOOT\BOOTX64.EFI = systemd-boot (from the guest's own systemd-boot-efi) -> the same files
# No loop devices, no mounts of the image: filesystems are made in plain files (mkfs.ext4 -d, mkfs.vfat +
# mtools), written into the partitions with dd, and the partition table with sfdisk on the file.
# See docs/guest-images.md for why, and for measured figures.
#
# Idempotent: the result is cached under $YUNHAI_DEBIAN_CACHE (default /var/tmp/yunhai-debian), keyed by
# this script and the candidate versions of the packages it installs; a cached build is just copied.
#
# Environment: YUNHAI_DEBIAN_MIRROR (default http://deb.debian.org/debian), YUNHAI_DEBIAN_CACHE,
# YUNHAI_DEBIAN_REBUILD=1 (ignore the cache). Needs root (debootstrap, chroot).
set -euo pipefail

if [[ $# -ne 1 || $1 == -h || $1 == --help ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit $(($# == 1 ? 0 : 2))
fi

OUT_DIR=$1
SUITE=bookworm
MIRROR=${YUNHAI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${YUNHAI_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE_ROOT=${YUNHAI_DEBIAN_CACHE:-/var/tmp/yunhai-debian}
ROOT_LABEL=debian-root
ESP_LABEL=ESP
ESP_MIB=128
HOSTNAME_DEFAULT=debian
CMDLINE="root=LABEL=$ROOT_LABEL ro console=ttyS0,115200n8 consoleblank=0"
# The guest's packages, installed with apt-get in the chroot after a minbase debootstrap (debootstrap's
# own --include configures python3-cryptography before its dependencies and fails). Dependencies come
# along; Recommends do not.
PACKAGES=(
  linux-image-cloud-amd64 initramfs-tools systemd-sysv udev dbus
  cloud-init cloud-guest-utils fdisk e2fsprogs
  ifupdown isc-dhcp-client iproute2 netbase
  sudo procps less ca-certificates openssh-server systemd-boot-efi
)

START=$EPOCHREALTIME
elapsed() { awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
step() { printf '[build-debian-image %6ss] %s\n' "$(elapsed)" "$*"; }
die() {
  echo "build-debian-image: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap and chroot)"

# ---- host tools (all Debian packages) -------------------------------------------------------------
need=()
for pair in debootstrap:debootstrap mformat:mtools mcopy:mtools sfdisk:fdisk syslinux:syslinux \
  mkfs.vfat:dosfstools qemu-img:qemu-utils mkfs.ext4:e2fsprogs; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[[ -f /usr/lib/SYSLINUX/gptmbr.bin ]] || need+=(syslinux-common)
if ((${#need[@]})); then
  step "installing host tools: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

# ---- cache key: this script + candidate versions of what it installs ------------------------------
candidates() {
  LC_ALL=C apt-cache policy "${PACKAGES[@]}" syslinux 2>/dev/null |
    awk '/^[^ ]/ {p=$1} /Candidate:/ {print p, $2}'
}
versions=$(candidates)
if grep -q '(none)' <<<"$versions" || [[ $(wc -l <<<"$versions") -lt ${#PACKAGES[@]} ]]; then
  step "apt-get update (no candidate versions known)"
  apt-get update >/dev/null
  versions=$(candidates)
fi
KEY=$( (
  cat "$0"
  echo "$SUITE $MIRROR"
  echo "$versions"
) | sha256sum | cut -c1-16)
CACHED="$CACHE_ROOT/$KEY"

publish() {
  mkdir -p "$OUT_DIR"
  if [[ "$(realpath "$OUT_DIR")" != "$(realpath "$CACHED")" ]]; then
    cp --reflink=auto "$CACHED/disk.qcow2" "$OUT_DIR/disk.qcow2.tmp"
    mv "$OUT_DIR/disk.qcow2.tmp" "$OUT_DIR/disk.qcow2"
    cp "$CACHED/manifest.json" "$OUT_DIR/manifest.json"
  fi
  step "image: $OUT_DIR/disk.qcow2 ($(du -h --apparent-size "$OUT_DIR/disk.qcow2" | cut -f1))"
  step "import: yunhai image import debian-12 --format qcow2 --disk $(realpath "$OUT_DIR")/disk.qcow2 --os-distro debian-12 --firmware bios   (or uefi)"
}

if [[ -z ${YUNHAI_DEBIAN_REBUILD:-} && -f "$CACHED/manifest.json" && -f "$CACHED/disk.qcow2" ]]; then
  step "cached build $KEY"
  publish
  exit 0
fi

# ---- debootstrap ----------------------------------------------------------------------------------
mkdir -p "$CACHE_ROOT"
WORK=$(mktemp -d "$CACHE_ROOT/build.XXXXXX")
ROOT="$WORK/root"
mounted=()
cleanup() {
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  for m in proc sys dev/pts; do umount -l "$ROOT/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

step "debootstrap --variant=minbase $SUITE into $ROOT"
mkdir -p "$CACHE_ROOT/debs"
DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --cache-dir="$CACHE_ROOT/debs" \
  "$SUITE" "$ROOT" "$MIRROR" \
  >"$WORK/debootstrap.log" 2>&1 ||
  {
    tail -30 "$WORK/debootstrap.log" "$ROOT/debootstrap/debootstrap.log" >&2 || true
    die "debootstrap failed (log above)"
  }

in_root() { chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
mount -t proc proc "$ROOT/proc" && mounted+=("$ROOT/proc")
mount -t sysfs sys "$ROOT/sys" && mounted+=("$ROOT/sys")

# ---- packages: apt inside the chroot (orders postinsts properly, takes security updates) ----------
step "apt sources ($SUITE, -updates, -security); apt-get install of ${#PACKAGES[@]} packages"
rm -f "$ROOT/etc/apt/sources.list"
cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# No daemons start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
apt_in_root() {
  in_root apt-get -y -o Dpkg::Options::=--force-confold "$@" >>"$WORK/apt.log" 2>&1 || {
    tail -30 "$WORK/apt.log" >&2
    die "apt-get $* in the chroot failed"
  }
}
apt_in_root update
apt_in_root upgrade
apt_in_root install --no-install-recommends "${PACKAGES[@]}"

step "configuring: fstab, hostname, cloud-init, serial console, ESP sync hooks"
cat >"$ROOT/etc/fstab" <<EOF
# <file system>       <mount point> <type> <options>                       <dump> <pass>
LABEL=$ROOT_LABEL     /             ext4   rw,discard,errors=remount-ro    0      1
LABEL=$ESP_LABEL      /boot/efi     vfat   umask=0077,noauto,nofail,x-systemd.automount 0 0
EOF
mkdir -p "$ROOT/boot/efi"
echo "$HOSTNAME_DEFAULT" >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<EOF
127.0.0.1 localhost
127.0.1.1 $HOSTNAME_DEFAULT

::1 localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
EOF
cat >"$ROOT/etc/network/interfaces" <<'EOF'
# cloud-init writes the NICs' configuration to /etc/network/interfaces.d/50-cloud-init
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
EOF
cat >"$ROOT/etc/cloud/cloud.cfg.d/90_yunhai.cfg" <<'EOF'
# Yunhai delivers user-data and meta-data on a NoCloud seed disk (an ISO 9660 volume labelled cidata).
datasource_list: [ NoCloud, None ]
# C.UTF-8 is built into libc: no locale-gen at first boot (the locales package is not installed).
locale: C.UTF-8
# DSA host keys are obsolete; OpenSSH 9 in bookworm does not load them by default.
ssh_genkeytypes: [ rsa, ecdsa, ed25519 ]
EOF
echo 'LANG=C.UTF-8' >"$ROOT/etc/default/locale"
# Kernel updates inside the guest: keep the copies on the ESP (what both boot loaders read) current.
mkdir -p "$ROOT/etc/kernel/postinst.d" "$ROOT/etc/initramfs/post-update.d"
cat >"$ROOT/etc/kernel/postinst.d/zz-yunhai-esp" <<'EOF'
#!/bin/sh
# Copies the newest kernel and initrd to the EFI System Partition, which syslinux (BIOS) and
# systemd-boot (UEFI) boot from (installed by Yunhai's build-debian-image.sh).
set -e
mountpoint -q /boot/efi || exit 0
[ -e /vmlinuz ] && cp -L /vmlinuz /boot/efi/vmlinuz.new && mv /boot/efi/vmlinuz.new /boot/efi/vmlinuz
[ -e /initrd.img ] && cp -L /initrd.img /boot/efi/initrd.new && mv /boot/efi/initrd.new /boot/efi/initrd.img
exit 0
EOF
chmod 755 "$ROOT/etc/kernel/postinst.d/zz-yunhai-esp"
cp "$ROOT/etc/kernel/postinst.d/zz-yunhai-esp" "$ROOT/etc/initramfs/post-update.d/zz-yunhai-esp"
# No swap here; stop initramfs-tools looking for a resume device.
echo 'RESUME=none' >"$ROOT/etc/initramfs-tools/conf.d/resume"

step "configuring: initramfs"
in_root update-initramfs -u -k all >"$WORK/initramfs.log" 2>&1 || {
  tail "$WORK/initramfs.log" >&2
  die "update-initramfs failed"
}

step "recording versions, cleaning up"
KVER=$(basename "$(readlink -f "$ROOT/vmlinuz")" | sed 's/^vmlinuz-//')
in_root dpkg-query -W -f '${Package}\t${Version}\n' >"$WORK/packages.tsv"
in_root apt-get clean
rm -f "$ROOT/usr/sbin/policy-rc.d" "$ROOT/etc/resolv.conf"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/lib/cloud/* "$ROOT"/tmp/* \
  "$ROOT"/var/tmp/* "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/* "$ROOT"/etc/ssh/ssh_host_*
find "$ROOT/var/log" -type f -exec truncate -s0 {} +
# Each instance gets its own machine-id on first boot.
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$ROOT/var/lib/dbus/machine-id"
for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}"; done
mounted=()

# ---- ESP: kernel, initrd, syslinux (BIOS), systemd-boot (UEFI) ------------------------------------
step "ESP: FAT32 ${ESP_MIB} MiB with syslinux and systemd-boot"
ESP_START=2048 # sectors: 1 MiB
ESP_SECTORS=$((ESP_MIB * 2048))
ROOT_START=$((ESP_START + ESP_SECTORS))
ESP="$WORK/esp.img"
mkfs.vfat -F 32 -n "$ESP_LABEL" -h "$ESP_START" -C "$ESP" $((ESP_MIB * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mm() { mmd -i "$ESP" "$@"; }
mc() { mcopy -o -i "$ESP" "$@"; }
mm ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mc "$(readlink -f "$ROOT/vmlinuz")" ::/vmlinuz
mc "$(readlink -f "$ROOT/initrd.img")" ::/initrd.img
mc "$ROOT/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
printf 'default debian.conf\ntimeout 0\nconsole-mode keep\neditor no\n' >"$WORK/loader.conf"
printf 'title Debian GNU/Linux 12 (bookworm)\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' \
  "$CMDLINE" >"$WORK/debian.conf"
printf 'SERIAL 0 115200\nDEFAULT debian\nPROMPT 0\nTIMEOUT 0\nLABEL debian\n  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND %s\n' \
  "$CMDLINE" >"$WORK/syslinux.cfg"
mc "$WORK/loader.conf" ::/loader/loader.conf
mc "$WORK/debian.conf" ::/loader/entries/debian.conf
mc "$WORK/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$ESP"

# ---- root filesystem ------------------------------------------------------------------------------
used=$(du -sb "$ROOT" | cut -f1)
# Room for the journal, inode tables and some headroom; cloud-init grows it to the instance's disk.
ROOT_MIB=$(((used * 5 / 4 / 1048576 + 256 + 63) / 64 * 64))
step "root: ext4 ${ROOT_MIB} MiB (content $((used / 1048576)) MiB) from mkfs.ext4 -d"
ROOTFS="$WORK/root.ext4"
mkfs.ext4 -q -F -L "$ROOT_LABEL" -b 4096 -m 1 -d "$ROOT" "$ROOTFS" "${ROOT_MIB}M"
ROOT_SECTORS=$((ROOT_MIB * 2048))

# ---- disk -----------------------------------------------------------------------------------------
DISK_SECTORS=$((ROOT_START + ROOT_SECTORS + 2048)) # + 1 MiB for the backup GPT
step "disk: GPT, $((DISK_SECTORS / 2048)) MiB"
RAW="$WORK/disk.raw"
truncate -s $((DISK_SECTORS * 512)) "$RAW"
sfdisk -q "$RAW" <<EOF
label: gpt
first-lba: 2048
start=$ESP_START, size=$ESP_SECTORS, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System", attrs="LegacyBIOSBootable"
start=$ROOT_START, size=$ROOT_SECTORS, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"
EOF
dd if=/usr/lib/SYSLINUX/gptmbr.bin of="$RAW" bs=440 count=1 conv=notrunc status=none
dd if="$ESP" of="$RAW" bs=1M seek=$((ESP_START / 2048)) conv=notrunc,sparse status=none
dd if="$ROOTFS" of="$RAW" bs=1M seek=$((ROOT_START / 2048)) conv=notrunc,sparse status=none
rm -f "$ESP" "$ROOTFS"

step "qcow2: qemu-img convert"
qemu-img convert -O qcow2 "$RAW" "$WORK/disk.qcow2"
rm -f "$RAW"

BUILD_SECONDS=$(elapsed)
SHA=$(sha256sum "$WORK/disk.qcow2" | cut -d' ' -f1)
VSIZE=$(qemu-img info --output=json "$WORK/disk.qcow2" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p' | head -1)
/usr/bin/python3 - "$WORK" <<EOF
import json, os, sys
work = sys.argv[1]
pkgs = dict(line.rstrip("\n").split("\t") for line in open(os.path.join(work, "packages.tsv")))
manifest = {
    "name": "debian-12",
    "format": "qcow2",
    "file": "disk.qcow2",
    "firmware": ["bios", "uefi"],
    "osType": "linux",
    "osDistro": "debian-12",
    "suite": "$SUITE",
    "kernelVersion": "$KVER",
    "cmdline": "$CMDLINE",
    "rootLabel": "$ROOT_LABEL",
    "espLabel": "$ESP_LABEL",
    "sizeBytes": os.path.getsize(os.path.join(work, "disk.qcow2")),
    "virtualSizeBytes": int("$VSIZE"),
    "sha256": "$SHA",
    "cacheKey": "$KEY",
    "buildSeconds": round(float("$BUILD_SECONDS"), 1),
    "keyPackages": {p: pkgs.get(p) for p in "${PACKAGES[*]}".split()},
    "packageCount": len(pkgs),
    "packages": pkgs,
}
json.dump(manifest, open(os.path.join(work, "manifest.json"), "w"), indent=2)
EOF
rm -rf "$CACHED"
mkdir -p "$CACHED"
mv "$WORK/disk.qcow2" "$WORK/manifest.json" "$CACHED/"
# Older builds (other keys) are superseded.
find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[0-9a-f]{16}' \
  ! -name "$KEY" -exec rm -rf {} +
step "built in ${BUILD_SECONDS}s, cached as $CACHED"
publish
