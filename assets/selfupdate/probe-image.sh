# The image probe: its kernels, initramfs generator(s) and btrfs-progs.
# Runs as /bin/sh -c in a throwaway container of the image, for the wizard
# (wizard/boot/initramfs_detect.py) and for the booted system's dockerboot-update.
# Prints "kernel <kver> <path>", "generator <binary>", "btrfs <path>" and
# "systemd yes" lines.  /lib is often a symlink to /usr/lib, so the same kernel may be
# listed twice; the readers deduplicate.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
for d in /lib/modules/* /usr/lib/modules/*; do
  [ -d "$d" ] || continue
  k=${d##*/}
  for f in "/boot/vmlinuz-$k" "$d/vmlinuz"; do
    if [ -f "$f" ]; then echo "kernel $k $f"; break; fi
  done
done
for g in mkinitramfs dracut mkinitcpio; do
  p=$(command -v "$g" 2>/dev/null) && echo "generator $g $p"
done
p=$(command -v btrfs 2>/dev/null) && echo "btrfs $p"
# Whether it marks its boots good (machine.has_systemd, the hook's test): the
# bootloader then counts a new generation's tries.
{ [ -d /etc/systemd/system ] || [ -f /lib/systemd/systemd ]; } && echo "systemd yes"
exit 0
