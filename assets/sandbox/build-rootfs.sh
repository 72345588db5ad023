#!/bin/sh
# Build (once) and cache a minimal bootable Debian root filesystem tarball for
# the test lab and the sandbox demo.
#   Usage: build-rootfs.sh initramfs-tools|dracut|initramfs-tools-systemd|dracut-systemd|
#                          initramfs-tools-systemd-sb|dracut-systemd-sb|initramfs-tools-bpo|dracut-bpo
# Prints the tarball path.  The cache lives outside the repo
# (DOCKERBOOT_CACHE, default /var/cache/dockerboot-wizard) because debootstrap
# takes minutes and CI reruns on the same machine.
#   initramfs-tools          debootstrap minbase + kernel, initramfs-tools, btrfs-progs
#   dracut                   the above, dracut (and systemd-sysv) instead of initramfs-tools
#   <generator>-systemd      <generator> plus a real systemd boot to a login prompt:
#                            systemd-sysv, dbus, libpam-systemd, sudo, docker.io
#   <generator>-systemd-sb   <generator>-systemd plus the distribution's signed boot
#                            chain: shim-signed, grub-efi-amd64-signed (Secure Boot)
#   <generator>-bpo          <generator> after a kernel update: only the
#                            bookworm-backports kernel (6.12), the 6.1 one purged,
#                            as a rebuild of a Dockerfile switched to backports
set -eu
usage="usage: build-rootfs.sh initramfs-tools|dracut|initramfs-tools-systemd|dracut-systemd|initramfs-tools-systemd-sb|dracut-systemd-sb|initramfs-tools-bpo|dracut-bpo"
variant=${1:?$usage}
cache=${DOCKERBOOT_CACHE:-/var/cache/dockerboot-wizard}
suite=${DOCKERBOOT_SUITE:-bookworm}
case "$variant" in
  initramfs-tools) base= ; packages= ;;
  # The kernel pulled initramfs-tools in first; dracut replaces it.
  dracut) base=initramfs-tools; packages="dracut systemd-sysv" ;;
  # No grub-efi-amd64 (unsigned) beside them: nothing runs grub-install in the chroot.
  initramfs-tools-systemd-sb|dracut-systemd-sb)
    base=${variant%-sb}; packages="shim-signed grub-efi-amd64-signed" ;;
  initramfs-tools-systemd|dracut-systemd)
    base=${variant%-systemd}; packages="systemd-sysv dbus libpam-systemd sudo docker.io" ;;
  # Empty packages: the kernel update below is all this variant installs.
  initramfs-tools-bpo|dracut-bpo) base=${variant%-bpo}; packages= ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
mkdir -p "$cache"
out="$cache/rootfs-$suite-$variant.tar"
[ -s "$out" ] && { echo "$out"; exit 0; }
# One build of a variant at a time (tests run side by side): a second caller
# waits here, then finds the tarball the first one made.
exec 9>"$cache/.lock-$variant"
flock 9
[ -s "$out" ] && { echo "$out"; exit 0; }

# The mirror is whatever this machine's apt already uses: no host is baked in.
mirror=$(grep -rhoE '^(deb|URIs:)[[:space:]]+[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
  | awk '{print $NF}' | grep -E '/debian/?$' | head -n1)
[ -n "$mirror" ] || { echo "build-rootfs: no apt mirror found in /etc/apt/sources.list*" >&2; exit 1; }

work=$(mktemp -d "$cache/.build-$variant.XXXXXX")
trap 'umount -R "$work/root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -n "$base" ]; then
  base_tar=$("$0" "$base")
  mkdir "$work/root"
  tar -C "$work/root" -xpf "$base_tar"
  cp /etc/resolv.conf "$work/root/etc/resolv.conf"
  mount -t proc proc "$work/root/proc"
  # No service may start inside the chroot (docker.io has an init script).
  printf '#!/bin/sh\nexit 101\n' > "$work/root/usr/sbin/policy-rc.d"
  chmod 755 "$work/root/usr/sbin/policy-rc.d"
  case "$variant" in
    *-bpo)
      echo "deb $mirror $suite-backports main" > "$work/root/etc/apt/sources.list.d/backports.list"
      chroot "$work/root" apt-get update -qq >&2
      # -t: the backports kernel and whatever newer linux-base it needs; the
      # kernel's postinst hook has the installed generator build its initrd.
      chroot "$work/root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends -t "$suite-backports" linux-image-amd64 >&2
      # The 6.1 kernel is linux-image-6.1.0-<abi>-amd64: the dot keeps the
      # pattern off linux-image-6.12….  dpkg-query fails (and so the build)
      # when there is none, i.e. the base no longer has the kernel we replace.
      # shellcheck disable=SC2016  # ${Package} is dpkg-query's, not the shell's
      old=$(chroot "$work/root" dpkg-query -W -f '${Package}\n' 'linux-image-6.1.[0-9]*')
      # shellcheck disable=SC2086
      chroot "$work/root" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $old >&2
      chroot "$work/root" apt-get clean
      # Exactly one kernel left, the backports one, with its vmlinuz and initrd.
      kvers=$(ls "$work/root/lib/modules")
      case "$kvers" in
        *[[:space:]]*|'') echo "build-rootfs: expected one kernel in /lib/modules, found: $kvers" >&2; exit 1 ;;
      esac
      for f in vmlinuz initrd.img; do
        [ -s "$work/root/boot/$f-$kvers" ] || { echo "build-rootfs: /boot/$f-$kvers missing" >&2; exit 1; }
      done
      case "$kvers" in
        6.1.*) echo "build-rootfs: the kernel is still $kvers, not the backports one" >&2; exit 1 ;;
      esac
      ;;
    *)
      chroot "$work/root" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages && apt-get clean" >&2
      ;;
  esac
  rm -f "$work/root/usr/sbin/policy-rc.d"
  umount "$work/root/proc"
  : > "$work/root/etc/resolv.conf"
else
  debootstrap --variant=minbase \
    --include=linux-image-amd64,initramfs-tools,btrfs-progs,busybox,kmod,udev,zstd \
    "$suite" "$work/root" "$mirror" >&2
  chroot "$work/root" apt-get clean
fi
rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin
tar -C "$work/root" --numeric-owner --xattrs -cpf "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
