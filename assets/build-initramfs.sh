#!/bin/sh
# Build the kernel + initramfs pair INSIDE a throwaway container of the boot
# image, so kernel, initramfs modules and /lib/modules of the booted root match.
#
# Usage: build-initramfs.sh <generator> <kver> <outdir> <image-name> <image-tag>
#   generator: initramfs-tools | dracut | mkinitcpio
# The wizard's assets are bind-mounted read-only at /dockerboot and <outdir>
# is a writable bind mount; results: <outdir>/vmlinuz.new, <outdir>/initrd.img.new.
# Progress lines start with "dockerboot-build: "; on failure the last line is
# "dockerboot-build: error: <what>" and the exit status is non-zero.
set -eu

# Imported images may carry no PATH of their own.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

say() { echo "dockerboot-build: $*"; }
die() { echo "dockerboot-build: error: $*"; exit 1; }

[ $# -eq 5 ] || die "usage: build-initramfs.sh <generator> <kver> <outdir> <image-name> <image-tag>"
generator=$1 kver=$2 outdir=$3 image_name=$4 image_tag=$5
assets=/dockerboot

[ -d "$outdir" ] || die "output directory $outdir does not exist"
[ -d "/usr/lib/modules/$kver" ] || [ -d "/lib/modules/$kver" ] \
  || die "kernel $kver has no modules directory in this image"

# install_file SRC DEST MODE: copy one asset, failing loudly when it is missing.
install_file() {
  [ -f "$1" ] || die "asset $1 is missing from the wizard's assets"
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2"
  chmod "$3" "$2"
}

say "installing the dockerboot hook for $generator"
install_file "$assets/hook/dockerboot-core.sh" /usr/lib/dockerboot/dockerboot-core.sh 0755
# Sourced by the core: boot assessment and fallback to the last good image.
install_file "$assets/hook/dockerboot-assess.sh" /usr/lib/dockerboot/dockerboot-assess.sh 0755
# Sourced by the core too: its parts, dockerboot-<part>.sh (the core's
# _db_parts names them).  Every dockerboot-*.sh goes, and the adapters ship
# every one they find: none of them lists the parts.  Nothing older stays.
for f in /usr/lib/dockerboot/dockerboot-*.sh; do
  case ${f##*/} in dockerboot-core.sh | dockerboot-assess.sh) ;; *) rm -f "$f" ;; esac
done
for f in "$assets"/hook/dockerboot-*.sh; do
  install_file "$f" "/usr/lib/dockerboot/${f##*/}" 0755
done
# The hook installs these into the booted root: they mark a boot good.
install_file "$assets/hook/dockerboot-mark-good" /usr/lib/dockerboot/dockerboot-mark-good 0755
install_file "$assets/hook/dockerboot-mark-good.service" /usr/lib/dockerboot/dockerboot-mark-good.service 0644
# The default image the hook boots when the command line names none.
printf '{"docker_image": "%s", "docker_tag": "%s"}\n' "$image_name" "$image_tag" >/etc/docker-btrfs.json

case $generator in
initramfs-tools)
  install_file "$assets/initramfs-tools/hooks/dockerboot" /etc/initramfs-tools/hooks/dockerboot 0755
  install_file "$assets/initramfs-tools/scripts/local-premount/dockerboot" \
    /etc/initramfs-tools/scripts/local-premount/dockerboot 0755
  install_file "$assets/initramfs-tools/scripts/local-bottom/dockerboot" \
    /etc/initramfs-tools/scripts/local-bottom/dockerboot 0755
  # conf.d is sourced after initramfs.conf, so this wins over an image that
  # chose MODULES=dep: "dep" would inspect the build host's hardware.
  # RESUME=none: the root is a fresh snapshot at every boot, so resuming a
  # hibernated system can never be right, and probing swap here would look
  # at the host.
  mkdir -p /etc/initramfs-tools/conf.d
  printf 'MODULES=most\nRESUME=none\n' >/etc/initramfs-tools/conf.d/zz-dockerboot
  say "running mkinitramfs for $kver"
  mkinitramfs -o "$outdir/initrd.img.new" "$kver" 2>&1 || die "mkinitramfs failed for kernel $kver"
  ;;
dracut)
  [ -d "$assets/dracut/90dockerboot" ] || die "asset $assets/dracut/90dockerboot is missing from the wizard's assets"
  rm -rf /usr/lib/dracut/modules.d/90dockerboot
  mkdir -p /usr/lib/dracut/modules.d
  cp -R "$assets/dracut/90dockerboot" /usr/lib/dracut/modules.d/90dockerboot
  chmod 0755 /usr/lib/dracut/modules.d/90dockerboot/*
  # No --conf/--confdir: the image's own /etc/dracut.conf.d stays in force
  # (e.g. an image that adds the systemd module gets a systemd initramfs).
  say "running dracut for $kver"
  dracut --no-hostonly --force --add dockerboot --kver "$kver" "$outdir/initrd.img.new" 2>&1 \
    || die "dracut failed for kernel $kver"
  ;;
mkinitcpio)
  install_file "$assets/mkinitcpio/install/dockerboot" /etc/initcpio/install/dockerboot 0644
  install_file "$assets/mkinitcpio/install/sd-dockerboot" /etc/initcpio/install/sd-dockerboot 0644
  install_file "$assets/mkinitcpio/hooks/dockerboot" /etc/initcpio/hooks/dockerboot 0644
  install_file "$assets/mkinitcpio/dockerboot.service" /usr/lib/dockerboot/dockerboot.service 0644
  # A systemd initramfs never runs busybox run_hooks: it needs the unit.
  hook=dockerboot
  if cat /etc/mkinitcpio.conf /etc/mkinitcpio.conf.d/*.conf 2>/dev/null \
      | grep -E '^[[:space:]]*HOOKS\+?=' | grep -qw systemd; then
    hook=sd-dockerboot
  fi
  # -S autodetect: autodetect would trim the image to the build host's hardware.
  say "running mkinitcpio for $kver with hook $hook"
  mkinitcpio -k "$kver" -g "$outdir/initrd.img.new" -S autodetect -A "$hook" 2>&1 \
    || die "mkinitcpio failed for kernel $kver"
  ;;
*)
  die "unknown generator '$generator' (expected initramfs-tools, dracut or mkinitcpio)"
  ;;
esac
[ -s "$outdir/initrd.img.new" ] || die "$generator produced no initramfs"

say "copying kernel $kver"
kernel=
for k in "/boot/vmlinuz-$kver" "/usr/lib/modules/$kver/vmlinuz" "/lib/modules/$kver/vmlinuz"; do
  if [ -f "$k" ]; then kernel=$k; break; fi
done
[ -n "$kernel" ] || die "no kernel image for $kver in /boot or /usr/lib/modules/$kver"
cp "$kernel" "$outdir/vmlinuz.new"
[ -s "$outdir/vmlinuz.new" ] || die "copying $kernel produced an empty file"
sync
say "done"
