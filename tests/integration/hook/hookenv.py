"""Shared real environment for the boot-hook tests: loop btrfs, docker store, top layer.

A real dockerd (classic btrfs driver) fills ``<top>/docker`` with offline
images, records what docker itself says about them, and is STOPPED before
any hook runs — closest to boot, where nothing but the on-disk store exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.lab import lab

ASSETS = Path(__file__).resolve().parents[3] / "assets"
CORE = ASSETS / "hook" / "dockerboot-core.sh"
ASSESS = ASSETS / "hook" / "dockerboot-assess.sh"
MARK_GOOD = ASSETS / "hook" / "dockerboot-mark-good"
MARK_GOOD_UNIT = ASSETS / "hook" / "dockerboot-mark-good.service"
KVER = "6.1.0-dbw-test"                   # the "running kernel" of the hook tests

BASE_MARKER = "dbw-base-marker"
SINGLE = "myimg"                          # one layer, implicit :latest
MULTI = "localhost:5000/ns/app:1.0"       # three layers, registry host:port
LIBRARY = "docker.io/library/dbwlib:2"    # docker stores it as dbwlib:2
RW = "docker_rwlayer"                     # the rw layer the hook tests boot into
SHELLS = [("busybox", "sh"), ("dash",)]   # the shells the hook must run under
LINKS = "dbw-links:1"                     # symlinks where top layers write (merged /usr, …)
DECOY = "dbw-decoy:1"                     # image config with diff_ids outside rootfs
SYSTEMD = "dbw-systemd:1"                 # merged /usr, /sbin/init -> systemd, etc/systemd/system
NOINIT = "dbw-noinit:1"                   # modules, but sbin/init -> /bin/sh (outside the image)
NOMODS = "dbw-nomods:1"                   # an init, but modules only for another kernel

# What makes a test image bootable for the assessment (dockerboot-assess.sh):
# an executable /sbin/init and /lib/modules/<KVER>.
BOOT_FILES = {"sbin/init": "#!/bin/sh\n", f"lib/modules/{KVER}/modules.dep": ""}
BOOT_MODES = {"sbin/init": (0o755, 0)}

# The LINKS image: the symlinks a real image has where a top layer writes,
# and a hostile one (etc/evil -> /).
LINKS_SYMLINKS = {
    "etc/resolv.conf": "../run/systemd/resolve/stub-resolv.conf",   # dangling
    "etc/localtime": "/usr/share/zoneinfo/Etc/UTC",                 # absolute
    "lib": "usr/lib",                                               # merged /usr
    "etc/abs": "/usr/lib",                                          # absolute, to a dir
    "etc/evil": "/",
    "etc/loop": "loop2", "etc/loop2": "loop",
}
LINKS_DIRS = {"etc": 0o755, "usr": 0o755, "usr/lib": 0o755, "tmp": 0o1777, "run": 0o755}

# The image's account files (every test image has them): root, alice (the
# top layers of the tests have a different alice) and a system user newsvc
# that only the image knows, as a package's postinst would add it.
IMAGE_ACCOUNTS = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\n"
              "alice:x:1000:1000:Image Alice:/home/alice:/bin/sh\n"
              "newsvc:x:999:999::/nonexistent:/usr/sbin/nologin\n",
    "group": "root:x:0:\nalice:x:1000:\nnewsvc:x:999:\n",
    "shadow": "root:*:19000:0:99999:7:::\nalice:!image:19000:0:99999:7:::\n"
              "newsvc:!:19000::::::\n",
    "gshadow": "root:*::\nalice:!image::\nnewsvc:!::\n",
}
IMAGE_SHADOW_MODE = (0o640, 42)           # Debian: root:shadow 0640


@dataclass
class HookEnv:
    """A stopped docker store on a mounted loop btrfs, plus facts docker reported."""

    workdir: Path
    disk: lab.Disk
    top: Path                               # the partition's top level, mounted
    layers: dict[str, list[str]] = field(default_factory=dict)   # ref -> diff IDs
    ids: dict[str, str] = field(default_factory=dict)            # ref -> "sha256:<id>"

    @property
    def data_root(self) -> Path:
        return self.top / "docker"

    def cache_id(self, ref: str) -> str:
        """The layerdb cache-id of ``ref``'s top layer, from docker's own diff IDs."""
        chain = chain_id_py(self.layers[ref])
        path = self.data_root / "image/btrfs/layerdb/sha256" / chain.removeprefix("sha256:")
        return (path / "cache-id").read_text().strip()

    def subvolume(self, ref: str) -> Path:
        """Where docker keeps ``ref``'s full rootfs."""
        return self.data_root / "btrfs/subvolumes" / self.cache_id(ref)

    def run_core(self, cmdline: str, *, func: str = "dockerboot_main", args: tuple[str, ...] = (),
                 timeout_s: int = 2, extra_env: dict[str, str] | None = None,
                 shell: tuple[str, ...] = ("busybox", "sh"),
                 ) -> subprocess.CompletedProcess:
        """Source the core under ``shell`` (busybox ash) with ``set -u`` and call ``func``."""
        env = core_env(self.workdir, cmdline, timeout_s)
        env.update(extra_env or {})
        script = f'set -u; . "{CORE}"; {func} "$@"'
        return subprocess.run([*shell, "-c", script, "core", *args], env=env,
                              text=True, capture_output=True, timeout=120)


