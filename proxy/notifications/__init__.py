"""Live notifications: one LISTEN nimbus_events connection per process (listener), fanned out in
process to bounded per-subscriber queues (hub), served as Server-Sent Events (stream)."""
