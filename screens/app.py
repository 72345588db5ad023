"""Entry point of ``dockerboot-wizard``.

Headless commands go straight to the core (no Textual import, fast start);
the interactive wizard is the TUI of the next milestone.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Dispatch to the headless CLI (the TUI is not built yet)."""
    from wizard.cli import main as cli_main

    sys.exit(cli_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
