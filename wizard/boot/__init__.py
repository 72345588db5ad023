"""The boot set: generations of kernel + initramfs, their build, the boot entries, their status."""
