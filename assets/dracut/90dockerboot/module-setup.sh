#!/bin/bash
# dracut module for dockerboot (DESIGN §3): runs the core in pre-mount, so
# it works with the dracut shell init and with systemd in the initramfs
# (dracut-pre-mount.service is ordered before sysroot.mount).

# fail: one line naming what the image lacks.
_dockerboot_fail() { derror "dockerboot: $1 — $2" 2>/dev/null || echo "dockerboot: $1 — $2" >&2; }

check() {
    if ! command -v btrfs >/dev/null 2>&1; then
        _dockerboot_fail "btrfs (btrfs-progs) is missing in the image" "add btrfs-progs to the Dockerfile"
        return 1
    fi
    if [ ! -f /usr/lib/dockerboot/dockerboot-core.sh ] || [ ! -f /etc/docker-btrfs.json ]; then
        _dockerboot_fail "the dockerboot core or /etc/docker-btrfs.json is missing" \
            "run the build through dockerboot-wizard (build-initramfs.sh installs them)"
        return 1
    fi
    # Only when asked for (--add dockerboot): never on an ordinary rebuild.
    return 255
}

depends() {
    return 0
}

installkernel() {
    hostonly='' instmods btrfs
}

install() {
    inst_simple /usr/lib/dockerboot/dockerboot-core.sh
    # The core's parts, sourced by it from its own directory: every
    # dockerboot-*.sh there (the core names them, build-initramfs.sh installs them).
    local f
    for f in /usr/lib/dockerboot/dockerboot-*.sh; do
        inst_simple "$f"
    done
    # Sourced by the core (assessment, fallback); the other two go into the
    # booted root (they mark a boot good).
    inst_simple /usr/lib/dockerboot/dockerboot-assess.sh
    inst_simple /usr/lib/dockerboot/dockerboot-mark-good
    inst_simple /usr/lib/dockerboot/dockerboot-mark-good.service
    inst_simple /etc/docker-btrfs.json
    # Coreutils cp keeps xattrs/capabilities; beside the core so nothing
    # else in the initramfs changes.
    inst "$(command -v cp)" /usr/lib/dockerboot/cp
    inst "$(command -v sha256sum)" /usr/lib/dockerboot/sha256sum
    inst_multiple btrfs mount umount mkdir rmdir mv rm cat grep sed tr cut sort tail dirname sleep find readlink \
        stat chmod chown ln
    inst_multiple -o blkid modprobe
    inst_hook pre-mount 10 "$moddir/dockerboot-pre-mount.sh"
    # Unmounts the top level the pre-mount hook leaves mounted for the root mount.
    inst_hook pre-pivot 10 "$moddir/dockerboot-pre-pivot.sh"
}
