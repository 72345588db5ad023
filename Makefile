# The two set-up commands of the README.  Both run as root (sudo).
.PHONY: setup test test-fast demo demo-headless lint

setup:
	sh scripts/setup.sh

# Every test: unit, integration against a real udevd/dockerd/btrfs, and real
# UEFI boots in QEMU through rEFInd.
test: setup
	python3 -m pytest -v -p no:cacheprovider --timeout=3600 --durations=30 tests

test-fast:
	python3 -m pytest -q tests/unit

# The wizard on a disposable sandbox disk; after Apply it offers a QEMU boot of
# what it wrote.  `make demo-headless` does the same without the TUI.
demo: setup
	dockerboot-wizard sandbox

demo-headless: setup
	dockerboot-wizard sandbox --apply-demo --boot

lint:
	ruff check .
