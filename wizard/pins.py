"""Pins: keep a generation's image in the docker store after its tag moved on.

The "previous" boot entry boots ``docker_image=sha256:<id>``: that image must
outlive a ``docker pull`` that moves the tag, and the clean-ups people run.
A pin is two things, both named after the partition label and the
generation number:

- a tag ``dockerboot-pin/<name>:gen-<n>`` on the image, and
- a container ``dockerboot-pin-<name>-gen-<n>`` of the image, created with
  ``--network none`` and never started, labelled ``dockerboot-wizard.pin=<label>``,
  ``…pin.generation=<n>`` and ``…pin.image=<id>``.

Measured against a real dockerd (btrfs driver, Debian docker.io 20.10.24; the tests in
``tests/integration/test_pins.py`` keep checking it):

============================================  ==========  ===========  ==========
what the user runs                            tag only    container    both
============================================  ==========  ===========  ==========
``docker pull``/``build`` moves the tag        kept        kept         kept
``docker image prune`` (dangling only)         kept        kept         kept
``docker image prune -a``                      **gone**    kept         kept
``docker rmi <tag>`` (tag still on it)         untagged    **refused**  untagged
``docker rmi <id>``                            refused     refused      refused
``docker container prune`` + ``image prune``   kept        **gone**     kept
``docker system prune -a``, ``rmi -f <id>``    gone        gone         gone
============================================  ==========  ===========  ==========

A tag alone does not survive ``image prune -a`` (unused = no container, tags
or not); a container alone makes the user's own ``docker rmi <tag>`` fail
with "must force" while the tag is still on the pinned image.  Together,
``rmi <tag>`` just untags (the pin tag is another reference), and only a
forced or system-wide prune removes the image; then the hook's fallback
still has the last good image, and a later pin can be made again.

The pin containers carry ``dockerboot-wizard.pin``, not the
``dockerboot-wizard`` label: ``leftovers.remove_leftover_containers`` filters
on the latter and never sees them.  Unpinning removes only containers that
carry the pin labels of that partition and generation, and the pin tag only
while it still names the image it pinned; it never forces (a container of
the user's that uses the image keeps it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wizard.errors import DockerError

PIN_LABEL = "dockerboot-wizard.pin"
"""Container label: the partition label the pin belongs to."""
PIN_GENERATION = "dockerboot-wizard.pin.generation"
"""Container label: the generation number."""
PIN_IMAGE = "dockerboot-wizard.pin.image"
"""Container label: the pinned image ID (``sha256:…``)."""
REPOSITORY = "dockerboot-pin"
"""Pin tags are ``dockerboot-pin/<name>:gen-<n>``."""
NEVER_STARTED = "/.dockerboot-pin-never-started"
"""The pin container's entrypoint: it is never run, and starting it does nothing."""
_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_GEN_TAG = re.compile(r"^gen-(0|[1-9][0-9]{0,8})$")


class PinError(DockerError):
    """An image could not be pinned or unpinned."""


def pin_name(label: str) -> str:
    """The partition label as a docker name part: lower case, ``[a-z0-9-]``.

    A label that had to change gets 8 hex digits of its hash appended, so
    ``Data`` and ``data`` (or ``a+b`` and ``a-b``) never share pins.
    """
    name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:64] or "x"
    if name != label:
        name += "-" + hashlib.sha256(label.encode()).hexdigest()[:8]
    return name


def pin_tag(label: str, number: int) -> str:
    """The pin tag of generation ``number`` of the partition ``label``."""
    return f"{REPOSITORY}/{pin_name(label)}:gen-{number}"


def pin_container_name(label: str, number: int) -> str:
    """The pin container's name of generation ``number`` of the partition ``label``."""
    return f"{REPOSITORY}-{pin_name(label)}-gen-{number}"


