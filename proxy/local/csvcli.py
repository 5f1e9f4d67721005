"""`nimbus export` and `nimbus import`: the CSV routes of /api/v1 from a shell, with a progress
bar (on stderr, so an export can go to stdout).

Both talk HTTP to a running proxy (`--url`, default NIMBUS_HOST:NIMBUS_PORT) as a user
(`--token` or NIMBUS_TOKEN; `nimbus token` or `nimbus user add` prints one). The standard
library's urllib is enough here: the proxy does the work, and the CLI needs no extra package.
An import over the server's synchronous cap is a job: the bar follows `GET /imports/{id}`; an
upload cut by the network is sent again, which the server treats as the same job."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.client import HTTPMessage, HTTPResponse
from pathlib import Path
from typing import Any, TypeVar

import click

from proxy.config import load_settings

EXPORTS = {"products": "/products", "orders": "/orders", "movements": "/stock/movements"}
POLL_S = 0.5
SHOWN_ERRORS = 20

F = TypeVar("F", bound=Callable[..., object])


class Api:
    """The /api/v1 of one proxy, as one user."""

    def __init__(self, url: str | None, token: str, org: str | None) -> None:
        if url is None:
            settings = load_settings()
            url = f"http://{settings.host}:{settings.port}"
        self.base = url.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": "Bearer " + token}
        if org:
            self.headers["X-Organization-Id"] = org

    def open(
        self, method: str, path: str, body: bytes | None = None, **headers: str
    ) -> HTTPResponse:
        """The response (open, to be read); a ClickException for an error answer."""
        request = urllib.request.Request(  # noqa: S310 (the URL is the operator's own)
            self.base + path, data=body, method=method, headers={**self.headers, **headers}
        )
        try:
            response: HTTPResponse = urllib.request.urlopen(request, timeout=60)  # noqa: S310
            return response
        except urllib.error.HTTPError as exc:
            raise click.ClickException(_problem(exc.code, exc.read())) from None

    def json(
        self, method: str, path: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, HTTPMessage, Any]:
        """(status, headers, decoded JSON body)."""
        with self.open(method, path, body, **headers) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")


def _problem(status: int, body: bytes) -> str:
    """An error answer as one readable message."""
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}: {body[:200]!r}"
    message = f"{status} {error.get('code')}: {error.get('message')}"
    details = error.get("details")
    if isinstance(details, list):
        message += "".join(f"\n  {row_error(d)}" for d in details[:SHOWN_ERRORS])
    return message


def row_error(detail: Any) -> str:
    """One entry of error details (a field error, or a row's errors) as a line."""
    if isinstance(detail, dict) and "errors" in detail:
        where = f"line {detail['line']}" if detail.get("line") else f"row {detail.get('index')}"
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in detail["errors"])
        return f"{where}: {fields}"
    if isinstance(detail, dict):
        return f"{detail.get('field')}: {detail.get('message')}"
    return str(detail)


def connection(command: F) -> F:
    """The options every CSV command takes: where the proxy is and who is asking."""
    command = click.option("--org", envvar="NIMBUS_ORG", help="X-Organization-Id to act in.")(
        command
    )
    command = click.option(
        "--token", envvar="NIMBUS_TOKEN", required=True, help="Access token (NIMBUS_TOKEN)."
    )(command)
    return click.option("--url", help="Proxy URL (default: http://NIMBUS_HOST:NIMBUS_PORT).")(
        command
    )


@click.command("export")
@click.argument("what", type=click.Choice(sorted(EXPORTS)))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="File.")
@click.option("-p", "--param", multiple=True, help="A list filter, KEY=VALUE (e.g. search=bolt).")
@connection
def export(
    what: str,
    out: Path | None,
    param: tuple[str, ...],
    url: str | None,
    token: str,
    org: str | None,
) -> None:
    """Download WHAT as CSV (stdout unless --out), with a progress bar on stderr."""
    api = Api(url, token, org)
    filters = [(k, v) for k, _, v in (p.partition("=") for p in param if "=" in p)]
    query = urllib.parse.urlencode(filters)
    counted = urllib.parse.urlencode([*filters, ("limit", "1")])
    _, _, page = api.json("GET", f"{EXPORTS[what]}?{counted}")
    total = max(1, (page or {}).get("pagination", {}).get("total") or 0)  # may be an estimate
    sink = out.open("wb") if out else sys.stdout.buffer
    rows = -1  # the header line is not a row
    try:
        with (
            api.open("GET", f"/export/{what}.csv?{query}") as response,
            click.progressbar(length=total, label=f"export {what}", file=sys.stderr) as bar,
        ):
            while chunk := response.read(65_536):
                sink.write(chunk)
                lines = chunk.count(b"\n")  # quoted newlines count too: a bar, not a census
                rows += lines
                bar.update(lines)
    finally:
        if out:
            sink.close()
    click.echo(f"{max(rows, 0)} rows of {what}" + (f" -> {out}" if out else ""), err=True)
