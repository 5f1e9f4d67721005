"""`/rest/v1/*`: PostgREST's semantics byte for byte (routes), and its root document as the proxy
serves it (rootdoc)."""
