"""CSV import jobs (issue 16, point 5): a file over the synchronous cap (NIMBUS_BULK_MAX, 40 here)
is a job whose progress any proxy process reports (`GET /imports/{id}`), checked then written a
chunk at a time, idempotent for a retried upload (same job, rows written once), resumed after
its worker stopped, refusing bad rows (formulas included) before writing anything."""

from __future__ import annotations

import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from click.testing import CliRunner

from proxy.api.importstatus import ImportJob
from proxy.gate.tokens import mint
from proxy.local.cli import main
from tests.support.domain import World, acting, build_world
from tests.support.process import start_proxies

CHUNK = 40
CSV = {"Content-Type": "text/csv"}


@pytest.fixture(scope="module")
def own(database_url: str) -> World:
    """Organizations of this module's own."""
    return build_world(database_url)


@pytest.fixture(scope="module")
def proxies(upstream_env, tmp_path_factory):
    """Two proxy processes (no shared Redis): jobs must live in PostgreSQL to be seen by both."""
    procs = start_proxies(
        tmp_path_factory,
        "imports",
        2,
        **upstream_env,
        NIMBUS_BULK_MAX=str(CHUNK),
        NIMBUS_IMPORT_MAX_BYTES="100000",
    )
    yield [p.url for p in procs]
    for proc in procs:
        proc.stop()


@pytest.fixture
def clients(proxies, jwt_secret, own):
    """An /api/v1 client per proxy, as the manager of own.a."""
    token = mint(jwt_secret, sub=own.a.users["manager"])
    made = [
        httpx.Client(
            base_url=url + "/api/v1", headers={"Authorization": "Bearer " + token}, timeout=30
        )
        for url in proxies
    ]
    yield made
    for client in made:
        client.close()


def a_file(tag: str, rows: int, bad: dict[int, str] | None = None) -> bytes:
    """A product CSV of rows rows with skus tag-0.., row i replaced by bad[i]."""
    lines = ["sku,name,price"]
    for i in range(rows):
        lines.append((bad or {}).get(i, f"{tag}-{i},Item {i},1.50"))
    return ("\n".join(lines) + "\n").encode()


def finished(client: httpx.Client, job_id: str, seen: list | None = None) -> dict:
    """Poll GET /imports/{id} until the job is done or failed (30 s deadline)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = client.get(f"/imports/{job_id}")
        assert r.status_code == 200, r.text
        assert r.headers["Cache-Control"] == "no-store"
        job = r.json()["data"]
        if seen is not None:
            seen.append((job["validated"], job["written"]))
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"import job {job_id} did not finish: {job}")


def stored(database_url: str, org: str, tag: str) -> int:
    """How many products of org have an sku starting with tag."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(
            "select count(*) from public.products where organization_id = %s and sku like %s",
            (org, tag + "-%"),
        ).fetchone()[0]


def test_large_import_is_a_job_seen_from_every_process(own, clients, proxies, database_url):
    """130 rows (4 chunks) uploaded to one process at once from two clients: one job (the
    second upload is its replay), progress read from the other process only grows, every row
    written exactly once; uploading the file again later returns the finished job."""
    tag = "J" + uuid.uuid4().hex[:8]
    body = a_file(tag, 130)
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda c: c.post(
                    "/import/products", params={"mode": "commit"}, content=body, headers=CSV
                ),
                clients,
            )
        )
    assert [r.status_code for r in answers] == [202, 202], [r.text for r in answers]
    ids = {r.json()["data"]["id"] for r in answers}
    assert len(ids) == 1
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in answers) == ["", "true"]
    [job_id] = ids
    assert answers[0].headers["Location"] == f"/api/v1/imports/{job_id}"
    seen: list = []
    job = finished(clients[1], job_id, seen)
    assert seen == sorted(seen)
    assert (job["status"], job["total"], job["validated"], job["written"]) == (
        "done",
        130,
        130,
        130,
    )
    assert (job["created"], job["updated"], job["error_count"]) == (130, 0, 0)
    # What a client sees of a job is the documented ImportJob, nothing of the row's internals
    # (the file's digest, the lease's expiry and its kind were shown: a hostile probe).
    documented = set(ImportJob.model_fields)
    assert set(job) <= documented and set(answers[0].json()["data"]) <= documented
    # ... and the same through /rest/v1, where the function itself answers (a reviewer found
    # the internals there still).
    rpc = clients[0].get(f"{proxies[0]}/rest/v1/rpc/import_job", params={"id": job_id})
    assert rpc.status_code == 200, rpc.text
    assert set(rpc.json()) <= documented, sorted(set(rpc.json()) - documented)
    assert stored(database_url, own.a.id, tag) == 130
    again = clients[1].post(
        "/import/products", params={"mode": "commit"}, content=body, headers=CSV
    )
    assert again.status_code == 202 and again.json()["data"]["id"] == job_id
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["data"]["created"] == 130


def test_bad_rows_fail_the_job_before_anything_is_written(own, clients, database_url) -> None:
    """A bad price in chunk 2 and a formula in chunk 3: the job fails after validating all
    100 rows, naming both (file index and line), and writes none."""
    tag = "B" + uuid.uuid4().hex[:8]
    body = a_file(tag, 100, {50: f"{tag}-50,Bad,abc", 95: f"{tag}-95,=HYPERLINK(1),1"})
    r = clients[0].post("/import/products", params={"mode": "commit"}, content=body, headers=CSV)
    assert r.status_code == 202, r.text
    job = finished(clients[0], r.json()["data"]["id"])
    assert (job["status"], job["validated"], job["written"]) == ("failed", 100, 0)
    got = {(e["index"], e["line"]): {x["field"] for x in e["errors"]} for e in job["errors"]}
    assert got == {(50, 52): {"price"}, (95, 97): {"name"}}
    assert "formula" in {x.get("type") for x in job["errors"][1]["errors"]}
    assert job["error_count"] == 2 and "none written" in job["message"]
    assert stored(database_url, own.a.id, tag) == 0


