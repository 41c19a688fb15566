"""KORE Wireless usage records: a synchronous, paginated JSON list behind an OAuth2 token (see facts.py).

Docs: https://docs.korewireless.com/en-us/api/products/programmable-wireless/account-usagerecord-resource,
https://docs.korewireless.com/en-us/developers/api-management/auth and the spec in
https://github.com/korewireless/kore-openapi (``ProgrammableWireless/yaml/kore-programmable-wireless-v1.yaml``).

Every page's JSON body is kept verbatim as one line of a JSON-lines raw file; the dataset flattens it.
A page that fails (429, 5xx, a timeout) is asked for again in place; when the Lambda must give up, the
next attempt resumes at the ``next_page_url`` that followed the last page kept in S3.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from report_exporter.adapters.base import Credentials, PollResult, RawSink, RequestResult, secret_field
from report_exporter.adapters.http_client import json_body, raise_for_status, send, vendor_detail
from report_exporter.adapters.in_place import InPlace
from report_exporter.clock import Clock
from report_exporter.errors import (
    ExporterError,
    ReportTimedOutError,
    VendorAuthError,
    VendorContractError,
)
from report_exporter.models.exports import ExportBase, KoreExport
from report_exporter.models.payloads import JobStatus, RunPlan
from report_exporter.observability import logger
from report_exporter.vendors.base import Cadence
from report_exporter.vendors.kore.export import page_meta, page_records
from report_exporter.vendors.kore.facts import CADENCE, MAX_PAGE_SIZE, SETTLE_TIME

VENDOR = "kore"
DATASET = "kore_usage_records"
CONTENT_TYPE = "application/x-ndjson"

_ACCOUNT_RECORDS = "/v1/UsageRecords"
_SIM_RECORDS = "/v1/Sims/{sim}/UsageRecords"
# The largest PageSize (see facts.py): fewer pages, fewer requests.
PAGE_SIZE = MAX_PAGE_SIZE
# A token is used only until this close to its expiry, so a page request never races the deadline.
_EXPIRY_MARGIN = timedelta(seconds=60)
# Used when the token answer has no expires_in (RFC 6749 §5.1 makes it only RECOMMENDED).
_DEFAULT_LIFETIME = timedelta(minutes=5)
# A short Retry-After (or a 5xx, a timeout) between pages is waited out in the Lambda; a longer one fails
# the task and Step Functions retries DownloadReport with backoff, which resumes after the pages kept.
_MAX_INLINE_WAIT = 20.0
_MAX_INLINE_WAITS = 3
_IN_PLACE = InPlace(tries=_MAX_INLINE_WAITS + 1, max_wait=_MAX_INLINE_WAIT)
# The token endpoint answers refused client credentials with 401 (see facts.py); OAuth servers also
# use 400 invalid_client (RFC 6749 §5.2). Both mean the secret is wrong.
_TOKEN_REFUSED = (400, 401, 403)


@dataclass(frozen=True)
class _Token:
    value: SecretStr
    expires_at: datetime


# In-process token cache shared by every KoreAdapter (and so by every call a warm Lambda serves).
# Keyed by a hash of token URL and client id; holds SecretStr values only, and is never logged.
_TOKENS: dict[str, _Token] = {}
_TOKENS_LOCK = threading.Lock()


def clear_token_cache() -> None:
    """Forget every cached token (tests; a rotated secret needs nothing: a refused token is dropped)."""
    with _TOKENS_LOCK:
        _TOKENS.clear()


def _cache_key(token_url: str, client_id: str) -> str:
    return hashlib.sha256(f"{token_url}\n{client_id}".encode()).hexdigest()


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(content: bytes) -> bytes:
    """The page body as one JSON line: raw newlines in valid JSON are only insignificant whitespace."""
    return content.strip().replace(b"\r", b" ").replace(b"\n", b" ") + b"\n"


class KoreAdapter:
    """Account usage records (``/v1/UsageRecords``) or one SIM's (``/v1/Sims/{sim}/UsageRecords``)."""

    cadence: Cadence = CADENCE
    timeout_error: type[ExporterError] = ReportTimedOutError

    def __init__(self, export: ExportBase, client: httpx.Client, credentials: Credentials, clock: Clock) -> None:
        if not isinstance(export, KoreExport):
            raise TypeError("KoreAdapter needs a KoreExport")
        self._export = export
        self._client = client
        self._clock = clock
        self._client_id = secret_field(credentials, "client_id", export)
        self._client_secret = secret_field(credentials, "client_secret", export)
        self._cache_key = _cache_key(export.token_url, self._client_id.get_secret_value())

    # Tokens.
    def _token(self) -> tuple[SecretStr, bool]:
        """A valid access token and whether it was issued just now (a cached one may have been revoked)."""
        # Held across the token request: executions running side by side in one process (the local
        # runner) then share one token instead of each asking for its own.
        with _TOKENS_LOCK:
            cached = _TOKENS.get(self._cache_key)
            if cached is not None and self._clock.now() < cached.expires_at:
                return cached.value, False
            token = self._issue_token()
            _TOKENS[self._cache_key] = token
            return token.value, True

    def _drop_token(self, value: SecretStr) -> None:
        with _TOKENS_LOCK:
            cached = _TOKENS.get(self._cache_key)
            if cached is not None and cached.value.get_secret_value() == value.get_secret_value():
                del _TOKENS[self._cache_key]

    def _issue_token(self) -> _Token:
        action = "get access token"
        issued_at = self._clock.now()
        response = send(
            self._client,
            "POST",
            self._export.token_url,
            vendor=VENDOR,
            action=action,
            ok=(200, *_TOKEN_REFUSED),
            now=issued_at,
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id.get_secret_value(),
                "client_secret": self._client_secret.get_secret_value(),
            },
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            detail = self._scrub(vendor_detail(response))
            suffix = f": {detail}" if detail else ""
            raise VendorAuthError(
                f"kore {action}: export {self._export.name!r}: the token endpoint refused the client credentials "
                f"in secret {self._export.secret_name!r} (HTTP {response.status_code}){suffix}"
            )
        body = json_body(response, vendor=VENDOR, action=action)
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise VendorContractError(f"kore {action}: no access_token in the answer")
        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise VendorContractError(f"kore {action}: token_type {token_type!r} is not Bearer")
        lifetime = _DEFAULT_LIFETIME
        expires_in = body.get("expires_in")
        if expires_in is not None:
            try:
                lifetime = timedelta(seconds=float(expires_in))
            except (TypeError, ValueError):
                raise VendorContractError(f"kore {action}: expires_in {expires_in!r} is not a number") from None
        margin = min(_EXPIRY_MARGIN, lifetime / 10)
        return _Token(SecretStr(value), issued_at + lifetime - margin)

    def _scrub(self, text: str) -> str:
        """Vendor error text with the client id and secret blanked, in case the vendor echoes them."""
        for secret in (self._client_id, self._client_secret):
            value = secret.get_secret_value()
            if value:
                text = text.replace(value, "***")
        return text

    # API calls.
    def _page(self, url: str, params: dict[str, str] | None, action: str) -> tuple[httpx.Response, Any]:
        """One page and its JSON body, asked for again in place on a transient failure."""

        def once() -> tuple[httpx.Response, Any]:
            response = self._get(url, params, action)
            return response, json_body(response, vendor=VENDOR, action=action)

        return _IN_PLACE.call(once, clock=self._clock, client=self._client)

    def _get(self, url: str, params: dict[str, str] | None, action: str) -> httpx.Response:
        """GET with the Bearer token; a 401 on a cached token gets one retry with a fresh one."""
        refreshed = False
        while True:
            token, fresh = self._token()
            headers = {"Authorization": f"Bearer {token.get_secret_value()}", "Accept": "application/json"}
            response = send(
                self._client, "GET", url, vendor=VENDOR, action=action, ok=(200, 401), params=params,
                headers=headers, now=self._clock.now(),
            )
            if response.status_code == 200:
                return response
            if fresh or refreshed:
                raise_for_status(response, vendor=VENDOR, action=action, ok=(200,), now=self._clock.now())
            # A cached token may have been revoked or may have expired early on KORE's side.
            self._drop_token(token)
            refreshed = True

    def _first_path(self) -> str:
        if self._export.sim_sid:
            return _SIM_RECORDS.format(sim=quote(self._export.sim_sid, safe=""))
        return _ACCOUNT_RECORDS

    def _next_url(self, page: dict[str, Any], number: int) -> str | None:
        """The next page's URL, checked to stay on the configured API host with the same scheme.

        ``next_page_url`` is absolute (Twilio-style); a relative one is resolved against the base URL.
        Following it elsewhere would hand the Bearer token to another host.
        """
        raw = page_meta(page).get("next_page_url")
        if raw in (None, ""):
            return None
        if not isinstance(raw, str):
            raise VendorContractError(f"kore list usage records page {number}: meta.next_page_url is not a string")
        base = self._client.base_url
        target = base.join(raw)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise VendorContractError(
                f"kore list usage records page {number}: next_page_url points to host {target.host!r}, not the "
                f"configured API host {base.host!r}; refusing to send the token there"
            )
        return str(target)

    # The three verbs.
    def request(self, plan: RunPlan) -> RequestResult:
        """Check the client credentials now (fail fast, warm the token cache); the data is read by ``download``."""
        self._token()
        if self._clock.now() < plan.window.end + SETTLE_TIME:
            logger.warning(
                "KORE usage may still be settling: it is processed within 48 h of when it occurred",
                extra={"export": self._export.name, "period": plan.period},
            )
        return RequestResult(status=JobStatus.READY, report_id=None)

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        # Never called: a synchronous vendor skips the wait loop.
        return PollResult(status=JobStatus.READY, detail="synchronous")

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        """Page through the window's usage records, one raw JSON line per page, following ``next_page_url``.

        Raises:
            VendorAuthError: the credentials or the token were refused.
            VendorContractError: a page without a ``usage_records`` list, a foreign or repeated next page.
        """
        start, end = self._export.query_range(plan.window)
        first = {
            "Start": _utc(start),
            "End": _utc(end),
            "Granularity": self._export.granularity,
            "PageSize": str(PAGE_SIZE),
        }
        params: dict[str, str] | None = first
        url: str | None = self._first_path()
        query = hashlib.sha256(f"{url}?{sorted(first.items())}".encode()).hexdigest()[:16]
        seen: set[str] = set()
        pages = records = 0
        name = f"{plan.run_name}-usage-records.jsonl"
        with sink.open_resumable(dataset=DATASET, name=name, content_type=CONTENT_TYPE,
                                 records=lambda: records) as out:
            saved = out.resumed
            if saved is not None and saved.get("query") == query:
                # The pages up to the saved next page are kept: go on from there (its URL carries the query).
                following = saved.get("next")
                url = None if following is None else str(self._client.base_url.join(str(following)))
                params = None
                pages, records, seen = int(saved["pages"]), int(saved["records"]), set(saved["seen"])
            elif saved is not None:
                out.restart()
            while url is not None:
                pages += 1
                action = f"list usage records page {pages}"
                response, page = self._page(url, params, action)
                listed = page_records(page)
                if listed is None:
                    raise VendorContractError(f"kore {action}: no 'usage_records' list in the answer")
                out.write(_one_line(response.content))
                records += len(listed)
                url = self._next_url(page, pages)
                if url is not None:
                    # Hashes: the repeat check survives a resume in a few bytes per page.
                    mark = hashlib.sha256(url.encode()).hexdigest()[:16]
                    if mark in seen:
                        raise VendorContractError(f"kore {action}: next_page_url repeats an earlier page")
                    seen.add(mark)
                # The next URL carries the query (Start, End, PageToken...) itself.
                params = None
                # Kept as a path on the API host (the only host _next_url follows), never a full URL.
                following = None if url is None else httpx.URL(url).raw_path.decode("ascii")
                out.checkpoint({"query": query, "next": following, "pages": pages, "records": records,
                                "seen": sorted(seen)})
        logger.info("kore usage records downloaded", extra={"pages": pages, "records": records})
