"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the served local service.

Why a TCP-level proxy and not ASGI middleware: a dropped connection must look like one to the
client (no status line at all), including the nasty case where the upstream already applied the
write and only the answer is lost. One request per connection (``Connection: close`` both ways)
keeps the parsing trivial.

Faults are rules ``(method, path substring, nth matching call, kind)``; kinds:
``429`` / ``503`` (answered by the proxy, upstream not called), ``drop_before`` (closed before
forwarding), ``drop_after`` (forwarded, upstream applied it, the answer is thrown away),
``delay:<seconds>`` (answer held back, e.g. beyond the client's timeout), ``garbage`` (forwarded,
upstream applied it, and the answer replaced by a 200 whose body is not JSON: a surprise no API
error class covers).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Rule:
    method: str
    path: str
    nth: int  # 1-based: the nth request matching method+path gets the fault
    kind: str
    seen: int = 0
    fired: bool = False


@dataclass
class FaultProxy:
    upstream: str  # e.g. http://127.0.0.1:1234
    rules: list[Rule] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-proxy")
        up = urlsplit(self.upstream)
        self._up_host, self._up_port = up.hostname or "127.0.0.1", up.port or 80

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, method: str, path: str, nth: int, kind: str) -> None:
        self.rules.append(Rule(method, path, nth, kind))

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _fault(self, method: str, path: str) -> str | None:
        for rule in self.rules:
            if rule.method == method and rule.path in path:
                rule.seen += 1
                if rule.seen == rule.nth:
                    rule.fired = True
                    return rule.kind
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [line for line in lines[1:] if line]
        length = next((int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), 0)
        body = await reader.readexactly(length) if length else b""
        self.requests.append((method, target))
        fault = self._fault(method, target)
        try:
            if fault in ("429", "503"):
                payload = b'{"message": "injected fault"}'
                extra = "Retry-After: 0\r\n" if fault == "429" else ""
                writer.write((f"HTTP/1.1 {fault} Injected\r\nContent-Type: application/json\r\n{extra}"
                              f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode() + payload)
                await writer.drain()
                return
            if fault == "drop_before":
                return
            kept = [h for h in headers if not h.lower().startswith(("connection:", "keep-alive:"))]
            request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1") + body
            up_reader, up_writer = await asyncio.open_connection(self._up_host, self._up_port)
            up_writer.write(request)
            await up_writer.drain()
            response = await up_reader.read()
            up_writer.close()
            if fault == "drop_after":
                return
            if fault == "garbage":
                payload = b"<html>surprise</html>"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(payload)).encode() + b"\r\nConnection: close\r\n\r\n" + payload)
                await writer.drain()
                return
            if fault and fault.startswith("delay:"):
                await asyncio.sleep(float(fault.split(":", 1)[1]))
            resp_head, _, resp_body = response.partition(b"\r\n\r\n")
            resp_lines = [h for h in resp_head.split(b"\r\n") if not h.lower().startswith(b"connection:")]
            writer.write(b"\r\n".join([*resp_lines, b"Connection: close"]) + b"\r\n\r\n" + resp_body)
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
