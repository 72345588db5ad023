"""The command line: ``dockerboot-wizard`` headless commands (``python -m wizard.cli``)."""
