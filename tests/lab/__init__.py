"""The real test lab: loop btrfs disks, udevd, a private dockerd, QEMU boots."""
