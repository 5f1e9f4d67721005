"""A JWKS document served over HTTP on 127.0.0.1: the stand-in for Supabase Auth's
`/auth/v1/.well-known/jwks.json`, which cannot run on this machine. Keys are generated per run."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class KeySet:
    """An EC P-256 and an RSA key with kids, their public JWKS, and a fetch counter."""

    def __init__(self) -> None:
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.fetches = 0

    def document(self, hs256_secret: str | None = None) -> dict:
        """The public JWKS; with hs256_secret, also the shared secret as an `oct` key (the form
        PostgREST takes to verify both kinds of token)."""
        keys = []
        if hs256_secret:
            keys.append({"kty": "oct", "k": _b64(hs256_secret.encode()), "alg": "HS256"})
        for kid, key, alg in (("ec-1", self.ec_key, "ES256"), ("rsa-1", self.rsa_key, "RS256")):
            algo = jwt.get_algorithm_by_name(alg)
            jwk = json.loads(algo.to_jwk(key.public_key()))
            jwk.update(kid=kid, use="sig", alg=alg)
            keys.append(jwk)
        return {"keys": keys}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def serve_jwks(keys: KeySet) -> tuple[ThreadingHTTPServer, str]:
    """Serve keys.document() at /jwks.json on a free port; returns the server and the URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            keys.fetches += 1
            body = json.dumps(keys.document()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
