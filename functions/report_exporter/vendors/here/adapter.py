"""HERE partner usage reports: OAuth 1.0a-signed token, then request, poll, download a gzip CSV (see facts.py).

Docs: usage API v2 OpenAPI https://docs.here.com/usage/openapi/usage-v2-openapi.yml, tutorials
https://docs.here.com/usage/docs/cost-management-tutorials; token request signing
https://developer.here.com/documentation/authentication/dev_guide/topics/request-constructing.html
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
from pydantic import SecretStr

from report_exporter.adapters.base import Credentials, PollResult, RawSink, RequestResult, secret_field
from report_exporter.adapters.csv_records import CsvRecordCounter
from report_exporter.adapters.http_client import json_body, raise_for_status, retry_after_seconds, send
from report_exporter.adapters.ranged import download_file
from report_exporter.clock import Clock
from report_exporter.errors import (
    DownloadExpiredError,
    ExporterError,
    ReportArchivedError,
    ReportFailedError,
    ReportTimedOutError,
    VendorContractError,
)
from report_exporter.models.exports import ExportBase, HereExport
from report_exporter.models.payloads import JobStatus, RunPlan
from report_exporter.vendors.base import Cadence
from report_exporter.vendors.here.facts import CADENCE

VENDOR = "here"
DATASET = "here_usage"

_REPORTS = "/usage/realms/{realm}/reports"
_REPORT = "/usage/realms/{realm}/reports/{report}"
_OUTPUT = "/usage/realms/{realm}/reports/{report}/output"
# ``startDate``/``endDate`` are ``yyyy-MM-dd'T'HH:mm:ss`` in UTC (see facts.py).
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"

# UsageReportStatusResponse.status (OpenAPI); compared case-insensitively.
_STATUSES = {
    "pending": JobStatus.PENDING,
    "inprogress": JobStatus.PENDING,
    "completed": JobStatus.READY,
}
_FAILED = "failed"
_ARCHIVED = "archived"
# Report ids become URL path segments and raw object names: refuse anything else.
_REPORT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_GONE = {404, 410}

# Tokens last 24 h (see facts.py); renew a little before the end so a call never carries a stale one.
TOKEN_REFRESH_MARGIN_SECONDS = 300
# Used when the token answer has no ``expires_in``: short enough to be safe whatever HERE's lifetime is.
_DEFAULT_TOKEN_SECONDS = 3600


def percent_encode(value: str) -> str:
    """RFC 5849 §3.6: UTF-8, then percent-encode everything but ``ALPHA DIGIT - . _ ~``."""
    return quote(value, safe="~")


def base_string_uri(url: str) -> str:
    """RFC 5849 §3.4.1.2: lower-case scheme and host, default port dropped, no query or fragment."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    netloc = host if port is None or default else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def signature_base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1: method, base string URI and the normalized, sorted parameters, each encoded."""
    pairs = sorted((percent_encode(name), percent_encode(value)) for name, value in params)
    normalized = "&".join(f"{name}={value}" for name, value in pairs)
    return "&".join((method.upper(), percent_encode(base_string_uri(url)), percent_encode(normalized)))


