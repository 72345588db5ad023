#!/bin/sh
# dracut pre-pivot hook for dockerboot.  SOURCED by dracut: return, never exit.
# The root is mounted (by dracut or by systemd's sysroot.mount): unmount the
# partition's top level that the pre-mount hook left mounted for it.
. /usr/lib/dockerboot/dockerboot-core.sh
dockerboot_finish
return 0
