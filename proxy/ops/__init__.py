"""What every layer leans on: typed errors, metrics, request logs and ids, health probes, the
Redis connection (circuit breaker, URLs) and the LISTEN connection."""