def hmac_sha256_signature(base_string: str, consumer_secret: str, token_secret: str = "") -> str:
    """RFC 5849 §3.4.2 with SHA-256: key ``secret&token_secret``, base64 digest."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, base_string.encode(), hashlib.sha256).digest()).decode()


def new_nonce() -> str:
    """A fresh random nonce; HERE refuses one it has seen before (error 401207)."""
    return secrets.token_hex(16)


def wall_clock_seconds() -> int:
    """Seconds since the epoch for ``oauth_timestamp``."""
    # The token server checks the timestamp against its own clock (error 401204), so this is real time,
    # never the local runner's virtual clock.
    return int(time.time())


@dataclass(frozen=True)
class OAuth1Signer:
    """Builds the ``Authorization: OAuth ...`` header of a signed request (HMAC-SHA256, no token)."""

    key_id: SecretStr
    key_secret: SecretStr
    nonce: Callable[[], str] = new_nonce
    timestamp: Callable[[], int] = wall_clock_seconds

    def authorization(self, method: str, url: str, form: Mapping[str, str]) -> str:
        """The header value for ``method url`` with the form-encoded body ``form``.

        Args:
            method: HTTP method.
            url: Absolute URL; query parameters in it are signed too.
            form: The ``application/x-www-form-urlencoded`` body parameters (signed, RFC 5849 §3.4.1.3.1).

        Returns:
            ``OAuth oauth_consumer_key="...", ...`` with every value percent-encoded.
        """
        oauth = {
            "oauth_consumer_key": self.key_id.get_secret_value(),
            "oauth_nonce": self.nonce(),
            "oauth_signature_method": "HMAC-SHA256",
            "oauth_timestamp": str(self.timestamp()),
            "oauth_version": "1.0",
        }
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
        base = signature_base_string(method, url, [*oauth.items(), *form.items(), *query])
        oauth["oauth_signature"] = hmac_sha256_signature(base, self.key_secret.get_secret_value())
        return "OAuth " + ", ".join(f'{percent_encode(k)}="{percent_encode(v)}"' for k, v in sorted(oauth.items()))


@dataclass(frozen=True)
class _Token:
    value: SecretStr
    renew_at: datetime


@dataclass
class _TokenCache:
    """Access tokens per (token URL, access key id), shared by every adapter in the process."""

    tokens: dict[tuple[str, str], _Token] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_CACHE = _TokenCache()


def clear_token_cache() -> None:
    """Forget every cached access token (tests, and a credentials rotation in a long-lived process)."""
    with _CACHE.lock:
        _CACHE.tokens.clear()


class HereAdapter:
    """One partner realm; the bearer token is fetched with the export's access key and cached per process."""

    cadence: Cadence = CADENCE
    timeout_error: type[ExporterError] = ReportTimedOutError

    def __init__(
        self,
        export: ExportBase,
        client: httpx.Client,
        credentials: Credentials,
        clock: Clock,
        *,
        nonce: Callable[[], str] = new_nonce,
        timestamp: Callable[[], int] = wall_clock_seconds,
    ) -> None:
        if not isinstance(export, HereExport):
            raise TypeError("HereAdapter needs a HereExport")
        self._export = export
        self._client = client
        self._clock = clock
        fields = {name: secret_field(credentials, name, export) for name in ("access_key_id", "access_key_secret")}
        self._signer = OAuth1Signer(fields["access_key_id"], fields["access_key_secret"], nonce, timestamp)
        self._cache_key = (export.token_url, fields["access_key_id"].get_secret_value())

    # Token.

    def _access_token(self) -> tuple[SecretStr, bool]:
        """The cached token if it is still good, else a new one; the flag says whether it is new."""
        with _CACHE.lock:
            cached = _CACHE.tokens.get(self._cache_key)
            if cached is not None and self._clock.now() < cached.renew_at:
                return cached.value, False
            token = self._fetch_token()
            _CACHE.tokens[self._cache_key] = token
            return token.value, True

    def _forget_token(self, token: SecretStr) -> None:
        with _CACHE.lock:
            cached = _CACHE.tokens.get(self._cache_key)
            if cached is not None and cached.value.get_secret_value() == token.get_secret_value():
                del _CACHE.tokens[self._cache_key]

    def _fetch_token(self) -> _Token:
        url = self._export.token_url
        form = {"grant_type": "client_credentials"}
        headers = {
            "Authorization": self._signer.authorization("POST", url, form),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        action = f"get access token for export {self._export.name!r}"
        # The body is encoded here, not by httpx, so that what is sent is exactly what was signed.
        response = send(self._client, "POST", url, vendor=VENDOR, action=action, ok=(200,), headers=headers,
                        content=urlencode(form).encode(), now=self._clock.now())
        body = json_body(response, vendor=VENDOR, action=action)
        if not isinstance(body, dict):
            raise VendorContractError(f"here {action}: the answer is not a JSON object")
        # Form requests get snake_case fields, JSON requests camelCase ones (see facts.py).
        value = body.get("access_token", body.get("accessToken"))
        if not isinstance(value, str) or not value:
            raise VendorContractError(f"here {action}: no access_token in the answer")
        token_type = body.get("token_type", body.get("tokenType", "bearer"))
        if str(token_type).lower() != "bearer":
            raise VendorContractError(f"here {action}: token type {token_type!r}, expected 'bearer'")
        lifetime: Any = body.get("expires_in", body.get("expiresIn", _DEFAULT_TOKEN_SECONDS))
        try:
            seconds = float(lifetime)
        except (TypeError, ValueError):
            raise VendorContractError(f"here {action}: expires_in {lifetime!r} is not a number") from None
        if seconds <= 0:
            raise VendorContractError(f"here {action}: expires_in {lifetime!r} is not positive")
        margin = min(TOKEN_REFRESH_MARGIN_SECONDS, seconds / 10)
        return _Token(SecretStr(value), self._clock.now() + timedelta(seconds=seconds - margin))

    # Authorized calls.

    @staticmethod
    def _headers(token: SecretStr, accept: str = "application/json") -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token.get_secret_value()}",
            "Accept": accept,
            # Marked required by the usage API spec; lets HERE support trace one call (see facts.py).
            "X-Correlation-ID": str(uuid.uuid4()),
        }

    def _api(self, method: str, path: str, action: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        """A JSON call with the bearer token; a 401 on a cached token gets one retry with a new token."""
        token, fresh = self._access_token()
        ok = (200, 201, 202)
        response = send(self._client, method, path, vendor=VENDOR, action=action, ok=(*ok, 401),
                        headers=self._headers(token), now=self._clock.now(), **kwargs)
        if response.status_code == 401 and not fresh:
            # Revoked or rotated behind our back: nothing was done, so one retry is safe even for a POST.
            self._forget_token(token)
            token, _ = self._access_token()
            response = send(self._client, method, path, vendor=VENDOR, action=action, ok=(*ok, 401),
                            headers=self._headers(token), now=self._clock.now(), **kwargs)
        raise_for_status(response, vendor=VENDOR, action=action, ok=ok, now=self._clock.now())
        return json_body(response, vendor=VENDOR, action=action), response

    def _report_status(self, plan: RunPlan, report_id: str, raw: Any) -> JobStatus:
        name, period = self._export.name, plan.period
        if not isinstance(raw, str):
            raise VendorContractError(f"here report {report_id} for export {name!r} {period}: no status in the answer")
        state = raw.lower()
        if state in _STATUSES:
            return _STATUSES[state]
        if state == _FAILED:
            raise ReportFailedError(
                f"here report {report_id} for export {name!r} {period}: HERE says generating it failed"
            )
        if state == _ARCHIVED:
            raise ReportArchivedError(
                f"here report {report_id} for export {name!r} {period}: HERE archived it before it was downloaded; "
                "run the export again to request a new report"
            )
        raise VendorContractError(
            f"here report {report_id} for export {name!r} {period}: unknown report status {raw!r}"
        )

    # The three verbs.

    def request(self, plan: RunPlan) -> RequestResult:
        """Create the async usage report for the run's month: first to last second, in UTC."""
        export = self._export
        start = plan.window.start.astimezone(UTC)
        end = (plan.window.end - timedelta(seconds=1)).astimezone(UTC)
        params = {
            "startDate": start.strftime(_DATE_FORMAT),
            "endDate": end.strftime(_DATE_FORMAT),
            "detailLevel": export.detail_level,
        }
        if export.group_by:
            params["groupBy"] = ",".join(export.group_by)
        if export.charge_type:
            params["chargeType"] = export.charge_type
        extra: dict[str, Any] = {"json": {"subAccounts": list(export.sub_accounts)}} if export.sub_accounts else {}
        action = f"create usage report for export {export.name!r} {plan.period}"
        body, _ = self._api("POST", _REPORTS.format(realm=export.realm), action, params=params, **extra)
        report_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(report_id, str) or not _REPORT_ID.match(report_id):
            raise VendorContractError(f"here {action}: no usable report id in the answer")
        status = self._report_status(plan, report_id, body.get("status"))
        return RequestResult(status=status, report_id=report_id)

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        """``pending``/``inProgress`` -> PENDING, ``completed`` -> READY; ``failed``/``archived`` raise."""
        body, response = self._status(plan, report_id)
        status = self._report_status(plan, report_id, body.get("status"))
        retry_after = retry_after_seconds(response, now=self._clock.now())
        return PollResult(status=status, retry_after=retry_after, detail=str(body.get("status")))

    def _status(self, plan: RunPlan, report_id: str) -> tuple[dict[str, Any], httpx.Response]:
        if not _REPORT_ID.match(report_id):
            raise VendorContractError(f"here: report id {report_id!r} is not one HERE issues")
        path = _REPORT.format(realm=self._export.realm, report=report_id)
        body, response = self._api("GET", path, f"get usage report {report_id}")
        if not isinstance(body, dict):
            raise VendorContractError(f"here get usage report {report_id}: the answer is not a JSON object")
        return body, response

    @contextmanager
    def _output(self, plan: RunPlan, report_id: str, headers: Mapping[str, str]) -> Iterator[httpx.Response]:
        """``/output`` with the bearer token (a fresh one once after a 401 on a cached one); 404/410 explained."""
        path = _OUTPUT.format(realm=self._export.realm, report=report_id)
        gone: int | None = None
        for attempt in range(2):
            token, fresh = self._access_token()
            # identity: the file is gzip already, a second content-coding layer would only cost CPU.
            sent = {**self._headers(token, "application/x-gzip"), "Accept-Encoding": "identity", **headers}
            # If /output redirects to object storage, httpx drops Authorization on the cross-origin hop.
            with self._client.stream("GET", path, headers=sent) as response:
                if response.status_code == 401 and not fresh and attempt == 0:
                    self._forget_token(token)
                    continue
                if response.status_code in _GONE:
                    gone = response.status_code
                    break
                yield response
                return
        self._explain_gone(plan, report_id, gone)

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        """Stream ``/output`` (a gzip CSV) into the sink byte for byte; it is never inflated here.

        HERE does not document byte ranges on ``/output``: a download cut half-way goes on with ``Range``
        only if the answer offered them (``Accept-Ranges: bytes``, or a 206), and starts over otherwise.
        """
        if report_id is None or not _REPORT_ID.match(report_id):
            raise VendorContractError(f"here download for export {self._export.name!r}: no usable report id")
        action = f"download report {report_id}"
        counter = [CsvRecordCounter(gzip=True)]

        def restarted() -> None:
            counter[0] = CsvRecordCounter(gzip=True)

        def gzip_magic(head: bytes) -> None:
            if not head.startswith(_GZIP_MAGIC):
                raise VendorContractError(f"here download report {report_id}: the output is not a gzip file")

        with sink.open_resumable(dataset=DATASET, name=f"report-{report_id}.csv.gz", content_type="application/x-gzip",
                                 records=lambda: counter[0].records(),
                                 recount=lambda: CsvRecordCounter(gzip=True)) as out:
            # raw: with ``Content-Encoding: gzip`` iter_bytes would inflate the file on the way and the raw object
            # would no longer be the vendor's .csv.gz.
            download_file(out, lambda headers: self._output(plan, report_id, headers), vendor=VENDOR, action=action,
                          clock=self._clock, client=self._client, feed=lambda chunk: counter[0].feed(chunk),
                          restarted=restarted, raw=True, check_head=gzip_magic, head_size=len(_GZIP_MAGIC))

    def _explain_gone(self, plan: RunPlan, report_id: str, status: int | None) -> None:
        """``/output`` answered 404/410: say whether HERE archived the report or the file just vanished."""
        body, _ = self._status(plan, report_id)
        self._report_status(plan, report_id, body.get("status"))  # raises for archived or failed
        raise DownloadExpiredError(
            f"here report {report_id} for export {self._export.name!r} {plan.period}: the output answered "
            f"HTTP {status} although the report is {body.get('status')!r}"
        )