@dataclass(frozen=True)
class Pin:
    """A pin found in the docker store."""

    number: int
    """The generation it belongs to."""
    image_id: str
    """The image it holds."""
    tag: bool
    """Whether the pin tag is there."""
    containers: tuple[str, ...]
    """Ids of the pin containers (normally one)."""


@dataclass(frozen=True)
class Unpinned:
    """What ``unpin`` removed, and what it left and why."""

    containers: tuple[str, ...] = ()
    """Short ids of the pin containers removed."""
    tag: bool = False
    """Whether the pin tag was removed (the image too, if that was its last reference)."""
    notes: tuple[str, ...] = ()
    """One line for each thing left in place."""


def _errors() -> Any:
    # Imported when used: the TUI must start without loading docker (start-up time).
    import docker.errors

    return docker.errors


def _check(image_id: str, number: int) -> None:
    if not _ID_RE.match(image_id):
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

    The tag is set (moved, if a reused number held another image) and a pin
    container is created unless one of this generation already holds this
    image; one holding another image is removed first (ours by its labels).

    Raises:
        PinError: the image is not in the store, or the container name is taken
            by a container that is not a pin (left alone), or the daemon failed.

    """
    _check(image_id, number)
    errors = _errors()
    repository, _, tag = pin_tag(label, number).partition(":")
    try:
        image = client.images.get(image_id)
        image.tag(repository, tag)
        have = False
        for c in _our_containers(client, label, number):
            if (c.labels or {}).get(PIN_IMAGE) == image_id and not have:
                have = True
            else:
                c.remove(force=False)
        if not have:
            client.containers.create(
                image_id, entrypoint=[NEVER_STARTED], command=[], network_mode="none",
                name=pin_container_name(label, number),
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
        image_id: the image the record says it pinned: a pin tag that names
            another image by now is left alone (None: whatever it names).

    Returns:
        What was removed, with a note for each thing left (never forced).

    Raises:
        PinError: the daemon failed.

    """
    errors = _errors()
    removed: list[str] = []
    notes: list[str] = []
    ref = pin_tag(label, number)
    try:
        for c in _our_containers(client, label, number):
            try:
                c.remove(force=False)  # never stops a pin container someone started
                removed.append(c.short_id)
            except errors.APIError as e:
                notes.append(f"pin container {c.short_id} stays: {e.explanation or e}")
        try:
            tagged = client.images.get(ref)
        except errors.ImageNotFound:
            return Unpinned(tuple(removed), False, tuple(notes))
        if image_id is not None and tagged.id != image_id:
            notes.append(f"{ref} names {tagged.id[:19]}, not {image_id[:19]}: left alone")
            return Unpinned(tuple(removed), False, tuple(notes))
        try:
            client.images.remove(ref, force=False)
        except errors.APIError as e:
            notes.append(f"{ref} stays: {e.explanation or e}")
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
    found: dict[int, tuple[str, bool, list[str]]] = {}
    repository = f"{REPOSITORY}/{pin_name(label)}"
    try:
        for image in client.images.list(name=repository):
            for ref in image.tags or ():
                repo, _, tag = ref.rpartition(":")
                m = _GEN_TAG.match(tag)
                if repo == repository and m:
                    found[int(m.group(1))] = (image.id, True, [])
        for c in _our_containers(client, label):
            number = (c.labels or {}).get(PIN_GENERATION, "")
            image_id = (c.labels or {}).get(PIN_IMAGE, "")
            if not number.isdigit() or not _ID_RE.match(image_id):
                continue
            entry = found.setdefault(int(number), (image_id, False, []))
            entry[2].append(c.id)
    except errors.APIError as e:
        raise PinError(f"cannot list the pins of {label}: {e.explanation or e}",
                       "check the docker daemon") from e
    return {n: Pin(n, image_id, tag, tuple(cs))
            for n, (image_id, tag, cs) in sorted(found.items())}


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
    for number, found in pins(client, label).items():
        if number not in keep and number not in known:
            dropped[number] = unpin(client, label, number, found.image_id)
    return dropped
