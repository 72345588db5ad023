"""The headless demo: ``dockerboot-wizard sandbox --apply-demo --boot``.

Kept for scripts that ran ``python -m tests.lab.demo``; the product command
(``wizard/cli/sandbox.py``) does the work.  ``--keep`` and ``--generator``
are passed through.
"""

from __future__ import annotations

import sys

from wizard.cli.main import main as cli_main


def main() -> int:
    return cli_main(["sandbox", "--apply-demo", "--boot", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
