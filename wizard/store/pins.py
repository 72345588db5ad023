"""Pins: keep a generation's image in the docker store after its tag moved on.

The "previous" boot entry boots ``docker_image=sha256:<id>``: that image must
outlive a ``docker pull`` that moves the tag, and the clean-ups people run.
A pin is a container ``dockerboot-pin-<name>-gen-<n>`` of the image (by ID),
created with ``--network none`` and never started, labelled
``dockerboot-wizard.pin=<label>``, ``…pin.generation=<n>`` and
``…pin.image=<id>``, with a tmpfs mount on each ``VOLUME`` of the image (a
plain create would make an anonymous volume for each).  No tag: measured,
an extra tag does harm.

Measured against a real dockerd (btrfs driver, Debian docker.io 20.10.24);
``tests/integration/test_pins.py`` keeps checking the container column and
the cells in bold:

==============================================  ==========  ===========  ===============
what the user runs                              pin tag     container    tag + container
==============================================  ==========  ===========  ===============
``docker pull``/``build`` moves the tag          kept        kept         kept
``docker image prune`` (dangling only)           kept        kept         kept
``docker image prune -a``                        **gone**    kept         kept, but **the
                                                                          user's tag is
                                                                          stripped**
``docker rmi <tag>`` (tag still on the image)    untagged    refused      untagged
``docker rmi <id>`` (other tags / a container)   refused     refused      refused
``docker container prune`` + ``image prune``     kept        **gone**     kept
``docker system prune -a``, ``rmi -f``           gone        gone         gone
==============================================  ==========  ===========  ===============

``image prune -a`` deletes every image no container uses, tags or not, so a
tag alone protects nothing there.  On an image a container uses it deletes
the image's *references* one by one until the last one is refused: with a
pin tag next to the user's tag, the user's tag went (4 times of 4, whichever
reference the container was made from), and the next boot would no longer
find the configured image.  So the container alone: it keeps the image and
all its tags through ``image prune -a``, and refuses ``docker rmi <tag>``
while the tag still names the pinned image (the error names the pin
container: the image is protected, as it should be).  What it cannot survive
is the pin container's own removal (``container prune``, ``system prune``):
then the hook still falls back to the last good image, and the next run
pins again.

The pin containers carry ``dockerboot-wizard.pin``, not the
``dockerboot-wizard`` label: ``leftovers.remove_leftover_containers`` filters
on the latter and never sees them.  Unpinning removes only containers that
carry the pin labels of that partition and generation, never forced (one
someone started stays), and deletes the image only when nothing else
refers to it: no tag and no other container.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wizard.common.errors import DockerError
from wizard.store.images import IMAGE_ID_RE

PIN_LABEL = "dockerboot-wizard.pin"
"""Container label: the partition label the pin belongs to."""
PIN_GENERATION = "dockerboot-wizard.pin.generation"
"""Container label: the generation number."""
PIN_IMAGE = "dockerboot-wizard.pin.image"
"""Container label: the pinned image ID (``sha256:…``)."""
PREFIX = "dockerboot-pin"
"""Pin containers are named ``dockerboot-pin-<name>-gen-<n>``."""
NEVER_STARTED = "/.dockerboot-pin-never-started"
"""The pin container's entrypoint: it is never run, and starting it does nothing."""


class PinError(DockerError):
    """An image could not be pinned or unpinned."""


def pin_name(label: str) -> str:
    """The partition label as a container name part: lower case, ``[a-z0-9-]``.

    A label that had to change gets 8 hex digits of its hash appended, so
    ``Data`` and ``data`` (or ``a+b`` and ``a-b``) never share pins.
    """
    name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:64] or "x"
    if name != label:
        name += "-" + hashlib.sha256(label.encode()).hexdigest()[:8]
    return name


def pin_container_name(label: str, number: int) -> str:
    """The pin container's name of generation ``number`` of the partition ``label``."""
    return f"{PREFIX}-{pin_name(label)}-gen-{number}"


