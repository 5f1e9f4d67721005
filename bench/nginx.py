"""nginx peers for the benchmark (Debian's nginx-light): a plain reverse proxy with upstream
keep-alive, and proxy_cache keyed on the Authorization header too. Neither verifies a token,
limits a rate, or can be told that data changed: they show what a C proxy costs."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

from proxy.local.localstack import free_port

CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  proxy_temp_path {dir}/tmp;
  client_body_temp_path {dir}/body;
  fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  proxy_cache_path {dir}/cache keys_zone=api:10m max_size=100m inactive=10m;
  upstream postgrest {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location /rest/v1/ {{
      proxy_pass http://postgrest/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      {cache}
    }}
  }}
}}
"""
CACHE = """proxy_cache api;
      proxy_cache_key "$http_authorization|$request_uri|$http_accept|$http_prefer|$http_range";
      proxy_cache_valid 200 60s;
      proxy_cache_lock on;"""


class Nginx:
    """One nginx process with its own config and port, stopped by PID."""

    def __init__(self, workdir: Path, upstream_port: int, *, cache: bool) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        # nginx's workers drop root for an unprivileged user, who must reach the cache dirs.
        workdir.parent.chmod(0o755)
        workdir.chmod(0o777)
        for sub in ("tmp", "body", "fcgi", "uwsgi", "scgi", "cache"):
            (workdir / sub).mkdir(exist_ok=True)
            (workdir / sub).chmod(0o777)
        self.port = free_port()
        conf = workdir / "nginx.conf"
        conf.write_text(
            CONF.format(
                dir=workdir, upstream=upstream_port, port=self.port, cache=CACHE if cache else ""
            )
        )
        self.process = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1)  # noqa: S310 (local URL)
                return
            except urllib.error.HTTPError:
                return  # nginx answered (404 outside /rest/v1/)
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        """SIGTERM by PID and wait."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
