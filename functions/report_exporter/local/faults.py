"""Faults the local runner can inject, all from one place: a :class:`FaultPlan` given to the environment.

* :class:`Crash`: the Lambda process dies just before one of its side effects (a vendor call, an S3
  or DynamoDB write, an SNS publish), the way a kill or an out-of-memory ends it: no ``finally``,
  no clean-up call reaches anything. Step Functions sees ``Lambda.Unknown``.
* :class:`Hang`: the vendor does not answer a request for a while; the client gives up at its read
  timeout (``httpx.ReadTimeout``), or the function times out first if the timeout is longer.
* :class:`Answer`: the vendor answers a request with something else (an HTML or empty 200, a 503).
* :class:`Reset`: the connection drops after the first bytes of an answer's body (a download cut half-way).
* :class:`Stop`: StopExecution right after a given invocation of a state (a mistaken backfill stopped).
* :class:`TimeOut`: the state machine's own timeout strikes this long after the execution started.

Counting is per execution (by name, or any) and per invocation of a state, so a plan reads like the
story it tells: "the second WriteParquet of run X dies before it completes the upload".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Crash:
    state: str
    """State whose Lambda dies, e.g. ``"WriteParquet"``."""
    effect: str = ""
    """Substring of the side effect's name (``"s3:CompleteMultipartUpload"``, ``"dynamodb:UpdateItem"``,
    ``"vendor:POST"``, ``"sns:Publish"``); empty: any side effect."""
    nth: int = 1
    """The nth matching side effect of the invocation."""
    invocation: int = 1
    """The nth invocation of ``state`` in the execution (retries count)."""
    execution: str | None = None
    """Execution name; None: every execution."""


@dataclass(frozen=True)
class Hang:
    path: str
    """Substring of the request path (``"usage_reports/"``)."""
    seconds: float
    method: str | None = None
    nth: int = 1
    """The nth matching request (in the whole run) starts hanging..."""
    times: int = 1
    """...and this many matching requests in a row hang."""
    query: str = ""
    """Substring of the request's decoded query string (``"page[number]=3"``); empty: any."""


@dataclass(frozen=True)
class Answer:
    path: str
    status: int
    body: bytes = b""
    content_type: str = "text/html"
    headers: tuple[tuple[str, str], ...] = ()
    method: str | None = None
    nth: int = 1
    times: int = 1
    query: str = ""
    """Substring of the request's decoded query string (``"page[number]=3"``); empty: any."""


@dataclass(frozen=True)
class Reset:
    path: str
    after: int
    """Bytes of the body that arrive before the connection is reset (``httpx.ReadError`` in the client)."""
    method: str | None = None
    nth: int = 1
    times: int = 1
    query: str = ""


@dataclass(frozen=True)
class Stop:
    state: str
    invocation: int = 1
    execution: str | None = None


@dataclass(frozen=True)
class TimeOut:
    after: timedelta
    execution: str | None = None


Fault = Crash | Hang | Answer | Reset | Stop | TimeOut


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    """What struck, in order (for assertions and for the run's story)."""
    _requests: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *faults: Fault) -> FaultPlan:
        self.faults.extend(faults)
        return self

    def _of(self, kind: type) -> list[tuple[int, object]]:
        return [(i, f) for i, f in enumerate(self.faults) if isinstance(f, kind)]

    def crash(self, *, execution: str, state: str, invocation: int, effect: str, seen: dict[int, int]) -> Crash | None:
        """The crash striking before ``effect`` (``seen`` counts matches per fault within the invocation)."""
        for index, fault in self._of(Crash):
            assert isinstance(fault, Crash)
            if fault.state != state or fault.invocation != invocation:
                continue
            if fault.execution not in (None, execution) or fault.effect not in effect:
                continue
            seen[index] = seen.get(index, 0) + 1
            if seen[index] == fault.nth:
                with self._lock:
                    self.fired.append(f"crash {execution} {state}#{invocation} before {effect}")
                return fault
        return None

    def _request_fault(self, kind: type, method: str, path: str, query: str) -> object | None:
        for index, fault in self._of(kind):
            if fault.path not in path or fault.method not in (None, method):  # type: ignore[attr-defined]
                continue
            if fault.query not in query:  # type: ignore[attr-defined]
                continue
            with self._lock:
                count = self._requests[index] = self._requests.get(index, 0) + 1
                first = fault.nth  # type: ignore[attr-defined]
                if first <= count < first + fault.times:  # type: ignore[attr-defined]
                    self.fired.append(f"{kind.__name__.lower()} {method} {path} (#{count})")
                    return fault
        return None

    def hang(self, method: str, path: str, query: str = "") -> Hang | None:
        fault = self._request_fault(Hang, method, path, query)
        return fault if isinstance(fault, Hang) else None

    def answer(self, method: str, path: str, query: str = "") -> Answer | None:
        fault = self._request_fault(Answer, method, path, query)
        return fault if isinstance(fault, Answer) else None

    def reset(self, method: str, path: str, query: str = "") -> Reset | None:
        fault = self._request_fault(Reset, method, path, query)
        return fault if isinstance(fault, Reset) else None

    def stop_after(self, *, execution: str, state: str, invocation: int) -> bool:
        for _, fault in self._of(Stop):
            assert isinstance(fault, Stop)
            if fault.state == state and fault.invocation == invocation and fault.execution in (None, execution):
                with self._lock:
                    self.fired.append(f"stop {execution} after {state}#{invocation}")
                return True
        return False

    def time_out(self, execution: str) -> timedelta | None:
        for _, fault in self._of(TimeOut):
            assert isinstance(fault, TimeOut)
            if fault.execution in (None, execution):
                return fault.after
        return None