@dataclass(frozen=True)
class Pin:
    """A pin found in the docker store."""

    number: int
    """The generation it belongs to."""
    image_id: str
    """The image it holds."""
    containers: tuple[str, ...]
    """Ids of the pin containers (normally one)."""


@dataclass(frozen=True)
class Unpinned:
    """What ``unpin`` removed, and what it left and why."""

    containers: tuple[str, ...] = ()
    """Short ids of the pin containers removed."""
    image_deleted: bool = False
    """Whether the image went too (nothing else referred to it)."""
    notes: tuple[str, ...] = ()
    """One line for each thing left in place."""


def _errors() -> Any:
    # Imported when used: the TUI must start without loading docker (start-up time).
    import docker.errors

    return docker.errors


def _check(image_id: str, number: int) -> None:
    if not IMAGE_ID_RE.match(image_id):
        raise PinError(f"cannot pin {image_id!r}: not a full image ID",
                       "pin by sha256:<64 hex>, as `docker images --no-trunc` shows")
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise PinError(f"invalid generation number {number!r}")


def _filters(label: str, number: int | None = None) -> dict[str, list[str]]:
    wanted = [f"{PIN_LABEL}={label}"]
    if number is not None:
        wanted.append(f"{PIN_GENERATION}={number}")
    return {"label": wanted}


def _our_containers(client: Any, label: str, number: int | None = None) -> list[Any]:
    found = client.containers.list(all=True, filters=_filters(label, number))
    # The daemon filtered already; check again, the labels decide what is ours.
    return [c for c in found if (c.labels or {}).get(PIN_LABEL) == label
            and (number is None or (c.labels or {}).get(PIN_GENERATION) == str(number))]


def pin(client: Any, image_id: str, label: str, number: int) -> None:
    """Pin ``image_id`` as generation ``number`` of partition ``label`` (idempotent).

    A pin container is created unless one of this generation already holds
    this image; one holding another image (a number used again) is removed
    first: it is ours by its labels.

    Raises:
        PinError: the image is not in the store, or the container name is taken
            by a container that is not a pin (left alone), or the daemon failed.

    """
    _check(image_id, number)
    errors = _errors()
    from docker.types import Mount

    try:
        image = client.images.get(image_id)
        have = False
        for c in _our_containers(client, label, number):
            if (c.labels or {}).get(PIN_IMAGE) == image_id and not have:
                have = True
            else:
                c.remove(v=True, force=False)
        if not have:
            # A plain create makes an anonymous volume for each VOLUME of the image
            # (measured); a tmpfs mount there is mere config for a never-started one.
            volumes = ((image.attrs or {}).get("Config") or {}).get("Volumes") or {}
            if any("\n" in t for t in volumes):
                # dockerboot-update reads the paths one a line: it cannot pin this either.
                raise PinError(f"cannot pin image {image_id[:19]}: a VOLUME path of it "
                               "holds a line break", "remove that VOLUME from the image")
            client.containers.create(
                image_id, entrypoint=[NEVER_STARTED], command=[], network_mode="none",
                name=pin_container_name(label, number),
                mounts=[Mount(target=t, source=None, type="tmpfs") for t in sorted(volumes)],
                labels={PIN_LABEL: label, PIN_GENERATION: str(number), PIN_IMAGE: image_id})
    except errors.ImageNotFound as e:
        raise PinError(f"cannot pin image {image_id[:19]}: it is not in the docker store",
                       "pull or build it again, or let the generation go") from e
    except errors.APIError as e:
        if getattr(e, "status_code", None) == 409:
            raise PinError(f"cannot pin generation {number}: the name "
                           f"{pin_container_name(label, number)} is taken ({e.explanation})",
                           "rename or remove that container (it is not a dockerboot pin)") from e
        raise PinError(f"cannot pin image {image_id[:19]}: {e.explanation or e}",
                       "check the docker daemon") from e


