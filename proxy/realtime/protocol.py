"""Phoenix channel messages as realtime-js (vsn 2.0.0: JSON arrays, binary broadcast pushes) and
supabase-py (vsn 1.0.0: JSON objects) send and read them. Payloads are encoded once by the caller
and spliced in as bytes, so a change sent to a thousand sockets is serialised once."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import orjson

VSN1 = "1.0.0"
VSN2 = "2.0.0"
VERSIONS = (VSN1, VSN2)
USER_BROADCAST_PUSH = 3  # realtime-js's binary kind for a client's broadcast
JSON_ENCODING = 1


class BadMessage(ValueError):
    """A frame that is not a Phoenix message of the socket's version."""


@dataclass(frozen=True, slots=True)
class Message:
    """One client message."""

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: dict[str, Any]


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise BadMessage("refs are strings")


def decode(data: str | bytes, vsn: str) -> Message:
    """The message in a text frame (or a vsn 2 binary broadcast push); BadMessage otherwise."""
    if isinstance(data, bytes) and vsn == VSN2:
        return _binary_broadcast(data)
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadMessage("not JSON") from exc
    if vsn == VSN2:
        if not isinstance(raw, list) or len(raw) != 5:
            raise BadMessage("a vsn 2.0.0 message is [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = raw
    else:
        if not isinstance(raw, dict):
            raise BadMessage("a vsn 1.0.0 message is an object")
        join_ref, ref = raw.get("join_ref"), raw.get("ref")
        topic, event, payload = raw.get("topic"), raw.get("event"), raw.get("payload")
    if not isinstance(topic, str) or not isinstance(event, str) or not isinstance(payload, dict):
        raise BadMessage("topic and event are strings, payload an object")
    return Message(_text(join_ref), _text(ref), topic, event, payload)


def _binary_broadcast(data: bytes) -> Message:
    """realtime-js's binary broadcast push: kind, five lengths, encoding, then the fields."""
    try:
        kind, jl, rl, tl, el, ml, encoding = struct.unpack_from("!7B", data)
        if kind != USER_BROADCAST_PUSH:
            raise BadMessage("unknown binary message kind")
        at = 7
        fields = []
        for size in (jl, rl, tl, el, ml):
            fields.append(data[at : at + size].decode())
            at += size
        body = data[at:]
        join_ref, ref, topic, user_event, meta = fields
        payload = orjson.loads(body) if encoding == JSON_ENCODING else None
    except (struct.error, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise BadMessage("malformed binary broadcast") from exc
    if payload is None:
        raise BadMessage("binary broadcast payloads are not supported; send JSON")
    message = {"type": "broadcast", "event": user_event, "payload": payload}
    if meta:
        message["meta"] = orjson.loads(meta)
    return Message(join_ref or None, ref or None, topic, "broadcast", message)


def encode(
    vsn: str, join_ref: str | None, ref: str | None, topic: str, event: str, payload: bytes
) -> str:
    """A server message with an already encoded JSON payload, as the socket's version frames it."""
    head = orjson.dumps([join_ref, ref, topic, event])
    if vsn == VSN2:
        return (head[:-1] + b"," + payload + b"]").decode()
    return (
        b'{"join_ref":%s,"ref":%s,"topic":%s,"event":%s,"payload":%s}'
        % (
            orjson.dumps(join_ref),
            orjson.dumps(ref),
            orjson.dumps(topic),
            orjson.dumps(event),
            payload,
        )
    ).decode()


def reply(vsn: str, message: Message, status: str, response: dict[str, Any]) -> str:
    """phx_reply to message (same topic, join_ref and ref)."""
    body = orjson.dumps({"status": status, "response": response})
    return encode(vsn, message.join_ref, message.ref, message.topic, "phx_reply", body)
