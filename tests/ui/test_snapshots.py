"""SVG snapshots (pytest-textual-snapshot) of every screen at 100x32 on fake services.

Each test opens one step with ``make_app(..., start_at=..., state=...)``, waits
until that screen is on top and its workers are done, then compares the
screenshot with the baseline in ``__snapshots__/test_snapshots/``.  A missing
baseline fails (the plugin compares against nothing); regenerate with
``python3 -m pytest tests/ui/test_snapshots.py --snapshot-update`` and look at
the SVGs before committing them.

What could vary between runs is fixed here, not in the screens: animations
are off (the indeterminate progress bar of the Image step would otherwise
be drawn wherever the clock puts it), and cursors do not blink.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from textual.app import App
from textual.widgets import Input, TextArea, Tree

from screens.common.problem import ProblemScreen
from screens.wizard_app import make_app
from tests.ui.conftest import SIZE, settle
from tests.ui.fakes import OVERLAY_DOCKER, PART, SETTINGS, FakeServices
from wizard.common.errors import NotRootError
from wizard.flows.flow import Mode, Step, WizardState
from wizard.settings.config import Settings

SNAPSHOTS = Path(__file__).parent / "__snapshots__" / "test_snapshots"
DOCS = Path(__file__).parents[2] / "docs"
DOCS_SHOTS = {"tui-toplayer.svg": "test_toplayer.svg", "tui-review.svg": "test_review.svg"}
"""README screenshot in docs/ -> the baseline it is a copy of."""

CHOSEN = WizardState(settings=Settings(label=PART.label, image=""))
READY = WizardState(settings=SETTINGS)


def app_for(services: FakeServices, start_at: Step | None = None,
            state: WizardState | None = None) -> App:
    app = make_app(services, start_at=start_at, state=state)
    app.animation_level = "none"  # no frame of an animation depends on the clock
    return app


def until(step: Step | None, ready: Callable[[object], bool] = lambda s: True,
          then: Callable[[object], Awaitable[None]] | None = None):
    """A ``run_before``: wait for ``step``'s screen (None: the problem screen before the
    first step) and ``ready``, run ``then``, settle.  Steps, not screen classes: a
    screen module is imported only when its step is reached, as in the app."""

    def on_screen(screen) -> bool:
        if step is None:
            return isinstance(screen, ProblemScreen)
        return getattr(screen, "STEP", None) is step

    async def run_before(pilot) -> None:
        app = pilot.app
        for _ in range(2000):  # the flow worker pushes the screen; never finishes itself
            await settle(pilot)
            if not app.is_running:  # e.g. the flow failed to open the step
                raise AssertionError(f"the app ended before the {step} screen got ready")
            if on_screen(app.screen) and ready(app.screen):
                break
        else:
            raise AssertionError(f"the {step} screen never got ready (at {app.screen!r})")
        if then is not None:
            await then(pilot)
            await settle(pilot)
        for widget in app.screen.query("Input, TextArea"):
            widget.cursor_blink = False  # a blinking cursor is on or off by timing
        await pilot.pause()

    return run_before


def test_problem_not_root(snap_compare):
    """The problem screen before the first step: title "The wizard cannot start", the problem
    "dockerboot-wizard must run as root", "How to fix: run it again with sudo", the hint to press r
    or q, and the footer keys r (Check again) and q (Quit)."""
    services = FakeServices(env_problems=[NotRootError("dockerboot-wizard must run as root",
                                                       "run it again with sudo")])
    assert snap_compare(app_for(services), terminal_size=SIZE,
                        run_before=until(None))


def test_welcome_reconfigure(snap_compare):
    """Welcome with a saved config: the step line "1/4 Welcome › Top layer › Review › Done" (the
    reconfigure route, Welcome highlighted); the intro, "Saved configuration on LABEL=dbw-fake:
    boots desk:2, hostname box", the choices (Reconfigure top layer highlighted first, Switch
    image/tag, Rebuild initramfs, Rewrite boot entry, Update, Roll back, New machine, Full setup
    last), Back/Next buttons and the footer."""
    saved = Settings(label=PART.label, image="desk:2", hostname="box")
    app = app_for(FakeServices(saved={PART.label: saved}))
    assert snap_compare(app, terminal_size=SIZE,
                        run_before=until(Step.WELCOME, lambda s: s.found is not None))


def test_partition(snap_compare):
    """Partition: the step line "2/9" with the nine steps, Partition highlighted; the table with
    columns Label, UUID, Size, Device, Docker data-root, Mountpoint; row dbw-fake (4.0G,
    /dev/loop9p2, data-root yes, /mnt/dbw (+1)) with the cursor, row data (8.0G, /dev/sdb1, no, -);
    Next enabled."""
    app = app_for(FakeServices(), Step.PARTITION)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(Step.PARTITION))


def test_new_disk(snap_compare):
    """Disk of a new machine: the step line "2/6" (Welcome, Disk, Image, Top layer, Review, Done);
    the table of disks (/dev/sda Root SSD mounted on /boot/efi and /, /dev/sdb Blank SSD with the
    cursor, /dev/sdc Shared SSD with 3 partitions); "The whole disk" chosen; the label newbox; the
    plan: /dev/sdb destroyed nothing, a new GPT, an ESP of 512 MiB and btrfs "newbox" the rest;
    Next enabled."""
    state = WizardState(mode=Mode.NEW_MACHINE)

    async def choose(pilot) -> None:
        await pilot.press("down", "tab", "tab", *"newbox")

    app = app_for(FakeServices(), Step.DISK, state)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(
        Step.DISK, lambda s: bool(s.disks), then=choose))


def test_install_review(snap_compare):
    """Review of a new machine on a whole disk (step line "5/6"): "Nothing has been written yet.
    Everything on /dev/sdb is lost: type /dev/sdb below, then Enter or Apply (a) installs."; the
    sections The disk (the plan), Then (the image into its own store, the boot chain, the
    firmware's entry), The new machine; the empty confirmation field focused; Apply dimmed."""
    from wizard.disk.disks import Chosen, Target

    target = Target("disk", "/dev/sdb", "newbox")
    services = FakeServices()
    disk, plan = services.plan_install(target)
    state = WizardState(mode=Mode.NEW_MACHINE, settings=Settings(label="newbox", image="desk:1"),
                        new_disk=Chosen(target, disk, plan))
    app = app_for(services, Step.REVIEW, state)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(
        Step.REVIEW, lambda s: s.plan is not None))


