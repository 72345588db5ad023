"""Kernel + initramfs built in a real container of a real image (DESIGN §5 step 5).

Real loop btrfs, a private dockerd with the btrfs graph driver, the cached
debootstrapped Debian rootfs tarballs imported as images, the real
generators (mkinitramfs, dracut) and the real hook assets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.lab import lab
from wizard.boot import initramfs
from wizard.boot.initramfs import InitramfsBuildError
from wizard.common.errors import Cancelled, ImageError, InitramfsError
from wizard.common.events import LogLine, Progress, StepDone, StepStarted
from wizard.common.resources import assets_dir

# Side by side with the boots, its module fixture on one worker (one build lab).
pytestmark = [pytest.mark.lab, pytest.mark.side_by_side,
              pytest.mark.xdist_group("initramfs_build")]

BUSYBOX_APPLETS = ("sh", "cp", "mkdir", "chmod", "dirname", "cat", "grep", "sync", "rm")


class Lab:
    """One loop btrfs + dockerd shared by the tests of this module."""

    def __init__(self, mnt: Path, d: lab.Dockerd, work: Path) -> None:
        self.mnt, self.d, self.work = mnt, d, work
        self.client = docker.DockerClient(base_url=d.host, timeout=600)

    def boot_dir(self, name: str) -> Path:
        path = self.mnt / name / "boot_docker"
        path.mkdir(parents=True)
        return path

    def containers(self) -> list[str]:
        return self.d.docker("ps", "-aq").stdout.split()


def _tiny_rootfs(root: Path, *, kernel: bool, btrfs: bool, failing_generator: bool) -> Path:
    """A rootfs of the host's busybox (plus its libraries) and optional fakes; returns a tar."""
    for rel in ("bin", "lib/x86_64-linux-gnu", "lib64", "usr/sbin", "usr/bin"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", root / "bin/busybox")
    for line in subprocess.run(["ldd", "/bin/busybox"], capture_output=True,
                               text=True, check=True).stdout.splitlines():
        lib = next((w for w in line.split() if w.startswith("/")), None)
        if lib:
            dest = root / lib.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(lib), dest)
    for applet in BUSYBOX_APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    if kernel:
        (root / "lib/modules/6.1.0-99-amd64").mkdir(parents=True)
        (root / "boot").mkdir()
        (root / "boot/vmlinuz-6.1.0-99-amd64").write_bytes(b"not a kernel")
    if btrfs:
        (root / "usr/bin/btrfs").write_text("#!/bin/sh\nexit 0\n")
        (root / "usr/bin/btrfs").chmod(0o755)
    if failing_generator:
        (root / "usr/sbin/mkinitramfs").write_text(
            "#!/bin/sh\necho 'mkinitramfs: W: fake generator starting'\n"
            "echo 'E: boom: cannot write the image' >&2\nexit 1\n")
        (root / "usr/sbin/mkinitramfs").chmod(0o755)
    tar = root.with_suffix(".tar")
    lab.run("tar", "-C", root, "--numeric-owner", "-cf", tar, ".")
    return tar


