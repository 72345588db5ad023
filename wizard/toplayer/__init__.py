"""The top layer and the machine: per-machine files, users, fstab, the in-system update."""
