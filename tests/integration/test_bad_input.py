"""The bad-input corpus through the installed CLI against the real lab.

Each case of ``bad_input_cases.CASES`` must end with exit status 1, exactly one
line on stderr, no traceback, and nothing changed: the ESP, the partition's
``boot_docker/``, its top-level listing and the case's own files are the same
before and after.  ``docs/bad-input.md`` lists every case with the line it
prints (paths and the label as placeholders); the test keeps it true.  Run
with ``DBW_WRITE_BAD_INPUT_DOC=1`` to rewrite the doc from what was printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.integration.bad_input_cases import CASES, Case
from tests.lab import lab, qemu, scenario
from wizard.common.lock import partition_lock
from wizard.flows import apply
from wizard.settings.config import Settings

pytestmark = pytest.mark.lab

IMAGE = "dbw-bad/debian:12"
TINY = "dbw-bad/tiny:1"
DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-input.md"
PREFIX = "dockerboot-wizard: "
WRITE_DOC = bool(os.environ.get("DBW_WRITE_BAD_INPUT_DOC"))
PRINTED: dict[str, str] = {}


@dataclass
class Env:
    label: str
    top: Path
    daemon: lab.Dockerd
    esp: Path
    work: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("bad")
    with lab.cli_lab(work, IMAGE, TINY) as (dd, esp):
        yield Env(dd.disk.label, dd.top, dd.daemon, esp, work)
    if WRITE_DOC:
        write_doc()


def snapshot(*roots: Path, top: Path) -> dict[str, bytes | None]:
    """Every file (content) and directory under ``roots``, and the top-level listing."""
    out: dict[str, bytes | None] = {f"top:{p.name}": None for p in top.iterdir()}
    for root in roots:
        if root.exists() or root.is_symlink():
            for p in [root, *sorted(root.rglob("*"))]:
                out[str(p)] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return out


def fill(text: str, env: Env, scratch: Path) -> str:
    return (text.replace("{label}", env.label).replace("{image}", IMAGE)
            .replace("{tiny}", TINY).replace("{esp}", str(env.esp))
            .replace("{scratch}", str(scratch)).replace("{top}", str(env.top)))


def normalise(line: str, env: Env, scratch: Path) -> str:
    """The printed line with this run's paths, label and pid as placeholders."""
    for value, name in ((str(scratch), "{scratch}"), (str(env.esp), "{esp}"),
                        (str(env.top), "{top}"), (env.label, "{label}"),
                        (f"pid {os.getpid()}", "pid {pid}")):
        line = line.replace(value, name)
    return line


def args_for(case: Case, env: Env, scratch: Path) -> list[str]:
    args = [fill(a, env, scratch) for a in case.args]
    if not case.no_defaults:
        for flag, value in (("--label", env.label), ("--image", IMAGE), ("--esp", str(env.esp))):
            if not any(a == flag or a.startswith(flag + "=") for a in case.args):
                args += [flag, value]
        args.append("--yes")
    return ["apply", *args]


@contextlib.contextmanager
def prepared(case: Case, env: Env, scratch: Path) -> Iterator[list[str]]:
    """Make the case's files (and mounts, lock); remove them afterwards."""
    made: list[Path] = []
    extra: list[str] = []
    with contextlib.ExitStack() as stack:
        for name, content in case.files.items():
            path = Path(fill(name, env, scratch))
            top_new = next((p for p in [path, *path.parents] if p.parent == env.top), None)
            if str(path).startswith(str(env.top)) and top_new and not top_new.exists():
                made.append(top_new)
            if content is None:
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(fill(content.decode("latin-1"), env, scratch)
                                 .encode("latin-1"))
        if case.special in ("ro-esp", "full-esp"):
            esp = scratch / "esp"
            esp.mkdir()
            if case.special == "ro-esp":
                qemu.make_esp(esp)
                subprocess.run(["mount", "--bind", "-o", "ro", str(esp), str(esp)], check=True)
            else:
                subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(esp)],
                               check=True)
                qemu.make_esp(esp)
                with contextlib.suppress(OSError):
                    with open(esp / "filler", "wb") as f:
                        f.write(b"\0" * (2 << 20))
            stack.callback(subprocess.run, ["umount", str(esp)], check=False)
            extra = ["--esp", str(esp)]
        if case.special == "locked":
            stack.enter_context(partition_lock(env.top / "boot_docker", env.label))
        try:
            yield extra
        finally:
            for path in made:
                shutil.rmtree(path, ignore_errors=True)


