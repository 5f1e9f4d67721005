"""NIMBUS_REDIS_URL parsing: cluster seed lists, credentials, TLS options as redis-py takes them."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.config import Settings
from proxy.ops.redisurl import RedisUrlError, parse


def test_cluster_seed_list() -> None:
    """A cluster URL names every seed, default port 6379, IPv6 in brackets."""
    target = parse("redis+cluster://node1:7000,node2,[::1]:7002")
    assert target.cluster and not target.tls
    assert target.nodes == (("node1", 7000), ("node2", 6379), ("::1", 7002))
    assert target.client_kwargs() == {"username": None, "password": None}


def test_credentials_and_tls_options() -> None:
    """rediss+cluster:// with credentials and TLS query parameters gives redis-py's kwargs."""
    url = (
        "rediss+cluster://app:p%40ss%3Aw@a.example:6380,b.example:6380"
        "?ssl_cert_reqs=optional&ssl_ca_certs=/etc/ca.pem&ssl_check_hostname=false"
        "&ssl_certfile=/etc/c.pem&ssl_keyfile=/etc/k.pem&ssl_ciphers=HIGH"
    )
    target = parse(url)
    assert target.tls and target.cluster
    assert (target.username, target.password) == ("app", "p@ss:w")
    assert target.client_kwargs() == {
        "username": "app",
        "password": "p@ss:w",
        "ssl": True,
        "ssl_cert_reqs": "optional",
        "ssl_ca_certs": "/etc/ca.pem",
        "ssl_check_hostname": False,
        "ssl_certfile": "/etc/c.pem",
        "ssl_keyfile": "/etc/k.pem",
        "ssl_ciphers": "HIGH",
    }
    assert "p@ss" not in repr(target)
    # One node of it, as a plain URL redis-py's from_url reads back the same way.
    again = parse(target.node_url("b.example", 6380))
    assert not again.cluster and again.nodes == (("b.example", 6380),)
    assert (again.password, again.tls_options) == (target.password, target.tls_options)


def test_single_node_tls_context() -> None:
    """rediss:// builds the subscriber's TLS context from the same options."""
    target = parse("rediss://:secret@redis.example:6380/2?ssl_cert_reqs=none")
    assert (target.password, target.db) == ("secret", 2)
    context = target.ssl_context()
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    strict = parse("rediss://redis.example").ssl_context()
    assert strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    assert parse("redis://127.0.0.1:6379/0").ssl_context() is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://x", "must start with"),
        ("redis://a:1,b:2", "several hosts need a cluster URL"),
        ("redis+cluster://a:1/3", "only database 0"),
        ("redis://a:port", "not a number"),
        ("redis://a:70000", "out of range"),
        ("redis://a?ssl_cert_reqs=none", "need rediss://"),
        ("rediss://a?ssl_cert_reqs=maybe", "none, optional or required"),
        ("rediss://a?ssl_check_hostname=perhaps", "true or false"),
        ("rediss://a?sl_ca_certs=/x", "unknown option 'sl_ca_certs'"),
        ("redis+cluster://", "names no host"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    """Each malformed URL is refused with a message naming the part at fault."""
    with pytest.raises(RedisUrlError, match=message):
        parse(url)


def test_settings_refuse_a_bad_redis_url() -> None:
    """NIMBUS_REDIS_URL is checked at start-up (the process stops naming the variable)."""
    with pytest.raises(ValueError, match="redis_url"):
        Settings(redis_url="redis://a:1,b:2")
    assert Settings(redis_url="redis+cluster://a:1,b:2").redis_url == "redis+cluster://a:1,b:2"


@given(
    st.lists(
        st.tuples(st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True), st.integers(1, 65535)),
        min_size=1,
        max_size=5,
    )
)
def test_any_seed_list_round_trips(nodes: list[tuple[str, int]]) -> None:
    """Whatever hosts and ports are listed come back in order."""
    url = "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in nodes)
    assert parse(url).nodes == tuple(nodes)
