"""`nimbus up` (what `make run` runs): database, migrations, demo data, PostgREST and the proxy
in the foreground; Ctrl-C stops what it started."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import click
from yarl import URL

from proxy.config import Settings
from proxy.edge.server import serve
from proxy.gate.tokens import mint
from proxy.local.doctor import where
from proxy.local.embedded import postgres_answers, redis_answers, start_private_cluster
from proxy.local.localstack import start_postgrest
from proxy.local.migrate import ensure_database, migrate

NO_REDIS = "none (cache and limits per process)"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def up(settings: Settings, *, seed_demo: Callable[[str], dict[str, str]]) -> None:
    """Bring up the local stack around the proxy and serve until interrupted."""
    upstream = URL(settings.postgrest_url)
    if upstream.host not in LOCAL_HOSTS:
        raise click.ClickException(
            f"NIMBUS_POSTGREST_URL points at {upstream.host}; `nimbus up` starts a local"
            " PostgREST. Use `nimbus serve` against a remote one."
        )
    with ExitStack() as stack:
        modes = []
        if not postgres_answers(settings.database_url):
            click.echo("no PostgreSQL answers on NIMBUS_DATABASE_URL: starting a private cluster")
            try:
                cluster = start_private_cluster(settings.state_dir)
            except RuntimeError as exc:
                raise click.ClickException(str(exc)) from None
            stack.callback(cluster.stop)
            settings = settings.model_copy(update={"database_url": cluster.url})
            modes.append(f"PostgreSQL: private cluster in {cluster.data} (port {cluster.port})")
        if settings.redis_url and not redis_answers(settings.redis_url):
            settings = settings.model_copy(update={"redis_url": ""})
            modes.append("Redis: not reachable, running without it (cache and limits per process)")
        if ensure_database(settings.database_url):
            click.echo("created database")
        migrate(settings.database_url, echo=click.echo)
        demo = seed_demo(settings.database_url)
        pgrst = start_postgrest(
            database_url=settings.database_url,
            secret=settings.secret,
            state_dir=settings.state_dir,
            port=upstream.port,
        )
        stack.callback(pgrst.stop)
        settings = settings.model_copy(update={"postgrest_admin_url": pgrst.admin_url})
        serve(settings, announce=lambda _: banner(settings, demo, modes))


def redact(url: str) -> str:
    """A Redis URL without its password."""
    parsed = URL(url) if url else None
    return str(parsed.with_password(None)) if parsed and parsed.password else url


def banner(settings: Settings, demo: dict[str, str], modes: list[str]) -> None:
    """What a new user needs to make a first request."""
    base = f"http://{settings.host}:{settings.port}"
    anon = mint(settings.secret, role="anon", ttl=365 * 86400)
    token = mint(
        settings.secret,
        sub=demo["user_id"],
        org=demo.get("organization_id"),
        email=demo.get("email"),
        ttl=7 * 86400,
    )
    click.echo(
        "\n".join(
            [
                "",
                f"NIMBUS is running at {base}  (PostgREST: {settings.postgrest_url})",
                f"  demo user:   {demo.get('email')}  ({demo['user_id']})",
                f"  anon key:    {anon}",
                f"  demo token:  {token}",
                f"  database:    {where(settings.database_url)}",
                f"  redis:       {redact(settings.redis_url) or NO_REDIS}",
                *[f"  mode:        {m}" for m in modes],
                "",
                "Try, in another shell:",
                f"  export TOKEN={token}",
                f'  curl -H "Authorization: Bearer $TOKEN" "{base}/api/v1/products?limit=5"',
                f"  API docs: {base}/docs    Press Ctrl-C to stop.",
                "",
            ]
        )
    )