def test_docker_good(snap_compare):
    """Docker daemon, all good: the step line "3/9", Docker highlighted; "Checking the Docker daemon
    for partition LABEL=dbw-fake…" and three ticks (daemon reachable, storage driver: btrfs,
    data-root: /mnt/dbw/docker (docker_path=docker)), "All checks passed: images on this daemon can
    boot.", Next enabled and the footer's r Recheck."""
    app = app_for(FakeServices(), Step.DOCKER, CHOSEN)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(Step.DOCKER))


def test_docker_overlay2(snap_compare):
    """Docker daemon on overlay2: the step line "3/9", Docker highlighted; "✔ daemon reachable", "✘
    storage driver: overlay2", "✘ data-root: /var/lib/docker"; "Problem: Docker uses the overlay2
    storage driver, not btrfs, so image layers are not btrfs subvolumes" (wrapped, whole), 'Fix: put
    {"storage-driver": "btrfs"} in /etc/docker/daemon.json', "Then press r to check again."; Next
    disabled (dimmed button and footer key)."""
    app = app_for(FakeServices(docker=OVERLAY_DOCKER), Step.DOCKER, CHOSEN)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(Step.DOCKER))


def test_images(snap_compare):
    """Image: the step line "4/9", Image highlighted; the filter field, the table (Image, Size,
    Created, ID) with desk:1, desk:2 and localhost:5000/ns/app:1.0 at fixed dates, the cursor on
    desk:1 and under it the resolve result "✔ desk:1 boots from subvolume
    /mnt/dbw/docker/btrfs/subvolumes/ desk:1-top" (the screen shows bootability on this line, not in
    a column); the pull field with an empty progress bar at 0% beside it; Next enabled."""
    app = app_for(FakeServices(), Step.IMAGE, CHOSEN)
    assert snap_compare(app, terminal_size=SIZE,
                        run_before=until(Step.IMAGE, lambda s: bool(s.resolved)))


