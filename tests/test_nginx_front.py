"""The nginx front operators deploy (deploy/nginx/nimbus.conf), run in front of a test proxy.

nginx (Debian's nginx-light, `make deploy-tools`) terminates TLS with a certificate made here and
sets X-Forwarded-For; the proxy believes it from nginx's address only (NIMBUS_TRUSTED_PROXIES).
Clients connect from different loopback addresses (127.0.0.5, 127.0.0.6, ...), so whose budget a
request spends shows which client address the proxy rate-limits by: its budget of anonymous
reads, then 429."""

from __future__ import annotations

import datetime
import ipaddress
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from proxy.local.localstack import free_port, stop_process
from tests.support.process import start_proxy

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "deploy" / "nginx" / "nimbus.conf"
PLACEHOLDER = re.compile(r"\$\{(NGINX_[A-Z_]+)\}")
WRAPPER = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
  client_body_temp_path {dir}/tmp/body;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
  include {dir}/nimbus.conf;
}}
"""
READ_LIMIT = 3


def render(template: str, values: dict[str, str]) -> str:
    """What `envsubst` does with the ${NGINX_*} placeholders (every one must have a value)."""
    missing = set(PLACEHOLDER.findall(template)) - set(values)
    assert not missing, f"no value for {missing}"
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost / 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="module")
def front(upstream_env, tmp_path_factory):
    """A proxy that trusts 127.0.0.1 (where nginx connects from) with a small anonymous read
    budget, and nginx with deploy/nginx/nimbus.conf in front of it."""
    assert shutil.which("nginx"), "nginx not installed: run `make deploy-tools`"
    proc, proxy_url = start_proxy(
        tmp_path_factory.mktemp("front-proxy"),
        **upstream_env,
        NIMBUS_TRUSTED_PROXIES="127.0.0.1/32",
        NIMBUS_RATE_LIMIT_READ=f"{READ_LIMIT}/600",
        NIMBUS_MAX_BODY_BYTES="1048576",
    )
    # nginx's workers drop root: their temp directories must be reachable by them.
    work = Path(tempfile.mkdtemp(prefix="nimbus-nginx-"))
    work.chmod(0o755)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / "tmp" / sub).mkdir(parents=True)
        (work / "tmp" / sub).chmod(0o777)
    cert, key = self_signed(work)
    https_port, http_port = free_port(), free_port()
    (work / "nimbus.conf").write_text(
        render(
            CONF.read_text(),
            {
                "NGINX_SERVER_NAME": "localhost",
                "NGINX_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
                "NGINX_HTTP_LISTEN": f"127.0.0.1:{http_port}",
                "NGINX_TLS_CERT": str(cert),
                "NGINX_TLS_KEY": str(key),
                "NGINX_UPSTREAM": proxy_url.removeprefix("http://"),
                "NGINX_LOG_DIR": str(work),
            },
        )
    )
    (work / "nginx.conf").write_text(WRAPPER.format(dir=work))
    command = [
        "nginx",
        "-p",
        str(work),
        "-e",
        str(work / "error.log"),
        "-c",
        str(work / "nginx.conf"),
    ]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    nginx = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tls = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{https_port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(url + "/health", verify=tls, timeout=1)
                break
            except httpx.TransportError:
                if nginx.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((work / "error.log").read_text()) from None
                time.sleep(0.05)
        yield {"url": url, "http_port": http_port, "tls": tls, "proxy": proxy_url, "dir": work}
    finally:
        stop_process(nginx)
        proc.stop()
        shutil.rmtree(work, ignore_errors=True)


def client(front, source: str, *, through_nginx: bool = True) -> httpx.Client:
    """An HTTP client from a given loopback address, to nginx or straight to the proxy."""
    transport = httpx.HTTPTransport(local_address=source, verify=front["tls"])
    base = front["url"] if through_nginx else front["proxy"]
    return httpx.Client(base_url=base, transport=transport, timeout=10)


def read(http: httpx.Client, anon_key: str, **headers: str) -> httpx.Response:
    """An anonymous read (anon key): its rate-limit subject is the client address."""
    return http.get("/rest/v1/", headers={"apikey": anon_key, **headers})


def statuses(http: httpx.Client, anon_key: str, count: int, **headers: str) -> list[int]:
    """The statuses of `count` anonymous reads in a row."""
    return [read(http, anon_key, **headers).status_code for _ in range(count)]


def test_nginx_front_terminates_tls_and_passes_the_client_address(front, anon_key):
    """Each client address has its own budget behind nginx (not nginx's address, shared by
    all); an X-Forwarded-For a client forges is replaced by nginx and spends nothing of the
    address it names; straight to the proxy (not from nginx) it is ignored too."""
    budget = [200] * READ_LIMIT
    with client(front, "127.0.0.5") as a, client(front, "127.0.0.6") as b:
        first = read(a, anon_key)
        assert first.status_code == 200, first.text
        assert first.headers["RateLimit"].startswith('"read";r=')
        assert statuses(a, anon_key, READ_LIMIT - 1) == budget[1:]
        limited = read(a, anon_key)
        assert limited.status_code == 429, limited.text
        assert limited.headers["Retry-After"]
        # Another client behind the same nginx: its own, whole budget.
        assert statuses(b, anon_key, 1) == [200]

    # Forging X-Forwarded-For through nginx: the budget spent is the sender's own. Naming the
    # limited client does not limit the forger; naming fresh addresses does not refill it.
    with client(front, "127.0.0.7") as c:
        assert statuses(c, anon_key, 1, **{"X-Forwarded-For": "127.0.0.5"}) == [200]
        forged = [
            read(c, anon_key, **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code
            for i in range(READ_LIMIT)
        ]
        assert forged == [*budget[1:], 429]

    # Straight to the proxy from an address that is not nginx's: X-Forwarded-For is ignored,
    # the sender's own budget is spent, not 127.0.0.9's...
    with client(front, "127.0.0.8", through_nginx=False) as d:
        direct = statuses(d, anon_key, READ_LIMIT + 1, **{"X-Forwarded-For": "127.0.0.9"})
        assert direct == [*budget, 429]
    with client(front, "127.0.0.9") as e:  # ...which is still whole
        assert statuses(e, anon_key, READ_LIMIT + 1) == [*budget, 429]

    log = (front["dir"] / "nimbus.access.log").read_text()
    for address in ("127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.9"):
        assert f'"remote_addr":"{address}"' in log
    assert '"remote_addr":"198.51.100.' not in log


def test_nginx_front_request_ids_and_redirect(front, anon_key):
    """nginx's request id is the proxy's (a trusted hop); a client's own is replaced. Plain
    HTTP is redirected to HTTPS; /metrics is not served to the public side."""
    with client(front, "127.0.0.10") as http:
        resp = read(http, anon_key, **{"X-Request-Id": "forged-by-the-client"})
        assert resp.status_code == 200
        assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-Id"])  # nginx's $request_id
        assert http.get("/metrics").status_code == 403
        assert http.get("/health").json() == {"status": "ok"}
        assert resp.headers["Strict-Transport-Security"]
    plain = httpx.get(f"http://127.0.0.1:{front['http_port']}/health", follow_redirects=False)
    assert plain.status_code == 301
    assert plain.headers["Location"].startswith("https://")


def test_nginx_front_limits_match_the_proxy(front, anon_key):
    """Bodies up to NIMBUS_MAX_BODY_BYTES (1 MiB) pass; larger ones are refused by nginx before
    they reach the proxy; header lines over NIMBUS_MAX_HEADER_BYTES too."""
    headers = {"apikey": anon_key, "Content-Type": "application/json"}
    with client(front, "127.0.0.11") as http:
        fits = http.post("/rest/v1/test_groups", content=b" " * 1_000_000, headers=headers)
        assert fits.status_code != 413
        assert fits.headers.get("X-Request-Id")  # answered by the proxy
        too_big = http.post("/rest/v1/test_groups", content=b" " * 1_100_000, headers=headers)
        assert too_big.status_code == 413
        assert "nginx" in too_big.text
        long_header = http.get("/health", headers={"X-Padding": "x" * 17_000})
        assert long_header.status_code in (400, 431)
