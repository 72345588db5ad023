"""The disk: btrfs partitions found through udev, and their mounts."""
