"""Telnyx ``GET /v2/usage_reports`` simulator (facts: facts.py).

Deterministic aggregate rows for whatever product, dimensions and metrics are asked for, paged with
``page[number]``/``page[size]`` (at most 5000). It is strict where the real API is documented: a
Bearer key, ``YYYY-MM-DDTHH:mm:ssZ`` dates, at most 31 days, start before end, and an end that is
exclusive (a ``23:59:59`` end is refused, so an adapter that sends inclusive ends is caught). Errors
use Telnyx's ``{"errors": [{code, title, detail, source}]}`` body.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from report_exporter.local.simulators.base import SimRequest, SimResponse, Simulator, bearer
from report_exporter.vendors.telnyx.facts import MAX_PAGE_SIZE, MAX_RANGE

_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# What Telnyx messaging usage looks like: the documented example's direction, product_name, country_iso (facts.py).
_VOCABULARY: dict[str, tuple[str, ...]] = {
    "direction": ("outbound", "inbound"),
    "product_name": ("long_code", "toll_free", "short_code"),
    "country_iso": ("US", "CA", "GB", "DE", "NL", "FR"),
}


def error(status: int, code: str, title: str, detail: str, parameter: str | None = None) -> SimResponse:
    body: dict[str, Any] = {"code": code, "title": title, "detail": detail}
    if parameter:
        body["source"] = {"pointer": "/title", "parameter": parameter}
    body["meta"] = {"url": f"https://developers.telnyx.com/docs/overview/errors/{code}"}
    return SimResponse.json({"errors": [body]}, status)


def _list(request: SimRequest, name: str) -> list[str]:
    """Array parameters, comma-separated (``a,b``) or repeated (``name=a&name=b``)."""
    return [item for value in request.query.get(name, []) for item in value.split(",") if item]


@dataclass
class TelnyxSimulator(Simulator):
    """Knobs describe the scenario; defaults are a healthy account with 12 aggregate rows per query."""

    rows: int = 12
    throttle_page: int | None = None
    retry_after: int = 2
    retry_header: str = "Retry-After"
    string_meta: bool = False
    api_key: str = field(default_factory=lambda: "KEY" + secrets.token_hex(16))
    realistic: bool = False
    """Dimension values from small real vocabularies (the demo); by default the first dimension is unique
    per row, so tests can see a row lost or duplicated across pages."""
    throttled: int = 0
    pages_served: int = 0
    served: list[tuple[str, int]] = field(default_factory=list)
    """(start_date, page number) of every page answered, in order: what a resumed download fetched again."""

    def __post_init__(self) -> None:
        Simulator.__init__(self)
        self.vendor = "telnyx"

    def credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    # The rows a query yields, so tests can check every one arrives exactly once.
    def data(self, product: str, dimensions: list[str], metrics: list[str], start: str, first: int = 0,
             count: int | None = None) -> list[dict[str, Any]]:
        """Rows ``first`` to ``first + count`` (default: all) of the query's answer."""
        rows = []
        for i in range(first, self.rows if count is None else min(self.rows, first + count)):
            row: dict[str, Any] = {"product": product}
            for d, name in enumerate(dimensions):
                if name == "currency":
                    row[name] = "USD" if i % 4 else "EUR"
                elif self.realistic:
                    vocabulary = _VOCABULARY.get(name, tuple(f"{name}-{k}" for k in range(3)))
                    # Walk the combinations so that each (dimension values) tuple appears once.
                    stride = 1
                    for earlier in dimensions[:d]:
                        stride *= len(_VOCABULARY.get(earlier, (0, 1, 2))) if earlier != "currency" else 1
                    row[name] = vocabulary[(i // stride) % len(vocabulary)]
                elif d == 0:
                    row[name] = f"{name}-{i:05d}"  # unique per row: duplicates and losses show
                else:
                    row[name] = f"{name}-{i % 3}"
            for name in metrics:
                seed = int(hashlib.sha1(f"{start}{name}{i}".encode()).hexdigest()[:6], 16)
                row[name] = round(seed % 100_000 / 1_000_000, 6) if name == "cost" else seed % 5000
            rows.append(row)
        return rows

    def handle(self, request: SimRequest) -> SimResponse:
        if bearer(request) != self.api_key:
            return error(401, "10009", "Authentication failed", "The API key in the request is missing or invalid.")
        if request.method != "GET" or request.path.rstrip("/") not in ("/usage_reports", "/v2/usage_reports"):
            return error(404, "10005", "Resource not found", "The requested resource or URL could not be found.")
        product = request.arg("product") or ""
        dimensions, metrics = _list(request, "dimensions"), _list(request, "metrics")
        for name, value in (("product", product), ("dimensions", dimensions), ("metrics", metrics)):
            if not value:
                return error(400, "10015", "Bad Request", f"{name} is required", name)
        window = self._window(request)
        if isinstance(window, SimResponse):
            return window
        try:
            number = int(request.arg("page[number]", "1") or "1")
            size = int(request.arg("page[size]", "20") or "20")
        except ValueError:
            return error(400, "10015", "Bad Request", "page[number] and page[size] must be integers", "page")
        if number < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return error(400, "10015", "Bad Request", f"page[size] must be 1..{MAX_PAGE_SIZE}, page[number] >= 1",
                         "page")
        if self.throttle_page == number and not self.throttled:
            self.throttled += 1
            if self.retry_header.lower() == "retry-after":
                headers = {"Retry-After": str(self.retry_after)}
            else:
                headers = {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0",
                           "x-ratelimit-reset": str(self.retry_after)}
            return SimResponse.json(
                {"errors": [{"code": "10011", "title": "Too many requests",
                             "detail": "You have exceeded the maximum number of allowed requests."}]},
                429, headers=headers,
            )
        page = self.data(product, dimensions, metrics, window[0], (number - 1) * size, size)
        pages = max(1, -(-self.rows // size))
        meta: dict[str, Any] = {"total_pages": pages, "total_results": self.rows, "page_number": number,
                                "page_size": size}
        if self.string_meta:
            meta = {key: str(value) for key, value in meta.items()}
        self.pages_served += 1
        self.served.append((window[0], number))
        return SimResponse.json({"meta": meta, "data": page})

    def _window(self, request: SimRequest) -> tuple[str, str] | SimResponse:
        start_text, end_text = request.arg("start_date"), request.arg("end_date")
        if not start_text or not end_text:
            return error(400, "10015", "Bad Request", "start_date and end_date are required", "start_date")
        try:
            start = datetime.strptime(start_text, _DATE_FORMAT)
            end = datetime.strptime(end_text, _DATE_FORMAT)
        except ValueError:
            return error(400, "10015", "Bad Request", "Dates must be formatted YYYY-MM-DDTHH:mm:ssZ", "start_date")
        if end <= start:
            return error(400, "10015", "Bad Request", "end_date must be after start_date", "end_date")
        if end - start > MAX_RANGE:
            return error(400, "10015", "Bad Request", "The maximum time range is 31 days.", "end_date")
        if end.second == 59 or end.microsecond:
            return error(400, "10015", "Bad Request",
                         "end_date is exclusive: use the first second after the range, e.g. 00:00:00", "end_date")
        return start_text, end_text
