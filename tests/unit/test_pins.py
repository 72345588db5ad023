"""Pinning decisions against a fake daemon with docker's reference rules (as measured)."""

from __future__ import annotations

import docker.errors
import pytest

from tests.unit.genhelp import FakeClient, FakeDocker, image_id
from wizard.common import leftovers
from wizard.store import pins
from wizard.store.pins import PinError, pin, pin_container_name, pin_name, unpin

LABEL = "dockerboot"


@pytest.fixture
def store() -> FakeDocker:
    return FakeDocker()


@pytest.mark.parametrize(("label", "name"), [
    ("dockerboot", "dockerboot"),
    ("linux-2", "linux-2"),
])
def test_pin_names_of_plain_labels(label: str, name: str) -> None:
    assert pin_name(label) == name
    assert pin_container_name(label, 3) == f"dockerboot-pin-{name}-gen-3"


def test_pin_names_of_labels_docker_cannot_carry_are_distinct() -> None:
    names = {pin_name(x) for x in ("Data", "data", "a+b", "a-b", "a.b", "_x_", "A" * 255)}
    assert len(names) == 7
    for n in names:
        assert n.replace("-", "").isalnum() and n == n.lower() and len(n) <= 73


def test_pin_is_a_never_started_container_and_no_tag(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a", "desktop:latest")
    pin(client, a, LABEL, 1)
    assert store.tags == {"desktop:latest": a}
    (c,) = store.containers.values()
    assert c.status == "created" and c.image_id == a
    assert c.labels == {pins.PIN_LABEL: LABEL, pins.PIN_GENERATION: "1", pins.PIN_IMAGE: a}
    pin(client, a, LABEL, 1)  # idempotent
    assert len(store.containers) == 1
    assert pins.pins(client, LABEL) == {1: pins.Pin(1, a, (c.id,))}


def test_pinned_images_keep_their_tags_through_prune_all(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a", "desktop:latest")
    pin(client, a, LABEL, 1)
    b = store.add_image("b", "desktop:latest")  # the tag moved: a is dangling now
    c = store.add_image("c", "other:1")
    client.images.prune_all()
    assert store.exists(a) and store.exists(b) is False and store.exists(c) is False
    pin(client, store.add_image("d", "desktop:latest"), LABEL, 2)
    client.images.prune_all()
    assert store.tags == {"desktop:latest": image_id("d")}


def test_rmi_of_the_tag_on_a_pinned_image_is_refused(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a", "desktop:latest")
    pin(client, a, LABEL, 1)
    with pytest.raises(docker.errors.APIError, match="must force"):
        client.images.remove("desktop:latest")
    assert store.exists(a)


def test_reused_number_moves_the_pin_to_the_new_image(store: FakeDocker) -> None:
    client = FakeClient(store)
    a, b = store.add_image("a", "x:1"), store.add_image("b", "x:2")
    pin(client, a, LABEL, 1)
    pin(client, b, LABEL, 1)
    assert [c.image_id for c in store.containers.values()] == [b]


def test_a_users_container_with_the_pin_name_is_never_touched(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a", "x:1")
    mine = client.containers.create(a, name=pin_container_name(LABEL, 1), labels={"me": "1"})
    with pytest.raises(PinError, match="is taken"):
        pin(client, a, LABEL, 1)
    assert list(store.containers.values()) == [mine]


def test_pin_refuses_short_ids_and_missing_images(store: FakeDocker) -> None:
    client = FakeClient(store)
    with pytest.raises(PinError, match="full image ID"):
        pin(client, "sha256:abc", LABEL, 1)
    with pytest.raises(PinError, match="not in the docker store"):
        pin(client, image_id("gone"), LABEL, 1)
    with pytest.raises(PinError, match="generation number"):
        pin(client, store.add_image("a"), LABEL, -1)


def test_unpin_deletes_an_image_nothing_else_refers_to(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a")
    pin(client, a, LABEL, 1)
    done = unpin(client, LABEL, 1, a)
    assert done.image_deleted and len(done.containers) == 1 and done.notes == ()
    assert not store.exists(a) and store.containers == {}


def test_unpin_without_an_image_id_deletes_no_image(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a")
    pin(client, a, LABEL, 1)
    assert not unpin(client, LABEL, 1).image_deleted and store.exists(a)


def test_unpin_keeps_an_image_the_user_tags(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a", "desktop:latest")
    pin(client, a, LABEL, 1)
    done = unpin(client, LABEL, 1, a)
    assert not done.image_deleted and store.tags == {"desktop:latest": a}


def test_unpin_leaves_other_partitions_and_generations_alone(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a")
    pin(client, a, LABEL, 1)
    pin(client, a, LABEL, 2)
    pin(client, a, "other", 1)
    done = unpin(client, LABEL, 1, a)
    assert not done.image_deleted and store.exists(a)  # generation 2's pin still uses it
    assert sorted((c.labels[pins.PIN_LABEL], c.labels[pins.PIN_GENERATION])
                  for c in store.containers.values()) == [("dockerboot", "2"), ("other", "1")]


def test_unpin_never_forces(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a")
    pin(client, a, LABEL, 1)
    users = client.containers.create(a, name="users-own", labels={})
    done = unpin(client, LABEL, 1, a)
    assert not done.image_deleted and store.exists(a) and users.id in store.containers
    pin(client, a, LABEL, 3)
    next(c for c in store.containers.values() if c.name.endswith("gen-3")).status = "running"
    done = unpin(client, LABEL, 3, a)
    assert "stays" in done.notes[0] and not done.image_deleted
    assert all(call[-1] is False for call in store.calls if call[0] in ("rmi", "remove container"))


def test_unpin_of_nothing_is_harmless(store: FakeDocker) -> None:
    assert unpin(FakeClient(store), LABEL, 5, image_id("x")) == pins.Unpinned()


def test_reconcile_pins_kept_and_drops_stale_but_not_known(store: FakeDocker) -> None:
    client = FakeClient(store)
    a, b, c = store.add_image("a"), store.add_image("b"), store.add_image("c")
    for n, i in ((1, a), (2, b), (9, c), (8, b)):
        pin(client, i, LABEL, n)
    dropped = pins.reconcile(client, LABEL, {2: b, 3: b}, known=frozenset({9}))
    assert set(dropped) == {1, 8}
    assert set(pins.pins(client, LABEL)) == {2, 3, 9}
    assert not store.exists(a) and store.exists(b) and store.exists(c)


def test_leftover_cleanup_never_sees_pin_containers(store: FakeDocker,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(store)
    pin(client, store.add_image("a"), LABEL, 1)
    monkeypatch.setattr(leftovers, "owner_alive", lambda token: False)
    assert leftovers.remove_leftover_containers(client) == []
    assert len(store.containers) == 1
