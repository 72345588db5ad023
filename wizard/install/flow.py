"""``install``: a new machine from a disk — the disk, the store, the image, then apply.

The steps, each a ``StepStarted``/``StepDone`` pair like apply's:

- ``disk``: the plan of ``wizard.disk.layout`` carried out (a new GPT, a
  partition in the free space, or an empty partition formatted).  A rerun
  that finds the labelled btrfs partition on that disk (an earlier run made
  it) skips this step: nothing is ever formatted twice without a new plan.
- ``store``: the ``docker`` subvolume on the new partition and a private
  dockerd on it (its socket, exec-root and pidfile under the wizard's
  ``/run/dockerboot-wizard``), stopped at the end, also on a failure.  The
  host's own docker is never touched.
- ``image``: the image into that store, from an archive (``docker save``
  or an OCI layout), else from the host's daemon when it has it (an image
  built on this machine), else pulled.  An image already there is kept.
- then ``apply`` on the new partition, its ESP as a directory
  (``wizard.disk.fat``): on a new ESP, GRUB from the image unless told otherwise;
- ``firmware``: a UEFI boot entry (``efibootmgr``) where EFI variables can
  be written; the removable path ``EFI/BOOT`` (written by apply where free)
  boots the machine with empty NVRAM in any case.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path

from wizard.common import leftovers
from wizard.common.commands import environ, run
from wizard.common.errors import ConfigError, DockerError, PartitionError
from wizard.common.events import Event, LogLine, StepDone, StepStarted, check_cancel
from wizard.disk import fat, layout, partitions
from wizard.disk.disks import Target
from wizard.disk.partitions import mounted
from wizard.flows import changes
from wizard.loaders import refind_install
from wizard.settings import config
from wizard.store.private_daemon import Dockerd, dockerd

HOST_SOCKET = Path("/var/run/docker.sock")
EFIVARS = Path("/sys/firmware/efi/efivars")
LOADER = "\\EFI\\dockerboot\\shimx64.efi"


def disk_of(target: Target) -> str:
    """The whole disk of ``target`` (a partition's parent, through sysfs)."""
    if target.mode != "partition":
        return target.device
    name = Path(os.path.realpath(target.device)).name
    parent = Path(os.path.realpath(f"/sys/class/block/{name}")).parent.name
    if not (Path("/sys/class/block") / name / "partition").exists():
        raise PartitionError(f"{target.device} is not a partition",
                             "give a partition (e.g. /dev/sdb3), or --disk for a whole disk")
    return f"/dev/{parent}"


def made_before(disk: layout.Disk, label: str) -> layout.Part | None:
    """The btrfs partition labelled ``label`` on ``disk`` (an earlier run's), if any."""
    return next((p for p in disk.parts if p.fstype == "btrfs" and p.label == label), None)


def left_empty(disk: layout.Disk, label: str) -> layout.Part | None:
    """A partition an earlier run made in the free space and was killed before formatting.

    ``layout.write`` names the partition after the label (GPT name); one with
    that name and no filesystem is that run's, and the free space it took is
    gone, so a rerun formats it instead (as ``--partition`` would).
    """
    return next((p for p in disk.parts if p.partlabel == label and not p.fstype), None)


def plan(target: Target, *, need: int,
         boot_bytes: int) -> tuple[layout.Disk, layout.DiskPlan | None]:
    """The disk as it is and the plan for it (None: an earlier run made the partition).

    ``target.here``: the disk boots this machine, which must have booted by
    UEFI (False: it goes to another machine).

    Raises:
        PartitionError: as ``layout.plan_disk``/``plan_free``/``plan_partition``;
            the label is another btrfs partition's.

    """
    disk = layout.survey(disk_of(target))
    if made_before(disk, target.label) is not None:
        return disk, None
    taken = [p.device for p in partitions.list_btrfs() if p.label == target.label]
    if taken:  # the boot finds its partition by label: a second one would be ambiguous
        raise PartitionError(f"LABEL={target.label} is taken by {taken[0]}: the boot finds "
                             "its partition by label", "choose another label")
    efi = layout.EFI if target.here else None
    if target.mode == "disk":
        return disk, layout.plan_disk(disk, target.label, need=need, boot_bytes=boot_bytes,
                                      efi=efi)
    if target.mode == "free":
        if (ours := left_empty(disk, target.label)) is not None:
            return disk, layout.plan_partition(disk, ours.path, target.label, need=need,
                                               efi=efi)
        free = layout.largest_free(disk.path) if disk.pttype == "gpt" else (0, 0)
        return disk, layout.plan_free(disk, target.label, free, need=need, efi=efi)
    return disk, layout.plan_partition(disk, target.device, target.label, need=need, efi=efi)


def esp_partition(target: Target) -> str:
    """The ESP partition of the installed disk (``--esp``, else the disk's own).

    Raises:
        PartitionError: none given and the disk has none.

    """
    if target.esp:
        return target.esp
    esp = layout.survey(disk_of(target)).esp
    if esp is None:
        raise PartitionError(f"{disk_of(target)} has no EFI system partition",
                             "give the machine's ESP with --esp DEV")
    return esp.path


def install(target: Target, disk_plan: layout.DiskPlan | None, request: changes.ApplyRequest,
            *, archive: Path | None = None,
            cancel: threading.Event | None = None) -> Generator[Event, None, None]:
    """Carry out ``disk_plan``, fill the store, apply ``request`` on the new partition.

    ``request.settings.esp`` is replaced by the ESP partition as a directory;
    the config saved on the partition names no ESP directory (later runs find
    the mounted ESP).

    Raises:
        WizardError: a step failed (one line); ``Cancelled`` when ``cancel`` is set.

    """
    yield StepStarted("disk", f"preparing {target.device}")
    if disk_plan is None:
        yield StepDone("disk", f"LABEL={target.label} is there already (an earlier run): "
                               "nothing formatted")
    else:
        for line in layout.write(disk_plan):
            yield LogLine(line)
        yield StepDone("disk", f"LABEL={target.label} on {target.device}")
    check_cancel(cancel)
    btrfs = partitions.find_by_label(target.label)
    esp_dev = esp_partition(target)
    for line in remove_stale():
        yield LogLine(line)
    # Short: dockerd's socket path must stay under 108 bytes (the owner goes in a file).
    scratch = Path(tempfile.mkdtemp(prefix="install-", dir=leftovers.private_run_dir()))
    (scratch / "owner").write_text(leftovers.owner_token())
    try:
        with mounted(btrfs.device, scratch / "top") as top, \
                _store(top, scratch) as daemon:
            yield from _image(daemon, request.settings.image, archive, cancel)
            settings = request.settings
            with fat.esp_directory(esp_dev) as esp, environ({"DOCKER_HOST": daemon.host}):
                # No --bootloader: the image's signed pair chooses GRUB, the wizard's own
                # (never entries in another system's GRUB: its files stay as they are).
                ours = replace(request, settings=replace(settings, esp=str(esp), own_grub=True))
                loader: str | None = LOADER
                if refind_install.wanted(settings, top / "docker"):  # no signed pair
                    line, loader = refind_install.put(esp)
                    yield LogLine(line)
                preview = changes.preview(ours, cancel=cancel)
                if preview.default_question:
                    raise ConfigError("the bootloader on the ESP has a default of its own",
                                      "say whether the new system becomes its default: "
                                      "--default-entry yes|no")
                yield from (LogLine(line) for line in preview.text.splitlines())
                yield from changes.apply(ours, cancel=cancel)
            saved = config.load(top, settings.boot_dir)
            if saved is not None and saved.esp is not None:
                config.save(top, replace(saved, esp=None))
    finally:
        with contextlib.suppress(OSError):
            (scratch / "top").rmdir()
            (scratch / "owner").unlink()
            scratch.rmdir()
    yield StepStarted("firmware", "the firmware's boot entry")
    yield StepDone("firmware", boot_entry(esp_dev, target.label, loader) if target.here else
                   "the disk goes to another machine: its firmware boots the removable path "
                   "EFI/BOOT (no boot entry is written here)")


def remove_stale() -> list[str]:
    """Stop what a killed install left: its private dockerd, its mounts, its directory.

    Only ``install-*`` directories in the wizard's run directory whose owner
    (the ``owner`` file) is dead; a dockerd only when its command line names
    that directory's pidfile.  One line per thing done.
    """
    run_dir = leftovers.RUN_DIR
    if not run_dir.is_dir() or run_dir.is_symlink():
        return []
    done = []
    for d in sorted(run_dir.glob("install-*")):
        owner = d / "owner"
        if d.is_symlink() or not owner.is_file() or leftovers.owner_alive(owner.read_text()):
            continue
        pidfile = d / "dockerd" / "dockerd.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if f"--pidfile={pidfile}".encode() in cmdline:
                os.kill(pid, signal.SIGTERM)
                for _ in range(300):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.1)
                else:
                    os.kill(pid, signal.SIGKILL)
                done.append(f"stopped the docker daemon a killed install left (pid {pid})")
        subprocess.run(["umount", "-R", "-l", str(d / "dockerd" / "exec")],
                       capture_output=True, check=False)
        if os.path.ismount(d / "top"):
            subprocess.run(["umount", str(d / "top")], capture_output=True, check=False)
        if not os.path.ismount(d / "top"):
            shutil.rmtree(d, ignore_errors=True)
            done.append(f"removed {d}, left by a killed install")
    return done