def test_images_unbootable(snap_compare):
    """Image with an unbootable choice (step line "4/9"): the cursor on desk:2 and, in red, "✘
    desk:2 cannot boot: image desk:2 has no layer cache-id — pull or build the image again"; Next
    disabled."""
    services = FakeServices(unbootable={"desk:2": "image desk:2 has no layer cache-id"})
    state = WizardState(settings=Settings(label=PART.label, image="desk:2"))
    app = app_for(services, Step.IMAGE, state)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(
        Step.IMAGE, lambda s: ("resolve", "desk:2") in services.calls))


async def _edit_hostname_file(pilot) -> None:
    screen = pilot.app.screen
    tree = screen.query_one("#files", Tree)
    node = next(n for n in tree.root.children[0].children if n.data == "etc/hostname")
    tree.select_node(node)
    await settle(pilot)
    screen.query_one("#editor", TextArea).load_text("desk1\n")
    await pilot.press("ctrl+s")  # first ctrl+s shows the diff against the image's file


def test_toplayer(snap_compare):
    """Top layer, Files tab: the step line "5/9", Top layer highlighted; the warning "Everything
    outside the top layer … RESET AT EVERY BOOT."; tabs "Files (f1) / Hostname & users (f2) /
    Machine (f3) / fstab helper (f4)"; the tree with etc/ (docker/daemon.json (new), fstab (new),
    hostname, shadow); the editor holding etc/hostname edited to "desk1" with line numbers; below it
    the diff against the image's own file (-debian, +desk1) and "ctrl+s again keeps it"; Back and
    Next; the footer: n b q, "f1 f2 f3 f4 Switch tab", ^s Keep file, ^o Diff vs image."""
    app = app_for(FakeServices(), Step.TOPLAYER, READY)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(
        Step.TOPLAYER, lambda s: bool(s.files), _edit_hostname_file))


async def _hostname_and_user(pilot) -> None:
    screen = pilot.app.screen
    await pilot.press("f2")
    await settle(pilot)
    screen.query_one("#hostname", Input).value = "desk1"
    screen.query_one("#user-name", Input).value = "ann"
    screen.query_one("#user-pw", Input).value = "pw-one"
    screen.query_one("#user-pw2", Input).value = "pw-two"
    screen.query_one("#add-user").press()
    await settle(pilot)
    screen.query_one("#user-name", Input).focus()


def test_toplayer_hostname_users(snap_compare):
    """Top layer, Hostname & users tab: the warning on top, hostname "desk1", the new-user row (name
    ann, focused: accent border; both password fields emptied and masked, an unticked "admin" box,
    Add user), the error "The passwords do not match: type them again." and "Users: none"; the
    footer: "f1 f2 f3 f4 Switch tab", esc Leave field."""
    app = app_for(FakeServices(), Step.TOPLAYER, READY)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(
        Step.TOPLAYER, lambda s: bool(s.files), _hostname_and_user))


async def _machine_tab(pilot) -> None:
    await pilot.press("f3")
    await settle(pilot)


def test_toplayer_machine(snap_compare):
    """Top layer, Machine tab: "Every machine also gets its own machine-id …" and three ticked
    boxes: persistent /home (subvolume 'home', homes from /etc/skel), persistent journal (subvolume
    'journal', journalctl -b -1), and "The booted system's docker uses this store: fstab mounts it,
    daemon.json picks btrfs", whole on its line; the first box focused (f3 focuses it: accent
    border)."""
    app = app_for(FakeServices(), Step.TOPLAYER, READY)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(
        Step.TOPLAYER, lambda s: bool(s.files), _machine_tab))


