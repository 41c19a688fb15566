"""A small HTTP server framework for vendor simulators, on loopback, in a background thread.

A simulator implements :meth:`Simulator.handle` over plain :class:`SimRequest` / :class:`SimResponse`
values. It can be served on a real socket (``with sim: sim.base_url``), which is what the local runner
and the end-to-end tests use, or plugged into httpx directly (``sim.transport()``) for fast tests.

Simulators that let things expire (tokens) read :attr:`Simulator.clock`, which the local runner sets to
its own clock so that virtual time expires them as it does the exporter's view of them.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx

from report_exporter.clock import SYSTEM, Clock


@dataclass(frozen=True)
class SimRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class SimResponse:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> SimResponse:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, body: str | bytes | Iterable[bytes], content_type: str, status: int = 200) -> SimResponse:
        data = body.encode() if isinstance(body, str) else body
        return cls(status, data, {"Content-Type": content_type})


@dataclass(frozen=True)
class Seen:
    """One request as the simulator saw it, for assertions (no header values are kept)."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    at: datetime | None = None
    """When it arrived, on the simulator's clock (the run's clock when the local runner drives it)."""


class Simulator:
    """Base class: subclasses implement :meth:`handle` and say which credentials they accept."""

    vendor = "vendor"

    def __init__(self) -> None:
        self.clock: Clock = SYSTEM
        """The simulator's time; the local runner sets its own (virtual) clock here."""
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = "http://simulator.invalid"

    # What the runner stores in the export's secret so that the simulator accepts the calls.
    def credentials(self) -> dict[str, str]:
        raise NotImplementedError

    def handle(self, request: SimRequest) -> SimResponse:
        raise NotImplementedError

    def export_overrides(self) -> dict[str, Any]:
        """Export fields to change besides ``base_url`` so the export talks to this simulator
        (for example a token URL on another host in reality)."""
        return {}

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _dispatch(self, request: SimRequest) -> SimResponse:
        with self._lock:
            self.seen.append(Seen(request.method, request.path, request.query, self.clock.now()))
        return self.handle(request)

    def calls(self, method: str | None = None, path_contains: str = "") -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method) and path_contains in s.path]

    # Serving on a socket.
    def start(self) -> str:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests capture output
                return None

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = SimRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                try:
                    response = simulator._dispatch(request)
                except Exception as exc:  # a simulator bug shows up as a 500, like a real server
                    response = SimResponse.json({"error": "simulator", "message": type(exc).__name__}, 500)
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if isinstance(response.body, bytes):
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(response.body)
                elif any(name.lower() == "content-length" for name in response.headers):
                    # A streamed body of known size (a file served with its length, or a range of it).
                    self.end_headers()
                    if self.command != "HEAD":
                        for chunk in response.body:
                            self.wfile.write(chunk)
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in response.body:
                        if chunk:
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sim-{self.vendor}", daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()

    # Plugging into httpx without a socket.
    def transport(self) -> httpx.MockTransport:
        """An in-process transport. A streamed body stays a stream: it is produced as the client reads it."""

        def handler(request: httpx.Request) -> httpx.Response:
            sim_request = SimRequest(
                method=request.method,
                path=request.url.path,
                query=parse_qs(request.url.query.decode(), keep_blank_values=True),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=request.read(),
            )
            response = self._dispatch(sim_request)
            body = response.body if isinstance(response.body, bytes) else iter(response.body)
            return httpx.Response(response.status, headers=response.headers, content=body)

        return httpx.MockTransport(handler)


def bearer(request: SimRequest) -> str | None:
    value = request.headers.get("authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else None


def chunks(rows: Iterator[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    """Group small byte strings into chunks of about ``size`` bytes for streaming responses."""
    buffer = bytearray()
    for row in rows:
        buffer += row
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def times_served(ranges: Sequence[tuple[int, int]], size: int) -> Counter[int]:
    """How often each byte of a ``size``-byte file was served by ``ranges`` ((start, end), end exclusive), as
    ``{times: bytes}``: ``{1: size}`` is every byte once."""
    edges = sorted({0, size, *(min(max(b, 0), size) for r in ranges for b in r)})
    histogram: Counter[int] = Counter()
    for lo, hi in itertools.pairwise(edges):
        histogram[sum(1 for start, end in ranges if start <= lo and hi <= end)] += hi - lo
    return histogram


def range_start(value: str) -> int | None:
    """The first byte of ``Range: bytes=N-`` (the only form the exporter sends); None otherwise."""
    value = value.strip()
    if not value.startswith("bytes=") or "," in value:
        return None
    first, _, _last = value[len("bytes="):].partition("-")
    return int(first) if first.isdigit() else None
