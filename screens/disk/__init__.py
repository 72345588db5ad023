"""The Partition step."""
