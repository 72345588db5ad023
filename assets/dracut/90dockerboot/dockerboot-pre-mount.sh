#!/bin/sh
# dracut pre-mount hook for dockerboot.  SOURCED by dracut: return, never exit.
# Rebuilds the rw root subvolume; dracut's (or systemd's) normal
# root=/rootflags= mount then boots it.  "late": the partition's top level
# stays mounted for that mount to share; dockerboot-pre-pivot.sh unmounts it.
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh
. /usr/lib/dockerboot/dockerboot-core.sh

if ! dockerboot_main late; then
    # The core printed what is wrong and what to do; let the user fix it.
    emergency_shell -n dockerboot "dockerboot could not prepare the root (see the dockerboot: line above)"
    return 1
fi
return 0
