"""The one place httpx clients are built, and vendor HTTP statuses become the error vocabulary.

Error messages name the vendor, the operation and the status, plus the vendor's own error code and
description when it sends one. They never include a URL (signed links carry their signature in the
query string) or a header.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from report_exporter import __version__, limits
from report_exporter.errors import (
    VendorAuthError,
    VendorRequestError,
    VendorThrottledError,
    VendorUnavailableError,
)

USER_AGENT = f"report-exporter/{__version__}"
_DETAIL_LIMIT = 300
_PREVIEW_CHARS = 40
# Enough of an unreadable body to show what it is; the rest is never decoded.
_PREVIEW_SCAN = 4096
_PREVIEW_SECRETISH = re.compile(r"[A-Za-z0-9_-]{20,}")
_TIMEOUT_KINDS = ("connect", "read", "write", "pool")
TIMEOUT = httpx.Timeout(limits.READ_TIMEOUT_SECONDS, connect=limits.CONNECT_TIMEOUT_SECONDS)


class VendorClient(httpx.Client):
    """An httpx client that knows how long its invocation has left (see :func:`time_left`)."""

    def __init__(self, *, remaining: Callable[[], float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._remaining = remaining

    def time_left(self) -> float | None:
        """Seconds left for vendor calls (the call margin already taken off); None when unbounded."""
        if self._remaining is None:
            return None
        return max(0.0, self._remaining() - limits.CALL_MARGIN_SECONDS)


def build_client(
    base_url: str, *, transport: httpx.BaseTransport | None = None, remaining: Callable[[], float] | None = None
) -> httpx.Client:
    """An httpx client with explicit timeouts and no credentials: adapters add auth per request.

    Keeping auth off the client means a download from a pre-signed link can never carry the vendor token.

    Args:
        base_url: The vendor's API root.
        transport: The transport to use (tests and the local runner); httpx's own when None.
        remaining: Seconds left in the Lambda invocation. Every request (redirect hops included) then
            ends ``limits.CALL_MARGIN_SECONDS`` before the invocation would, so a hanging vendor becomes a
            retried ``VendorUnavailableError`` (with time left to report it) instead of a Lambda timeout.
            Adapters read what is left with :func:`time_left` (to decide whether a retry in place still fits).
    """
    hooks: dict[str, list[Callable[..., Any]]] = {}
    if remaining is not None:
        hooks["request"] = [_call_budget(remaining)]
    return VendorClient(
        remaining=remaining,
        base_url=base_url,
        timeout=TIMEOUT,
        headers={"User-Agent": USER_AGENT},
        transport=transport,
        follow_redirects=True,
        event_hooks=hooks,
    )


def time_left(client: httpx.Client) -> float | None:
    """Seconds the invocation has left for vendor calls through ``client``; None when nothing bounds them
    (a client not built by :func:`build_client` with ``remaining``)."""
    return client.time_left() if isinstance(client, VendorClient) else None


def _call_budget(remaining: Callable[[], float]) -> Callable[[httpx.Request], None]:
    """A request hook lowering every timeout of the request to the time left for it."""

    def clamp(request: httpx.Request) -> None:
        left = remaining() - limits.CALL_MARGIN_SECONDS
        if left <= 0:
            # A TimeoutException, so every wrapper of vendor calls already turns it into VendorUnavailableError.
            raise httpx.PoolTimeout("no time left in this invocation for another vendor call", request=request)
        timeouts = request.extensions.get("timeout", {})
        request.extensions["timeout"] = {
            kind: left if timeouts.get(kind) is None else min(timeouts[kind], left) for kind in _TIMEOUT_KINDS
        }

    return clamp


def retry_after_seconds(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` (seconds or HTTP date), else Telnyx-style ``x-ratelimit-reset`` seconds.

    Args:
        response: The vendor's answer.
        now: The caller's clock reading, against which an HTTP date is counted; real time when None.
    """
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if parsed.tzinfo is None:  # "-0000": a UTC time without a known zone (RFC 5322 §3.3)
                parsed = parsed.replace(tzinfo=UTC)
            current = now.timestamp() if now is not None else time.time()
            return max(0.0, parsed.timestamp() - current)
    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset))
        except ValueError:
            return None
    return None


