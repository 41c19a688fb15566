"""The HTTP transport of vendor clients in the local runner.

Requests to a simulated vendor are answered in process by the simulator (its ``transport()``), every
other URL goes out through httpx's own transport. Each request passes its sandbox's checkpoint (a
vendor call is a side effect a crash can strike before) and the fault plan's hangs and odd answers.
A hang is spent on the runner's clock: on a virtual clock, a vendor silent for ten minutes costs no
real time, and the client's read timeout (bounded by the invocation's remaining time) ends it the way
a socket timeout would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import unquote

import httpx

from report_exporter.clock import Clock
from report_exporter.local.faults import FaultPlan
from report_exporter.local.sandbox import CURRENT


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"


class VendorTransport(httpx.BaseTransport):
    def __init__(self, clock: Clock, faults: FaultPlan) -> None:
        self._clock = clock
        self._faults = faults
        self._routes: dict[str, httpx.BaseTransport] = {}
        self._default = httpx.HTTPTransport()
        self._lock = threading.Lock()

    def route(self, base_url: str, transport: httpx.BaseTransport) -> None:
        """Answer requests to ``base_url``'s origin with ``transport`` (a simulator, in process)."""
        with self._lock:
            self._routes[_origin(httpx.URL(base_url))] = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        query = unquote(request.url.query.decode("ascii", errors="replace"))
        sandbox = CURRENT.get()
        if sandbox is not None:
            sandbox.checkpoint(f"vendor:{method} {path}")
        hang = self._faults.hang(method, path, query)
        if hang is not None:
            read = (request.extensions.get("timeout") or {}).get("read")
            self._clock.sleep(hang.seconds if read is None else min(hang.seconds, read))
            if read is not None and hang.seconds > read:
                raise httpx.ReadTimeout("the vendor did not answer in time", request=request)
        answer = self._faults.answer(method, path, query)
        if answer is not None:
            return httpx.Response(answer.status, headers=[("content-type", answer.content_type), *answer.headers],
                                  content=answer.body, request=request)
        with self._lock:
            transport = self._routes.get(_origin(request.url), self._default)
        response = transport.handle_request(request)
        reset = self._faults.reset(method, path, query)
        if reset is None:
            return response
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_CutStream(response.stream, reset.after), request=request,
                              extensions=response.extensions)

    def close(self) -> None:
        self._default.close()


class _CutStream(httpx.SyncByteStream):
    """A body that breaks off after ``after`` bytes, as a connection reset by the peer does."""

    def __init__(self, inner: httpx.SyncByteStream | httpx.AsyncByteStream, after: int) -> None:
        assert isinstance(inner, httpx.SyncByteStream)
        self._inner = inner
        self._after = after

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self._inner:
            if sent + len(chunk) >= self._after:
                yield chunk[: self._after - sent]
                raise httpx.ReadError("[Errno 104] Connection reset by peer")
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self._inner.close()