def unpin(client: Any, label: str, number: int, image_id: str | None = None) -> Unpinned:
    """Remove generation ``number``'s pin; the image goes too if nothing else refers to it.

    Args:
        client: a ``docker.DockerClient``.
        label: the partition label.
        number: the generation.
        image_id: the image the record says it pinned, deleted when it has no
            tag and no other container (None: no image is deleted).

    Returns:
        What was removed, with a note for each pin container left (never forced).

    Raises:
        PinError: the daemon failed.

    """
    errors = _errors()
    removed: list[str] = []
    notes: list[str] = []
    try:
        for c in _our_containers(client, label, number):
            try:
                # Never stops a pin container someone started; v: its anonymous
                # volumes only (none since pins mount tmpfs there), never named ones.
                c.remove(v=True, force=False)
                removed.append(c.short_id)
            except errors.APIError as e:
                notes.append(f"pin container {c.short_id} stays: {e.explanation or e}")
        if image_id is None or notes:
            return Unpinned(tuple(removed), False, tuple(notes))
        try:
            image = client.images.get(image_id)
        except errors.ImageNotFound:
            return Unpinned(tuple(removed), False, tuple(notes))
        users = client.containers.list(all=True, filters={"ancestor": image_id})
        if image.tags or users:
            return Unpinned(tuple(removed), False, tuple(notes))  # someone else's now
        try:
            # By ID and untagged (checked just above), never forced: a container
            # made in between makes the daemon refuse, and the image stays.
            client.images.remove(image_id, force=False)
        except errors.APIError as e:
            notes.append(f"image {image_id[:19]} stays: {e.explanation or e}")
            return Unpinned(tuple(removed), False, tuple(notes))
    except errors.APIError as e:
        raise PinError(f"cannot unpin generation {number}: {e.explanation or e}",
                       "check the docker daemon") from e
    return Unpinned(tuple(removed), True, tuple(notes))


def pins(client: Any, label: str) -> dict[int, Pin]:
    """Every pin of partition ``label`` in the store, by generation number.

    Raises:
        PinError: the daemon failed.

    """
    errors = _errors()
    found: dict[int, tuple[str, list[str]]] = {}
    try:
        for c in _our_containers(client, label):
            number = (c.labels or {}).get(PIN_GENERATION, "")
            image_id = (c.labels or {}).get(PIN_IMAGE, "")
            if number.isdigit() and IMAGE_ID_RE.match(image_id):
                found.setdefault(int(number), (image_id, []))[1].append(c.id)
    except errors.APIError as e:
        raise PinError(f"cannot list the pins of {label}: {e.explanation or e}",
                       "check the docker daemon") from e
    return {n: Pin(n, image_id, tuple(cs)) for n, (image_id, cs) in sorted(found.items())}


def reconcile(client: Any, label: str, keep: Mapping[int, str],
              known: frozenset[int] = frozenset()) -> dict[int, Unpinned]:
    """Pin every generation in ``keep`` (number -> image ID), then drop stale pins.

    Kept pins are made first, so an image a kept generation shares with a
    dropped one is never without a pin in between.  A pin is stale when its
    number is neither kept nor in ``known`` (numbers whose directories exist
    but are not collected now, e.g. unreadable records: left alone).

    Returns:
        What was unpinned, by generation number.

    Raises:
        PinError: pinning a kept generation failed (nothing was unpinned), or
            the daemon failed.

    """
    for number, image_id in sorted(keep.items()):
        pin(client, image_id, label, number)
    dropped = {}
    kept_ids = set(keep.values())
    for number, found in pins(client, label).items():
        if number not in keep and number not in known:
            # An image a kept generation uses is never deleted with a stale pin.
            dropped[number] = unpin(client, label, number,
                                    None if found.image_id in kept_ids else found.image_id)
    return dropped