def vendor_detail(response: httpx.Response) -> str:
    """The vendor's own error code and description from a JSON error body, shortened; never the URL."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    parts: list[str] = []

    def pick(obj: Any) -> None:
        if not isinstance(obj, dict):
            return
        for key in ("error", "code", "errorCode", "title", "error_description", "message", "detail", "cause"):
            value = obj.get(key)
            if isinstance(value, str | int) and str(value) and str(value) not in parts:
                parts.append(str(value))

    pick(body)
    if isinstance(body, dict):
        for nested in ("errors", "error"):
            items = body.get(nested)
            if isinstance(items, list) and items:
                pick(items[0])
            elif isinstance(items, dict):
                pick(items)
    text = "; ".join(parts)
    return _strip_urls(text)[:_DETAIL_LIMIT]


def _strip_urls(text: str) -> str:
    return " ".join("<url>" if "://" in word else word for word in text.split(" "))


def raise_for_status(
    response: httpx.Response,
    *,
    vendor: str,
    action: str,
    ok: Iterable[int] = (200, 201, 202),
    now: datetime | None = None,
) -> httpx.Response:
    """Map a vendor answer onto the error vocabulary; returns the response when its status is in ``ok``.

    ``now`` is the caller's clock reading, for a ``Retry-After`` given as an HTTP date.

    Raises:
        VendorThrottledError: 429 (with the vendor's retry hint).
        VendorAuthError: 401 or 403.
        VendorUnavailableError: 5xx.
        VendorRequestError: any other status.
    """
    status = response.status_code
    if status in set(ok):
        return response
    if not response.is_stream_consumed:
        response.read()
    detail = vendor_detail(response)
    suffix = f": {detail}" if detail else ""
    where = f"{vendor} {action}"
    if status == 429 or (status == 503 and "retry-after" in response.headers):
        raise VendorThrottledError(
            f"{where}: throttled (HTTP {status}){suffix}", retry_after=retry_after_seconds(response, now=now)
        )
    if status in (401, 403):
        raise VendorAuthError(f"{where}: credentials refused (HTTP {status}){suffix}")
    if status >= 500:
        raise VendorUnavailableError(f"{where}: vendor error (HTTP {status}){suffix}")
    raise VendorRequestError(f"{where}: request refused (HTTP {status}){suffix}")


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    vendor: str,
    action: str,
    ok: Iterable[int] = (200, 201, 202),
    now: datetime | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; transport failures (and an exhausted call budget) become ``VendorUnavailableError``
    without the URL. ``now`` is passed on to :func:`raise_for_status`."""
    with transport_errors(vendor, action):
        response = client.request(method, url, **kwargs)
    return raise_for_status(response, vendor=vendor, action=action, ok=ok, now=now)


@contextmanager
def transport_errors(vendor: str, action: str) -> Iterator[None]:
    """Transport failures in the block (a timeout, a dropped connection, an exhausted call budget, while
    sending or while reading a body) become ``VendorUnavailableError``, naming neither URL nor header."""
    try:
        yield
    except httpx.TimeoutException:
        raise VendorUnavailableError(f"{vendor} {action}: timed out") from None
    except httpx.TransportError as exc:
        raise VendorUnavailableError(f"{vendor} {action}: connection failed ({type(exc).__name__})") from None


@contextmanager
def stream(
    client: httpx.Client, method: str, url: str, *, vendor: str, action: str, **kwargs: Any
) -> Iterator[httpx.Response]:
    """``client.stream(...)`` whose transport failures, opening it or reading its body in the block,
    become ``VendorUnavailableError`` (see :func:`transport_errors`). The status is the caller's to check."""
    with transport_errors(vendor, action), client.stream(method, url, **kwargs) as response:
        yield response


def json_body(response: httpx.Response, *, vendor: str, action: str) -> Any:
    """The JSON body of a successful answer.

    An empty or non-JSON answer with a success status is what proxies, gateways and half-deployed vendor
    releases send (an HTML error page with 200, a truncated body); it is worth retrying, and the error
    says what came back without anything that could be a URL, token or signature.

    Raises:
        VendorUnavailableError: the body is empty or not JSON.
    """
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        content_type = response.headers.get("content-type", "no content type")[:80]
        size = len(response.content)
        what = f"HTTP {response.status_code}, {content_type!r}, {size} bytes"
        if not response.content.strip():
            raise VendorUnavailableError(f"{vendor} {action}: expected JSON, got an empty answer ({what})") from None
        raise VendorUnavailableError(
            f"{vendor} {action}: expected JSON, got an unreadable answer ({what}) starting "
            f"{_preview(response.content)!r}"
        ) from None


def _preview(content: bytes) -> str:
    """The start of a body, printable, with URLs and token-like runs (20+ letters, digits, ``_``, ``-``) blanked."""
    text = content[:_PREVIEW_SCAN].decode("utf-8", errors="replace")
    words = "".join(c if c.isprintable() else " " for c in text).split()
    if len(content) > _PREVIEW_SCAN and words:
        words[-1] = "…"  # possibly the cut-off start of a secret
    safe = " ".join("…" if "://" in word else _PREVIEW_SECRETISH.sub("…", word) for word in words)
    return safe if len(safe) <= _PREVIEW_CHARS else safe[: _PREVIEW_CHARS - 1] + "…"
