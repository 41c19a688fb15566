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
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from report_exporter.adapters.auth import ClientCredentialsAuth
from report_exporter.adapters.base import Credentials, PollResult, RawSink, RequestResult, secret_field
from report_exporter.adapters.in_place import json_page
from report_exporter.clock import Clock
from report_exporter.errors import (
    ExporterError,
    ReportTimedOutError,
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
# The token endpoint answers refused client credentials with 401 (see facts.py); OAuth servers also
# use 400 invalid_client (RFC 6749 §5.2). Both mean the secret is wrong.
_TOKEN_REFUSED = (400, 401, 403)


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
        # Tokens are cached per process and replaced once after a 401 (see adapters/auth.py).
        self._auth = ClientCredentialsAuth(
            vendor=VENDOR, token_url=export.token_url, client_id=secret_field(credentials, "client_id", export),
            client_secret=secret_field(credentials, "client_secret", export), clock=clock, action="get access token",
            margin=_EXPIRY_MARGIN, default_lifetime=_DEFAULT_LIFETIME, refused_statuses=_TOKEN_REFUSED,
            refusal=f"export {export.name!r}: the token endpoint refused the client credentials in secret "
                    f"{export.secret_name!r}",
        )

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
        self._auth.token(self._client)
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
                # A page that fails (429, 5xx, a timeout) is asked for again in place (adapters/in_place.py).
                response, page = json_page(self._client, url, vendor=VENDOR, action=action, clock=self._clock,
                                           params=params, headers={"Accept": "application/json"}, auth=self._auth)
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