def ids() -> list[str]:
    return [c.id for c in CASES]


def test_the_corpus_has_at_least_60_distinct_cases() -> None:
    assert len(CASES) >= 60 and len(set(ids())) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=ids())
def test_bad_input_one_line_exit_1_nothing_changed(case: Case, env: Env,
                                                   tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with prepared(case, env, scratch) as extra:
        roots = (env.esp, env.top / "boot_docker", scratch)
        before = snapshot(*roots, top=env.top)
        e = env.daemon.env()
        if case.docker_host:
            e["DOCKER_HOST"] = case.docker_host
        argv = args_for(case, env, scratch)
        if extra:  # the special ESP replaces the default one
            i = argv.index("--esp")
            argv[i + 1] = extra[1]
        r = subprocess.run([scenario.wizard_command(), *argv], env=e, capture_output=True,
                           input=case.stdin, timeout=900)
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 1, r.stdout.decode(errors="replace") + err
        assert "Traceback" not in err
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(PREFIX), err
        assert snapshot(*roots, top=env.top) == before
    line = normalise(lines[0][len(PREFIX):], env, scratch)
    PRINTED[case.id] = line
    if not WRITE_DOC:
        documented = read_doc()
        assert case.id in documented, f"docs/bad-input.md lacks the case {case.id!r}"
        assert documented[case.id] == line


def test_the_doc_lists_exactly_the_cases() -> None:
    assert list(read_doc()) == ids()


# --- items 4 and 5 on the real lab ---

def test_a_second_run_while_the_lock_is_held_changes_nothing(env: Env) -> None:
    with partition_lock(env.top / "boot_docker", env.label):
        before = snapshot(env.esp, env.top / "boot_docker", top=env.top)
        r = subprocess.run([scenario.wizard_command(), "apply", "--label", env.label, "--image",
                            IMAGE, "--esp", str(env.esp), "--yes"], env=env.daemon.env(),
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 1 and r.stderr == (
            f"{PREFIX}another dockerboot-wizard (pid {os.getpid()}) is working on "
            f"{env.label} — wait for it to finish\n")
        assert snapshot(env.esp, env.top / "boot_docker", top=env.top) == before


def test_execute_refuses_a_plan_whose_mount_is_gone(env: Env, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", env.daemon.host)
    bind = tmp_path / "top"
    bind.mkdir()
    settings = Settings(label=env.label, image=IMAGE, hostname="gone")
    with apply.open_session(settings, lock=False) as session:
        subprocess.run(["mount", "--bind", str(env.top), str(bind)], check=True)
        try:
            moved = replace(session, top=bind, top_dev=os.stat(bind).st_dev)
            plan = apply.make_plan(moved, {}, steps=apply.TOPLAYER_ONLY)
        finally:
            subprocess.run(["umount", str(bind)], check=True)
        with pytest.raises(apply.TargetGoneError) as e:
            list(apply.execute(moved, plan, steps=apply.TOPLAYER_ONLY))
    assert str(e.value) == (f"the partition {env.label} is no longer mounted at {bind} — "
                            "run apply again")
    assert list(bind.iterdir()) == []  # nothing recreated on the host


# --- the doc ---

def read_doc() -> dict[str, str]:
    """``case -> line`` from the table in docs/bad-input.md."""
    out = {}
    for row in DOC.read_text().splitlines():
        if row.startswith("| ") and not row.startswith(("| case ", "| ---")):
            cells = re.split(r"(?<!\\)\|", row.strip()[1:-1])
            out[cells[0].strip().replace("\\|", "|")] = cells[1].strip().replace("\\|", "|")
    return out


def write_doc() -> None:
    head = DOC.read_text().split("| case ")[0] if DOC.exists() else "# Bad input\n\n"
    rows = [f"| {c.id} | {PRINTED.get(c.id, '?').replace('|', chr(92) + '|')} |"
            for c in CASES]
    DOC.write_text(head + "| case | the one line printed (after `dockerboot-wizard: `) |\n"
                   "| --- | --- |\n" + "\n".join(rows) + "\n")
