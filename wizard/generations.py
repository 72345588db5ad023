"""Generations: every kernel + initramfs build, versioned and recorded (DESIGN §4b).

Layout on the partition (``<boot_dir>`` is ``boot_docker`` by default)::

    <boot_dir>/gen/<n>/vmlinuz          the kernel of generation n
    <boot_dir>/gen/<n>/initrd.img       its initramfs
    <boot_dir>/gen/<n>/generation.json  its record
    <boot_dir>/vmlinuz, initrd.img      the flat pair of earlier versions: "legacy"

One directory per generation, because a directory rename is the one atomic
step that makes kernel, initramfs *and* record appear together: ``add``
finishes everything inside the staged build directory (``initramfs.build(...,
stage_only=True)`` leaves it in ``<boot_dir>/.build-*``, same filesystem) and
renames it to ``gen/<n>`` last.  A crash before the rename leaves a stale
``.build-*`` the next build removes; after it, a complete generation.

The record (JSON, ``schema`` 1) holds the number, the kernel version, the
image reference (tag) and image ID it was built from, the initramfs inputs'
fingerprint (generator, kernel version, hash of the hook assets: what decides
whether an image change needs a new build), the creation time (UTC), the
kernel/initramfs names and ``files``: the bare names the wizard made in that
directory, all that ``generations_gc`` ever deletes there (besides the record).
Every value is validated on reading: a hostile record is skipped, never obeyed.

The flat pair of an earlier wizard is generation 0, ``legacy``: it is
listed while no numbered generation exists, ``adopt_legacy`` records it (with
the image ID it was built from, when known) so the "previous" entry can boot
it after the first new build, and its files are never deleted (they may be
the user's): only its record goes when it ages out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from wizard.atomic import fsync_dir, replace_atomic, write_atomic
from wizard.errors import WizardError
from wizard.fingerprint import KVER_RE, Fingerprint, kernel_version_of
from wizard.images import IMAGE_ID_RE, normalize_ref
from wizard.initramfs import SCRATCH_PREFIX, STAGED_INITRD, STAGED_KERNEL

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

_MAX_RECORD = 64 << 10
_NUMBER_RE = re.compile(r"^(0|[1-9][0-9]{0,8})$")
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
                "legacy": self.legacy, "pinned": self.pinned}


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


def _need(ok: bool, what: str) -> None:
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
    _need(isinstance(data, dict), "not a JSON object")
    assert isinstance(data, dict)
    _need(data.get("schema") == RECORD_SCHEMA, f"schema {data.get('schema')!r}, not "
                                               f"{RECORD_SCHEMA}")
    n = data.get("number")
    _need(isinstance(n, int) and not isinstance(n, bool) and n == number,
          f"number {n!r} in directory {number}")
    legacy = data.get("legacy", False)
    _need(isinstance(legacy, bool) and legacy == (number == LEGACY_NUMBER),
          "only generation 0 is legacy")
    created = data.get("created")
    _need(isinstance(created, str) and bool(_TIME_RE.match(created)), f"created {created!r}")
    kver = data.get("kernel_version")
    _need((kver is None and legacy) or (isinstance(kver, str) and bool(KVER_RE.match(kver))),
          f"kernel_version {kver!r}")
    ref = data.get("image_ref")
    if ref is not None:
        _need(isinstance(ref, str) and not _UNSAFE_REF.search(ref), f"image_ref {ref!r}")
        assert isinstance(ref, str)
        try:
            _need(normalize_ref(ref) == ref, f"image_ref {ref!r} is not normalised")
        except WizardError:
            _need(False, f"image_ref {ref!r}")
    image_id = data.get("image_id")
    _need(image_id is None or (isinstance(image_id, str) and bool(IMAGE_ID_RE.match(image_id))),
          f"image_id {image_id!r}")
    _need(legacy or (ref is not None and image_id is not None), "image_ref/image_id missing")
    raw_inputs = data.get("inputs")
    inputs = None
    if raw_inputs is not None or not legacy:
        try:
            inputs = Fingerprint.from_json(raw_inputs)
        except ValueError as e:
            _need(False, f"inputs: {e}")
    kernel, initrd, files = data.get("kernel"), data.get("initrd"), data.get("files")
    for what, name in (("kernel", kernel), ("initrd", initrd)):
        _need(isinstance(name, str) and bool(NAME_RE.match(name)) and name != RECORD_NAME,
              f"{what} {name!r}")
    _need(isinstance(files, list) and all(isinstance(f, str) and NAME_RE.match(f)
                                          and f != RECORD_NAME for f in files),
          f"files {files!r}")
    assert isinstance(files, list) and isinstance(kernel, str) and isinstance(initrd, str)
    _need(not legacy or not files, "a legacy record owns no files")
    pinned = data.get("pinned", False)
    _need(isinstance(pinned, bool) and not (pinned and legacy), f"pinned {pinned!r}")
    assert isinstance(created, str)
    return Generation(number=number, kernel_version=kver, image_ref=ref, image_id=image_id,
                      inputs=inputs, created=created, kernel=kernel, initrd=initrd,
                      files=tuple(files), legacy=legacy, pinned=pinned)


def _nofollow(path: str | os.PathLike[str], flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


@dataclass(frozen=True)
class Inventory:
    """The generations found under a ``boot_dir``, oldest first, and what was unreadable."""

    generations: tuple[Generation, ...] = ()
    """Valid records, by number."""
    problems: tuple[str, ...] = ()
    """One line per directory under ``gen/`` that was skipped (never collected)."""
    taken: frozenset[int] = field(default_factory=frozenset)
    """Every number with a directory, valid or not: never given out again."""

    @property
    def newest(self) -> Generation | None:
        """The generation the default boot entry boots."""
        return self.generations[-1] if self.generations else None

    @property
    def previous(self) -> Generation | None:
        """The one before it, which the "previous" entry boots (pinned by image ID)."""
        return self.generations[-2] if len(self.generations) >= 2 else None

    def get(self, number: int) -> Generation | None:
        """The generation numbered ``number``, if it has a valid record."""
        return next((g for g in self.generations if g.number == number), None)


def _read_record(gen_dir: Path, number: int) -> Generation:
    try:
        with open(gen_dir / RECORD_NAME, "rb", opener=_nofollow) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise GenerationError(f"{gen_dir / RECORD_NAME} is not a regular file")
            raw = f.read(_MAX_RECORD + 1)
    except OSError as e:
        raise GenerationError(f"cannot read {gen_dir / RECORD_NAME}: {e.strerror}") from e
    _need(len(raw) <= _MAX_RECORD, "larger than 64 KiB")
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise GenerationError(f"{gen_dir / RECORD_NAME} is not JSON: {e}") from e
    return from_json(data, number)


def _legacy(boot_dir: Path) -> Generation | None:
    kernel, initrd = boot_dir / KERNEL_NAME, boot_dir / INITRD_NAME
    for f in (kernel, initrd):
        with contextlib.suppress(OSError):
            st = os.lstat(f)
            if stat.S_ISREG(st.st_mode) and st.st_size > 0:
                continue
        return None
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.lstat(kernel).st_mtime))
    return Generation(number=LEGACY_NUMBER, kernel_version=kernel_version_of(kernel),
                      image_ref=None, image_id=None, inputs=None, created=created,
                      files=(), legacy=True)


def load(boot_dir: Path) -> Inventory:
    """List the generations under ``boot_dir`` (nothing is written).

    A directory under ``gen/`` that is not a plain directory with a valid
    record is reported in ``problems`` and left alone.  The flat legacy pair
    counts as generation 0 while nothing is under ``gen/`` (or once adopted).
    """
    boot_dir = Path(boot_dir)
    gens: list[Generation] = []
    problems: list[str] = []
    taken: set[int] = set()
    root = boot_dir / GEN_DIR
    try:
        root_st = os.lstat(root)
    except FileNotFoundError:
        root_st = None
    if root_st is not None and not stat.S_ISDIR(root_st.st_mode):
        problems.append(f"{root} is not a directory (a symlink?): no generation read from it")
    elif root_st is not None:
        for entry in sorted(root.iterdir(), key=lambda p: p.name):
            if not _NUMBER_RE.match(entry.name):
                continue  # not ours (a user's note, an editor's backup): ignored, not touched
            number = int(entry.name)
            taken.add(number)
            if not stat.S_ISDIR(os.lstat(entry).st_mode):
                problems.append(f"{entry} is not a directory (a symlink?): skipped")
                continue
            try:
                gens.append(_read_record(entry, number))
            except GenerationError as e:
                problems.append(f"{entry}: {e.problem}: skipped, never removed")
    if not taken:
        legacy = _legacy(boot_dir)
        if legacy is not None:
            gens.append(legacy)
    gens.sort(key=lambda g: g.number)
    return Inventory(tuple(gens), tuple(problems), frozenset(taken))


def next_number(inventory: Inventory) -> int:
    """The number of the next generation: above every directory ever seen, at least 1."""
    used = set(inventory.taken) | {g.number for g in inventory.generations}
    return max(used, default=LEGACY_NUMBER) + 1


def _plain_dir(path: Path, what: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        path.mkdir(mode=0o755)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise GenerationError(f"{what} {path} is not a directory (a symlink?)",
                              f"move {path} away; the wizard makes it itself")


def write_record(boot_dir: Path, gen: Generation) -> Path:
    """(Re)write the record of an existing generation directory atomically, with backup.

    Raises:
        GenerationError: the generation's directory is missing or not a plain directory.

    """
    gen_dir = Path(boot_dir) / GEN_DIR / str(gen.number)
    _plain_dir(Path(boot_dir) / GEN_DIR, "the generations directory")
    if not gen_dir.is_dir() or gen_dir.is_symlink():
        raise GenerationError(f"{gen_dir} is not a generation directory")
    write_atomic(gen_dir / RECORD_NAME, _encode(gen), mode=0o644, backup=True)
    return gen_dir / RECORD_NAME


def _encode(gen: Generation) -> bytes:
    return (json.dumps(gen.to_json(), indent=2, sort_keys=True) + "\n").encode()


def add(boot_dir: Path, staged: Path, record: Generation) -> Generation:
    """Install a staged build as generation ``record.number``; the rename is the commit.

    ``staged`` is what ``initramfs.build(..., stage_only=True)`` returned: a
    ``.build-*`` directory right inside ``boot_dir`` holding ``vmlinuz.new``
    and ``initrd.img.new``.  They are renamed (fsynced) to the record's
    names, the record (with ``files`` set to those two names) is written next
    to them, then the directory is renamed to ``gen/<n>``.  Nothing outside
    the staged directory changes before that.

    Raises:
        GenerationError: the staged build is not one, is incomplete, its kernel
            is not ``record.kernel_version``, or ``gen/<n>`` exists.

    """
    boot_dir, staged = Path(boot_dir), Path(staged)
    if (staged.parent.resolve() != boot_dir.resolve() or not staged.name.startswith(SCRATCH_PREFIX)
            or staged.is_symlink() or not staged.is_dir()):
        raise GenerationError(f"{staged} is not a staged build in {boot_dir}",
                              "build the initramfs again")
    if record.legacy or record.number < 1:
        raise GenerationError(f"generation {record.number} cannot be added: numbers start at 1")
    kernel, initrd = staged / STAGED_KERNEL, staged / STAGED_INITRD
    for f in (kernel, initrd):
        st = os.lstat(f) if os.path.lexists(f) else None
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            raise GenerationError(f"the staged build in {staged} has no complete {f.name}",
                                  "build the initramfs again")
    found = kernel_version_of(kernel)
    if found is not None and found != record.kernel_version:
        raise GenerationError(f"the staged kernel is {found}, not {record.kernel_version}",
                              "build the initramfs again")
    _plain_dir(boot_dir / GEN_DIR, "the generations directory")
    target = boot_dir / GEN_DIR / str(record.number)
    if os.path.lexists(target):
        raise GenerationError(f"generation {record.number} already exists ({target})",
                              "use generations.next_number()")
    record = replace(record, files=(record.kernel, record.initrd))
    replace_atomic(initrd, staged / record.initrd)
    replace_atomic(kernel, staged / record.kernel)
    write_atomic(staged / RECORD_NAME, _encode(record), mode=0o644, backup=False)
    os.chmod(staged, 0o755)  # mkdtemp made it 0700; a kernel is no secret (the flat pair: 0644)
    try:
        os.rename(staged, target)
    except OSError as e:
        raise GenerationError(f"cannot install generation {record.number}: {e.strerror}",
                              "check free space on the partition, then run again") from e
    fsync_dir(boot_dir / GEN_DIR)
    return record


def adopt_legacy(boot_dir: Path, image_ref: str, image_id: str | None) -> Generation | None:
    """Record the flat legacy pair as generation 0, before the first numbered one is added.

    Its files stay where they are, owned by nobody (never deleted).
    ``image_id`` is the image it was built from, as well as it is known (the
    hook's last good image booted on that kernel, else the tag's ID now).
    Like ``add``, the record is finished in a ``.build-*`` directory that is
    then renamed to ``gen/0``: a crash leaves the legacy pair as it was.

    Returns:
        The record; None when there is no legacy pair, or ``gen/`` already
        has a generation (then the pair is no longer listed).

    """
    boot_dir = Path(boot_dir)
    inv = load(boot_dir)
    legacy = inv.get(LEGACY_NUMBER)
    if legacy is None or inv.taken:
        return None
    gen = from_json(replace(legacy, image_ref=normalize_ref(image_ref),
                            image_id=image_id).to_json(), LEGACY_NUMBER)
    _plain_dir(boot_dir / GEN_DIR, "the generations directory")
    staged = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=boot_dir))
    try:
        write_atomic(staged / RECORD_NAME, _encode(gen), mode=0o644, backup=False)
        os.chmod(staged, 0o755)
        os.rename(staged, boot_dir / GEN_DIR / str(LEGACY_NUMBER))
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    fsync_dir(boot_dir / GEN_DIR)
    return gen
