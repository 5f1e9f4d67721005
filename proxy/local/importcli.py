"""`nimbus import FILE`: upload a product CSV (dry run unless --commit); a small file answers at
once, a large one becomes a job whose progress bar follows `GET /imports/{id}` (rows validated,
then written). A network failure during the upload sends it again: the server gives the same
job back (same file and mode, or the same --key), so nothing is imported twice."""

from __future__ import annotations

import sys
import time
import urllib.error
from http.client import HTTPMessage
from pathlib import Path
from typing import Any

import click

from proxy.local.csvcli import POLL_S, SHOWN_ERRORS, Api, connection, row_error


def _summary(data: dict[str, Any]) -> str:
    """One line: what the import did (or would do)."""
    invalid = data.get("error_count", len(data.get("errors", [])))
    state = data.get("status", "done")
    return (
        f"{data['mode']} {state}: {data['total']} rows, {data['created']} created,"
        f" {data['updated']} updated, {invalid} invalid"
    )


def _follow(api: Api, job: dict[str, Any]) -> dict[str, Any]:
    """Poll the job to its end with a progress bar (validated + written rows)."""
    steps = job["total"] * (2 if job["mode"] == "commit" else 1)
    with click.progressbar(length=steps, label="import", file=sys.stderr) as bar:
        while True:
            done = job["validated"] + job["written"]
            bar.update(done - bar.pos)
            if job["status"] in ("done", "failed") or job.get("stalled"):
                return job
            time.sleep(POLL_S)
            _, _, body = api.json("GET", f"/imports/{job['id']}")
            job = body["data"]


def _upload(
    api: Api, path: str, raw: bytes, headers: dict[str, str], retries: int
) -> tuple[int, HTTPMessage, Any]:
    """POST the file; resend on a network failure (the server deduplicates the upload)."""
    for attempt in range(retries + 1):
        try:
            return api.json("POST", path, raw, **headers)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if attempt == retries:
                raise click.ClickException(f"upload failed: {exc}") from None
            click.echo(f"upload failed ({exc}); sending it again", err=True)
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--commit", is_flag=True, help="Write (default: a dry run that only checks).")
@click.option("--key", help="Idempotency-Key (default: the file and mode's hash).")
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True)
@connection
def import_(
    file: Path,
    commit: bool,
    key: str | None,
    retries: int,
    url: str | None,
    token: str,
    org: str | None,
) -> None:
    """Import products from FILE (CSV; an export of products imports back as it is)."""
    api = Api(url, token, org)
    mode = "commit" if commit else "dry-run"
    headers = {"Content-Type": "text/csv"}
    if key:
        headers["Idempotency-Key"] = key
    status, _, body = _upload(
        api, f"/import/products?mode={mode}", file.read_bytes(), headers, retries
    )
    data = body["data"]
    if status == 202:
        data = _follow(api, data)
    for problem in data.get("errors", [])[:SHOWN_ERRORS]:
        click.echo(row_error(problem), err=True)
    click.echo(_summary(data))
    if data.get("stalled"):
        raise click.ClickException("the job stopped; run the same command again to resume it")
    if data.get("status") == "failed" or data.get("errors"):
        if data.get("message"):
            click.echo(data["message"], err=True)
        sys.exit(1)
