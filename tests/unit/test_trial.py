"""``dockerboot-wizard try``'s pure parts: what boots, its command line, the VM, the serial log."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.genhelp import image_id, make_gen
from wizard.boot import bootloader, generations
from wizard.cli.main import build_parser
from wizard.common.events import drive
from wizard.settings.config import Settings
from wizard.trial import console_log, plan, run, scratch
from wizard.trial.plan import TrialError

SETTINGS = Settings(label="dbw-lab", image="desktop:latest", kernel_options="console=ttyS0")


def inventory(tmp_path: Path, count: int, pin_newest: bool = False) -> generations.Inventory:
    boot = tmp_path / "boot_docker"
    for n in range(1, count + 1):
        make_gen(boot, n, f"img{n}")
    inv = generations.load(boot)
    if pin_newest:
        newest = replace(inv.generations[-1], pinned=True)
        inv = replace(inv, generations=(*inv.generations[:-1], newest))
    return inv


def test_the_default_entry_is_the_newest_generation_with_the_rendered_command_line(tmp_path):
    inv = inventory(tmp_path, 2)
    target = plan.choose(SETTINGS, inv, None)
    assert target.generation.number == 2 and target.entry == "default"
    assert target.cmdline == bootloader.default_cmdline(SETTINGS, inv.generations[-1])
    assert target.cmdline in bootloader.render_entries(SETTINGS, inv.newest, inv.previous)
    assert (target.kernel, target.initrd) == ("boot_docker/gen/2/vmlinuz",
                                              "boot_docker/gen/2/initrd.img")
    assert target.image == "desktop:latest" and target.added == ()
    assert target.boot_cmdline == target.cmdline


def test_previous_boots_its_image_pinned_by_id_as_the_previous_entry(tmp_path):
    inv = inventory(tmp_path, 3)
    for which in ("previous", "2"):
        target = plan.choose(SETTINGS, inv, which)
        assert target.entry == "previous" and target.generation.number == 2
        assert target.image == image_id("img2")
        assert f'options "{target.cmdline}"' in bootloader.render_entries(
            SETTINGS, inv.newest, inv.previous)


def test_a_rolled_back_default_boots_the_pinned_id(tmp_path):
    target = plan.choose(SETTINGS, inventory(tmp_path, 2, pin_newest=True), "2")
    assert target.entry == "default" and target.image == image_id("img2")


def test_a_serial_console_is_added_only_when_missing(tmp_path):
    inv = inventory(tmp_path, 1)
    target = plan.choose(replace(SETTINGS, kernel_options="quiet"), inv, None)
    assert target.added == ("console=ttyS0",)
    assert target.boot_cmdline == target.cmdline + " console=ttyS0"
    assert "console=ttyS0" not in target.cmdline  # the entry's own line is reported as is


@pytest.mark.parametrize(("count", "which", "words"), [
    (0, None, "no generation built yet"),
    (1, "previous", "no previous generation"),
    (3, "1", "no boot entry boots generation 1"),
    (2, "7", "generation 7 does not exist"),
    (2, "latest", "invalid generation"),
])
def test_what_cannot_be_tried_is_one_line(tmp_path, count, which, words):
    with pytest.raises(TrialError) as e:
        plan.choose(SETTINGS, inventory(tmp_path, count), which)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_the_vm_is_sized_from_the_host_and_says_its_accelerator():
    vm = plan.machine(24000, 20000, 2, "auto", kvm=(False, "/dev/kvm: No such file"))
    assert (vm.memory_mib, vm.cpus, vm.accel) == (3000, 1, "tcg")
    assert vm.line() == ("VM: 3000 MiB, 1 CPU(s), TCG (no KVM: /dev/kvm: No such file; "
                         "a boot takes minutes)")
    vm = plan.machine(64000, 60000, 16, "auto", kvm=(True, "/dev/kvm works"))
    assert (vm.memory_mib, vm.cpus, vm.accel) == (4096, 4, "kvm")
    assert plan.machine(4000, 3000, 1, "tcg", kvm=(True, "x")).accel == "tcg"
    assert plan.machine(4000, 3000, 1, "auto", kvm=(True, "x")).memory_mib == 1024


def test_memory_and_kvm_errors():
    with pytest.raises(TrialError, match="not enough memory for the VM"):
        plan.machine(2000, 900, 2, "auto", kvm=(False, "no"))
    with pytest.raises(TrialError, match="KVM is not usable: gone"):
        plan.machine(24000, 20000, 2, "kvm", kvm=(False, "gone"))


def test_missing_qemu_or_ovmf_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(plan.shutil, "which", lambda _t: None)
    assert "qemu-system-x86" in str(plan.tools_missing(()))
    monkeypatch.setattr(plan.shutil, "which", lambda t: f"/usr/bin/{t}")
    error = plan.tools_missing((tmp_path / "OVMF_CODE_4M.fd",))
    assert error is not None and "package ovmf" in str(error)
    assert plan.tools_missing(()) is None


def test_not_enough_disk_is_refused_before_anything_is_made(tmp_path):
    copy = scratch.Copy((), (), (), 1 << 60)
    with pytest.raises(TrialError, match="not enough disk for the try's copy"):
        scratch.check_space(tmp_path, copy)
    scratch.check_space(tmp_path, scratch.Copy((), (), (), 1))
    assert scratch.image_size(scratch.Copy((), (), (), 3 << 30)) == 7 << 30


SERIAL = """\
\x1b[0mBegin: Running /scripts/local-premount ... dockerboot: docker_rwlayer is now a fresh \
snapshot of dbw/x:y (uptime 1.2 -> 1.9)\r
[    3.123456] dockerboot: warning: something\r
[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mdockerboot-update.path\x1b[0m - dockerboot: watch.\r
[\x1b[0;1;31mFAILED\x1b[0m] Failed to mount \x1b[0;1;39mmnt-missing.mount\x1b[0m - /mnt/missing.\r
[\x1b[0;1;33mDEPEND\x1b[0m] Dependency failed for \x1b[0;1;39mlocal-fs.target\x1b[0m.\r
[\x1b[0;1;31m TIME \x1b[0m] Timed out waiting for device \x1b[0;1;…by-label/gone.\r
You are in emergency mode. After logging in, type "journalctl -xb" to view\r
"""


def test_the_serial_log_gives_the_hook_lines_failures_and_emergency_mode():
    assert console_log.hook_lines(SERIAL) == [
        "dockerboot: docker_rwlayer is now a fresh snapshot of dbw/x:y (uptime 1.2 -> 1.9)",
        "dockerboot: warning: something"]
    assert console_log.failures(SERIAL) == [
        "[FAILED] Failed to mount mnt-missing.mount - /mnt/missing.",
        "[DEPEND] Dependency failed for local-fs.target.",
        "[ TIME ] Timed out waiting for device …by-label/gone."]
    assert console_log.emergency(SERIAL)
    assert not console_log.emergency("Debian GNU/Linux 12 trybox ttyS0\n\ntrybox login: ")


def test_the_json_object_of_a_headless_try(tmp_path):
    target = plan.choose(SETTINGS, inventory(tmp_path, 1), None)
    vm = plan.Machine(2048, 1, "tcg", "asked for")
    prepared = run.Prepared(tmp_path, target, vm, "none", "dbw-lab", ("desktop:latest",), 5)
    result = run.Result(True, False, 61.04, 40.0, ("dockerboot: x",), (), prepared)
    out = result.to_json()
    assert out["ok"] is True and out["schema"] == run.SCHEMA and out["seconds"] == 61.0
    assert (out["generation"], out["entry"], out["accel"], out["network"]) == \
        (1, "default", "tcg", "none")
    assert out["hook_lines"] == ["dockerboot: x"] and out["cmdline"] == target.cmdline
    assert not run.Result(True, True, 1, 1, (), (), prepared).ok


def test_the_qemu_command_is_a_direct_kernel_boot_of_the_scratch_disk(tmp_path):
    target = plan.choose(replace(SETTINGS, kernel_options=""), inventory(tmp_path, 1), None)
    vm = plan.Machine(2048, 2, "kvm", "/dev/kvm works")
    prepared = run.Prepared(tmp_path, target, vm, "user", "dbw-lab", (), 0)
    cmd = prepared.command()
    assert cmd[cmd.index("-append") + 1] == target.cmdline + " console=ttyS0"
    assert cmd[cmd.index("-kernel") + 1] == str(tmp_path / "vmlinuz")
    assert f"file={tmp_path / 'scratch.img'},format=raw,if=virtio" in cmd
    assert cmd[cmd.index("-accel") + 1] == "kvm" and cmd[cmd.index("-smp") + 1] == "2"
    assert cmd[cmd.index("-nic") + 1] == "user,model=virtio-net-pci"


def test_the_try_command_line():
    args = build_parser().parse_args(["try", "--label", "x", "--generation", "previous",
                                      "--headless", "--json", "--timeout", "60"])
    assert (args.label, args.generation, args.headless, args.json, args.timeout) == \
        ("x", "previous", True, True, 60.0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["try", "--label", "x", "--console", "--headless"])


def fake_vm(prepared: run.Prepared, serial: dict[str, str]):
    """``Prepared.command`` of a fake QEMU printing ``serial[accel]`` and then waiting."""
    def command() -> list[str]:
        return ["sh", "-c", f"printf '{serial[prepared.vm.accel]}'; sleep 30"]
    return command


def test_watch_falls_back_to_tcg_when_kvm_fails_in_the_firmware(tmp_path, monkeypatch):
    target = plan.choose(SETTINGS, inventory(tmp_path, 1), None)
    prepared = run.Prepared(tmp_path, target, plan.Machine(2048, 1, "kvm", "/dev/kvm works"),
                            "none", "dbw-lab", (), 0, keep=True)
    monkeypatch.setattr(prepared, "command", fake_vm(prepared, {
        "kvm": "KVM internal error. Suberror: 1\\r\\n",
        "tcg": "dockerboot: docker_rwlayer is now a fresh snapshot of desktop:latest\\r\\n"
               "Debian GNU/Linux 12 box ttyS0\\r\\n\\r\\nbox login: "}))
    lines: list[str] = []
    result = drive(run.watch(prepared, timeout=20),
                   lambda e: lines.append(getattr(e, "text", "")))
    assert result.ok and prepared.vm.accel == "tcg"
    assert any(line.startswith("KVM cannot run this VM: booting again — VM: 2048 MiB, 1 CPU(s), "
                               "TCG (KVM failed") for line in lines), lines
    assert result.hook_lines == ("dockerboot: docker_rwlayer is now a fresh snapshot of "
                                 "desktop:latest",)
    assert result.console_tail[-1] == "box login:"


def test_watch_reports_emergency_mode(tmp_path, monkeypatch):
    target = plan.choose(SETTINGS, inventory(tmp_path, 1), None)
    prepared = run.Prepared(tmp_path, target, plan.Machine(2048, 1, "tcg", "asked for"),
                            "none", "dbw-lab", (), 0)
    monkeypatch.setattr(prepared, "command", fake_vm(prepared, {
        "tcg": "[DEPEND] Dependency failed for mnt-x.mount - /mnt/x.\\r\\n"
               "You are in emergency mode. After logging in\\r\\n"}))
    result = drive(run.watch(prepared, timeout=20))
    assert not result.ok and result.emergency and not result.login_prompt
    assert result.failed == ("[DEPEND] Dependency failed for mnt-x.mount - /mnt/x.",)
