"""KORE Wireless simulator: the OAuth2 token endpoint and the paginated UsageRecords lists.

Behaviour follows facts.py: client-credentials tokens that expire after ``expires_in`` seconds of
the simulator's ``clock`` (so virtual time expires them too), ``/v1/UsageRecords`` and
``/v1/Sims/{sid}/UsageRecords`` with ``Start``/``End`` (inclusive), ``Granularity`` and ``PageSize``
(1..1000), pages linked by an absolute ``meta.next_page_url`` that carries an opaque ``PageToken``.
Records mix the three shapes of ``international_roaming`` (array, object, null), and a configurable
number of them have totals that do not add up.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from report_exporter.local.simulators.base import SimRequest, SimResponse, Simulator, bearer
from report_exporter.vendors.kore.facts import MAX_PAGE_SIZE

TOKEN_PATH = "/api-services/v1/auth/token"
ACCOUNT_PATH = "/v1/UsageRecords"
SIM_PREFIX = "/v1/Sims/"
_STEP = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
_COUNTRIES = ("DE", "FR", "MX", "CA", "JP")
RoamingShape = Literal["array", "object", "null"]

# The documented refusal of bad client credentials (https://docs.korewireless.com/en-us/developers/api-management/auth).
BAD_CLIENT = {"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}


def _api_error(status: int, code: int, message: str) -> SimResponse:
    """KORE's ``UsageApiErrorResponse`` body (kore-openapi)."""
    return SimResponse.json(
        {"code": code, "status": status, "message": message, "more_info": f"https://docs.korewireless.com/errors/{code}"},
        status,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class KoreSimulator(Simulator):
    """Knobs describe the scenario; defaults are a healthy account with daily records.

    Attributes:
        records: Serve exactly this many records (periods stepping by the granularity from ``Start``);
            None serves one record per period between ``Start`` and ``End``.
        page_size: The most records the server puts on a page, whatever ``PageSize`` asks (≤ 1000).
        expires_in: Lifetime in seconds of the tokens it issues.
        roaming_shapes: Shapes of ``international_roaming`` given to records in turn.
        inconsistent: How many records get a data and a commands total that does not add up.
        meta_style: ``spec`` (kore-openapi ``ListMeta``) or ``guidelines`` (KORE's general API
            responses: ``count``, ``page_number``...).
        throttle_pages: Page numbers (1-based) whose first request is answered 429 with ``Retry-After``.
    """

    records: int | None = None
    page_size: int = MAX_PAGE_SIZE
    expires_in: int = 3600
    roaming_shapes: tuple[RoamingShape, ...] = ("array", "object", "null")
    inconsistent: int = 0
    meta_style: Literal["spec", "guidelines"] = "spec"
    throttle_pages: frozenset[int] = frozenset()
    retry_after: int = 2
    account_sid: str = "AC" + "0123456789abcdef" * 2
    client_id: str = field(default_factory=lambda: "kore-client-" + secrets.token_hex(8))
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    tokens_issued: int = 0
    pages_served: int = 0
    served: list[int] = field(default_factory=list)
    """The first record's index of every page answered, in order: what a resumed download fetched again."""

    def __post_init__(self) -> None:
        Simulator.__init__(self)
        self.vendor = "kore"
        self._state_lock = threading.Lock()
        self._tokens: dict[str, datetime] = {}
        self._throttled: set[int] = set()

    def credentials(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret}

    @property
    def token_url(self) -> str:
        return self.url(TOKEN_PATH)

    def export_overrides(self) -> dict[str, str]:
        """Export fields the local runner sets besides ``base_url``: the token endpoint lives here too."""
        return {"token_url": self.token_url}

    def revoke_tokens(self) -> None:
        """Forget every issued token, as a credential rotation on KORE's side would."""
        with self._state_lock:
            self._tokens.clear()

    # What the pages hold, so tests can check the numbers end to end.
    def periods(self, start: datetime, end: datetime, granularity: str) -> list[tuple[datetime, datetime]]:
        if granularity == "all":
            return [(start, end + timedelta(seconds=1))] * (self.records or 1)
        step = _STEP[granularity]
        first = start.replace(minute=0, second=0, microsecond=0)
        if granularity == "daily":
            first = first.replace(hour=0)
        if self.records is not None:
            return [(first + i * step, first + (i + 1) * step) for i in range(self.records)]
        out = []
        moment = first
        while moment <= end:
            out.append((moment, moment + step))
            moment += step
        return out

    def usage_records(self, start: datetime, end: datetime, granularity: str, sim_sid: str | None = None,
                      first: int = 0, count: int | None = None) -> list[dict[str, Any]]:
        """The records the simulator serves for this query, in order (``first`` to ``first + count``: a page)."""
        periods = self.periods(start, end, granularity)
        bad = self._inconsistent_indexes(len(periods))
        last = len(periods) if count is None else min(len(periods), first + count)
        return [self._record(i, *periods[i], sim_sid, i in bad) for i in range(first, last)]

    def record_count(self, start: datetime, end: datetime, granularity: str) -> int:
        return len(self.periods(start, end, granularity))

    def _inconsistent_indexes(self, count: int) -> set[int]:
        wanted = min(self.inconsistent, count)
        # Spread over the list so that they fall on different pages.
        return {i * count // wanted for i in range(wanted)} if wanted else set()

    def _record(self, index: int, start: datetime, end: datetime, sim_sid: str | None, bad: bool) -> dict[str, Any]:
        seed = int(hashlib.sha1(f"{sim_sid}{start.isoformat()}".encode()).hexdigest()[:8], 16)
        shape = self.roaming_shapes[index % len(self.roaming_shapes)] if self.roaming_shapes else "null"
        home = {"download": 1000 + seed % 5000, "upload": 200 + seed % 700}
        # Some periods see no national roaming at all: the child is then null, as documented.
        roams = seed % 4 != 0
        national = {"download": seed % 300, "upload": seed % 50} if roams else {"download": 0, "upload": 0}
        abroad: list[dict[str, Any]] = [
            {"country_code": _COUNTRIES[seed % len(_COUNTRIES)], "download": seed % 900, "upload": seed % 90}
        ]
        if shape == "null":
            abroad = []

        def data_counts(parts: dict[str, int], **more: Any) -> dict[str, Any]:
            total = parts["download"] + parts["upload"]
            return {**more, "download": parts["download"], "upload": parts["upload"], "total": total,
                    "units": "bytes", "billed": round(total * 0.000002, 6), "billing_units": "USD"}

        data = data_counts(
            {k: home[k] + national[k] + sum(a[k] for a in abroad) for k in ("download", "upload")}
        )
        data["home"] = data_counts(home)
        data["national_roaming"] = data_counts(national) if roams else None
        roaming_data = [data_counts(a, country_code=a["country_code"]) for a in abroad]
        cmd_home = {"to_sim": seed % 4, "from_sim": seed % 3}
        cmd_abroad: list[dict[str, Any]] = [
            {"country_code": a["country_code"], "to_sim": 1, "from_sim": 0} for a in abroad
        ]

        def command_counts(parts: dict[str, int], **more: Any) -> dict[str, Any]:
            total = parts["to_sim"] + parts["from_sim"]
            return {**more, "from_sim": parts["from_sim"], "to_sim": parts["to_sim"], "total": total,
                    "billed": round(total * 0.01, 6), "billing_units": "USD"}

        commands = command_counts({k: cmd_home[k] + sum(a[k] for a in cmd_abroad) for k in ("to_sim", "from_sim")})
        commands["home"] = command_counts(cmd_home)
        commands["national_roaming"] = None
        roaming_commands = [command_counts(a, country_code=a["country_code"]) for a in cmd_abroad]
        if shape == "array":
            data["international_roaming"] = roaming_data
            commands["international_roaming"] = roaming_commands
        elif shape == "object":
            data["international_roaming"] = roaming_data[0]
            commands["international_roaming"] = roaming_commands[0]
        else:
            data["international_roaming"] = None
            commands["international_roaming"] = None
        if bad:
            data["total"] += 7
            commands["total"] += 1
        record: dict[str, Any] = {"account_sid": self.account_sid}
        if sim_sid is not None:
            record["sim_sid"] = sim_sid
        record["period"] = {"start": _iso(start), "end": _iso(end)}
        record["commands"] = commands
        record["data"] = data
        return record

    # HTTP.
    def handle(self, request: SimRequest) -> SimResponse:
        if request.path == TOKEN_PATH:
            return self._token(request)
        sim_sid: str | None = None
        if request.path == ACCOUNT_PATH:
            pass
        elif request.path.startswith(SIM_PREFIX) and request.path.endswith("/UsageRecords"):
            sim_sid = request.path[len(SIM_PREFIX) : -len("/UsageRecords")]
            if not sim_sid or "/" in sim_sid:
                return _api_error(404, 20404, "The requested resource was not found")
        else:
            return _api_error(404, 20404, "The requested resource was not found")
        if request.method != "GET":
            return _api_error(405, 20004, "Method not allowed")
        token = bearer(request)
        with self._state_lock:
            expires = self._tokens.get(token or "")
        if expires is None or self.clock.now() >= expires:
            return _api_error(401, 20003, "Authentication Error - invalid or expired token")
        return self._list(request, sim_sid)

    def _token(self, request: SimRequest) -> SimResponse:
        if request.method != "POST":
            return SimResponse.json({"error": "invalid_request", "error_description": "Use POST"}, 405)
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return SimResponse.json(
                {"error": "unsupported_grant_type", "error_description": "Only client_credentials is supported"}, 400
            )
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return SimResponse.json(BAD_CLIENT, 401)
        token = "kore-" + secrets.token_urlsafe(24)
        with self._state_lock:
            self._tokens[token] = self.clock.now() + timedelta(seconds=self.expires_in)
            self.tokens_issued += 1
        return SimResponse.json(
            {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer", "scope": "openid"}
        )

    def _list(self, request: SimRequest, sim_sid: str | None) -> SimResponse:
        start, end = _parse(request.arg("Start")), _parse(request.arg("End"))
        granularity = request.arg("Granularity", "all") or "all"
        if start is None or end is None or end < start:
            return _api_error(400, 20001, "Start and End must be ISO 8601 date-times with Start before End")
        if granularity not in ("all", "daily", "hourly"):
            return _api_error(400, 20001, f"Granularity must be all, daily or hourly, not {granularity}")
        if granularity == "hourly" and end - start > timedelta(days=31):
            return _api_error(400, 83604, "The requested time range exceeds the maximum for hourly granularity")
        try:
            requested = int(request.arg("PageSize", "50") or "50")
        except ValueError:
            requested = 0
        if not 1 <= requested <= MAX_PAGE_SIZE:
            return _api_error(400, 20001, "PageSize must be between 1 and 1000")
        size = min(requested, self.page_size)
        offset = 0
        page_token = request.arg("PageToken")
        if page_token is not None:
            try:
                offset = int(page_token.removeprefix("PT"), 16)
            except ValueError:
                return _api_error(400, 20001, "Invalid PageToken")
        page = int(request.arg("Page", "0") or "0")
        with self._state_lock:
            if page + 1 in self.throttle_pages and page + 1 not in self._throttled:
                self._throttled.add(page + 1)
                return SimResponse.json(
                    {"code": 20429, "status": 429, "message": "Too Many Requests"}, 429,
                    headers={"Retry-After": str(self.retry_after)},
                )
            self.pages_served += 1
            self.served.append(offset)
        total = self.record_count(start, end, granularity)
        chunk = self.usage_records(start, end, granularity, sim_sid, offset, size)
        query = {"Start": _iso(start), "End": _iso(end), "Granularity": granularity, "PageSize": str(requested)}
        here = self.url(f"{request.path}?{urlencode({**query, 'Page': page})}")
        first = self.url(f"{request.path}?{urlencode({**query, 'Page': 0})}")
        more = offset + size < total
        next_url = (
            self.url(f"{request.path}?{urlencode({**query, 'Page': page + 1, 'PageToken': f'PT{offset + size:x}'})}")
            if more
            else None
        )
        if self.meta_style == "spec":
            meta: dict[str, Any] = {
                "page": page, "page_size": size, "first_page_url": first, "previous_page_url": None,
                "url": here, "next_page_url": next_url, "key": "usage_records",
            }
        else:
            meta = {"count": total, "page_size": size, "page_number": page + 1,
                    "previous_page_url": None, "next_page_url": next_url}
        return SimResponse.json({"usage_records": chunk, "meta": meta})
