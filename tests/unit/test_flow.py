"""The wizard's routes: pure functions of wizard/flows/flow.py."""

from dataclasses import replace

import pytest

from wizard.flows.flow import (
    ROUTES,
    Mode,
    Step,
    WizardState,
    after,
    before,
    first,
    has_unsaved_changes,
    images_from_host,
    position,
    rebuilt,
)
from wizard.settings.config import Settings

SAVED = Settings(label="dbw", image="desk:1")


def test_every_mode_has_a_route_from_welcome_to_done():
    assert set(ROUTES) == set(Mode)
    for route in (r.steps for r in ROUTES.values()):
        assert route[0] is first() is Step.WELCOME and route[-1] is Step.DONE
        # Every change is shown before it is written: Review, or Update's own plan.
        assert (Step.REVIEW in route) != (Step.UPDATE in route) and len(set(route)) == len(route)


def test_full_route_visits_every_step_in_order():
    assert ROUTES[Mode.FULL].steps == tuple(s for s in Step
                                            if s is not Step.UPDATE and s is not Step.DISK)


def test_new_machine_makes_its_partition_then_writes_everything_on_it():
    route = ROUTES[Mode.NEW_MACHINE]
    assert route.steps == (Step.WELCOME, Step.DISK, Step.IMAGE, Step.TOPLAYER, Step.REVIEW,
                           Step.DONE)
    assert route.writes == ROUTES[Mode.FULL].writes
    # Only a new machine chooses a disk; only it takes its image from the host's docker.
    assert [m for m, r in ROUTES.items() if Step.DISK in r.steps] == [Mode.NEW_MACHINE]
    assert [m for m in Mode if images_from_host(WizardState(mode=m))] == [Mode.NEW_MACHINE]


@pytest.mark.parametrize(("mode", "steps"), [
    (Mode.RECONFIGURE_TOPLAYER, [Step.TOPLAYER, Step.REVIEW, Step.DONE]),
    (Mode.SWITCH_IMAGE, [Step.DOCKER, Step.IMAGE, Step.INITRAMFS, Step.BOOTLOADER,
                         Step.REVIEW, Step.DONE]),
    (Mode.REBUILD_INITRAMFS, [Step.INITRAMFS, Step.REVIEW, Step.DONE]),
    (Mode.REWRITE_BOOT_ENTRY, [Step.BOOTLOADER, Step.REVIEW, Step.DONE]),
    (Mode.UPDATE, [Step.UPDATE, Step.DONE]),
    (Mode.ROLLBACK, [Step.UPDATE, Step.DONE]),
    (Mode.NEW_MACHINE, [Step.DISK, Step.IMAGE, Step.TOPLAYER, Step.REVIEW, Step.DONE]),
])
def test_walking_after_from_welcome_follows_the_mode(mode, steps):
    state = WizardState(mode=mode)
    walked, step = [], after(Step.WELCOME, state)
    while step is not None:
        walked.append(step)
        step = after(step, state)
    assert walked == steps


def test_reconfigure_top_layer_skips_initramfs_and_bootloader():
    route = ROUTES[Mode.RECONFIGURE_TOPLAYER].steps
    assert Step.INITRAMFS not in route and Step.BOOTLOADER not in route


@pytest.mark.parametrize("mode", list(Mode))
def test_before_undoes_after(mode):
    state = WizardState(mode=mode)
    for step in ROUTES[mode].steps[:-1]:
        assert before(after(step, state), state) is step


def test_before_the_first_step_stays_and_after_the_last_ends():
    state = WizardState()
    assert before(Step.WELCOME, state) is Step.WELCOME
    assert after(Step.DONE, state) is None


def test_unsaved_changes():
    assert not has_unsaved_changes(WizardState())
    assert not has_unsaved_changes(WizardState(mode=Mode.SWITCH_IMAGE))
    assert not has_unsaved_changes(WizardState(settings=SAVED, saved=SAVED))
    assert has_unsaved_changes(WizardState(settings=SAVED))
    assert has_unsaved_changes(WizardState(settings=replace(SAVED, hostname="x"),
                                           saved=SAVED))
    assert has_unsaved_changes(WizardState(settings=SAVED, saved=SAVED,
                                           toplayer_edits={"etc/hostname": b"x\n"}))
    assert has_unsaved_changes(WizardState(passwords={"ann": "pw"}))


def test_a_build_started_on_a_visit_is_seen_as_rebuilt():
    kept = WizardState(staged_initramfs="boot_docker/.build-old")
    new_build = replace(kept, staged_initramfs="boot_docker/.build-new")
    building = replace(kept, staged_initramfs=None)  # "r" pressed, build cancelled
    assert not rebuilt(kept, kept)
    assert rebuilt(kept, new_build)
    assert rebuilt(kept, building)


def test_each_mode_writes_only_what_its_screens_collect():
    writes = {mode: route.writes for mode, route in ROUTES.items()}
    assert writes[Mode.FULL] == writes[Mode.SWITCH_IMAGE] == (
        "initramfs", "toplayer", "bootloader", "config")
    assert writes[Mode.RECONFIGURE_TOPLAYER] == ("toplayer", "config")
    # A new generation is named by the entries it comes with.
    assert writes[Mode.REBUILD_INITRAMFS] == ("initramfs", "bootloader", "config")
    assert writes[Mode.REWRITE_BOOT_ENTRY] == ("bootloader", "config")
    # A build is made on its screen; a boot entry is written where its screen is
    # shown and wherever a build makes a generation the entries must name.  A new
    # machine's partition is made by its Review: its build happens there, unseen before.
    for mode, route in ROUTES.items():
        assert ("initramfs" in route.writes) == (Step.INITRAMFS in route.steps
                                                 or Step.DISK in route.steps), mode
        assert ("bootloader" in route.writes) == (Step.BOOTLOADER in route.steps
                                                  or "initramfs" in route.writes), mode
        assert WizardState(mode=mode).writes == route.writes


def test_position_counts_from_one():
    assert position(Step.WELCOME, WizardState()) == (1, 9)
    assert position(Step.IMAGE, WizardState()) == (4, 9)
    assert position(Step.REVIEW, WizardState(mode=Mode.RECONFIGURE_TOPLAYER)) == (3, 4)
