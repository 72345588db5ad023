#!/bin/sh
# dracut pre-mount hook for dockerboot.  SOURCED by dracut: return, never exit.
# Rebuilds the rw root subvolume; dracut's (or systemd's) normal
# root=/rootflags= mount then boots it.  "late": the partition's top level
# stays mounted for that mount to share; dockerboot-pre-pivot.sh unmounts it.
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh
. /usr/lib/dockerboot/dockerboot-core.sh

if ! dockerboot_main late; then
    # The core printed what is wrong and what to do.  Leaving the shell does
    # not run the hook again: the root mount takes the rw layer as the boot
    # before left it (the hook marked it stale: dockerboot-stale.sh).
    emergency_shell -n dockerboot "dockerboot could not prepare the root (see the dockerboot: line above); fix it and reboot, or exit the shell to boot the root of the boot before, unchanged and not marked good"
    return 1
fi
return 0
