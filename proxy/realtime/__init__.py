"""Supabase Realtime at /realtime/v1/websocket: the Phoenix channel protocol the official clients
speak (protocol), postgres_changes bindings and their filters (bindings), the published tables
(catalog), the change feed from LISTEN nimbus_realtime (source), the process's channels and who
may see what (hub), and the socket handler (socket)."""
