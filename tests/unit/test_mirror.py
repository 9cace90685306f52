from ferry.manager.store import keys
from ferry.manager.store.schema import TYPES
from ferry.model.codec import encode, to_plain
from ferry.model.mirror import Mirror
from ferry.model.node import Node, Role


def node(node_id: str, hostname: str) -> Node:
    return Node(node_id=node_id, hostname=hostname, role=Role.WORKER, addr="10.99.0.12")


def test_values_are_decoded_by_prefix_from_bytes_and_from_parsed_json() -> None:
    mirror = Mirror(TYPES)
    n1, n2 = node("n1", "h1"), node("n2", "h2")
    mirror.reset([(keys.node("n1"), encode(n1), 5)], 5)
    mirror.apply([(keys.node("n2"), to_plain(n2), 6)])
    assert mirror.obj(keys.node("n1"), Node) == n1
    assert mirror.obj(keys.node("n2"), Node) == n2
    assert mirror.revision == 6


def test_listeners_hear_exactly_the_keys_that_changed() -> None:
    mirror = Mirror(TYPES)
    heard: list[frozenset[str]] = []
    mirror.subscribe(heard.append)
    mirror.reset([(keys.node("n1"), encode(node("n1", "h1")), 3)], 3)
    mirror.apply([(keys.node("n1"), None, 4), (keys.node("n2"), encode(node("n2", "h2")), 4)])
    mirror.reset([(keys.node("n2"), encode(node("n2", "h2")), 4)], 4)
    assert heard == [
        frozenset({keys.node("n1")}),
        frozenset({keys.node("n1"), keys.node("n2")}),
        frozenset(),  # a snapshot equal to what we hold: nothing changed, still announced
    ]


def test_events_older_than_the_snapshot_are_ignored() -> None:
    mirror = Mirror(TYPES)
    mirror.reset([(keys.node("n1"), encode(node("n1", "new")), 10)], 10)
    mirror.apply([(keys.node("n1"), encode(node("n1", "old")), 9)])
    found = mirror.obj(keys.node("n1"), Node)
    assert found is not None
    assert found.hostname == "new"
