"""The Initramfs and Bootloader steps."""
