"""The settings: the saved configuration, the kernel options and the command line."""
