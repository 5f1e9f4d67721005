"""The JWT battery: every forged, stale or misdirected token is a 401 that never goes upstream."""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from proxy.local.localstack import start_postgrest
from tests.conftest import ROOT
from tests.support.jwks_server import KeySet, serve_jwks
from tests.support.process import start_proxy
from tests.support.relay import CountingRelay

PATH = "/rest/v1/test_items?select=id&limit=1"


@pytest.fixture(scope="module")
def keys() -> KeySet:
    """Fresh asymmetric signing keys for this module."""
    return KeySet()


@pytest.fixture(scope="module")
def jwks_relay(keys, database_url, jwt_secret, tmp_path_factory):
    """A PostgREST that verifies HS256 and the JWKS keys (as Supabase's does), behind a relay."""
    state = tmp_path_factory.mktemp("postgrest-jwks")
    (state / "node_modules").symlink_to(ROOT / ".local" / "node_modules")
    pgrst = start_postgrest(
        database_url=database_url,
        secret=json.dumps(keys.document(hs256_secret=jwt_secret)),
        state_dir=state,
    )
    counter = CountingRelay("127.0.0.1", int(pgrst.url.rsplit(":", 1)[1])).start()
    yield counter
    counter.stop()
    pgrst.stop()


@pytest.fixture(scope="module")
def jwks_proxy(keys, jwks_relay, database_url, jwt_secret, tmp_path_factory):
    """A proxy that accepts HS256 (shared secret) and ES256/RS256 from a JWKS URL."""
    server, url = serve_jwks(keys)
    proc, base = start_proxy(
        tmp_path_factory.mktemp("jwks-proxy"),
        NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{jwks_relay.port}",
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_JWKS_URL=url,
        NIMBUS_JWKS_COOLDOWN_S="3600",
    )
    yield base
    proc.stop()
    server.shutdown()
    server.server_close()


def b64(data: bytes) -> str:
    """Base64url without padding, as in JWS."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides) -> dict:
    """Claims of a valid user token, with overrides (None removes a claim)."""
    now = int(time.time())
    base = {
        "sub": str(uuid.uuid4()),
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 600,
        "session_id": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def forged_tokens(secret: str, keys: KeySet) -> dict[str, str]:
    """Every kind of token the proxy must refuse."""
    now = int(time.time())
    payload = b64(json.dumps(claims()).encode())
    public_pem = keys.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs = jwt.get_algorithm_by_name("HS256")
    confused_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    confused_sig = b64(hs.sign(f"{confused_header}.{payload}".encode(), public_pem))
    return {
        "alg none": b64(b'{"alg":"none","typ":"JWT"}') + "." + payload + ".",
        "alg None": b64(b'{"alg":"None","typ":"JWT"}') + "." + payload + ".",
        "unsigned HS256": b64(b'{"alg":"HS256","typ":"JWT"}') + "." + payload + ".",
        "HS256 keyed with the JWKS public key": f"{confused_header}.{payload}.{confused_sig}",
        "wrong secret": jwt.encode(claims(), "x" * 40, algorithm="HS256"),
        "unknown kid": jwt.encode(
            claims(), keys.ec_key, algorithm="ES256", headers={"kid": "nope"}
        ),
        "RS256 header on the EC kid": jwt.encode(
            claims(), keys.rsa_key, algorithm="RS256", headers={"kid": "ec-1"}
        ),
        "expired beyond skew": jwt.encode(claims(exp=now - 120), secret, algorithm="HS256"),
        "nbf in the future": jwt.encode(claims(nbf=now + 300), secret, algorithm="HS256"),
        "iat in the future": jwt.encode(claims(iat=now + 300), secret, algorithm="HS256"),
        "no exp": jwt.encode(claims(exp=None), secret, algorithm="HS256"),
        "no role": jwt.encode(claims(role=None), secret, algorithm="HS256"),
        "role postgres": jwt.encode(claims(role="postgres"), secret, algorithm="HS256"),
        "role service_role": jwt.encode(claims(role="service_role"), secret, algorithm="HS256"),
        "role authenticator": jwt.encode(claims(role="authenticator"), secret, algorithm="HS256"),
        "wrong aud": jwt.encode(claims(aud="someone-else"), secret, algorithm="HS256"),
        "user token without sub": jwt.encode(claims(sub=None), secret, algorithm="HS256"),
        "garbage": "not.a.jwt",
        "binary garbage": b64(bytes(range(256))),
        "8 KB token": jwt.encode(claims(pad="a" * 8192), secret, algorithm="HS256"),
    }


def test_forged_tokens_are_401_and_never_upstream(jwks_proxy, jwks_relay, jwt_secret, keys) -> None:
    """Each forged token gets 401 with PostgREST's error shape and WWW-Authenticate; 0 upstream."""
    tokens = forged_tokens(jwt_secret, keys)
    before = jwks_relay.requests
    with httpx.Client(base_url=jwks_proxy) as client:
        for name, token in tokens.items():
            for headers in ({"Authorization": f"Bearer {token}"}, {"apikey": token}):
                resp = client.get(PATH, headers=headers)
                assert resp.status_code == 401, (name, resp.text)
                assert set(resp.json()) == {"code", "message", "details", "hint"}, name
                assert resp.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        missing = client.get(PATH)
        assert missing.status_code == 401
        duplicated = client.get(
            PATH, headers=[("Authorization", "Bearer a"), ("Authorization", "Bearer b")]
        )
        assert duplicated.status_code == 401
    assert jwks_relay.requests == before


def test_valid_tokens_pass(jwks_proxy, jwks_relay, jwt_secret, keys) -> None:
    """HS256, ES256, RS256 and a token expired within the 30 s skew all reach PostgREST."""
    now = int(time.time())
    good = {
        "HS256": jwt.encode(claims(), jwt_secret, algorithm="HS256"),
        "ES256": jwt.encode(claims(), keys.ec_key, algorithm="ES256", headers={"kid": "ec-1"}),
        "RS256": jwt.encode(claims(), keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1"}),
        "expired within skew": jwt.encode(claims(exp=now - 10), jwt_secret, algorithm="HS256"),
        "a number beyond 64 bits in metadata": jwt.encode(
            claims(user_metadata={"n": 2**70}), jwt_secret, algorithm="HS256"
        ),
        "anon key": jwt.encode(
            {"role": "anon", "iat": now, "exp": now + 60}, jwt_secret, algorithm="HS256"
        ),
    }
    before = jwks_relay.requests
    with httpx.Client(base_url=jwks_proxy) as client:
        for name, token in good.items():
            resp = client.get(PATH, headers={"Authorization": f"Bearer {token}"})
            # anon has no grant on test_items: PostgREST itself answers 401, after the proxy.
            expected = 401 if name == "anon key" else 200
            assert resp.status_code == expected, (name, resp.text)
    assert jwks_relay.requests == before + len(good)


def test_unknown_kid_fetches_jwks_at_most_once_per_cooldown(jwks_proxy, keys) -> None:
    """A flood of unknown kids costs at most one JWKS fetch within the cool-down."""
    fetched = keys.fetches
    with httpx.Client(base_url=jwks_proxy) as client:
        for i in range(20):
            token = jwt.encode(
                claims(), keys.ec_key, algorithm="ES256", headers={"kid": f"forged-{i}"}
            )
            assert client.get(PATH, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert keys.fetches - fetched <= 1
