"""Port choice for the embedded Milvus server (pure logic; the servers themselves start in the
stack and store tests)."""

from __future__ import annotations

import socket

from vidsearch.stack.services import distinct_ports

KEYS = ["etcd_port", "proxy_port", "metrics_port", "data_node_port"]


def test_a_fresh_port_returned_twice_is_not_given_to_two_components() -> None:
    fresh = iter([41000, 41000, 41001, 41001, 41002, 41003]).__next__  # free_port can repeat
    ports = distinct_ports(KEYS, saved={}, fixed={}, fresh=fresh)
    assert sorted(ports) == sorted(KEYS)
    assert len(set(ports.values())) == len(KEYS)


def test_a_fixed_port_is_kept_and_no_other_component_gets_it() -> None:
    fresh = iter([19530, 41000, 41001, 41002]).__next__
    ports = distinct_ports(KEYS, saved={}, fixed={"proxy_port": 19530}, fresh=fresh)
    assert ports["proxy_port"] == 19530
    assert len(set(ports.values())) == len(KEYS)


def test_saved_ports_are_reused_while_free_unless_two_components_share_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        saved = {"etcd_port": free, "metrics_port": free, "proxy_port": taken}
        fresh = iter([42000, 42001, 42002]).__next__
        ports = distinct_ports(KEYS, saved=saved, fixed={}, fresh=fresh)
    assert ports["etcd_port"] == free
    assert ports["metrics_port"] != free and ports["proxy_port"] != taken
    assert len(set(ports.values())) == len(KEYS)
