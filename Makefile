# The two set-up commands of the README.  Both run as root (sudo).
.PHONY: setup test test-fast demo lint

setup:
	sh scripts/setup.sh

# Every test: unit, integration against a real udevd/dockerd/btrfs, and real
# UEFI boots in QEMU through rEFInd.
test: setup
	python3 -m pytest -v -p no:cacheprovider --timeout=3600 tests

test-fast:
	python3 -m pytest -q tests/unit

demo: setup
	python3 -m tests.lab.demo

lint:
	ruff check .
