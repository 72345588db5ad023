"""The bootloaders and the ESP they live on: the ESP found, GRUB from the image, its grub.cfg."""
