"""Throwaway containers of an image: the one way the core makes one.

The probe, the initramfs build, the users' container and reading one of the
image's own files all need a short-lived container of the boot image.
``throwaway`` makes every one of them the same way: no network, the
wizard's labels (so the next run removes what a killed run left, see
``wizard.common.leftovers``), assets mounted read-only, never a pull of a missing
image, and removal on every way out of the ``with`` block.  Docker's API
errors about it (a missing image, a refused create or start, a failed call
inside the block) become one ``ImageError`` (problem — fix).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from wizard.common.errors import ImageError
from wizard.common.leftovers import container_labels

if TYPE_CHECKING:  # the SDK costs ~0.1 s: imported where it is used
    import docker
    from docker.models.containers import Container

ASSETS_MOUNT = "/dockerboot"
"""Where ``throwaway(assets=...)`` mounts the assets directory (read-only)."""

# What the daemon says when the entrypoint (the shell) is not in the image.
_NO_EXECUTABLE = ("executable file not found", "no such file or directory")


class Throwaway:
    """A created (not yet started) container of ``image``, as ``throwaway`` yields it."""

    def __init__(self, container: Container, image: str, purpose: str, program: str) -> None:
        self.container = container
        """The docker SDK's ``Container``."""
        self.image = image
        """The image reference it was made from."""
        self.purpose = purpose
        """Its label value (``probe``, ``initramfs``, …)."""
        self._program = program

    def start(self, stdin: bytes | None = None) -> None:
        """Start it; with ``stdin``, send those bytes to its stdin and close it (EOF).

        ``stdin`` needs ``throwaway(..., stdin=True)``.  Sending over the
        attach socket keeps secrets (passwords) out of argv, the environment
        and the logs.

        Raises:
            ImageError: docker cannot start it (e.g. the image has no shell).

        """
        import docker.errors

        try:
            if stdin is None:
                self.container.start()
            else:
                _start_with_stdin(self.container, stdin)
        except docker.errors.APIError as e:
            if any(s in str(e).lower() for s in _NO_EXECUTABLE):
                raise ImageError(f"image {self.image} has no {self._program}",
                                 "base the image on a distribution with a shell") from e
            raise ImageError(f"docker could not start a {self.purpose} container of "
                             f"{self.image}: {_explain(e)}",
                             "check the image and the docker daemon, then run again") from e


@contextlib.contextmanager
def throwaway(client: docker.DockerClient, image: str, *, purpose: str,
              command: list[str] | None = None, entrypoint: str | list[str] | None = None,
              user: str | None = "0:0", assets: Path | None = None,
              writable: Mapping[Path, str] | None = None, stdin: bool = False,
              working_dir: str | None = None) -> Iterator[Throwaway]:
    """Create a network-less, labelled container of ``image``; remove it on leaving.

    The container is created, not started (``Throwaway.start``), so a
    caller may first copy files in or out.  It is removed (forced) on every
    exit path: normal end, an exception, ``Cancelled``, ``KeyboardInterrupt``,
    a generator closed early.  A missing image is an error, never a pull.

    Args:
        client: a ``docker.DockerClient``.
        image: the image reference.
        purpose: what it is for; the value of its ``dockerboot-wizard`` label.
        command: the command (arguments of ``entrypoint`` when given).
        entrypoint: replaces the image's entrypoint (usually ``/bin/sh``).
        user: run as this user; the default ``0:0`` needs no ``/etc/passwd``.
        assets: an assets directory to mount read-only at ``ASSETS_MOUNT``.
        writable: host directory -> path inside, mounted read-write.
        stdin: keep stdin open, for ``Throwaway.start(stdin=...)``.
        working_dir: the working directory inside.

    Raises:
        ImageError: the image is not present locally, docker refused to create
            the container, or an ``APIError`` left the block (the block's own
            errors, and the daemon going away, pass through unchanged).

    """
    import docker.errors
    import requests.exceptions

    volumes = {str(host): {"bind": inside, "mode": "rw"}
               for host, inside in (writable or {}).items()}
    if assets is not None:
        volumes[str(assets)] = {"bind": ASSETS_MOUNT, "mode": "ro"}
    options: dict[str, Any] = {"entrypoint": entrypoint, "user": user,
                               "volumes": volumes or None, "working_dir": working_dir}
    if stdin:
        options.update(stdin_open=True, tty=False)
    try:
        # create(), not run(): run() would pull a missing image from a registry.
        container = client.containers.create(
            image, command, network_disabled=True, network_mode="none",
            labels=container_labels(purpose),
            **{k: v for k, v in options.items() if v is not None})
    except docker.errors.NotFound as e:  # ImageNotFound, or a 404 naming the image
        raise ImageError(f"image {image} is not present locally",
                         "pull or build it first") from e
    except docker.errors.APIError as e:
        raise ImageError(f"docker could not create a {purpose} container of {image}: "
                         f"{_explain(e)}",
                         "check the image and the docker daemon, then run again") from e
    # An interrupt between the daemon creating it and here leaves a labelled
    # container: the next run's leftovers.remove_leftover_containers takes it.
    program = (entrypoint if isinstance(entrypoint, str)
               else entrypoint[0] if entrypoint else "shell")
    try:
        yield Throwaway(container, image, purpose, program)
    except docker.errors.APIError as e:
        # The block's own calls on the container (wait, logs, get_archive, …).
        raise ImageError(f"docker failed with the {purpose} container of {image}: "
                         f"{_explain(e)}",
                         "check the image and the docker daemon, then run again") from e
    finally:
        # Already gone, or the daemon itself is gone: nothing more to do here
        # (the next run removes a leftover labelled container), and the
        # caller's own error must not be hidden by this one.
        with contextlib.suppress(docker.errors.DockerException,
                                 requests.exceptions.RequestException):
            container.remove(force=True)


def _start_with_stdin(container: Container, payload: bytes) -> None:
    """Start ``container`` with ``payload`` on its stdin, then close stdin (EOF)."""
    sock = container.attach_socket(params={"stdin": 1, "stream": 1})
    # The SDK's attach socket: a SocketIO wrapping the socket in its private ``_sock``,
    # or a socket itself (SSH); the stubs know neither the attribute nor the subclass.
    raw = cast("socket.socket", getattr(sock, "_sock", sock))
    try:
        container.start()
        raw.sendall(payload)
        # Half-close: with StdinOnce the daemon then closes the container's stdin.
        raw.shutdown(socket.SHUT_WR)
    finally:
        sock.close()


def _explain(error: docker.errors.APIError) -> str:
    """The daemon's own words for ``error``, on one line."""
    return " ".join(str(error.explanation or error).split())
