"""Pinning decisions against a fake daemon with docker's reference rules (as measured)."""

from __future__ import annotations

import pytest

from tests.unit.genhelp import FakeClient, FakeDocker, image_id
from wizard import leftovers, pins
from wizard.pins import PinError, pin, pin_container_name, pin_name, pin_tag, unpin

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
    assert pin_tag(label, 3) == f"dockerboot-pin/{name}:gen-3"
    assert pin_container_name(label, 3) == f"dockerboot-pin-{name}-gen-3"


def test_pin_names_of_labels_docker_cannot_carry_are_distinct() -> None:
    names = {pin_name(x) for x in ("Data", "data", "a+b", "a-b", "a.b", "_x_", "A" * 255)}
    assert len(names) == 7
    for n in names:
        assert n.replace("-", "").isalnum() and n == n.lower() and len(n) <= 73


def test_pin_tags_and_creates_a_never_started_container(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a", "desktop:latest")
    pin(client, a, LABEL, 1)
    assert store.tags["dockerboot-pin/dockerboot:gen-1"] == a
    (c,) = store.containers.values()
    assert c.status == "created" and c.image_id == a
    assert c.labels == {pins.PIN_LABEL: LABEL, pins.PIN_GENERATION: "1", pins.PIN_IMAGE: a}
    pin(client, a, LABEL, 1)  # idempotent
    assert len(store.containers) == 1
    assert pins.pins(client, LABEL)[1] == pins.Pin(1, a, True, (c.id,))


def test_pins_survive_the_tag_moving_and_rmi_of_the_tag(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a", "desktop:latest")
    pin(client, a, LABEL, 1)
    # The user's rmi of the tag still on the pinned image just untags (no "must force").
    client.images.remove("desktop:latest")
    assert store.exists(a)
    b = store.add_image("b", "desktop:latest")
    client.images.remove("desktop:latest")
    assert store.exists(a) and not store.exists(b)


def test_reused_number_moves_the_pin_to_the_new_image(store: FakeDocker) -> None:
    client = FakeClient(store)
    a, b = store.add_image("a", "x:1"), store.add_image("b", "x:2")
    pin(client, a, LABEL, 1)
    pin(client, b, LABEL, 1)
    assert [c.image_id for c in store.containers.values()] == [b]
    assert store.tags["dockerboot-pin/dockerboot:gen-1"] == b


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


def test_unpin_releases_an_image_with_no_other_reference(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a")
    pin(client, a, LABEL, 1)
    done = unpin(client, LABEL, 1, a)
    assert done.tag and len(done.containers) == 1 and done.notes == ()
    assert not store.exists(a) and store.containers == {}


def test_unpin_keeps_an_image_the_user_still_tags(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a", "desktop:latest")
    pin(client, a, LABEL, 1)
    unpin(client, LABEL, 1, a)
    assert store.exists(a) and store.tags == {"desktop:latest": a}


def test_unpin_leaves_a_moved_pin_tag_and_other_partitions_pins(store: FakeDocker) -> None:
    client = FakeClient(store)
    a, b = store.add_image("a"), store.add_image("b")
    pin(client, a, LABEL, 1)
    pin(client, a, "other", 1)
    store.tags["dockerboot-pin/dockerboot:gen-1"] = b  # moved by hand
    done = unpin(client, LABEL, 1, a)
    assert not done.tag and "left alone" in done.notes[0]
    assert store.tags["dockerboot-pin/dockerboot:gen-1"] == b
    assert store.tags["dockerboot-pin/other:gen-1"] == a
    assert [c.labels[pins.PIN_LABEL] for c in store.containers.values()] == ["other"]


def test_unpin_never_forces(store: FakeDocker) -> None:
    client = FakeClient(store)
    a = store.add_image("a")
    pin(client, a, LABEL, 1)
    users = client.containers.create(a, name="users-own", labels={})
    done = unpin(client, LABEL, 1, a)
    assert not done.tag and "stays" in done.notes[0]
    assert store.exists(a) and users.id in store.containers
    assert all(call[-1] is False for call in store.calls if call[0] in ("rmi", "remove container"))


def test_unpin_of_nothing_is_harmless(store: FakeDocker) -> None:
    assert unpin(FakeClient(store), LABEL, 5) == pins.Unpinned()


def test_reconcile_pins_kept_and_drops_stale_but_not_known(store: FakeDocker) -> None:
    client = FakeClient(store)
    a, b, c = store.add_image("a"), store.add_image("b"), store.add_image("c")
    for n, i in ((1, a), (2, b), (9, c)):
        pin(client, i, LABEL, n)
    dropped = pins.reconcile(client, LABEL, {2: b, 3: b}, known=frozenset({9}))
    assert set(dropped) == {1}
    assert set(pins.pins(client, LABEL)) == {2, 3, 9}
    assert not store.exists(a) and store.exists(b) and store.exists(c)


def test_leftover_cleanup_never_sees_pin_containers(store: FakeDocker,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(store)
    pin(client, store.add_image("a"), LABEL, 1)
    monkeypatch.setattr(leftovers, "owner_alive", lambda token: False)
    assert leftovers.remove_leftover_containers(client) == []
    assert len(store.containers) == 1
