"""A vendor page asked for again in place (adapters.in_place): what the vendor is sent, the waits slept on virtual
time, the cap on a vendor's Retry-After, the invocation's remaining time, and the errors that go to Step Functions.

tests/unit/adapters/test_telnyx.py and test_resume.py run the same code through the vendors' adapters.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from report_exporter.adapters.http_client import build_client
from report_exporter.adapters.in_place import PAGES, InPlace, json_page
from report_exporter.errors import (
    VendorRequestError,
    VendorThrottledError,
    VendorUnavailableError,
)
from tests.fakes import SleepLog

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
PAGE = b'{"data": [{"units": 17}], "meta": {"page_number": 3}}'

Answer = Callable[[httpx.Request], httpx.Response]


class Vendor:
    """Plays ``answers`` one per request, then answers the page; keeps every request."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            return self.answers.pop(0)
        return httpx.Response(200, content=PAGE, headers={"Content-Type": "application/json"})


def page(vendor: Vendor, clock: SleepLog, *, seconds_left: float | None = None,
         policy: InPlace = PAGES) -> tuple[httpx.Response, object]:
    remaining = None
    if seconds_left is not None:
        deadline = NOW + timedelta(seconds=seconds_left)
        remaining = lambda: (deadline - clock.now()).total_seconds()  # noqa: E731
    client = build_client("https://api.acme.test", transport=httpx.MockTransport(vendor), remaining=remaining)
    return json_page(client, "/v2/usage", vendor="acme", action="usage report page 3", clock=clock, policy=policy,
                     params={"page": 3})


def throttled(retry_after: str) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": retry_after}, json={"errors": [{"title": "Too many"}]})


def test_json_page_asks_again_for_the_same_page_after_a_503_and_an_unreadable_200() -> None:
    # Given a vendor that fails twice before answering the page
    vendor, clock = Vendor(httpx.Response(503), httpx.Response(200, content=b"<html>oops</html>")), SleepLog(NOW)
    # When the page is read
    response, body = page(vendor, clock)
    # Then the same GET was sent three times, 1 s and 2 s apart, and the page came back verbatim and parsed
    assert [(r.method, str(r.url)) for r in vendor.requests] == [("GET", "https://api.acme.test/v2/usage?page=3")] * 3
    assert clock.sleeps == [1.0, 2.0]
    assert response.content == PAGE and body == {"data": [{"units": 17}], "meta": {"page_number": 3}}


def test_json_page_gives_up_after_five_calls_naming_the_vendor_and_the_page() -> None:
    vendor, clock = Vendor(*[httpx.Response(200, content=b"")] * 5), SleepLog(NOW)
    with pytest.raises(VendorUnavailableError) as caught:
        page(vendor, clock)
    assert str(caught.value).startswith("acme usage report page 3: expected JSON, got an empty answer (HTTP 200")
    assert len(vendor.requests) == 5 and clock.sleeps == [1.0, 2.0, 4.0, 8.0]


def test_json_page_a_5xx_that_persists_names_the_vendor_and_the_page() -> None:
    vendor, clock = Vendor(*[httpx.Response(502)] * 5), SleepLog(NOW)
    with pytest.raises(VendorUnavailableError, match=r"^acme usage report page 3: vendor error \(HTTP 502\)$"):
        page(vendor, clock)


def test_json_page_an_answer_other_than_200_is_not_a_page() -> None:
    # Given a vendor that answers 202 (accepted, nothing to read yet)
    vendor, clock = Vendor(httpx.Response(202, json={"status": "queued"})), SleepLog(NOW)
    # When the page is read / Then it is a refused request, not an empty page, and it is not retried
    with pytest.raises(VendorRequestError, match=r"^acme usage report page 3: request refused \(HTTP 202\)"):
        page(vendor, clock)
    assert len(vendor.requests) == 1 and clock.sleeps == []


@pytest.mark.parametrize(("retry_after", "slept"), [("60", True), ("61", False)])
def test_json_page_sleeps_a_retry_after_up_to_a_minute(retry_after: str, slept: bool) -> None:
    vendor, clock = Vendor(throttled(retry_after)), SleepLog(NOW)
    if slept:
        page(vendor, clock)
        assert clock.sleeps == [60.0] and len(vendor.requests) == 2
    else:
        # Then a longer wait is left to Step Functions, with the vendor's hint
        with pytest.raises(VendorThrottledError) as caught:
            page(vendor, clock)
        assert caught.value.retry_after == 61.0 and clock.sleeps == [] and len(vendor.requests) == 1


def test_json_page_counts_a_retry_after_date_on_the_runs_clock() -> None:
    # Given a 503 asking to come back at a date 30 s after the run's (virtual) now
    when = email.utils.format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    vendor, clock = Vendor(httpx.Response(503, headers={"Retry-After": when})), SleepLog(NOW)
    # When the page is read / Then 30 s were slept, whatever the machine's own clock says
    page(vendor, clock)
    assert clock.sleeps == [30.0]


@pytest.mark.parametrize(("seconds_left", "retried"), [(16.0, True), (15.9, False)],
                         ids=["exactly room for the wait and a call", "just short of it"])
def test_json_page_retries_only_while_the_wait_and_one_more_call_fit(seconds_left: float, retried: bool) -> None:
    # Given a 503 (1 s wait) with 16 s left: 5 s call margin + 1 s wait + 10 s for a connection
    vendor, clock = Vendor(httpx.Response(503)), SleepLog(NOW)
    if retried:
        page(vendor, clock, seconds_left=seconds_left)
        assert clock.sleeps == [1.0] and len(vendor.requests) == 2
    else:
        with pytest.raises(VendorUnavailableError):
            page(vendor, clock, seconds_left=seconds_left)
        assert clock.sleeps == [] and len(vendor.requests) == 1


def test_in_place_call_doubles_its_first_backoff_and_stops_at_its_tries() -> None:
    clock = SleepLog(NOW)
    client = build_client("https://api.acme.test", transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    failures: list[int] = []

    def request() -> None:
        failures.append(1)
        raise VendorUnavailableError("acme usage: timed out")

    with pytest.raises(VendorUnavailableError, match="acme usage: timed out"):
        InPlace(tries=4, max_wait=60.0, first_backoff=0.5).call(request, clock=clock, client=client)
    assert len(failures) == 4 and clock.sleeps == [0.5, 1.0, 2.0]
