"""Step 3, image: image references and their resolution to a btrfs subvolume.

``resolve_subvolume`` is the boot hook's algorithm in Python, step for step
(platform-facts §1): ``repositories.json`` → image ID → image config
``rootfs.diff_ids`` → ChainID of all layers → ``layerdb/…/cache-id`` →
``btrfs/subvolumes/<cache-id>``.  Only the image's own files are read, never a
scan of all layers.  The hook finds the ChainID of a tall image by walking the
layerdb instead (no process per layer) but checks every link with the same
hashes, so what the wizard proves bootable is what the hook boots.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from wizard.common.errors import ImageError

_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*(?::[0-9]+)?)"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
IMAGE_ID_RE = _ID_RE
"""A full image ID as ``docker images --no-trunc`` shows it (also the hook's pin syntax)."""
_DOCKER_HUB = ("docker.io", "index.docker.io")
_REF_HINT = "give NAME[:TAG], e.g. debian:12 or localhost:5000/ns/app:1.0"


def _has_domain(name: str) -> bool:
    # Docker's rule: the first component is a registry host if it looks like one.
    first, sep, _ = name.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost"
                          or first != first.lower())


def split_ref(ref: str) -> tuple[str, str]:
    """Split a familiar reference into name and tag (or digest) without normalising.

    ``localhost:5000/app:1.0`` → ``("localhost:5000/app", "1.0")``;
    ``app@sha256:…`` → ``("app", "sha256:…")``; no tag → ``(ref, "")``.
    """
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, digest
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:  # a colon before the last "/" is a registry port, not a tag
        name, _, tag = ref.rpartition(":")
        return name, tag
    return ref, ""


