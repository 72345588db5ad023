"""dockerboot-wizard core: everything the TUI and the headless CLI do, without a UI.

This package never imports Textual (tests/unit/test_import_hygiene.py enforces it).
"""
