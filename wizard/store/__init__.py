"""The Docker store: the daemon, images and their subvolumes, throwaway containers, pins."""
