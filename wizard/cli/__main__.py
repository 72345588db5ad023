"""``python -m wizard.cli``: the headless CLI without the package entry point."""

import sys

from wizard.cli.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
