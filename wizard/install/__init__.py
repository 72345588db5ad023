"""A new machine from a disk: ``dockerboot-wizard install`` (``flow``)."""
