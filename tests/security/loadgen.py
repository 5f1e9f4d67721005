"""A noisy tenant, as a process of its own (so its CPU and GIL never sit in the measuring
process): `python -m tests.security.loadgen URL SECONDS CONNECTIONS TOKEN PATH [PATH ...]` sends
the paths round-robin from CONNECTIONS keep-alive connections for SECONDS, then prints one JSON
line: the number of answers by status."""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import time

import httpx


async def worker(client: httpx.AsyncClient, paths: list[str], offset: int, until: float, counts):
    """Send the paths one after another, reading every answer to its end, until `until`."""
    i = offset
    while time.monotonic() < until:
        try:
            r = await client.get(paths[i % len(paths)])
            counts[str(r.status_code)] += 1
        except httpx.HTTPError as exc:
            counts[type(exc).__name__] += 1
        i += 1


async def main(url: str, seconds: float, connections: int, token: str, paths: list[str]) -> None:
    """Run the load and print the counts."""
    counts: collections.Counter[str] = collections.Counter()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": "Bearer " + token}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=30
    ) as client:
        until = time.monotonic() + seconds
        await asyncio.gather(*(worker(client, paths, i, until, counts) for i in range(connections)))
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], float(args[1]), int(args[2]), args[3], args[4:]))
