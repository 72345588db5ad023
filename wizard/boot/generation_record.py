"""A generation's record: what ``generation.json`` holds, validated, and how it is written.

The record (JSON, ``schema`` 1) holds the number, the kernel version, the
image reference (tag) and image ID it was built from, the initramfs inputs'
fingerprint, the creation time (UTC), the kernel/initramfs names, ``files``
(the bare names the wizard made in that directory: all that garbage
collection ever deletes there besides the record), whether it is the legacy
flat pair and whether ``rollback`` pinned it; a pinned record also holds
``rolled_back_from``, the image IDs the rollback turned away from (the
newest generation's and the tag's at that time): the rollback holds while
the tag names one of them (``wizard.boot.generations.rollback_state``).  A
pinned record of an earlier version has no such key: it loads with
``rolled_back_from`` None (unknown), and the previous generation's image
stands in for it.  Every value that can reach a
path, a boot entry or a docker call is checked on reading (``from_json``): a
hostile record is refused, never obeyed.  Where records live and how a
generation appears on disk is ``wizard.boot.generations``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from wizard.boot.fingerprint import KVER_RE, Fingerprint
from wizard.common.errors import WizardError
from wizard.store.images import IMAGE_ID_RE, normalize_ref

GEN_DIR = "gen"
"""Directory under ``boot_dir`` holding one directory per generation."""
RECORD_NAME = "generation.json"
"""The record's file name inside a generation's directory."""
RECORD_SCHEMA = 1
"""Version of the record format; a newer one is listed as a problem, never touched."""
KERNEL_NAME = "vmlinuz"
INITRD_NAME = "initrd.img"
LEGACY_NUMBER = 0
"""The number of the flat ``<boot_dir>/vmlinuz`` + ``initrd.img`` pair of earlier versions."""

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
"""A file name a record may give: bare (no ``/``), no leading dot: its own directory only."""
_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# rEFInd options and titles carry the ref unquoted inside "…": no quote, no blank.
_UNSAFE_REF = re.compile(r'[\s"\x00-\x1f\x7f]')


class GenerationError(WizardError):
    """A generation cannot be added, read or removed safely."""


@dataclass(frozen=True)
class Generation:
    """One kernel + initramfs build, as its record says."""

    number: int
    """1, 2, …; 0 is the legacy flat pair."""
    kernel_version: str | None
    """``uname -r`` of its kernel (None: a legacy pair whose header was unreadable)."""
    image_ref: str | None
    """The tag it was built from, normalised (``debian:12``); None: unknown (legacy)."""
    image_id: str | None
    """``sha256:<64 hex>`` of that image; None: unknown (a legacy pair not adopted)."""
    inputs: Fingerprint | None
    """The initramfs inputs it was built with (None: legacy, unknown)."""
    created: str
    """Creation time, ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""
    kernel: str = KERNEL_NAME
    """The kernel's file name in the generation's directory (legacy: in ``boot_dir``)."""
    initrd: str = INITRD_NAME
    """The initramfs's file name, likewise."""
    files: tuple[str, ...] = (KERNEL_NAME, INITRD_NAME)
    """Names the wizard made in the generation's directory: all GC may delete."""
    legacy: bool = False
    """The flat pair of an earlier version: its files are never deleted."""
    pinned: bool = False
    """Made by ``rollback``: the default entry boots ``image_id``, not the tag."""
    rolled_back_from: tuple[str, ...] | None = None
    """A rollback's: the image IDs it turned away from, sorted (None: not a rollback, or
    one recorded by an earlier version, which did not say)."""

    @property
    def loader(self) -> str:
        """The kernel's path relative to ``boot_dir`` (what the boot entry loads)."""
        return self.kernel if self.legacy else f"{GEN_DIR}/{self.number}/{self.kernel}"

    @property
    def initrd_path(self) -> str:
        """The initramfs's path relative to ``boot_dir``."""
        return self.initrd if self.legacy else f"{GEN_DIR}/{self.number}/{self.initrd}"

    def to_json(self) -> dict[str, object]:
        """The record as written to ``generation.json``."""
        return {"schema": RECORD_SCHEMA, "number": self.number, "created": self.created,
                "kernel_version": self.kernel_version, "image_ref": self.image_ref,
                "image_id": self.image_id,
                "inputs": self.inputs.to_json() if self.inputs else None,
                "kernel": self.kernel, "initrd": self.initrd, "files": list(self.files),
                "legacy": self.legacy, "pinned": self.pinned,
                **({} if self.rolled_back_from is None
                   else {"rolled_back_from": list(self.rolled_back_from)})}


