"""Pilot tests of the Docker daemon step on fakes: the checks, each problem's fix, faults."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.ui.conftest import next_enabled, open_step, press, text
from tests.ui.every_step import back_and_quit, failing, known_fault, known_faults, way_back
from tests.ui.fakes import GOOD_DOCKER, OVERLAY_DOCKER, PART, FakeServices
from wizard.common.errors import DockerError
from wizard.flows.flow import Next, Step, WizardState
from wizard.flows.services import DockerStatus
from wizard.settings.config import Settings

CHOSEN = WizardState(settings=Settings(label=PART.label, image=""))
CLEAN = replace(CHOSEN, saved=CHOSEN.settings)
"""Saved == settings: nothing in the state itself is unsaved."""
DOWN = DockerStatus(reachable=False, problem=DockerError("cannot reach the Docker daemon",
                                                         "start dockerd"))


async def test_all_checks_pass_and_next_sets_the_docker_path():
    async with open_step(Step.DOCKER, CHOSEN) as (app, pilot):
        checks = text(app.screen, "#checks")
        assert "✔ storage driver: btrfs" in checks
        assert "✔ data-root: /mnt/dbw/docker (docker_path=docker)" in checks
        assert "All checks passed" in text(app.screen, "#problem")
        await press(pilot, "n")
        assert app.step is Step.IMAGE
    assert app.outcomes == [Next(replace(CHOSEN, settings=replace(CHOSEN.settings,
                                                                  docker_path="docker")))]


async def test_a_problem_disables_next_until_r_finds_it_fixed():
    services = FakeServices(docker=OVERLAY_DOCKER)
    async with open_step(Step.DOCKER, CHOSEN, services) as (app, pilot):
        problem = text(app.screen, "#problem")
        assert "overlay2 storage driver" in problem and "press r to check again" in problem
        assert 'Fix: put {"storage-driver": "btrfs"} in /etc/docker/daemon.json' in problem
        assert "✘ storage driver: overlay2" in text(app.screen, "#checks")
        await press(pilot, "n")
        assert app.outcomes == [] and not next_enabled(app.screen)
        services.docker = GOOD_DOCKER
        await press(pilot, "r")
        assert next_enabled(app.screen) and "All checks passed" in text(app.screen, "#problem")
        assert services.calls.count(("docker_status", PART.label)) == 2
        await press(pilot, "n")
    assert app.outcomes[0].state.settings.docker_path == "docker"


@pytest.mark.parametrize("services, label, shown, why", [
    (FakeServices(docker=DOWN), PART.label, "✘ daemon reachable", "Fix: start dockerd"),
    (FakeServices(), "unplugged", "✘ daemon reachable",
     "no btrfs partition labelled unplugged is present"),
])
async def test_an_unreachable_daemon_or_a_missing_partition_is_explained(
        services: FakeServices, label: str, shown: str, why: str):
    state = WizardState(settings=Settings(label=label, image=""))
    async with open_step(Step.DOCKER, state, services) as (app, _pilot):
        assert shown in text(app.screen, "#checks")
        assert why in text(app.screen, "#problem") and not next_enabled(app.screen)


async def test_back_and_quit_carry_the_state():
    await back_and_quit(Step.DOCKER, CHOSEN, CLEAN)


@pytest.mark.parametrize("exc", known_faults(DockerError("cannot ask the daemon",
                                                         "check DOCKER_HOST")))
@pytest.mark.parametrize("method", ["partitions", "docker_status"])
async def test_a_check_that_fails_is_shown_and_r_retries(method: str, exc: Exception):
    async with known_fault(Step.DOCKER, CHOSEN, method, exc, retry="r") as (app, _):
        assert "Problem" not in text(app.screen, "#problem")  # no check result to show
        assert not next_enabled(app.screen)


async def test_a_recheck_that_fails_leaves_nothing_checking():
    error = DockerError("cannot ask the daemon", "check DOCKER_HOST")
    async with known_fault(Step.DOCKER, CHOSEN, "docker_status", error, keys=("r",)) as (app, _):
        assert "Checking" not in text(app.screen, "#checks")


@pytest.mark.parametrize("method", ["partitions", "docker_status"])
async def test_a_bug_in_the_check_offers_the_way_back(method: str):
    await way_back(Step.DOCKER, CHOSEN, failing(method))