@pytest.fixture(scope="module")
def env() -> Iterator[Lab]:
    work = Path(tempfile.mkdtemp(prefix="dbw-initramfs-"))
    try:
        with lab.docker_disk(work, size="8G") as dd:
            mnt, d = dd.top, dd.daemon
            for variant in ("initramfs-tools", "dracut"):
                lab.import_rootfs(d, f"desk-{variant}:1", variant)
            tiny = {"nokernel": dict(kernel=False, btrfs=False, failing_generator=False),
                    "nobtrfs": dict(kernel=True, btrfs=False, failing_generator=False),
                    "badgen": dict(kernel=True, btrfs=True, failing_generator=True)}
            for name, kw in tiny.items():
                tar = _tiny_rootfs(work / f"tiny-{name}", **kw)
                d.docker("import", "--change", 'CMD ["/bin/sh"]', tar, f"tiny-{name}:1")
            shellless = work / "tiny-noshell"
            (shellless / "etc").mkdir(parents=True)
            (shellless / "etc/hostname").write_text("noshell\n")
            lab.run("tar", "-C", shellless, "-cf", work / "noshell.tar", ".")
            d.docker("import", work / "noshell.tar", "tiny-noshell:1")
            yield Lab(mnt, d, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(env: Lab, image: str, boot_dir: Path, lister: str) -> list[str]:
    out = env.d.docker("run", "--rm", "--network", "none", "-v", f"{boot_dir}:/b:ro",
                       "--entrypoint", lister, image, "/b/initrd.img").stdout
    # lsinitrd prints `ls -l` lines, lsinitramfs bare paths: keep the path.
    return [line.split()[-1] if " " in line else line
            for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize(("variant", "lister", "hook_entry"), [
    ("initramfs-tools", "lsinitramfs", "scripts/local-premount/dockerboot"),
    ("dracut", "lsinitrd", "hooks/pre-mount/"),
])
def test_build_puts_kernel_initramfs_and_hook_in_boot_dir(env, variant, lister, hook_entry):
    image = f"desk-{variant}:1"
    target = initramfs.detect(env.client, image)
    assert target.generator == variant
    assert target.kver.endswith("-amd64") and target.kernel_path == f"/boot/vmlinuz-{target.kver}"

    boot = env.boot_dir(f"ok-{variant}")
    started = time.monotonic()
    events = list(initramfs.build(env.client, image, target, boot, image_name=f"desk-{variant}",
                                  image_tag="1", cancel=threading.Event()))
    elapsed = time.monotonic() - started
    print(f"\n{variant}: initramfs build took {elapsed:.1f} s")

    assert isinstance(events[0], StepStarted) and events[0].step == "initramfs"
    assert isinstance(events[-1], StepDone) and target.kver in events[-1].detail
    logs = [e.text for e in events if isinstance(e, LogLine)]
    assert "dockerboot-build: done" in logs
    fractions = [e.current for e in events if isinstance(e, Progress)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    kernel, initrd = boot / "vmlinuz", boot / "initrd.img"
    assert kernel.stat().st_size > 1_000_000 and initrd.stat().st_size > 1_000_000
    image_kernel = env.d.docker("run", "--rm", "--network", "none", "--entrypoint",
                                "sha256sum", image, target.kernel_path).stdout.split()[0]
    assert _sha256(kernel) == image_kernel
    assert sorted(p.name for p in boot.iterdir()) == ["initrd.img", "vmlinuz"]  # scratch gone
    assert env.containers() == []

    entries = _listing(env, image, boot, lister)
    for needed in ("usr/lib/dockerboot/dockerboot-core.sh", "usr/lib/dockerboot/cp",
                   "usr/lib/dockerboot/dockerboot-assess.sh",
                   "usr/lib/dockerboot/dockerboot-mark-good",
                   "usr/lib/dockerboot/dockerboot-mark-good.service",
                   "etc/docker-btrfs.json", "/btrfs.ko", "bin/btrfs", hook_entry):
        assert any(needed in e for e in entries), f"{needed} missing from the {variant} initramfs"
    if variant == "dracut":
        assert any("hooks/pre-mount/" in e and "dockerboot" in e for e in entries)
    baked = env.d.docker("run", "--rm", "--network", "none", "-v", f"{boot}:/b:ro",
                         "--entrypoint", "sh", image, "-c",
                         "cd /tmp && unmkinitramfs /b/initrd.img x >/dev/null 2>&1; "
                         "cat $(find x -path '*/etc/docker-btrfs.json')"
                         ).stdout
    assert f'"docker_image": "desk-{variant}"' in baked and '"docker_tag": "1"' in baked


def test_cancel_keeps_old_pair_and_leaves_nothing_behind(env):
    image = "desk-initramfs-tools:1"
    target = initramfs.detect(env.client, image)
    boot = env.boot_dir("cancel")
    (boot / "vmlinuz").write_bytes(b"old kernel")
    (boot / "initrd.img").write_bytes(b"old initrd")
    cancel = threading.Event()
    seen: list[object] = []
    started = time.monotonic()
    with pytest.raises(Cancelled):
        for event in initramfs.build(env.client, image, target, boot, image_name="desk",
                                     image_tag="1", cancel=cancel):
            seen.append(event)
            if isinstance(event, LogLine):
                cancel.set()
    assert time.monotonic() - started < 20  # killed, not waited for
    assert any(isinstance(e, LogLine) for e in seen)
    assert not any(isinstance(e, StepDone) for e in seen)
    assert (boot / "vmlinuz").read_bytes() == b"old kernel"
    assert (boot / "initrd.img").read_bytes() == b"old initrd"
    assert sorted(p.name for p in boot.iterdir()) == ["initrd.img", "vmlinuz"]
    assert env.containers() == []


def test_cancel_during_a_silent_generator_kills_the_container(env):
    # mkinitramfs prints nothing for ~20 s: the watcher must kill it anyway.
    image = "desk-initramfs-tools:1"
    target = initramfs.detect(env.client, image)
    boot = env.boot_dir("cancel-silent")
    cancel = threading.Event()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        for event in initramfs.build(env.client, image, target, boot, image_name="desk",
                                     image_tag="1", cancel=cancel):
            if isinstance(event, LogLine) and event.text.startswith("dockerboot-build: running"):
                threading.Timer(1.0, cancel.set).start()
    assert time.monotonic() - started < 15
    assert list(boot.iterdir()) == []
    assert env.containers() == []


@pytest.mark.parametrize(("image", "needle"), [
    ("tiny-nokernel:1", "linux-image-amd64"),
    ("tiny-nobtrfs:1", "btrfs-progs"),
])
def test_detect_names_the_missing_package(env, image, needle):
    with pytest.raises(InitramfsError) as err:
        initramfs.detect(env.client, image)
    assert needle in str(err.value) and image in str(err.value) and "Dockerfile" in str(err.value)
    assert env.containers() == []


def test_image_without_shell_is_explained(env):
    with pytest.raises(ImageError, match="has no /bin/sh"):
        initramfs.detect(env.client, "tiny-noshell:1")
    assert env.containers() == []


def test_generator_failure_keeps_old_pair_and_reports_tail(env):
    image = "tiny-badgen:1"
    target = initramfs.detect(env.client, image)
    assert target.generator == "initramfs-tools" and target.kver == "6.1.0-99-amd64"
    boot = env.boot_dir("fail")
    (boot / "vmlinuz").write_bytes(b"old kernel")
    (boot / "initrd.img").write_bytes(b"old initrd")
    with pytest.raises(InitramfsBuildError) as err:
        list(initramfs.build(env.client, image, target, boot, image_name="tiny",
                             image_tag="1", cancel=threading.Event()))
    assert "mkinitramfs failed for kernel 6.1.0-99-amd64" in str(err.value)
    assert any("boom: cannot write the image" in line for line in err.value.log_tail)
    assert (boot / "vmlinuz").read_bytes() == b"old kernel"
    assert (boot / "initrd.img").read_bytes() == b"old initrd"
    assert sorted(p.name for p in boot.iterdir()) == ["initrd.img", "vmlinuz"]
    assert env.containers() == []


def test_missing_image_is_an_image_error(env):
    with pytest.raises(ImageError, match="not present locally"):
        initramfs.detect(env.client, "no-such-image:0")


def test_assets_are_the_real_ones():
    # The build above mounted these; they must hold every adapter the script installs.
    root = assets_dir()
    for rel in ("build-initramfs.sh", "hook/dockerboot-core.sh", "hook/dockerboot-assess.sh",
                "hook/dockerboot-mark-good", "hook/dockerboot-mark-good.service",
                "initramfs-tools/hooks/dockerboot",
                "initramfs-tools/scripts/local-premount/dockerboot",
                "dracut/90dockerboot/module-setup.sh"):
        assert (root / rel).is_file(), rel