def chain_id_py(diff_ids: list[str]) -> str:
    """image-spec ChainID with hashlib (the reference for the shell version)."""
    chain = diff_ids[0]
    for d in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {d}".encode()).hexdigest()
    return chain


def libexec(workdir: Path) -> Path:
    """A DOCKERBOOT_LIBEXEC like the initramfs one: core, coreutils cp and sha256sum."""
    d = workdir / "libexec"
    d.mkdir(exist_ok=True)
    for tool in ("cp", "sha256sum"):
        link = d / tool
        if not link.exists():
            link.symlink_to(f"/usr/bin/{tool}")
    for f in (*CORE.parent.glob("dockerboot-*.sh"), MARK_GOOD, MARK_GOOD_UNIT):
        if not (d / f.name).exists():
            (d / f.name).symlink_to(f)      # where adapters source them from
    return d


def core_env(workdir: Path, cmdline: str | None, timeout_s: int = 2) -> dict[str, str]:
    """Environment for the core: private run dir, config, helper dir, short timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKERBOOT_")}
    env.update(DOCKERBOOT_RUNDIR=str(workdir / "run"),
               DOCKERBOOT_CONFIG=str(workdir / "docker-btrfs.json"),
               DOCKERBOOT_LIBEXEC=str(libexec(workdir)),
               DOCKERBOOT_DEVICE_TIMEOUT=str(timeout_s), DOCKERBOOT_KVER=KVER)
    if cmdline is not None:
        env["DOCKERBOOT_CMDLINE"] = cmdline
    return env


def _tar(files: dict[str, str], modes: dict[str, tuple[int, int]] | None = None,
         symlinks: dict[str, str] | None = None, dirs: dict[str, int] | None = None) -> bytes:
    """A tar of text files, 0644 root:root unless ``modes`` gives (mode, gid);
    ``dirs`` (name -> mode) and ``symlinks`` (name -> target) come first."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in (dirs or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            tar.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode, info.gid = (modes or {}).get(name, (0o644, 0))
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _decoy_image_tar(workdir: Path, accounts: dict[str, str]) -> Path:
    """A ``docker load`` archive whose config has ``diff_ids`` outside ``rootfs``.

    docker keeps a loaded config byte for byte (its ID is the config's
    digest), so the decoys reach the store: an extra top-level object with
    its own ``rootfs``/``diff_ids`` placed BEFORE the real ``rootfs``, a label
    and a history entry whose text holds ``"diff_ids":[…]``.
    """
    layer = _tar({"etc/dbw-image-marker": "decoy\n", **accounts, **BOOT_FILES}, BOOT_MODES)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    fake = "sha256:" + "0" * 64
    text = f'"diff_ids":["{fake}"]'
    config = {
        "architecture": "amd64", "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "aaa_decoy": {"diff_ids": [fake], "rootfs": {"type": "layers", "diff_ids": [fake]}},
        "config": {"Labels": {"x": text, "diff_ids": text}},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": text}],
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    raw = json.dumps(config).encode()          # keys in this order: the decoy first
    cfg_name = hashlib.sha256(raw).hexdigest() + ".json"
    manifest = [{"Config": cfg_name, "RepoTags": [DECOY], "Layers": ["layer/layer.tar"]}]
    out = workdir / "decoy.tar"
    with tarfile.open(out, "w") as tar:
        for name, data in ((cfg_name, raw), ("layer/layer.tar", layer),
                           ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def _assess_tars(accounts: dict[str, str]) -> dict[str, bytes]:
    """The images of the boot assessment: a systemd one as Debian has it, and two
    that must not boot (their init or modules only outside the image)."""
    return {
        SYSTEMD: _tar({"etc/dbw-image-marker": "systemd\n",
                       "usr/lib/systemd/systemd": "#!/bin/sh\n",
                       f"usr/lib/modules/{KVER}/modules.dep": "", **accounts},
                      {"usr/lib/systemd/systemd": (0o755, 0)},
                      symlinks={"sbin": "usr/sbin", "lib": "usr/lib",
                                "usr/sbin/init": "../lib/systemd/systemd"},
                      dirs={"usr": 0o755, "usr/lib": 0o755, "usr/sbin": 0o755, "etc": 0o755,
                            "etc/systemd": 0o755, "etc/systemd/system": 0o755}),
        NOINIT: _tar({"etc/dbw-image-marker": "noinit\n",
                      f"lib/modules/{KVER}/modules.dep": "", **accounts},
                     symlinks={"sbin/init": "/bin/sh"}, dirs={"sbin": 0o755}),
        NOMODS: _tar({"etc/dbw-image-marker": "nomods\n", "lib/modules/5.10.0-other/x": "",
                      **accounts, "sbin/init": "#!/bin/sh\n"}, BOOT_MODES),
    }


def _make_images(d: lab.Dockerd, workdir: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    base_tar = workdir / "base.tar"
    accounts = {f"etc/{n}": text for n, text in IMAGE_ACCOUNTS.items()}
    base_tar.write_bytes(_tar({"etc/dbw-image-marker": BASE_MARKER + "\n",
                               "etc/hostname": "from-image\n", **accounts, **BOOT_FILES},
                              {"etc/shadow": IMAGE_SHADOW_MODE,
                               "etc/gshadow": IMAGE_SHADOW_MODE, **BOOT_MODES}))
    d.docker("import", base_tar, "dbw-hook-base:1")
    ctx = workdir / "ctx"
    ctx.mkdir()
    (ctx / "one.txt").write_text("layer one\n")
    (ctx / "two.txt").write_text("layer two\n")
    (ctx / "Dockerfile").write_text("FROM dbw-hook-base:1\nCOPY one.txt /opt/one.txt\n"
                                    "COPY two.txt /opt/two.txt\n")
    d.docker("build", "-q", "-t", MULTI, ctx)
    d.docker("tag", "dbw-hook-base:1", SINGLE)
    d.docker("tag", MULTI, LIBRARY)
    d.docker("tag", "dbw-hook-base:1", "library/dbwlibshort:3")
    links_tar = workdir / "links.tar"
    links_tar.write_bytes(_tar({"usr/share/zoneinfo/Etc/UTC": "image-utc\n",
                                "usr/lib/keep": "image-lib\n", "etc/hostname": "links\n",
                                "sbin/init": "#!/bin/sh\n",
                                f"usr/lib/modules/{KVER}/modules.dep": "",   # via lib -> usr/lib
                                **accounts},
                               BOOT_MODES, symlinks=LINKS_SYMLINKS, dirs=LINKS_DIRS))
    d.docker("import", links_tar, LINKS)
    d.docker("load", "-i", _decoy_image_tar(workdir, accounts))
    for ref, tar in _assess_tars(accounts).items():
        (workdir / "assess.tar").write_bytes(tar)
        d.docker("import", workdir / "assess.tar", ref)
    layers, ids = {}, {}
    for ref in ("dbw-hook-base:1", SINGLE, MULTI, LIBRARY, "dbwlibshort:3", LINKS, DECOY,
                SYSTEMD, NOINIT, NOMODS):
        out = d.docker("image", "inspect", "-f", "{{range .RootFS.Layers}}{{.}} {{end}}", ref)
        layers[ref] = out.stdout.split()
        ids[ref] = d.docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()
    assert len(layers[SINGLE]) == 1 and len(layers[MULTI]) == 3
    return layers, ids


def make_toplayer(top: Path) -> Path:
    """A top layer with a dotfile, a 0600 file and a file carrying xattr user.x."""
    tl = top / "boot_docker" / "toplayer"
    (tl / "etc").mkdir(parents=True)
    tl.chmod(0o700)
    (tl / "etc" / "hostname").write_text("from-toplayer\n")
    (tl / ".dotfile").write_text("dot\n")
    secret = tl / "etc" / "shadow-ish"
    secret.write_text("secret\n")
    secret.chmod(0o600)
    os.setxattr(tl / "etc" / "hostname", "user.x", b"kept")
    return tl


@contextlib.contextmanager
def hook_env() -> Iterator[HookEnv]:
    """Build the whole environment; dockerd is stopped before the block runs."""
    workdir = Path(tempfile.mkdtemp(prefix="dbw-hook-", dir="/var/tmp"))
    with lab.loop_disk(workdir, size="2G") as disk:
        top = workdir / "top"
        with lab.mounted(disk.btrfs_dev, top):
            lab.run("btrfs", "subvolume", "create", top / "docker")
            with lab.dockerd(top / "docker") as d:
                layers, ids = _make_images(d, workdir)
            lab.run("sync")
            make_toplayer(top)
            (workdir / "docker-btrfs.json").write_text(
                '{"docker_image": "localhost:5000/ns/app", "docker_tag": "1.0"}\n')
            env = HookEnv(workdir=workdir, disk=disk, top=top, layers=layers, ids=ids)
            try:
                yield env
            finally:
                lab.run("umount", "-R", "-l", workdir / "run", check=False)
    lab.run("rm", "-rf", workdir, check=False)


def own_state_dir(request: pytest.FixtureRequest, prefix: str) -> str:
    """A ``dockerboot.state=`` directory of the test's own (relative to the top level)."""
    name = f"boot_docker/{prefix}-" + "".join(c if c.isalnum() else "-" for c in request.node.name)
    return name[:120]


def subvolume_show(path: Path) -> subprocess.CompletedProcess:
    """``btrfs subvolume show``: the kernel's word that ``path`` is a subvolume."""
    return subprocess.run(["btrfs", "subvolume", "show", str(path)], text=True,
                          capture_output=True)


def subvolume_field(path: Path, name: str = "UUID") -> str:
    """One field of ``btrfs subvolume show`` (``UUID``, ``Parent UUID``, …)."""
    for line in subvolume_show(path).stdout.splitlines():
        key, _, value = line.strip().partition(":")
        if key == name:
            return value.strip()
    raise AssertionError(f"no {name} for {path} (no subvolume?)")


def one_line_failure(result: subprocess.CompletedProcess) -> str:
    """The hook's failure: non-zero, exactly one ``dockerboot: problem — fix`` line."""
    lines = result.stderr.splitlines()
    assert result.returncode != 0, result.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith("dockerboot: ") and " — " in lines[0]
    return lines[0]