def normalize_ref(ref: str) -> str:
    """Docker's familiar form of an image reference, with ``:latest`` made explicit.

    This is the key ``repositories.json`` uses: ``docker.io/library/debian``
    → ``debian:latest``, ``docker.io/jess/app:1`` → ``jess/app:1``; a registry
    host (``localhost:5000/ns/app``) is kept, and a digest reference
    (``name@sha256:…``) keeps its digest (a tag next to a digest is dropped,
    as Docker stores such pulls by digest).

    Raises:
        ImageError: the reference is malformed.

    """
    text = ref.strip()
    name, at, digest = text.partition("@")
    if at and not digest:
        raise ImageError(f"invalid image reference {ref!r} (empty digest)", _REF_HINT)
    has_tag = ":" in name.rsplit("/", 1)[-1]
    name, tag = split_ref(name)
    if has_tag and not tag:
        raise ImageError(f"invalid image reference {ref!r} (empty tag)", _REF_HINT)
    domain, path = name.partition("/")[::2] if _has_domain(name) else ("", name)
    if domain in _DOCKER_HUB:
        domain = ""
    if not domain and path.startswith("library/") and "/" not in path[len("library/"):]:
        path = path[len("library/"):]  # official images: "library/" only at depth one
    name = f"{domain}/{path}" if domain else path
    if not _NAME_RE.match(name) or (digest and not _DIGEST_RE.match(digest)) or (
            tag and not _TAG_RE.match(tag)) or len(name) > 255:
        raise ImageError(f"invalid image reference {ref!r}", _REF_HINT)
    if digest:
        return f"{name}@{digest}"
    return f"{name}:{tag or 'latest'}"


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The ChainID of every prefix of a layer list (OCI image-spec, "Layer ChainID").

    ``ChainID(L0) = DiffID(L0)``; ``ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1)
    + " " + DiffID(Ln))``, both operands with their ``sha256:`` prefix.

    Returns:
        One ChainID per layer; the last one names the whole image's top layer.

    """
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            digest = hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest()
            chains.append(f"sha256:{digest}")
    return chains


def _read_json(path: Path, what: str, fix: str) -> object:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ImageError(f"{what} {path} does not exist", fix) from e
    except (OSError, ValueError) as e:
        raise ImageError(f"cannot read {what} {path}: {e}", fix) from e


def _hex(value: object, what: str, path: Path) -> str:
    # Values from disk become path components: accept only what Docker writes.
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ImageError(f"{path} has an invalid {what} {value!r}",
                         "the docker data-root is damaged; pull or build the image again")
    return value.removeprefix("sha256:")


def _pinned_id(image_root: Path, ref: str) -> str:
    # Pinned by ID: no tag to look up, the config is named by the ID itself.
    if not _ID_RE.match(ref):
        raise ImageError(f"{ref!r} is not a full image ID (sha256: and 64 hex digits)",
                         "`docker images --no-trunc` lists the IDs; a short ID is not accepted")
    image_hex = ref.removeprefix("sha256:")
    if not (image_root / "imagedb" / "content" / "sha256" / image_hex).is_file():
        raise ImageError(f"image {ref} is not in the docker store",
                         "`docker images --no-trunc` lists the IDs there; pin one that exists")
    return image_hex


def _tagged_id(data_root: Path, image_root: Path, ref: str) -> str:
    # repositories.json: {"Repositories": {name: {ref: "sha256:<id>"}}}.
    name = ref.partition("@")[0] if "@" in ref else split_ref(ref)[0]
    repositories = image_root / "repositories.json"
    data = _read_json(repositories, "image list", f"is {data_root} the data-root of a "
                      "dockerd using the btrfs storage driver? see `docker info`")
    repos = data.get("Repositories") if isinstance(data, dict) else None
    image_id = repos.get(name, {}).get(ref) if isinstance(repos, dict) else None
    if image_id is None:
        raise ImageError(f"image {ref} is not in {repositories}",
                         "pull or build it first; `dockerboot-wizard images` lists them")
    return _hex(image_id, "image ID", repositories)


def resolve_subvolume(data_root: Path, ref: str) -> Path:
    """The btrfs subvolume holding the image's complete root filesystem.

    Args:
        data_root: docker's data-root (``DockerRootDir``) as seen from here.
        ref: image reference, normalised with ``normalize_ref`` first; or
            ``sha256:<64 hex>``, an image pinned by its full ID (as the hook's
            ``docker_image=sha256:…``; a short ID is refused).

    Returns:
        ``<data_root>/btrfs/subvolumes/<cache-id>`` of the image's top layer.

    Raises:
        ImageError: any step fails; the message names the file and the fix.

    """
    image_root = data_root / "image" / "btrfs"
    if ref.startswith("sha256:"):
        image_hex = _pinned_id(image_root, ref)
    else:
        ref = normalize_ref(ref)
        image_hex = _tagged_id(data_root, image_root, ref)
    again = f"pull or build {ref} again"

    config_path = image_root / "imagedb" / "content" / "sha256" / image_hex
    config = _read_json(config_path, "image config", again)
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not diff_ids:
        raise ImageError(f"image {ref} has no layers (no rootfs.diff_ids in {config_path})",
                         "build it FROM a real base image, not FROM scratch with nothing")
    for diff_id in diff_ids:
        _hex(diff_id, "layer diff ID", config_path)

    chain_hex = chain_ids(diff_ids)[-1].removeprefix("sha256:")
    cache_id_path = image_root / "layerdb" / "sha256" / chain_hex / "cache-id"
    try:
        cache_id = cache_id_path.read_text().strip()
    except OSError as e:
        raise ImageError(f"top layer of {ref} not found ({cache_id_path}: {e.strerror})",
                         again) from e
    if not _HEX64.match(cache_id):
        raise ImageError(f"{cache_id_path} holds an invalid cache ID {cache_id!r}", again)

    subvolume = data_root / "btrfs" / "subvolumes" / cache_id
    if not subvolume.is_dir():
        raise ImageError(f"subvolume {subvolume} of {ref} is missing", again)
    return subvolume
