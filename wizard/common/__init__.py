"""Common ground: errors, typed events, atomic writes, the lock, the mount table, assets."""
