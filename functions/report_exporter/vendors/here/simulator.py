"""HERE simulator: the OAuth token endpoint and the usage API's async reports (see facts.py).

In reality the token endpoint (account.api.here.com) and the usage API (usage.bam.api.here.com/v2) are
two hosts; the simulator serves both, so an export points ``token_url`` at ``{base}/oauth2/token`` and
``base_url`` at ``{base}`` or ``{base}/v2``. The token endpoint checks the OAuth 1.0a HMAC-SHA256
signature of the request it received with oauthlib (an implementation independent of the adapter's
signer, so a mistake in the signer cannot hide behind the same mistake here) and answers 401 with
HERE's error body when it does not match.
Reports go ``inProgress`` -> ``pending``/``inProgress`` polls -> ``completed`` (or the failure a knob
asks for); ``/output`` streams a gzip CSV generated row by row, so a million rows cost no memory.
HERE does not document byte ranges on ``/output``: by default they are not served (a ``Range`` header is
ignored, the whole file comes back with 200); ``ranges=True`` serves them as object storage would.
Which bytes each ``/output`` request delivered is kept (``Report.served``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature as oauth1

from report_exporter.local.simulators.base import SimRequest, SimResponse, Simulator, bearer, chunks, range_start

# The sync /csv tutorial's header: "label (token)", every value double-quoted (see facts.py).
COLUMNS = (
    ("Date and time", "usageDateTime"),
    ("Org ID", "realmId"),
    ("Category", "category"),
    ("App ID", "appId"),
    ("Item", "featureId"),
    ("Subscription ID", "billingSubscriptionId"),
    ("Resource ID", "resourceHrn"),
    ("Item description", "name"),
    ("Unit", "valueDriver"),
    ("Project ID", "projectHrn"),
    ("Billing tag", "billingTag"),
    ("Usage Amount", "billableValue"),
    ("Charge Number", "billingChargeNumber"),
    ("Usage Amount", "usageValue"),
)
EXTRA_COLUMN = ("Cost Center", "costCenter")
# (category, feature, item description, unit): commas, doubled quotes and non-ASCII on purpose.
FEATURES = (
    ("Location Services", "search-geocoding-1", "Geocoding, Forward", "Transactions"),
    ("Location Services", "search-revgeocode-1", "Geocoding, Reverse", "Transactions"),
    ("Location Services", "routing-truck-1", "Stra\u00dfenrouting \u2013 LKW", "Transactions"),
    ("Pipelines", "pipeline-stream-1", 'Stream "hot" storage', "GB-hours"),
    ("Data Transfer", "data-egress-1", "Data Transfer, Egress", "GB"),
)
APPS = 7
DETAIL_LEVELS = {"summarized", "day", "month"}
GROUP_BY = {"appId", "billingTag", "project", "resource"}
CHARGE_TYPES = {"all", "billable", "nonBillable"}
MAX_RANGE = timedelta(days=95)
_DATE = "%Y-%m-%dT%H:%M:%S"
_API_PATH = re.compile(r"^(?:/v2)?/usage/realms/([^/]+)/reports(?:/([^/]+))?(/output)?$")


@dataclass
class Report:
    """One usage report as the simulator keeps it."""

    id: str
    realm: str
    start: datetime
    end: datetime
    detail: str
    charge_type: str
    group_by: tuple[str, ...]
    sub_accounts: tuple[str, ...]
    polls: int = 0
    status: str = "inProgress"
    downloads: int = 0
    served: list[list[int]] = field(default_factory=list)
    """[first byte, end] delivered by each ``/output`` request (end exclusive; grows as the client reads)."""
    file: bytes | None = None


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _amount(units: int) -> str:
    """Ten-thousandths -> text with 4 decimals, as HERE writes amounts."""
    return f"{units // 10000}.{units % 10000:04d}"


@dataclass
class HereSimulator(Simulator):
    """Knobs describe the scenario; defaults are a healthy partner realm."""

    pending_polls: int = 2
    rows: int = 500
    realm: str | None = None
    fail_report: bool = False
    archive_report: bool = False
    archive_before_download: bool = False
    unknown_status: str | None = None
    extra_column: bool = False
    token_lifetime: int = 86399
    timestamp_window: int = 600
    compresslevel: int = 6
    ranges: bool = False
    access_key_id: str = field(default_factory=lambda: "HKID" + secrets.token_hex(8).upper())
    access_key_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    reports: dict[str, Report] = field(default_factory=dict)
    token_requests: int = 0
    issued_tokens: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        Simulator.__init__(self)
        self.vendor = "here"
        self._state_lock = threading.Lock()
        self._next = 1000
        self._tokens: dict[str, datetime] = {}
        self._nonces: set[str] = set()

    def credentials(self) -> dict[str, str]:
        return {"access_key_id": self.access_key_id, "access_key_secret": self.access_key_secret}

    def export_overrides(self) -> dict[str, str]:
        """Aim the export's token URL at this simulator too (the runner applies it with ``base_url``)."""
        return {"token_url": self.url("/oauth2/token")}

    def add_report(self, start: datetime, end: datetime, *, detail: str = "day", realm: str = "org123456789",
                   sub_accounts: tuple[str, ...] = ()) -> Report:
        """A completed report, as if requested and polled (tests and the benchmark read its output)."""
        with self._state_lock:
            self._next += 1
            report = Report(id=f"REPORT-{self._next}", realm=realm, start=start, end=end, detail=detail,
                            charge_type="all", group_by=(), sub_accounts=sub_accounts, status="completed")
            self.reports[report.id] = report
        return report

    def revoke_tokens(self) -> None:
        """Invalidate every issued token, as a key rotation would."""
        with self._state_lock:
            self._tokens.clear()

    # What the CSV holds, so tests can check numbers end to end.
    def csv_lines(self, report: Report) -> Iterator[str]:
        columns = [*COLUMNS, EXTRA_COLUMN] if self.extra_column else list(COLUMNS)
        yield ",".join(_quoted(f"{label} ({token})") for label, token in columns) + "\n"
        orgs = report.sub_accounts or (report.realm,)
        days = max(1, (report.end - report.start).days + 1)
        features = [
            (_quoted(cat), _quoted(f"hrn:here:service::{report.realm}:{feat}"), _quoted(name), _quoted(unit))
            for cat, feat, name, unit in FEATURES
        ]
        apps = ['""', *(_quoted(f"app{n:02d}{hashlib.sha1(str(n).encode()).hexdigest()[:14]}") for n in range(APPS))]
        tags = ['""', '"fleet+prod"', '"team ""alpha"""', '"prod, fleet"']
        projects = ['""', *(_quoted(f"hrn:here:authorization::{report.realm}:project/p-{n}") for n in range(3))]
        month_start = report.start.strftime("%Y-%m-01T00:00:00")
        extra = ',"CC-7, north"' if self.extra_column else ""
        for i in range(self.rows):
            category, feature, name, unit = features[i % len(features)]
            if report.detail == "summarized":
                when = '""'  # no usageDateTime at the summarized level (see facts.py)
            elif report.detail == "day":
                when = _quoted((report.start + timedelta(days=(i // len(features)) % days)).strftime(_DATE))
            else:
                when = _quoted(month_start)
            usage, billable = self.amounts(i)
            resource = _quoted(f"hrn:here:data::{report.realm}:res-{i % 28_431}") if i % 5 < 2 else '""'
            yield (
                f"{when},{_quoted(orgs[i % len(orgs)])},{category},{apps[i % len(apps)]},{feature},"
                f'"A-S{i % 40:08d}",{resource},{name},{unit},{projects[i % len(projects)]},'
                f'{tags[i % len(tags)]},"{_amount(billable)}","C-{i % 97:08d}","{_amount(usage)}"{extra}\n'
            )

    @staticmethod
    def amounts(index: int) -> tuple[int, int]:
        """(usage, billable) of row ``index`` in ten-thousandths; every 9th row is free usage."""
        usage = (index * 7919) % 10_000_000 + 1
        return usage, 0 if index % 9 == 0 else usage

    def total_billable(self) -> Decimal:
        """Sum of billableValue over the rows of any report (they all hold the same amounts)."""
        return Decimal(sum(self.amounts(i)[1] for i in range(self.rows))) / 10000

    def gzip_body(self, report: Report) -> Iterator[bytes]:
        """The report as gzip members' bytes, compressed as generated (constant memory)."""
        compressor = zlib.compressobj(self.compresslevel, zlib.DEFLATED, 31)  # wbits 31: gzip container
        for block in chunks(line.encode() for line in self.csv_lines(report)):
            data = compressor.compress(block)
            if data:
                yield data
        yield compressor.flush()

    # HTTP.
    def handle(self, request: SimRequest) -> SimResponse:
        if request.path == "/oauth2/token":
            return self._token(request)
        match = _API_PATH.match(request.path)
        if match is None:
            return self._error(404, "Not Found", "E706404", "No such resource")
        token = bearer(request)
        if token is None:
            return SimResponse.json({"error": "Unauthorized", "error_description": "No credentials found."}, 401)
        with self._state_lock:
            expires = self._tokens.get(token)
        if expires is None or self.clock.now() >= expires:
            return SimResponse.json({"error": "Unauthorized", "error_description": "Token is invalid or expired."}, 401)
        realm, report_id, output = match.groups()
        if self.realm is not None and realm != self.realm:
            return SimResponse.json(
                {"error": "Forbidden", "error_description": "These credentials do not provide authorized access."}, 403
            )
        if request.method == "POST" and report_id is None:
            return self._create(realm, request)
        if request.method == "GET" and report_id is not None:
            report = self.reports.get(report_id)
            if report is None or report.realm != realm:
                return self._error(404, "Not Found", "E706404", f"Report {report_id} not found")
            return self._output(report, request) if output else self._status(report)
        return self._error(405, "Method Not Allowed", "E706405", f"{request.method} is not allowed here")

    @staticmethod
    def _error(status: int, title: str, code: str, cause: str, action: str = "") -> SimResponse:
        # ErrorResponse of the usage API OpenAPI (see facts.py).
        return SimResponse.json(
            {"title": title, "status": status, "code": code, "cause": cause, "action": action,
             "correlationId": str(uuid.uuid4())},
            status,
        )

    # Token endpoint.
    @staticmethod
    def _token_error(status: int, code: int, message: str) -> SimResponse:
        # Token API error body (see facts.py: errorId, httpStatus, errorCode, message, errorFields).
        return SimResponse.json(
            {"errorId": f"ERROR-{uuid.uuid4()}", "httpStatus": status, "errorCode": code, "message": message,
             "errorFields": []},
            status,
        )

    def _token(self, request: SimRequest) -> SimResponse:
        with self._state_lock:
            self.token_requests += 1
        if request.method != "POST":
            return self._token_error(405, 405002, "Method not allowed.")
        header = request.headers.get("authorization", "")
        if not header.startswith("OAuth "):
            return self._token_error(401, 401300, "Invalid Credentials. Missing OAuth Authorization header.")
        try:
            oauth = dict(oauth1.collect_parameters(headers={"Authorization": header}, exclude_oauth_signature=False))
        except ValueError:
            oauth = {}
        missing = [n for n in ("oauth_consumer_key", "oauth_nonce", "oauth_signature", "oauth_signature_method",
                               "oauth_timestamp") if not oauth.get(n)]
        if missing:
            return self._token_error(401, 401300, f"Invalid Credentials. Missing {', '.join(missing)}.")
        if oauth["oauth_signature_method"] != "HMAC-SHA256" or oauth.get("oauth_version", "1.0") != "1.0":
            return self._token_error(401, 401300, "Invalid Credentials. Unsupported signature method or version.")
        if oauth["oauth_consumer_key"] != self.access_key_id:
            return self._token_error(401, 401300, "Invalid Credentials. Unknown access key id.")
        try:
            skew = abs(time.time() - int(oauth["oauth_timestamp"]))
        except ValueError:
            skew = float("inf")
        if skew > self.timestamp_window:
            return self._token_error(401, 401204, "Time stamp is outside the valid period.")
        signature = oauth["oauth_signature"]
        if not any(self._signed_with_our_key(scheme, request, header, signature) for scheme in self._schemes()):
            return self._token_error(
                401, 401300, "Signature mismatch. Authorization signature or client credential is wrong."
            )
        with self._state_lock:
            if oauth["oauth_nonce"] in self._nonces:
                return self._token_error(401, 401207, "Nonce has already been used.")
            self._nonces.add(oauth["oauth_nonce"])
        form = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            return self._token_error(400, 400200, "Invalid grant_type: expected client_credentials.")
        token = "here-" + secrets.token_urlsafe(32)
        with self._state_lock:
            self._tokens[token] = self.clock.now() + timedelta(seconds=self.token_lifetime)
            self.issued_tokens.append(token)
        return SimResponse.json({"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime})

    def _schemes(self) -> list[str]:
        # The request line carries no scheme: on a socket it is ours; through a mock transport the
        # client may have used either, and the Host header is all the server sees (like behind a proxy).
        return [urlsplit(self.base_url).scheme] if self._server is not None else ["https", "http"]

    def _signed_with_our_key(self, scheme: str, request: SimRequest, header: str, signature: str) -> bool:
        """RFC 5849 §3.4 checked by oauthlib on what was received: method, URL, oauth, form and query params."""
        query = urlencode([(name, value) for name, values in request.query.items() for value in values])
        uri = f"{scheme}://{request.headers.get('host', '')}{request.path}" + (f"?{query}" if query else "")
        form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        received = OAuthRequest(uri, http_method=request.method, body=request.body.decode() if form else None,
                                headers={"Authorization": header})
        # What oauthlib's own endpoints set before verifying: every signed parameter, and the signature.
        received.params = oauth1.collect_parameters(uri_query=query, body=received.body, headers=received.headers,
                                                    exclude_oauth_signature=True)
        received.signature = signature
        return bool(oauth1.verify_hmac_sha256(received, client_secret=self.access_key_secret))

    # Usage reports.
    def _create(self, realm: str, request: SimRequest) -> SimResponse:
        if not request.headers.get("x-correlation-id"):
            return self._error(400, "Bad Request", "E706000", "Missing X-Correlation-ID header")
        try:
            start = datetime.strptime(request.arg("startDate") or "", _DATE).replace(tzinfo=UTC)
            end = datetime.strptime(request.arg("endDate") or "", _DATE).replace(tzinfo=UTC)
        except ValueError:
            return self._error(400, "Bad Request", "E706003", "Invalid startDate or endDate",
                               "Use yyyy-MM-dd'T'HH:mm:ss")
        if end < start or end - start > MAX_RANGE:
            return self._error(400, "Bad Request", "E706003", "The maximum time range is 95 days")
        detail = request.arg("detailLevel", "summarized") or "summarized"
        if detail not in DETAIL_LEVELS:
            return self._error(400, "Bad Request", "E706000", f"detailLevel {detail!r} is not supported for reports")
        group_by = tuple(part.strip() for part in (request.arg("groupBy") or "").split(",") if part.strip())
        if any(part not in GROUP_BY for part in group_by):
            return self._error(400, "Bad Request", "E706004", "Invalid groupBy")
        charge_type = request.arg("chargeType", "all") or "all"
        if charge_type not in CHARGE_TYPES:
            return self._error(400, "Bad Request", "E706000", f"Invalid chargeType {charge_type!r}")
        body = request.json() if request.body else None
        sub_accounts = body.get("subAccounts", []) if isinstance(body, dict) else []
        if not isinstance(sub_accounts, list) or not all(isinstance(s, str) and s for s in sub_accounts):
            return self._error(400, "Bad Request", "E706000", "subAccounts must be a list of org ids")
        with self._state_lock:
            self._next += 1
            report = Report(id=f"REPORT-{self._next}", realm=realm, start=start, end=end, detail=detail,
                             charge_type=charge_type, group_by=group_by, sub_accounts=tuple(sub_accounts))
            self.reports[report.id] = report
        location = self.url(f"/usage/realms/{realm}/reports/{report.id}")
        return SimResponse.json({"id": report.id, "status": report.status}, 201, headers={"Location": location})

    def _status(self, report: Report) -> SimResponse:
        with self._state_lock:
            report.polls += 1
            if report.status in ("pending", "inProgress"):
                if report.polls > self.pending_polls:
                    report.status = (
                        self.unknown_status or ("failed" if self.fail_report else None)
                        or ("archived" if self.archive_report else "completed")
                    )
                else:
                    report.status = "pending" if report.polls == 1 else "inProgress"
            answer: dict[str, object] = {
                "id": report.id,
                "status": report.status,
                "created": report.start.strftime(_DATE),
                "parameters": {"realm": report.realm, "startDate": report.start.strftime(_DATE),
                               "endDate": report.end.strftime(_DATE), "chargeType": report.charge_type,
                               "detail": report.detail, "groupBy": ",".join(report.group_by),
                               "subAccounts": list(report.sub_accounts)},
            }
            if report.status == "completed":
                # The documented example's resultHref is not a usable URL (see facts.py); ours is.
                answer["resultHref"] = self.url(f"/usage/realms/{report.realm}/reports/{report.id}/output")
        return SimResponse.json(answer)

    def _output(self, report: Report, request: SimRequest) -> SimResponse:
        with self._state_lock:
            if report.status == "completed" and self.archive_before_download:
                report.status = "archived"
            if report.status != "completed":
                return self._error(404, "Not Found", "E706404", f"Report {report.id} has no output")
            report.downloads += 1
        headers = {"Content-Type": "application/x-gzip",
                   "Content-Disposition": f'attachment; filename="{report.id}.csv.gz"'}
        start = range_start(request.headers.get("range", "")) if self.ranges else None
        if not self.ranges:
            return SimResponse(200, _delivered(self.gzip_body(report), report, 0), headers)
        if report.file is None:
            report.file = b"".join(self.gzip_body(report))
        size = len(report.file)
        etag = '"' + hashlib.md5(report.file, usedforsecurity=False).hexdigest() + '"'
        headers |= {"ETag": etag, "Accept-Ranges": "bytes"}
        if_range = request.headers.get("if-range")
        if start is None or (if_range is not None and if_range != etag):
            return SimResponse(200, _delivered(chunks(iter([report.file])), report, 0),
                               {**headers, "Content-Length": str(size)})
        if start >= size:
            return SimResponse(416, b"", {"Content-Range": f"bytes */{size}"})
        return SimResponse(206, _delivered(chunks(iter([report.file[start:]])), report, start), {
            **headers, "Content-Length": str(size - start), "Content-Range": f"bytes {start}-{size - 1}/{size}"})


def _delivered(body: Iterator[bytes], report: Report, start: int) -> Iterator[bytes]:
    """``body`` (the file from byte ``start``), noting in ``report.served`` what was delivered."""
    delivered = [start, start]
    report.served.append(delivered)
    for chunk in body:
        delivered[1] += len(chunk)
        yield chunk