@contextlib.contextmanager
def _store(top: Path, scratch: Path) -> Iterator[Dockerd]:
    """The ``docker`` subvolume and a private dockerd on it, for the block."""
    if not (top / "docker").is_dir():
        run("btrfs", "subvolume", "create", top / "docker")
    with dockerd(top / "docker", state=scratch / "dockerd") as daemon:
        yield daemon


def _image(daemon: Dockerd, image: str, archive: Path | None,
           cancel: threading.Event | None) -> Iterator[Event]:
    yield StepStarted("image", f"{image} into the new store")
    if daemon.docker("image", "inspect", image, check=False).returncode == 0:
        yield StepDone("image", f"{image} is there already")
        return
    if archive is not None:
        out = daemon.docker("load", "-i", archive, timeout=3600).stdout
        yield from (LogLine(line) for line in out.splitlines())
        source = f"loaded from {archive}"
    elif (host := host_docker()) is not None and _host_has(host, image):
        _stream_from_host(host, daemon, image)
        source = "copied from this machine's docker"
    else:
        out = daemon.docker("pull", image, timeout=3600).stdout
        yield from (LogLine(line) for line in out.splitlines()[-3:])
        source = "pulled"
    check_cancel(cancel)
    if daemon.docker("image", "inspect", image, check=False).returncode != 0:
        raise DockerError(f"{image} is not in the new store after it was {source}",
                          "check the archive's or the registry's tags (docker image ls)")
    yield StepDone("image", f"{image} {source}")


