"""A tiny Docker registry (distribution API v2, read-only) for real pulls without Docker Hub.

It serves images taken from ``docker save`` of a lab daemon: a gzip layer
blob per layer, the image config, and a schema-2 manifest per tag.  A real
``dockerd`` pulls from it over plain HTTP (registries on 127.0.0.0/8 are
insecure by default).  ``throttle`` slows blob downloads so a pull shows
progress and can be cancelled midway.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Registry:
    """Blobs and manifests by repository and tag; ``host`` is ``127.0.0.1:PORT``."""

    host: str = ""
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)
    throttle: float = 0.0
    """Seconds to sleep per 64 KiB of blob sent."""
    served: list[str] = field(default_factory=list)

    def add_saved(self, saved_tar: bytes, repo: str, tag: str) -> None:
        """Serve the single image in ``saved_tar`` (``docker save``) as ``repo:tag``."""
        with tarfile.open(fileobj=io.BytesIO(saved_tar)) as tf:
            entry = json.load(tf.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
            config = tf.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
            layers = []
            for name in entry["Layers"]:
                blob = gzip.compress(tf.extractfile(name).read(), mtime=0)  # type: ignore[union-attr]
                self.blobs[_digest(blob)] = blob
                layers.append({"mediaType": LAYER_GZIP, "size": len(blob),
                               "digest": _digest(blob)})
        self.blobs[_digest(config)] = config
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST_V2,
                    "config": {"mediaType": CONFIG_V1, "size": len(config),
                               "digest": _digest(config)},
                    "layers": layers}
        self.manifests[(repo, tag)] = json.dumps(manifest).encode()


def _handler(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:  # quiet test output
            pass

        def _send(self, code: int, body: bytes, ctype: str = "application/json",
                  digest: str | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            if digest:
                self.send_header("Docker-Content-Digest", digest)
            self.end_headers()
            if self.command == "GET":
                self._write(body)

        def _write(self, body: bytes) -> None:
            for start in range(0, len(body), 64 << 10):
                if registry.throttle:
                    time.sleep(registry.throttle)
                try:
                    self.wfile.write(body[start:start + (64 << 10)])
                except (BrokenPipeError, ConnectionResetError):
                    return  # the daemon gave up (a cancelled pull)

        def _route(self) -> None:
            path = self.path.split("?", 1)[0]
            registry.served.append(f"{self.command} {path}")
            if path in ("/v2", "/v2/"):
                return self._send(200, b"{}")
            parts = path.removeprefix("/v2/").rsplit("/", 2)  # the name may hold "/"
            repo, kind, ref = parts if len(parts) == 3 else ("", "", "")
            if kind == "manifests" and (repo, ref) in registry.manifests:
                body = registry.manifests[(repo, ref)]
                return self._send(200, body, MANIFEST_V2, _digest(body))
            if kind == "manifests":
                for (r, _tag), body in registry.manifests.items():
                    if r == repo and _digest(body) == ref:
                        return self._send(200, body, MANIFEST_V2, ref)
            if kind == "blobs" and ref in registry.blobs:
                return self._send(200, registry.blobs[ref], "application/octet-stream", ref)
            error = {"errors": [{"code": "MANIFEST_UNKNOWN" if kind == "manifests"
                                 else "BLOB_UNKNOWN", "message": f"{repo} {ref} unknown"}]}
            return self._send(404, json.dumps(error).encode())

        do_GET = do_HEAD = _route

    return Handler


@contextlib.contextmanager
def serving(registry: Registry | None = None) -> Iterator[Registry]:
    """Run the registry on a free port of 127.0.0.1 for the block."""
    registry = registry or Registry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    server.daemon_threads = True
    registry.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
