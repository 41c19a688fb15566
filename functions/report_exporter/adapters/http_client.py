"""The one place httpx clients are built, and vendor HTTP statuses become the error vocabulary.

Error messages name the vendor, the operation and the status, plus the vendor's own error code and
description when it sends one. They never include a URL (signed links carry their signature in the
query string) or a header.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterable
from typing import Any

import httpx

from report_exporter import __version__
from report_exporter.errors import (
    VendorAuthError,
    VendorContractError,
    VendorRequestError,
    VendorThrottledError,
    VendorUnavailableError,
)

USER_AGENT = f"report-exporter/{__version__}"
_DETAIL_LIMIT = 300


def build_client(base_url: str, *, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An httpx client with explicit timeouts and no credentials: adapters add auth per request.

    Keeping auth off the client means a download from a pre-signed link can never carry the vendor token.
    """
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(15.0, read=120.0),
        headers={"User-Agent": USER_AGENT},
        transport=transport,
        follow_redirects=True,
    )


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` (seconds or HTTP date), else Telnyx-style ``x-ratelimit-reset`` seconds."""
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
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
    response: httpx.Response, *, vendor: str, action: str, ok: Iterable[int] = (200, 201, 202)
) -> httpx.Response:
    """Map a vendor answer onto the error vocabulary; returns the response when its status is in ``ok``.

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
            f"{where}: throttled (HTTP {status}){suffix}", retry_after=retry_after_seconds(response)
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
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; transport failures become ``VendorUnavailableError`` without the URL."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise VendorUnavailableError(f"{vendor} {action}: timed out") from None
    except httpx.TransportError as exc:
        raise VendorUnavailableError(f"{vendor} {action}: connection failed ({type(exc).__name__})") from None
    return raise_for_status(response, vendor=vendor, action=action, ok=ok)


def json_body(response: httpx.Response, *, vendor: str, action: str) -> Any:
    """The JSON body, or ``VendorContractError`` naming what was expected."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        content_type = response.headers.get("content-type", "no content type")
        raise VendorContractError(f"{vendor} {action}: expected JSON, got {content_type!r}") from None
