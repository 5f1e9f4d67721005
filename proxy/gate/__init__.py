"""The gate every request passes before anything goes upstream: identity (JWT, JWKS), the
revocation denylist, the client address, rate limits (GCRA and its leases), bounded embedding,
and the tokens the proxy mints for itself."""
