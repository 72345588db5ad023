"""Shared parts of every step screen: the base, the work log, the problem and apply screens."""
