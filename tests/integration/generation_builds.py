"""One real generation from an image: what the generation tests build (as apply's build does)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from wizard.boot import generations, initramfs
from wizard.boot.fingerprint import fingerprint
from wizard.common.events import drive
from wizard.store.images import split_ref


def build_generation(client: Any, boot: Path, image: str,
                     number: int | None = None) -> generations.Generation:
    """Detect, build staged in a container of ``image``, add as generation ``number`` (or next)."""
    if number is None:
        number = generations.next_number(generations.load(boot))
    target = initramfs.detect(client, image)
    name, tag = split_ref(image)
    staged = drive(initramfs.build(client, image, target, boot, image_name=name, image_tag=tag,
                                   cancel=threading.Event(), stage_only=True))
    assert staged is not None
    record = generations.new_record(number, fingerprint(target.generator, target.kver),
                                    image, str(client.images.get(image).id))
    return generations.add(boot, staged, record)
