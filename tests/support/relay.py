"""A TCP relay between the proxy and PostgREST that counts the HTTP requests crossing it.

It is not a double: bytes go to the real PostgREST unchanged. Tests read `requests` to prove that
a rejected call never reached upstream. Given `drop_answer_to` (the start of a request line), it
also loses PostgREST's answer to such a request — the request reaches PostgREST and runs, then
the connection to the proxy is closed unanswered: a write whose outcome the proxy never learns."""

from __future__ import annotations

import asyncio
import re
import threading

REQUEST_LINE = re.compile(rb"(?:GET|HEAD|POST|PATCH|PUT|DELETE|OPTIONS) \S+ HTTP/1\.[01]\r\n")


class CountingRelay:
    """Listens on 127.0.0.1:<port> and relays to target; runs its own loop in a thread."""

    def __init__(
        self, target_host: str, target_port: int, *, drop_answer_to: bytes | None = None
    ) -> None:
        self.target = (target_host, target_port)
        self.drop_answer_to = drop_answer_to
        self.dropped = 0  # answers lost on purpose
        self.requests = 0
        self.port = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CountingRelay:
        """Start listening; returns once the port is bound."""
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("relay did not start")
        return self

    def stop(self) -> None:
        """Stop the loop and join the thread."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        doomed = asyncio.Event()  # the answer now coming back is to be lost
        await asyncio.gather(
            self._pipe(reader, up_writer, count=True, doomed=doomed),
            self._pipe(up_reader, writer, count=False, doomed=doomed),
            return_exceptions=True,
        )

    async def _pipe(self, reader, writer, *, count: bool, doomed: asyncio.Event) -> None:
        tail = b""
        try:
            while data := await reader.read(65536):
                if count:
                    window = tail + data
                    found = len(REQUEST_LINE.findall(window)) - len(REQUEST_LINE.findall(tail))
                    with self._lock:
                        self.requests += found
                    tail = window[-256:]
                    if self.drop_answer_to is not None and self.drop_answer_to in window:
                        doomed.set()  # before PostgREST can have answered
                elif doomed.is_set():
                    self.dropped += 1
                    return  # closes the proxy's side unanswered (the request has run)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
