"""10,000 property-generated malformed and mutated tokens: every one a 401 JSON, never a 5xx, and
not one request reaches PostgREST (counted at the relay in front of it)."""

from __future__ import annotations

import base64
import json
import string
import time
import uuid
import warnings

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.gate.tokens import mint

PATHS = ("/rest/v1/products?select=id&limit=1", "/api/v1/products", "/rest/v1/rpc/dashboard")
TOKENS_TRIED = 10_000
SAFE = string.ascii_letters + string.digits + "-_.=+/~!$%&'()*,;:@[]{}<>?|^`\"#\\"
FORBIDDEN_ROLES = (
    "service_role",
    "postgres",
    "supabase_admin",
    "authenticator",
    "",
    "ANON",
    "admin",
)


def b64(data: bytes) -> str:
    """base64url without padding, as in a JWS."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signature_bytes(segment: str) -> bytes | None:
    """The bytes a signature segment decodes to (None when it does not decode)."""
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, TypeError):
        return None


def equivalent(token: str, base: str) -> bool:
    """True when a mutation left the token meaning the same (e.g. unused trailing base64 bits)."""
    parts, ref = token.split("."), base.split(".")
    return (
        len(parts) == 3
        and parts[:2] == ref[:2]
        and signature_bytes(parts[2]) is not None
        and signature_bytes(parts[2]) == signature_bytes(ref[2])
    )


def tokens(secret: str) -> st.SearchStrategy[str]:
    """Malformed, mutated, forged and misdirected tokens (none of them acceptable)."""
    now = int(time.time())
    base = mint(secret, sub=str(uuid.uuid4()))
    header, payload, _sig = base.split(".")
    claims = jwt.decode(base, options={"verify_signature": False})
    char = st.sampled_from(SAFE)
    index = st.integers(0, len(base) - 1)

    replaced = st.tuples(index, char).map(lambda p: base[: p[0]] + p[1] + base[p[0] + 1 :])
    inserted = st.tuples(index, st.text(SAFE, min_size=1, max_size=8)).map(
        lambda p: base[: p[0]] + p[1] + base[p[0] :]
    )
    truncated = st.integers(0, len(base) - 1).map(lambda i: base[:i])
    dropped = st.integers(0, len(base) - 1).map(lambda i: base[:i] + base[i + 1 :])
    segments = st.lists(
        st.sampled_from([header, payload, _sig, "", "e30", b64(b"null"), b64(b"[]")]),
        min_size=0,
        max_size=5,
    ).map(".".join)
    garbage = st.text(SAFE + " ", min_size=1, max_size=600)
    oversized = st.integers(4097, 9000).map(lambda n: base + "A" * (n - len(base)))

    def forge(kw: dict) -> str:
        body = {**claims, **kw["claims"]}
        key, alg = kw["key"]
        if alg == "none":
            head = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            return f"{head}.{b64(json.dumps(body).encode())}."
        with warnings.catch_warnings():  # short HMAC keys are the point here
            warnings.simplefilter("ignore")
            return jwt.encode(body, key, algorithm=alg)

    bad_claims = st.one_of(
        st.fixed_dictionaries({"exp": st.integers(0, now - 120)}),
        st.fixed_dictionaries({"nbf": st.integers(now + 600, now + 10**8)}),
        st.fixed_dictionaries(
            {"aud": st.sampled_from(["anon", "service_role", "", "x", ["other"]])}
        ),
        st.fixed_dictionaries({"role": st.sampled_from(FORBIDDEN_ROLES)}),
        st.fixed_dictionaries({"exp": st.sampled_from(["never", None, 1e309, -1, [1]])}),
    )
    keys = st.sampled_from(
        [
            (secret, "HS256"),
            (secret + "x", "HS256"),
            ("wrong-" + "k" * 40, "HS256"),
            (secret, "HS384"),
            (secret, "HS512"),
            ("", "none"),
        ]
    )
    forged_good_key = st.fixed_dictionaries(
        {"claims": bad_claims, "key": st.just((secret, "HS256"))}
    )
    forged_bad_key = st.fixed_dictionaries(
        {
            "claims": st.one_of(st.just({}), bad_claims),
            "key": keys.filter(lambda k: k != (secret, "HS256")),
        }
    )
    forged = st.one_of(forged_good_key, forged_bad_key).map(forge)
    raw_payload = st.sampled_from([b"[]", b"1", b'"s"', b"null", b"{", b'{"sub":1}']).map(
        lambda p: f"{header}.{b64(p)}." + b64(b"x" * 32)
    )
    return st.one_of(
        replaced, inserted, truncated, dropped, segments, garbage, oversized, forged, raw_payload
    ).filter(lambda t: not equivalent(t, base))


def test_ten_thousand_bad_tokens_are_401_and_never_reach_upstream(stack, client) -> None:
    """10,000 generated bad tokens, across three paths: all 401 JSON, zero 5xx, zero upstream."""
    before = stack.relay.requests
    seen = {"n": 0, "statuses": {}}

    @settings(
        max_examples=TOKENS_TRIED,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        tokens(stack.secret), st.sampled_from(PATHS), st.sampled_from(["Authorization", "apikey"])
    )
    def probe(token: str, path: str, where: str) -> None:
        token = token.strip()  # HTTP strips surrounding whitespace from header values anyway
        if where == "Authorization":
            header = {"Authorization": ("Bearer " + token).strip()}
        else:
            header = {"apikey": token} if token else {}
        response = client.get(path, headers=header)
        seen["n"] += 1
        seen["statuses"][response.status_code] = seen["statuses"].get(response.status_code, 0) + 1
        assert response.status_code == 401, (token, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers.get("www-authenticate", "").startswith("Bearer")

    probe()
    assert seen["n"] >= TOKENS_TRIED, seen
    assert stack.relay.requests == before, "a rejected token reached PostgREST"


def test_signing_out_revokes_the_session_beyond_the_token_used(client, jwt_secret, world) -> None:
    """Signing out with one token of a session revoked the session only until *that* token's
    expiry: a later token of the same session (refreshed, valid for another hour) worked again
    as soon as the first had expired (found by a hostile probe). The session now stays revoked
    as long as any access token of it can live (NIMBUS_ACCESS_TOKEN_MAX_TTL_S)."""
    session, uid = str(uuid.uuid4()), world.a.users["staff"]
    # Expired ten seconds ago, still inside the verifier's leeway: the sign-out is accepted.
    used = mint(jwt_secret, sub=uid, ttl=-10, extra={"session_id": session})
    later = mint(jwt_secret, sub=uid, ttl=3600, extra={"session_id": session})
    signed_out = client.post("/api/v1/auth/logout", headers={"Authorization": "Bearer " + used})
    assert signed_out.status_code == 200, signed_out.text
    assert signed_out.json()["data"]["until"] >= time.time() + 3500
    refused = client.get(
        "/rest/v1/products?select=id", headers={"Authorization": "Bearer " + later}
    )
    assert refused.status_code == 401, refused.text
