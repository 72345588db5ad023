"""The hook tests' environment: each module gets its own ``hook_env`` as the ``env`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.hook.hookenv import HookEnv, hook_env


@pytest.fixture(scope="module")
def env() -> Iterator[HookEnv]:
    """Loop btrfs, a stopped dockerd's store with the test images, the top layer."""
    with hook_env() as e:
        yield e
