"""``python -m wizard.cli_entry``: the headless CLI without the package entry point."""

import sys

from wizard.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
