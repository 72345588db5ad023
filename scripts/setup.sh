#!/bin/sh
# Install everything the tool, its tests and the demo need on a fresh Debian 12
# machine, and start the services they use.  Idempotent; run as root.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "setup: run as root (sudo make …)" >&2; exit 1; }

packages="docker.io btrfs-progs udev busybox debootstrap qemu-system-x86 ovmf refind
  mtools dosfstools gdisk fdisk util-linux kmod tmux cpio zstd xz-utils ca-certificates
  shellcheck sbsigntool systemd-boot-efi"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

modprobe loop 2>/dev/null || true
modprobe btrfs 2>/dev/null || true
if ! pgrep -x systemd-udevd >/dev/null; then
  /lib/systemd/systemd-udevd --daemon
fi
udevadm trigger --action=add --subsystem-match=block
udevadm settle --timeout=30