def utc_now() -> str:
    """The current time as a record's ``created`` (UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_record(number: int, inputs: Fingerprint, image_ref: str, image_id: str,
               created: str | None = None) -> Generation:
    """The record of a generation about to be added (validated as ``from_json`` would)."""
    gen = Generation(number=number, kernel_version=inputs.kernel_version,
                     image_ref=normalize_ref(image_ref), image_id=image_id, inputs=inputs,
                     created=created or utc_now())
    return from_json(gen.to_json(), number)


def require(ok: bool, what: str) -> None:
    """Raise ``GenerationError`` naming ``what`` unless ``ok`` (a record is invalid)."""
    if not ok:
        raise GenerationError(f"invalid generation record: {what}",
                              "the record was not written by dockerboot-wizard; "
                              "remove its directory by hand if it is not needed")


def from_json(data: object, number: int) -> Generation:
    """Validate a parsed record found in directory ``gen/<number>``.

    Every value that can reach a path, a boot entry or a docker call is
    checked: numbers, bare file names, the image ID, the ref, the kernel version.

    Raises:
        GenerationError: anything is missing, of the wrong type or unsafe.

    """
    require(isinstance(data, dict), "not a JSON object")
    assert isinstance(data, dict)
    require(data.get("schema") == RECORD_SCHEMA, f"schema {data.get('schema')!r}, not "
                                               f"{RECORD_SCHEMA}")
    n = data.get("number")
    require(isinstance(n, int) and not isinstance(n, bool) and n == number,
          f"number {n!r} in directory {number}")
    legacy = data.get("legacy", False)
    require(isinstance(legacy, bool) and legacy == (number == LEGACY_NUMBER),
          "only generation 0 is legacy")
    created = data.get("created")
    require(isinstance(created, str) and bool(_TIME_RE.match(created)), f"created {created!r}")
    kver = data.get("kernel_version")
    require((kver is None and legacy) or (isinstance(kver, str) and bool(KVER_RE.match(kver))),
          f"kernel_version {kver!r}")
    ref = data.get("image_ref")
    if ref is not None:
        require(isinstance(ref, str) and not _UNSAFE_REF.search(ref), f"image_ref {ref!r}")
        assert isinstance(ref, str)
        try:
            require(normalize_ref(ref) == ref, f"image_ref {ref!r} is not normalised")
        except WizardError:
            require(False, f"image_ref {ref!r}")
    image_id = data.get("image_id")
    require(image_id is None or (isinstance(image_id, str) and bool(IMAGE_ID_RE.match(image_id))),
          f"image_id {image_id!r}")
    require(legacy or (ref is not None and image_id is not None), "image_ref/image_id missing")
    raw_inputs = data.get("inputs")
    inputs = None
    if raw_inputs is not None or not legacy:
        try:
            inputs = Fingerprint.from_json(raw_inputs)
        except ValueError as e:
            require(False, f"inputs: {e}")
    kernel, initrd, files = data.get("kernel"), data.get("initrd"), data.get("files")
    for what, name in (("kernel", kernel), ("initrd", initrd)):
        require(isinstance(name, str) and bool(NAME_RE.match(name)) and name != RECORD_NAME,
              f"{what} {name!r}")
    require(isinstance(files, list) and all(isinstance(f, str) and NAME_RE.match(f)
                                          and f != RECORD_NAME for f in files),
          f"files {files!r}")
    assert isinstance(files, list) and isinstance(kernel, str) and isinstance(initrd, str)
    require(not legacy or not files, "a legacy record owns no files")
    pinned = data.get("pinned", False)
    require(isinstance(pinned, bool) and not (pinned and legacy), f"pinned {pinned!r}")
    away = data.get("rolled_back_from")
    require(away is None or (pinned is True and isinstance(away, list) and all(
        isinstance(i, str) and IMAGE_ID_RE.match(i) for i in away)),
        f"rolled_back_from {away!r}")
    assert isinstance(created, str)
    return Generation(number=number, kernel_version=kver, image_ref=ref, image_id=image_id,
                      inputs=inputs, created=created, kernel=kernel, initrd=initrd,
                      files=tuple(files), legacy=legacy, pinned=pinned,
                      rolled_back_from=None if away is None else tuple(sorted(set(away))))


def encode(gen: Generation) -> bytes:
    """The record as written to ``generation.json`` (sorted keys, one trailing newline)."""
    return (json.dumps(gen.to_json(), indent=2, sort_keys=True) + "\n").encode()
