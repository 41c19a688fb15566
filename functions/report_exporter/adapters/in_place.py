"""Retrying one vendor call where it failed, inside the invocation, instead of failing the whole step.

A paginated download that fails on page 40 should ask for page 40 again, not hand the error to Step
Functions (whose retry runs the step again). Transient answers (429, 5xx, a timeout, a dropped
connection, an unreadable 200) are retried here with the vendor's ``Retry-After`` when it gives one, or
1, 2, 4, 8 ... s, as long as the wait and one more call fit in the invocation's remaining time. Past
that, the error goes to Step Functions, and the next attempt resumes from what was kept (see
``RawSink.open_resumable``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from report_exporter import limits
from report_exporter.adapters.http_client import json_body, send, time_left
from report_exporter.clock import Clock
from report_exporter.errors import VendorThrottledError, VendorUnavailableError

T = TypeVar("T")

# One more call needs at least a connection's worth of time after the wait.
_ROOM_FOR_A_CALL = limits.CONNECT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class InPlace:
    """How a vendor's calls are retried in place.

    Attributes:
        tries: Calls in all (the first one included) before the error goes to Step Functions.
        max_wait: A longer ``Retry-After`` is not slept in the Lambda: Step Functions waits instead.
        first_backoff: The wait after the first failure without a hint; it doubles after each one.
    """

    tries: int
    max_wait: float
    first_backoff: float = 1.0

    def call(self, request: Callable[[], T], *, clock: Clock, client: httpx.Client) -> T:
        """``request()``, retried on ``VendorThrottledError`` and ``VendorUnavailableError``.

        Args:
            request: One vendor call (and the reading of its answer, so an unreadable body is retried too).
            clock: Where waits are slept (the run's clock).
            client: The call's client; its invocation budget bounds the waits (:func:`http_client.time_left`).

        Raises:
            VendorThrottledError, VendorUnavailableError: the last failure, once the tries, the vendor's
                hint or the invocation's remaining time leave no room for another call.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return request()
            except (VendorThrottledError, VendorUnavailableError) as exc:
                hint = exc.retry_after if isinstance(exc, VendorThrottledError) else None
                wait = hint if hint is not None else self.first_backoff * 2 ** (attempt - 1)
                if attempt >= self.tries or wait > self.max_wait or not fits(client, wait):
                    raise
                clock.sleep(wait)


def fits(client: httpx.Client, wait: float) -> bool:
    """Whether a wait of ``wait`` seconds and one more call still fit in the invocation."""
    left = time_left(client)
    return left is None or left - wait >= _ROOM_FOR_A_CALL


PAGES = InPlace(tries=5, max_wait=60.0)
"""How a page of a paginated download (or one whole file) is retried in place, for every vendor: up to 5
calls, a ``Retry-After`` up to a minute slept in the Lambda, a longer one left to Step Functions (which
runs the step again later, and it resumes after what was kept)."""


def json_page(
    client: httpx.Client, url: str, *, vendor: str, action: str, clock: Clock, policy: InPlace = PAGES, **kwargs: Any
) -> tuple[httpx.Response, Any]:
    """``GET url`` answered 200 with a JSON body, retried in place by ``policy`` on a transient failure
    (429, 5xx, a timeout, a dropped connection, an unreadable body).

    Args:
        kwargs: For the request (``params``, ``headers``, ``auth``).

    Returns:
        The response (its body kept verbatim by the caller) and the parsed body.
    """

    def once() -> tuple[httpx.Response, Any]:
        response = send(client, "GET", url, vendor=vendor, action=action, ok=(200,), now=clock.now(), **kwargs)
        return response, json_body(response, vendor=vendor, action=action)

    return policy.call(once, clock=clock, client=client)
