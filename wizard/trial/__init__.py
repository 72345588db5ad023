"""Try before you reboot: the next boot, exactly, in a VM over a copy; the partition unchanged."""
