"""What every test run shares: the slowest modules start first.

``make test`` runs a round two modules at a time (``--dist loadfile``), each
handed to a worker in collection order: a long module collected last keeps
one worker busy while the other has nothing left.  Starting the slowest
first lets the short ones fill in beside them.  The order of the tests
within a module is kept.
"""

from __future__ import annotations

import pytest

SLOWEST_FIRST = (
    "tests/integration/test_fault_injection.py",
    "tests/integration/test_selfupdate.py",
    "tests/integration/test_machine_setup.py",
    "tests/integration/test_update.py",
)
"""Modules of the second round that take minutes (``--durations`` of a CI run)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the modules of ``SLOWEST_FIRST`` to the front, in that order (a stable sort)."""
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOWEST_FIRST.index(path) if path in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)
