"""Telnyx adapter: what each page request carries, how many pages are read, and what a malformed page's
error names (httpx.MockTransport, no sockets)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from report_exporter.errors import VendorContractError, VendorRequestError
from report_exporter.models.exports import ParticleExport, TelnyxExport
from report_exporter.vendors.telnyx.adapter import MAX_PAGES, TelnyxAdapter
from tests.fakes import MemorySink, plan_for

EXPORT = TelnyxExport(
    name="telnyx-messaging", secret_name="s/telnyx", product="messaging",
    dimensions=("direction",), metrics=("cost",),
)
NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


def adapter(answer: Callable[[httpx.Request], httpx.Response], export: TelnyxExport = EXPORT) -> TelnyxAdapter:
    client = build_client("https://api.telnyx.test/v2", transport=httpx.MockTransport(answer))
    return TelnyxAdapter(export, client, {"api_key": SecretStr("KEY-test")}, VirtualClock(NOW))


def serving(meta: Callable[[int], dict[str, Any]], seen: list[httpx.Request],
            rows: int = 1) -> Callable[[httpx.Request], httpx.Response]:
    """A vendor answering each page[number] with ``rows`` rows and ``meta(number)``."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        number = int(request.url.params["page[number]"])
        return httpx.Response(200, json={"meta": meta(number), "data": [{"direction": "outbound"}] * rows})

    return answer


def pages_asked(seen: list[httpx.Request]) -> list[int]:
    return [int(r.url.params["page[number]"]) for r in seen]


def test_telnyx_every_page_request_asks_for_json() -> None:
    # Given a report of two pages
    seen: list[httpx.Request] = []
    answer = serving(lambda n: {"total_pages": 2, "page_number": n}, seen)
    # When downloaded
    adapter(answer).download(plan_for(EXPORT), None, MemorySink())
    # Then both requests told Telnyx the answer must be JSON
    assert [r.headers["Accept"] for r in seen] == ["application/json", "application/json"]


@pytest.mark.parametrize("meta", [{"total_pages": 0, "total_results": 0}, {"total_results": 0}, {}],
                         ids=["zero-pages", "no-total-pages", "empty-meta"])
def test_telnyx_a_page_announcing_no_more_pages_is_the_only_one_asked_for(meta: dict[str, Any]) -> None:
    # Given a month without usage, whose page says 0 pages or nothing about pages
    seen: list[httpx.Request] = []
    sink = MemorySink()
    answer = serving(lambda n: meta, seen, rows=0)
    # When downloaded
    adapter(answer).download(plan_for(EXPORT), None, sink)
    # Then page 1 alone was fetched and kept
    assert pages_asked(seen) == [1]
    assert [o.records for o in sink.objects] == [0]


def test_telnyx_exactly_the_page_limit_is_read_and_one_more_is_refused() -> None:
    # Given a vendor announcing one page more than the adapter's guard allows
    seen: list[httpx.Request] = []
    answer = serving(lambda n: {"total_pages": MAX_PAGES + 1, "page_number": n}, seen)
    # When downloaded
    with pytest.raises(VendorContractError, match=rf"^telnyx usage report: more than {MAX_PAGES} pages announced$"):
        adapter(answer).download(plan_for(EXPORT), None, MemorySink())
    # Then the first MAX_PAGES pages were each read once before the error, and no page beyond them
    assert pages_asked(seen) == list(range(1, MAX_PAGES + 1))


@pytest.mark.parametrize("body", [
    [{"direction": "outbound"}],
    {"data": [{"direction": "outbound"}]},
    {"data": [{"direction": "outbound"}], "meta": []},
    {"meta": {"total_pages": 1}},
    {"meta": {"total_pages": 1}, "data": {"direction": "outbound"}},
], ids=["json-list", "no-meta", "meta-not-object", "no-data", "data-not-list"])
def test_telnyx_a_page_without_data_list_and_meta_object_names_the_page(body: Any) -> None:
    # Given a vendor whose second page is not a usage page
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params["page[number]"] == "1":
            return httpx.Response(200, json={"meta": {"total_pages": 2, "page_number": 1}, "data": []})
        return httpx.Response(200, json=body)

    # When downloaded / Then the contract error names the page and what it lacks, and nothing is kept
    sink = MemorySink()
    with pytest.raises(VendorContractError,
                       match=r"^telnyx usage report page 2: no 'data' list and 'meta' object$"):
        adapter(answer).download(plan_for(EXPORT), None, sink)
    assert sink.objects == []


@pytest.mark.parametrize("field", ["page_number", "total_pages", "total_results"])
def test_telnyx_a_meta_count_that_is_not_a_number_is_named(field: str) -> None:
    # Given a page whose meta spells one count as words
    def answer(request: httpx.Request) -> httpx.Response:
        meta: dict[str, Any] = {"total_pages": 1, "page_number": 1, "total_results": 1, field: "many"}
        return httpx.Response(200, json={"meta": meta, "data": [{"direction": "outbound"}]})

    # When downloaded / Then the error names the field and the value
    with pytest.raises(VendorContractError) as caught:
        adapter(answer).download(plan_for(EXPORT), None, MemorySink())
    assert str(caught.value) == f"telnyx usage report: meta.{field} is not a number ('many')"


@pytest.mark.parametrize("field", ["page_number", "total_pages", "total_results"])
def test_telnyx_a_negative_meta_count_is_named(field: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        meta: dict[str, Any] = {"total_pages": 1, "page_number": 1, "total_results": 1, field: " -3 "}
        return httpx.Response(200, json={"meta": meta, "data": [{"direction": "outbound"}]})

    with pytest.raises(VendorContractError) as caught:
        adapter(answer).download(plan_for(EXPORT), None, MemorySink())
    assert str(caught.value) == f"telnyx usage report: meta.{field} is negative (-3)"


def test_telnyx_a_refused_page_names_the_vendor_product_and_page() -> None:
    # Given a vendor that refuses page 2 of a wireless report
    export = EXPORT.model_copy(update={"product": "wireless"})

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params["page[number]"] == "2":
            return httpx.Response(400, json={"errors": [{"code": "10015", "title": "Bad Request"}]})
        return httpx.Response(200, json={"meta": {"total_pages": 2, "page_number": 1}, "data": []})

    # When downloaded / Then the operator reads which vendor, product and page failed
    with pytest.raises(VendorRequestError, match=r"^telnyx usage report wireless page 2: request refused \(HTTP 400\)"):
        adapter(answer, export).download(plan_for(export), None, MemorySink())


def test_telnyx_adapter_refuses_another_vendors_export() -> None:
    # Given a Particle export wired to the Telnyx adapter by mistake / Then the error says what it needs
    client = build_client("https://api.telnyx.test/v2", transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(TypeError) as caught:
        TelnyxAdapter(ParticleExport(name="particle-user", secret_name="s/p"), client, {"api_key": SecretStr("k")},
                      VirtualClock(NOW))
    assert str(caught.value) == "TelnyxAdapter needs a TelnyxExport"


def test_telnyx_poll_says_there_is_nothing_to_poll() -> None:
    with pytest.raises(VendorContractError) as caught:
        adapter(lambda r: httpx.Response(500)).poll(plan_for(EXPORT), "x")
    assert str(caught.value) == "telnyx usage reports are synchronous: there is no report to poll"
