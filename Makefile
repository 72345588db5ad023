# The two set-up commands of the README.  Both run as root (sudo).
.PHONY: setup test test-fast demo demo-headless lint

setup:
	sh scripts/setup.sh

PYTEST = python3 -m pytest -v -p no:cacheprovider --timeout=3600 --durations=30

# Every test: unit, integration against a real udevd/dockerd/btrfs, and real
# UEFI boots in QEMU.  Three rounds: the boots and builds (side_by_side), two
# at a time (a TCG boot keeps one core busy); then everything that looks only
# at what it made, two at a time, a module per worker (its lab is made once);
# last, alone, the few that look at the whole machine (machine_wide).  All
# three always run; the target fails if any does.
test: setup
	$(PYTEST) -n 2 --dist loadgroup -m side_by_side tests; side=$$?; \
	$(PYTEST) -n 2 --dist loadfile -m "not side_by_side and not machine_wide" tests; rest=$$?; \
	$(PYTEST) -m machine_wide tests; wide=$$?; \
	[ $$side -eq 0 ] && [ $$rest -eq 0 ] && [ $$wide -eq 0 ]

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
