"""The response cache: keys, entries (L1 in front of Redis), generations per table and
organization, serving through the cache, and the invalidation bus (pub/sub, LISTEN) that keeps
every process coherent."""
