"""The doctor's checks of the services around the proxy: PostgREST, Redis, the JWT keys (and the
Check record every check returns)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from proxy.config import Settings

TIMEOUT_S = 3
POSTGREST_MAJOR = "12"


@dataclass(frozen=True)
class Check:
    """The outcome of one check: a name, OK or not, what was found, and the fix when not OK."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """`OK   name  detail` or `FAIL name  detail -> fix: ...`."""
        text = f"{'OK  ' if self.ok else 'FAIL'} {self.name:<12} {self.detail}"
        return text if self.ok or not self.fix else f"{text}\n     {'':<12} fix: {self.fix}"


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET url: (status, headers, body); HTTP error statuses are answers, not exceptions."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (http(s) only)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:  # noqa: S310
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def local_secret(settings: Settings) -> str:
    """The HS256 secret if one exists (configured or generated); doctor never generates one."""
    path = settings.state_dir / "jwt_secret"
    if settings.jwt_secret:
        return settings.jwt_secret
    return path.read_text().strip() if path.exists() else ""


def check_postgrest(settings: Settings) -> Check:
    """PostgREST answers at NIMBUS_POSTGREST_URL; its version from the Server header."""
    from proxy.gate.tokens import mint

    secret = local_secret(settings)
    headers = {"Authorization": "Bearer " + mint(secret, role="anon", ttl=60)} if secret else {}
    if settings.upstream_apikey:
        headers["apikey"] = settings.upstream_apikey
    url = settings.postgrest_url
    try:
        status, got, _ = fetch(url + "/", headers)
    except (OSError, ValueError) as exc:
        return Check(
            "postgrest",
            False,
            f"cannot reach {url}: {getattr(exc, 'reason', exc)}",
            "start PostgREST (`nimbus up`) or set NIMBUS_POSTGREST_URL",
        )
    server = next((v for k, v in got.items() if k.lower() == "server"), "")
    version = server.partition("/")[2] if server.lower().startswith("postgrest/") else ""
    if status == 401:
        return Check(
            "postgrest",
            False,
            f"{url} refused a token signed with the configured secret (401)",
            "set NIMBUS_JWT_SECRET to PostgREST's PGRST_JWT_SECRET (Supabase: the JWT secret)",
        )
    if status >= 500:
        return Check("postgrest", False, f"{url} answered {status}", "check PostgREST's log")
    if version and not version.startswith(POSTGREST_MAJOR + "."):
        return Check(
            "postgrest", False, f"PostgREST {version} at {url}", "NIMBUS targets PostgREST 12.x"
        )
    return Check("postgrest", True, f"PostgREST {version or '(version not reported)'} at {url}")


def check_redis(url: str, name: str) -> Check:
    """Redis (or Redis Cluster) answers PING; empty URL = running without it."""
    if not url:
        return Check(name, True, "disabled: cache, limits and denylist are per process")
    from redis import Redis
    from redis.cluster import ClusterNode, RedisCluster
    from redis.exceptions import RedisClusterException, RedisError

    from proxy.ops.redisurl import RedisUrlError, parse

    shown = url.split("@")[-1]
    try:
        target = parse(url)
        client: Redis | RedisCluster
        if target.cluster:
            client = RedisCluster(
                startup_nodes=[
                    # redis-py's sync ClusterNode.__init__ carries no annotations.
                    ClusterNode(host, port)  # type: ignore[no-untyped-call]
                    for host, port in target.nodes
                ],
                socket_timeout=TIMEOUT_S,
                socket_connect_timeout=TIMEOUT_S,
                **target.client_kwargs(),
            )
        else:
            client = Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        with client:
            client.ping()
            version = client.info("server").get("redis_version", "?")
    except RedisUrlError as exc:
        return Check(name, False, str(exc), f"correct NIMBUS_{name.upper()}_URL")
    except (RedisError, RedisClusterException, OSError) as exc:
        return Check(
            name,
            False,
            f"cannot reach {shown}: {type(exc).__name__}",
            f"start Redis, or set NIMBUS_{name.upper()}_URL= (empty) to run without it",
        )
    version = version if isinstance(version, str) else "cluster"
    return Check(name, True, f"Redis {version} at {shown}")


def check_jwt(settings: Settings) -> Check:
    """The HS256 secret is usable, or the JWKS URL serves keys."""
    if settings.jwks_url:
        status: int | str
        try:
            status, _, body = fetch(settings.jwks_url)
            keys = json.loads(body).get("keys", []) if status == 200 else []
        except (OSError, ValueError, AttributeError) as exc:
            status, keys = getattr(exc, "reason", type(exc).__name__), []
        if not keys:
            return Check(
                "jwt",
                False,
                f"JWKS at {settings.jwks_url} gave no keys ({status})",
                "set NIMBUS_JWKS_URL to https://<ref>.supabase.co/auth/v1/.well-known/jwks.json",
            )
        return Check("jwt", True, f"JWKS serves {len(keys)} key(s)")
    if settings.jwt_secret:
        return Check("jwt", True, f"HS256 secret set ({len(settings.jwt_secret)} characters)")
    if local_secret(settings):
        return Check("jwt", True, f"HS256 secret generated locally in {settings.state_dir}")
    return Check(
        "jwt",
        False,
        "no NIMBUS_JWT_SECRET, NIMBUS_JWKS_URL or local secret",
        "set NIMBUS_JWT_SECRET (32+ characters, PostgREST's secret) or run `nimbus up` once",
    )
