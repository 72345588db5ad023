"""Status JSON: what the hook's state and the generations say, and the documented schema."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.unit.genhelp import image_id, inputs, make_gen
from wizard.boot.status import SCHEMA_VERSION, hook_images, state_dir, status
from wizard.common.errors import ConfigError
from wizard.flows import bootchain
from wizard.settings.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "status-json.md"
S = Settings(label="dockerboot", image="desktop:latest")
A, B, C = image_id("a"), image_id("b"), image_id("c")


@pytest.fixture
def top(tmp_path: Path) -> Path:
    (tmp_path / "boot_docker").mkdir()
    return tmp_path


def hook_state(top: Path, *, ref: str = "desktop:latest", id: str = A, configured: str = A,
               fallback: str = "", kernel: str = "6.1.0-31-amd64", tries: int = 1,
               good: str | None = A, failed: str | None = None,
               state: str = "boot_docker/state", generation: str | None = None) -> None:
    """The files as dockerboot-assess.sh and dockerboot-mark-good write them
    (``generation`` None: as a hook before ``generation=`` wrote ``boot``)."""
    d = top / state
    d.mkdir(parents=True, exist_ok=True)
    (d / "boot").write_text(f"ref={ref}\nid={id}\nconfigured_id={configured}\n"
                            f"fallback={fallback}\nkernel={kernel}\ntries={tries}\n"
                            + ("" if generation is None else f"generation={generation}\n"))
    (d / "attempt").write_text(f"{id} {tries}\n")
    if good:
        (d / "good").write_text(f"{good}\n")
    if failed:
        (d / "failed").write_text(f"{failed} 2\n")


def test_fresh_partition() -> None:
    out = status(Path("/nonexistent"), S)
    assert out["version"] == SCHEMA_VERSION == 1
    assert out["booted"] is None and out["last_good"] is None and out["generation"] is None
    assert out["generations"] == [] and out["problems"] == []
    assert out["pending"] == {"tag_id": None, "image_changed": None, "build_needed": None,
                              "kernel_version": None, "update": None, "unnamed": None,
                              "reasons": []}
    assert out["entries"] is None and out["rollback"] is None
    json.dumps(out)


def test_normal_boot_of_the_newest_generation(top: Path) -> None:
    make_gen(top / "boot_docker", 1, "z")
    make_gen(top / "boot_docker", 2, "a")
    hook_state(top)
    out = status(top, S)
    assert out["booted"] == {"ref": "desktop:latest", "id": A, "configured_id": A,
                             "kernel": "6.1.0-31-amd64", "tries": 1, "fallback": False,
                             "fallback_reason": None, "generation": 2,
                             "generation_source": "kernel", "source": None}
    assert out["last_good"] == {"id": A} and out["failed"] is None
    assert out["roots"] == []
    assert out["generation"]["number"] == 2 and out["previous"]["number"] == 1
    assert out["generation"]["loader"] == "gen/2/vmlinuz"


def test_fallback_and_why(top: Path) -> None:
    make_gen(top / "boot_docker", 1, "a")
    why = "has no /lib/modules/6.1.0-31-amd64 for the running kernel"
    hook_state(top, id=A, configured=B, fallback=f"desktop:latest {why}", failed=B)
    out = status(top, S)
    assert out["booted"]["fallback"] is True and out["booted"]["fallback_reason"] == why
    assert out["booted"]["id"] == A and out["booted"]["configured_id"] == B
    assert out["failed"] == {"id": B, "tries": 2, "reason": None}   # ran out of tries


def test_unresolvable_configured_image(top: Path) -> None:
    hook_state(top, configured="", fallback="desktop:latest is not in the store")
    booted = status(top, S)["booted"]
    assert booted["configured_id"] is None and booted["fallback"]


def test_previous_entry_boot_is_its_generation(top: Path) -> None:
    bd = top / "boot_docker"
    make_gen(bd, 1, "a")
    make_gen(bd, 2, "b")  # same kernel: only the pinned ID tells them apart
    hook_state(top, ref=A, id=A, configured=A)
    assert status(top, S)["booted"]["generation"] == 1
    out = status(top, S, cmdline="root=LABEL=x docker_image=x dockerboot.generation=2")
    assert (out["booted"]["generation"], out["booted"]["generation_source"]) == (2, "cmdline")


def test_booted_kernel_of_no_generation(top: Path) -> None:
    make_gen(top / "boot_docker", 1, "a")
    hook_state(top, kernel="5.10.0-9-amd64")
    booted = status(top, S, cmdline="dockerboot.generation=9")["booted"]
    assert booted["generation"] is None and booted["generation_source"] is None



def _gen_of(out: dict[str, Any]) -> tuple[int | None, str | None]:
    return out["booted"]["generation"], out["booted"]["generation_source"]


def test_recorded_generation_is_preferred(top: Path) -> None:
    bd = top / "boot_docker"
    make_gen(bd, 1, "a")
    make_gen(bd, 2, "a")       # same kernel, same image: only the record tells them apart
    make_gen(bd, 3, "b")
    hook_state(top, generation="1")
    assert _gen_of(status(top, S)) == (1, "state")
    # Over the running system's command line too: the record is of the very boot.
    assert _gen_of(status(top, S, cmdline="dockerboot.generation=2")) == (1, "state")
    hook_state(top, generation="000002")
    assert _gen_of(status(top, S)) == (2, "state")


@pytest.mark.parametrize("recorded", [None, "", "9", "1234567", "1;rm", "-1", "²", "0x1",
                                      " 2", "2 "])
def test_without_a_usable_record_the_generation_is_derived(top: Path,
                                                            recorded: str | None) -> None:
    """No generation= (an older hook), an empty one (no parameter, a hostile
    value the hook dropped) or one of no generation here: derived as before."""
    bd = top / "boot_docker"
    make_gen(bd, 1, "z")
    make_gen(bd, 2, "a")
    hook_state(top, generation=recorded)
    assert _gen_of(status(top, S)) == (2, "kernel")
    assert _gen_of(status(top, S, cmdline="dockerboot.generation=1")) == (1, "cmdline")
    assert status(top, S)["problems"] == []


def test_pending_tag_moved_same_kernel_needs_no_build(top: Path) -> None:
    # The default entry boots the tag: the new image boots at the next boot as it is.
    make_gen(top / "boot_docker", 1, "a")
    pending = status(top, S, tag_id=B, tag_inputs=inputs())["pending"]
    assert pending["image_changed"] is True and pending["build_needed"] is False
    assert pending["update"] is False
    assert pending["reasons"] == [f"the tag moved: {A[7:19]} -> {B[7:19]}",
                                  f"the next boot snapshots @{B[7:19]} with generation 1: "
                                  "no update needed"]


def test_pending_kernel_changed_needs_a_build(top: Path) -> None:
    make_gen(top / "boot_docker", 1, "a")
    pending = status(top, S, tag_id=B, tag_inputs=inputs("6.12.9-amd64"))["pending"]
    assert pending["build_needed"] is True and pending["kernel_version"] == "6.12.9-amd64"
    assert "kernel 6.1.0-31-amd64 -> 6.12.9-amd64" in pending["reasons"]


def test_nothing_pending(top: Path) -> None:
    make_gen(top / "boot_docker", 1, "a")
    pending = status(top, S, tag_id=A, tag_inputs=inputs())["pending"]
    assert (pending["image_changed"], pending["build_needed"], pending["update"]) == (
        False, False, False)
    assert status(top, S, tag_id=A)["pending"]["build_needed"] is None


def test_legacy_only_needs_a_build(top: Path) -> None:
    from tests.unit.genhelp import bzimage
    (top / "boot_docker" / "vmlinuz").write_bytes(bzimage("6.1.0-31-amd64"))
    (top / "boot_docker" / "initrd.img").write_bytes(b"x")
    out = status(top, S, tag_id=A, tag_inputs=inputs())
    assert out["generation"]["legacy"] is True and out["generation"]["loader"] == "vmlinuz"
    assert out["pending"]["build_needed"] is True


def test_state_dir_follows_the_kernel_option(top: Path) -> None:
    s = replace(S, kernel_options="quiet dockerboot.state=boot_docker/st2")
    assert state_dir(s) == "boot_docker/st2"
    hook_state(top, state="boot_docker/st2", good=B)
    assert status(top, s)["last_good"] == {"id": B}
    assert status(top, S)["last_good"] is None


@pytest.mark.parametrize("value", ["./state", "/boot_docker/st2/", "boot_docker//state",
                                   "docker/state", "docker_rwlayer/s", ""])
def test_state_dir_is_never_guessed(top: Path, value: str) -> None:
    # Unvalidated settings (an old config, a caller that skipped validate):
    # no silent reading of another directory, so collection never runs on
    # "no last good image" when the hook has one.
    hook_state(top, state="state", good=B)
    hook_state(top, good=B)
    s = replace(S, kernel_options=f"dockerboot.state={value}")
    with pytest.raises(ConfigError, match="dockerboot.state="):
        state_dir(s)
    with pytest.raises(ConfigError):
        hook_images(top, s)


def test_symlinked_state_is_not_read(top: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "good").write_text(f"{C}\n")
    (top / "boot_docker" / "state").symlink_to(elsewhere)
    out = status(top, S)
    assert out["last_good"] is None and any("symlink" in p for p in out["problems"])


def test_symlinked_state_file_is_not_read(top: Path) -> None:
    hook_state(top)
    good = top / "boot_docker" / "state" / "good"
    good.unlink()
    good.symlink_to("/etc/hostname")
    out = status(top, S)
    assert out["last_good"] is None and any("symlink" in p for p in out["problems"])


@pytest.mark.parametrize("content", ["", "sha256:abc\n", "garbage\n", "x" * 10000])
def test_garbage_state_is_null_and_a_problem(top: Path, content: str) -> None:
    d = top / "boot_docker" / "state"
    d.mkdir(parents=True)
    for name in ("good", "failed", "boot"):
        (d / name).write_text(content)
    out = status(top, S)
    assert out["last_good"] is None and out["failed"] is None and out["booted"] is None
    assert len(out["problems"]) == 3


def test_bad_ids_in_boot_are_dropped(top: Path) -> None:
    hook_state(top, id="sha256:short", kernel="../../x", tries=1)
    booted = status(top, S)["booted"]
    assert booted["id"] is None and booted["kernel"] is None


def test_tag_id_must_be_a_full_id(top: Path) -> None:
    with pytest.raises(ValueError):
        status(top, S, tag_id="abc")


def _paths(value: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}{key}"
            out.add(path)
            out |= _paths(sub, path + ".")
    return out


def _doc_fields() -> tuple[set[str], set[str]]:
    """The field tables of docs/status-json.md: top level, and the generation object."""
    text = DOC.read_text()
    top_part, gen_part = text.split("A **generation object**")
    gen_part = gen_part.split("## Example")[0]
    field = re.compile(r"^\| `([a-z_.]+)` \|", re.M)
    return set(field.findall(top_part)), set(field.findall(gen_part))


def test_doc_lists_exactly_what_status_emits(top: Path) -> None:
    from tests.unit.genhelp import stage
    from wizard.boot import bootloader, generations

    make_gen(top / "boot_docker", 1, "a")
    # Generation 2 is a rollback, named by the entries: every object is emitted.
    record = replace(generations.new_record(2, inputs(), "desktop:latest", B,
                                            created="2026-11-02T08:00:00Z"),
                     pinned=True, rolled_back_from=(A,))
    rollback = generations.add(top / "boot_docker", stage(top / "boot_docker"), record)
    conf = top / "refind.conf"
    conf.write_text(bootloader.render_entries(S, rollback, generations.load(
        top / "boot_docker").get(1)))
    hook_state(top, failed=C, fallback="desktop:latest why")
    out = status(top, S, tag_id=C, tag_inputs=inputs(), refind_conf=conf)
    assert out["entries"] == {"default": 2, "previous": 1} and out["rollback"]["holds"] is False
    gen_fields = _paths(out["generation"])
    emitted = _paths({k: v for k, v in out.items() if k not in ("generation", "previous")})
    emitted |= {"generation", "previous"}
    # Where GRUB boots the entries, the CLI's status adds GRUB's count (bootchain).
    grub_out = bootchain.grub_status(copy.deepcopy(out), top,
                                     replace(S, bootloader="grub", esp=str(top / "esp")))
    emitted |= _paths({"assessment": grub_out["assessment"]})
    # And systemd-boot's (its entries by generation: a map, documented as one field).
    (top / "sd-esp/loader").mkdir(parents=True)
    sd_out = bootchain.systemd_boot_status(copy.deepcopy(out), replace(
        S, bootloader="systemd-boot", esp=str(top / "sd-esp")))
    emitted |= _paths({"assessment": sd_out["assessment"]})
    doc_top, doc_gen = _doc_fields()
    assert emitted == doc_top
    assert gen_fields == doc_gen
    assert _paths(out["previous"]) == gen_fields


def test_doc_example_is_json_with_documented_keys_only() -> None:
    example = DOC.read_text().split("```json\n")[1].split("```")[0]
    data = json.loads(example)
    assert data["version"] == SCHEMA_VERSION
    doc_top, doc_gen = _doc_fields()
    paths = _paths({k: v for k, v in data.items() if k != "generation"}) | {"generation"}
    assert paths <= doc_top and {"booted.fallback_reason", "pending.reasons"} <= paths
    assert _paths(data["generation"]) == doc_gen
