"""NIMBUS_REDIS_URL as operators write it: `redis://` and `rediss://` (TLS) for one Redis,
`redis+cluster://` and `rediss+cluster://` for a Redis Cluster with one or more seed nodes
(`redis+cluster://node1:6379,node2:6379`). redis-py's own `from_url` takes one host only, so
the seed list is parsed here and handed to it as `startup_nodes`; the pub/sub subscriber takes
its credentials and TLS options from the same parse. TLS options are the keyword arguments
redis-py takes, as query parameters
(`?ssl_cert_reqs=required&ssl_ca_certs=/etc/ssl/redis-ca.pem`)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TypedDict, cast
from urllib.parse import parse_qsl, quote, unquote, urlencode

SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster")
CERT_REQS = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# The TLS keyword arguments both redis-py clients (Redis and RedisCluster) accept.
TLS_OPTIONS = (
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
    "ssl_ciphers",
)


class ClientOptions(TypedDict, total=False):
    """RedisTarget.client_kwargs(): what both redis-py clients take, by name and type."""

    username: str | None
    password: str | None
    db: int
    ssl: bool
    ssl_cert_reqs: str
    ssl_ca_certs: str
    ssl_certfile: str
    ssl_keyfile: str
    ssl_check_hostname: bool
    ssl_ciphers: str


class RedisUrlError(ValueError):
    """The URL cannot name a Redis; the message says which part is wrong (never the password)."""


@dataclass(frozen=True)
class RedisTarget:
    """What a Redis URL names: one node or a cluster's seeds, credentials, db and TLS options."""

    cluster: bool
    tls: bool
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    tls_options: dict[str, str | bool] = field(default_factory=dict)

    def client_kwargs(self) -> ClientOptions:
        """Keyword arguments for redis-py (credentials, db, TLS); hosts are the caller's."""
        kwargs: dict[str, str | bool | int | None] = {
            "username": self.username,
            "password": self.password,
        }
        if not self.cluster:
            kwargs["db"] = self.db
        if self.tls:
            kwargs["ssl"] = True
            kwargs.update(self.tls_options)
        # tls_options holds only TLS_OPTIONS names, each of its ClientOptions type (parse()).
        return cast(ClientOptions, kwargs)

    def node_url(self, host: str, port: int) -> str:
        """A plain single-node URL for one of this target's nodes, with the same credentials
        and TLS options."""
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        elif self.username:
            auth = f"{quote(self.username, safe='')}@"
        shown = f"[{host}]" if ":" in host else host
        query = {
            k: str(v).lower() if isinstance(v, bool) else v for k, v in self.tls_options.items()
        }
        tail = f"?{urlencode(query)}" if query else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}{shown}:{port}/{0 if self.cluster else self.db}{tail}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context these options describe (None without TLS), as redis-py builds it."""
        if not self.tls:
            return None
        opts = self.tls_options

        def text(name: str) -> str | None:
            value = opts.get(name)
            return value if isinstance(value, str) else None

        context = ssl.create_default_context(cafile=text("ssl_ca_certs"))
        reqs = CERT_REQS[str(opts.get("ssl_cert_reqs", "required"))]
        if not opts.get("ssl_check_hostname", True) or reqs == ssl.CERT_NONE:
            context.check_hostname = False
        context.verify_mode = reqs
        certfile, ciphers = text("ssl_certfile"), text("ssl_ciphers")
        if certfile:
            context.load_cert_chain(certfile, text("ssl_keyfile"))
        if ciphers:
            context.set_ciphers(ciphers)
        return context


def _node(text: str) -> tuple[str, int]:
    """host[:port] or [v6]:port."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise RedisUrlError(f"Redis URL: a node has no host ({text!r})")
    try:
        number = int(port) if port else 6379
    except ValueError:
        raise RedisUrlError(f"Redis URL: port of {host} is not a number") from None
    if not 0 < number < 65536:
        raise RedisUrlError(f"Redis URL: port of {host} is out of range")
    return host, number


def _tls_option(name: str, value: str) -> str | bool:
    if name not in TLS_OPTIONS:
        raise RedisUrlError(
            f"Redis URL: unknown option {name!r} (TLS options: {', '.join(TLS_OPTIONS)})"
        )
    if name == "ssl_cert_reqs" and value.lower() not in CERT_REQS:
        raise RedisUrlError("Redis URL: ssl_cert_reqs must be none, optional or required")
    if name == "ssl_check_hostname":
        if value.lower() not in TRUE + FALSE:
            raise RedisUrlError("Redis URL: ssl_check_hostname must be true or false")
        return value.lower() in TRUE
    return value.lower() if name == "ssl_cert_reqs" else value


def parse(url: str) -> RedisTarget:
    """Parse a NIMBUS_REDIS_URL; RedisUrlError names what is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise RedisUrlError(
            f"Redis URL must start with one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    scheme = scheme.lower()
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
        if not colon:  # redis://secret@host: a password alone, as redis-py reads it
            username, password = None, unquote(user)
    nodes = tuple(_node(part.strip()) for part in hosts.split(",") if part.strip())
    if not nodes:
        raise RedisUrlError("Redis URL names no host")
    cluster = scheme.endswith("+cluster")
    if len(nodes) > 1 and not cluster:
        raise RedisUrlError("several hosts need a cluster URL (redis+cluster://a:6379,b:6379)")
    try:
        db = int(path.strip("/") or 0)
    except ValueError:
        raise RedisUrlError("Redis URL: the database (path) must be a number") from None
    if cluster and db:
        raise RedisUrlError("Redis Cluster has only database 0")
    options: dict[str, str | bool] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "db" and not cluster:
            db = int(value) if value.isdigit() else db
            continue
        options[name] = _tls_option(name, value)
    tls = scheme.startswith("rediss")
    if options and not tls:
        raise RedisUrlError("Redis URL: TLS options need rediss:// (or rediss+cluster://)")
    return RedisTarget(cluster, tls, nodes, username, password, db, options)