def test_initramfs(snap_compare):
    """Initramfs after a finished fake build (step line "6/9", Initramfs highlighted): "Generator:
    initramfs-tools kernel: 6.1.0-18-amd64 (/boot/vmlinuz-6.1.0-18-amd64)", "Built (installed at
    Review): staged", the progress bar full at 100%, the log (== Building initramfs-tools initramfs,
    dockerboot-build: running mkinitramfs), Cancel disabled, Next enabled."""
    app = app_for(FakeServices(), Step.INITRAMFS, READY)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(
        Step.INITRAMFS, lambda s: s.state.staged_initramfs is not None))


def test_bootloader(snap_compare):
    """Bootloader (step line "7/9", Boot entry highlighted): "ESP: found automatically refind.conf:
    /boot/efi/EFI/refind/ refind.conf", the override field; the wizard's marked block exactly as
    apply writes it: default_selection "Docker image", menuentry "Docker image desk:1" (volume
    dbw-fake, loader boot_docker/gen/3/vmlinuz, initrd boot_docker/gen/3/initrd.img) with its
    options line wrapped and whole, from root=LABEL=dbw-fake to docker_image=desk:1,
    toplayer_path=boot_docker/toplayer and dockerboot.generation=3, then "Previous generation 2:
    desk:1 @222222222222" (gen/2, its image pinned by ID); the refind.conf diff below it; Next
    enabled."""
    app = app_for(FakeServices(), Step.BOOTLOADER, READY)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(
        Step.BOOTLOADER, lambda s: s.found is not None))


def test_review(snap_compare):
    """Review before Apply (step line "8/9", Review highlighted; Back, Apply (a) and a dimmed Next,
    which comes with Apply's success): "Nothing has been written yet. Apply (a) writes: initramfs,
    toplayer, bootloader, config."; the scrollable sections from the top: Summary (LABEL=dbw-fake
    (/dev/loop9p2), desk:1 -> subvolume, the default entry's kernel command line from
    root=LABEL=dbw-fake to dockerboot.generation=3), Subvolumes (docker kept, docker_rwlayer
    recreated at EVERY boot), the vmlinuz/initrd.img pair "already built, installed now"; Apply
    (a) enabled (the progress log appears only once Apply starts)."""
    state = replace(READY, staged_initramfs="boot_docker/.build-fake",
                    settings=replace(SETTINGS, hostname="desk1"))
    services = FakeServices()
    app = app_for(services, Step.REVIEW, state)
    assert snap_compare(app, terminal_size=SIZE, run_before=until(
        Step.REVIEW, lambda s: s.plan is not None))
    assert not any(name == "apply" for name, _ in services.calls)


def test_update(snap_compare):
    """Update before Apply (step line "2/3": Welcome, Update, Done): "Nothing has been written
    yet. Apply (a) makes it the default for the next boot."; the plan: desk:1 moved, new
    generation 3 built now in a container of the image, the "previous" entry boots generation 2
    pinned by ID, the refind.conf diff; Apply (a) enabled, Next dimmed."""
    services = FakeServices()
    app = app_for(services, Step.UPDATE, replace(READY, mode=Mode.UPDATE))
    assert snap_compare(app, terminal_size=SIZE, run_before=until(
        Step.UPDATE, lambda s: s.plan is not None))
    assert not any(name == "run_update" for name, _ in services.calls)


def test_done(snap_compare):
    """Done after a full setup (step line "9/9", Done highlighted; no Back): "Done", "Kernel,
    initramfs and the rEFInd entry for desk:1 are in place.", At the next boot (rEFInd boots its
    default entry, Docker image desk:1, the title render_entries writes; reset at every boot;
    what persists: /home, /var/log/journal, /var/lib/docker with their subvolumes), To update
    (docker pull desk:1), To come back; the Finish button."""
    app = app_for(FakeServices(), Step.DONE, replace(READY, mode=Mode.FULL))
    assert snap_compare(app, terminal_size=SIZE, run_before=until(Step.DONE))


def test_docs_screenshots_are_the_baselines():
    """The README's screenshots in docs/ are byte-for-byte the current baselines."""
    for doc, baseline in DOCS_SHOTS.items():
        assert (DOCS / doc).read_bytes() == (SNAPSHOTS / baseline).read_bytes(), (
            f"docs/{doc} differs from its baseline: cp {SNAPSHOTS / baseline} docs/{doc}")