def host_docker() -> dict[str, str] | None:
    """The environment of a docker client of this machine's own daemon, if it has one.

    ``DOCKER_HOST`` as the user set it (the client the user's ``docker`` talks
    to), else the system's socket; None when neither is there.
    """
    if os.environ.get("DOCKER_HOST"):
        return dict(os.environ)
    if HOST_SOCKET.exists():
        return {**os.environ, "DOCKER_HOST": f"unix://{HOST_SOCKET}"}
    return None


def _host_has(host: dict[str, str], image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], env=host,
                          capture_output=True, check=False).returncode == 0


def _stream_from_host(host: dict[str, str], daemon: Dockerd, image: str) -> None:
    """``docker save`` from this machine's daemon piped into ``docker load`` of the new store."""
    save = subprocess.Popen(["docker", "save", image], env=host, stdout=subprocess.PIPE)
    load = subprocess.run(["docker", "load"], env=daemon.env(), stdin=save.stdout,
                          capture_output=True, check=False)
    if save.stdout:
        save.stdout.close()
    if save.wait() != 0 or load.returncode != 0:
        raise DockerError(f"copying {image} from this machine's docker failed: "
                          f"{load.stderr.decode(errors='replace').strip()[-200:]}",
                          "check `docker image inspect` on this machine, or use "
                          "--image-archive FILE")


def entry_title(label: str) -> str:
    """The title of the firmware's boot entry of the new system on ``label``."""
    return f"dockerboot {label}"


def entry_titles(listing: str) -> set[str]:
    """The titles of the boot entries in ``efibootmgr``'s listing (``Boot0003* title``)."""
    return {m.group(1).strip() for line in listing.splitlines()
            if (m := re.match(r"Boot[0-9A-Fa-f]{4}\*? (.*?)(?:\t|$)", line))}


def _disk_and_number(esp: str) -> tuple[str, str]:
    """The ESP partition's disk (``/dev/sda``) and partition number, through sysfs."""
    name = Path(os.path.realpath(esp)).name
    number = (Path("/sys/class/block") / name / "partition").read_text().strip()
    return f"/dev/{Path(os.path.realpath(f'/sys/class/block/{name}')).parent.name}", number


def boot_entry(esp: str, label: str, loader: str | None = LOADER) -> str:
    """A UEFI boot entry for ``loader`` where EFI variables can be written; one line.

    ``loader``: the firmware's path of what boots the new system (the wizard's
    shim, or rEFInd it put there); None: a rEFInd that was there boots it.
    An entry with the same title is kept (a rerun adds none); the others stay.
    """
    if loader is None:
        return "rEFInd, on the ESP already, boots it: no new boot entry"
    if not EFIVARS.is_dir() or not any(EFIVARS.iterdir()) or shutil.which("efibootmgr") is None:
        return ("no EFI variables here: the firmware boots the new system from the removable "
                "path EFI/BOOT on the ESP")
    title = entry_title(label)
    listing = subprocess.run(["efibootmgr"], capture_output=True, text=True,
                             check=False).stdout
    if title in entry_titles(listing):
        return f"the firmware's boot entry \"{title}\" is there already"
    disk, number = _disk_and_number(esp)
    done = subprocess.run(["efibootmgr", "--create", "--disk", disk, "--part", number,
                           "--label", title, "--loader", loader],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return (f"efibootmgr could not add \"{title}\" ({done.stderr.strip()[-120:]}): the "
                "removable path EFI/BOOT still boots it")
    return f"the firmware's boot entry \"{title}\" added ({loader}), first in the boot order"
