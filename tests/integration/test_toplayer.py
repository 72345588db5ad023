"""Top layer against the real lab: loop btrfs, private dockerd, a real Debian image.

Users are created with the image's own useradd/chpasswd; the password must
only travel over stdin (never in docker inspect, events, logs or diffs).
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.models.containers
import pytest

from tests.lab import lab
from wizard.common.errors import ImageError, ToplayerError
from wizard.settings.config import Settings
from wizard.toplayer.files import (
    apply_changes,
    backup_root,
    diff_text,
    ensure_toplayer,
    plan_hostname,
    toplayer_dir,
)
from wizard.toplayer.users import collect, iter_create_users

pytestmark = pytest.mark.lab

IMAGE = "dbw-toplayer-debian:test"
TINY = "dbw-toplayer-tiny:test"
ALICE_PW = "Al1ce-s3cret pass:word"
BOB_PW = "b0b-other-secret"

_libcrypt = ctypes.CDLL("libcrypt.so.1")
_libcrypt.crypt.restype = ctypes.c_char_p
_libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]


def verify(password: str, hashed: str) -> bool:
    out = _libcrypt.crypt(password.encode(), hashed.encode())
    return out is not None and out.decode() == hashed


def shadow_hash(shadow: bytes, user: str) -> str:
    for line in shadow.decode().splitlines():
        name, hashed, *_ = line.split(":")
        if name == user:
            return hashed
    raise AssertionError(f"{user} not in shadow")


class Lab:
    def __init__(self, top: Path, d: lab.Dockerd) -> None:
        self.top, self.d = top, d
        self.client = docker.DockerClient(base_url=d.host)
        self.settings = Settings(label="x", image=IMAGE)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("toplayer")
    with lab.docker_disk(work) as dd:
        top, d = dd.top, dd.daemon
        lab.import_rootfs(d, IMAGE)
        # A tiny image with only a shell: no useradd, no chpasswd.
        tiny = work / "tiny.tar"
        with tarfile.open(tiny, "w") as tf:
            for src, dst in (("/bin/dash", "bin/sh"),
                             ("/lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libc.so.6"),
                             ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2")):
                tf.add(os.path.realpath(src), dst)
            for name in ("etc/passwd", "etc/group"):
                info = tarfile.TarInfo(name)
                data = b"root:x:0:0:root:/root:/bin/sh\n" if "passwd" in name else b"root:x:0:\n"
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        d.docker("import", tiny, TINY)
        env = Lab(top, d)
        try:
            yield env
        finally:
            env.client.close()


@pytest.fixture()
def inspected(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record `docker inspect` of every container the code creates, right after create."""
    seen: list[str] = []
    original = docker.models.containers.ContainerCollection.create

    def create(self, *args, **kwargs):
        container = original(self, *args, **kwargs)
        seen.append(json.dumps(self.client.api.inspect_container(container.id)))
        return container

    monkeypatch.setattr(docker.models.containers.ContainerCollection, "create", create)
    return seen


def test_users_created_with_image_tools_and_kept(env: Lab, inspected: list[str]) -> None:
    toplayer = ensure_toplayer(env.top, env.settings)
    assert toplayer == toplayer_dir(env.top, env.settings)
    assert toplayer.stat().st_mode & 0o777 == 0o700
    expected_mode, expected_gid = env.d.docker(
        "run", "--rm", "--network", "none", IMAGE, "stat", "-c", "%a %g", "/etc/shadow",
    ).stdout.split()

    events, changes = collect(iter_create_users(env.client, IMAGE, [("alice", ALICE_PW)], toplayer))
    by = {c.relpath: c for c in changes}
    assert set(by) == {"etc/passwd", "etc/shadow", "etc/group", "etc/gshadow"}
    assert b"\nalice:x:" in by["etc/passwd"].new
    assert b"alice:x:1000:1000::/home/alice:/bin/bash\n" in by["etc/passwd"].new
    assert b"\nalice:" in by["etc/group"].new
    hashed = shadow_hash(by["etc/shadow"].new, "alice")
    assert hashed.startswith(("$y$", "$6$"))
    assert verify(ALICE_PW, hashed) and not verify("wrong", hashed)
    shadow = by["etc/shadow"]
    assert shadow.secret and by["etc/gshadow"].secret and not by["etc/passwd"].secret
    assert shadow.mode in (0o640, 0o600) and f"{shadow.mode:o}" == expected_mode
    assert shadow.gid == int(expected_gid) and shadow.uid == 0
    assert shadow.old is None and shadow.image_old is not None

    # The password (and the hash) appear nowhere the user or a log could see.
    assert inspected and all(ALICE_PW not in s for s in inspected)
    assert any("alice" in s for s in inspected)  # the inspect really captured the command
    texts = [repr(e) for e in events]
    assert any("created user alice" in t for t in texts)
    diffs = "".join(diff_text(c) for c in changes)
    assert "+alice:<hash redacted>:" in diffs and "image's own file" in diffs
    assert ALICE_PW not in "".join(texts) + diffs and hashed not in diffs
    # The throwaway container is gone.
    assert env.d.docker("ps", "-aq", "--filter", "label=dockerboot-wizard").stdout.strip() == ""

    host = plan_hostname(toplayer, "desk-01")
    assert apply_changes(env.top, env.settings, [*changes, host]) == []  # nothing replaced
    st = (toplayer / "etc/shadow").stat()
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (shadow.mode, 0, int(expected_gid))
    assert (toplayer / "etc").stat().st_mode & 0o777 == 0o755
    assert (toplayer / "etc/hostname").read_bytes() == b"desk-01\n"

    # Second run adds bob, keeps alice (and her hash) from the top layer.
    events, changes = collect(iter_create_users(env.client, IMAGE, [("bob", BOB_PW)], toplayer))
    by = {c.relpath: c for c in changes}
    assert b"\nalice:" in by["etc/passwd"].new and b"\nbob:" in by["etc/passwd"].new
    assert shadow_hash(by["etc/shadow"].new, "alice") == hashed
    assert verify(BOB_PW, shadow_hash(by["etc/shadow"].new, "bob"))
    assert by["etc/shadow"].old == (toplayer / "etc/shadow").read_bytes()
    diff = diff_text(by["etc/shadow"])
    assert "+bob:<hash redacted>:" in diff
    assert "-alice" not in diff and "+alice" not in diff  # her hash did not change
    assert all(BOB_PW not in s for s in inspected)
    backups = apply_changes(env.top, env.settings, changes)
    assert backups, "replaced files must be backed up"
    root = backup_root(env.top, env.settings)
    for b in backups:
        assert b.is_relative_to(root) and not b.is_relative_to(toplayer)
    assert any(b.name == "shadow" and b"bob:" not in b.read_bytes() for b in backups)
    assert b"\nbob:" in (toplayer / "etc/passwd").read_bytes()


def test_image_without_useradd_names_the_package(env: Lab) -> None:
    with pytest.raises(ToplayerError, match="has no useradd") as info:
        collect(iter_create_users(env.client, TINY, [("carol", "pw-carol")]))
    assert "'passwd' package" in info.value.fix
    assert env.d.docker("ps", "-aq", "--filter", "label=dockerboot-wizard").stdout.strip() == ""


def test_missing_image_is_an_image_error(env: Lab) -> None:
    with pytest.raises(ImageError, match="not present locally"):
        collect(iter_create_users(env.client, "dbw-no-such-image:1", [("dave", "pw")]))
