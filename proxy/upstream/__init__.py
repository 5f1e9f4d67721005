"""The way to PostgREST: the pooled keep-alive HTTP/1.1 client with each tenant's fair share, and
the upstream exchange (header hygiene, timeouts, metrics)."""