def test_respond_async_dry_run_and_other_tenants(own, clients, api) -> None:
    """`Prefer: respond-async` makes even a small file a job; a dry run writes nothing; another
    organization's manager cannot see the job (404), an unknown id is 404 JSON."""
    tag = "D" + uuid.uuid4().hex[:8]
    r = clients[0].post(
        "/import/products", content=a_file(tag, 3), headers={**CSV, "Prefer": "respond-async"}
    )
    assert r.status_code == 202, r.text
    job = finished(clients[1], r.json()["data"]["id"])
    assert (job["mode"], job["status"], job["validated"], job["written"]) == (
        "dry-run",
        "done",
        3,
        0,
    )
    assert (job["created"], job["updated"]) == (3, 0)  # what a commit would do
    other = api.as_("manager", "b").get(f"/imports/{job['id']}")
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert clients[0].get(f"/imports/{uuid.uuid4()}").status_code == 404


def test_stalled_job_resumes_after_its_written_chunks(own, clients, database_url) -> None:
    """A job whose worker wrote chunk 0 and stopped (lease run out): uploading the same file
    takes it over, skips chunk 0 and writes the rest; every row is written once."""
    tag = "S" + uuid.uuid4().hex[:8]
    body = a_file(tag, 90)
    key = hashlib.sha256(b"commit\n" + body).hexdigest()
    first = [{"sku": f"{tag}-{i}", "name": f"Item {i}", "price": "1.50"} for i in range(CHUNK)]
    with psycopg.connect(database_url) as conn:
        with acting(conn, own.a.users["manager"]):
            job = conn.execute(
                "select public.start_import(%s, %s, 'commit', 90, %s, %s)",
                (key, hashlib.sha256(body).hexdigest(), CHUNK, own.a.id),
            ).fetchone()[0]
            conn.execute(
                "select public.advance_import(%s, %s, 90, '[]', 'writing')",
                (job["id"], job["lease"]),
            )
            conn.execute(
                "select public.write_import_chunk(%s, %s, 0, %s)",
                (job["id"], job["lease"], psycopg.types.json.Jsonb(first)),
            )
        conn.execute(
            "update private.import_jobs set lease_until = now() - interval '1 second'"
            " where id = %s",
            (job["id"],),
        )
        conn.commit()
    stalled = clients[1].get(f"/imports/{job['id']}").json()["data"]
    assert (stalled["stalled"], stalled["written"]) == (True, CHUNK)
    r = clients[1].post("/import/products", params={"mode": "commit"}, content=body, headers=CSV)
    assert r.status_code == 202 and r.json()["data"]["id"] == job["id"], r.text
    done = finished(clients[0], job["id"])
    assert (done["status"], done["written"], done["created"], done["updated"]) == (
        "done",
        90,
        90,
        0,
    )
    assert stored(database_url, own.a.id, tag) == 90


def test_upload_over_the_import_cap_is_413(clients) -> None:
    """A file over NIMBUS_IMPORT_MAX_BYTES is 413 JSON (the cap is the import's, not the
    general body limit); a key too long is 422."""
    big = b"sku,name\n" + b"x,y\n" * 30_000
    r = clients[0].post("/import/products", content=big, headers=CSV)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = clients[0].post(
        "/import/products",
        content=a_file("K", 50),
        headers={**CSV, "Idempotency-Key": "k" * 201},
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "Idempotency-Key"


def test_cli_export_then_import_is_a_round_trip(own, proxies, jwt_secret, tmp_path) -> None:
    """`nimbus export products -o F` then `nimbus import F --commit`: the organization's whole
    catalogue (over the cap: a job, followed to its end) comes back as updates only."""
    token = mint(jwt_secret, sub=own.a.users["manager"])
    where = ["--url", proxies[0], "--token", token]
    out = tmp_path / "products.csv"
    runner = CliRunner()
    done = runner.invoke(main, ["export", "products", "-o", str(out), *where])
    assert done.exit_code == 0, done.output
    lines = out.read_text().splitlines()
    assert "on_hand:WH1" in lines[0].split(",") and len(lines) > CHUNK + 1
    assert f"{len(lines) - 1} rows of products" in done.stderr
    again = runner.invoke(main, ["import", str(out), "--commit", *where])
    assert again.exit_code == 0, again.output
    total = len(lines) - 1
    assert f"commit done: {total} rows, 0 created, {total} updated, 0 invalid" in again.stdout


def test_cli_import_names_bad_rows_and_fails(own, proxies, jwt_secret, tmp_path) -> None:
    """A dry run of a file with a bad price prints the row's line and field, exits 1."""
    token = mint(jwt_secret, sub=own.a.users["manager"])
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,name,price\nC-1,Fine,1\nC-2,Bad,abc\n")
    result = CliRunner().invoke(main, ["import", str(bad), "--url", proxies[1], "--token", token])
    assert result.exit_code == 1, result.output
    assert "line 3: price" in result.stderr
    assert "dry-run done: 2 rows, 1 created, 0 updated, 1 invalid" in result.stdout
