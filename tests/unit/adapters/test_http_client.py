"""The shared HTTP client: call budget, timeouts, retry hints and unreadable answers, through httpx.MockTransport."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from report_exporter import limits
from report_exporter.adapters.http_client import build_client, json_body, retry_after_seconds, send
from report_exporter.adapters.particle import ParticleAdapter
from report_exporter.clock import VirtualClock
from report_exporter.errors import VendorThrottledError, VendorUnavailableError
from report_exporter.models.exports import ParticleExport
from tests.fakes import MemorySink, plan_for

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
BASE = "https://vendor.test"


class Recorder:
    """A vendor that answers 200 and keeps the timeouts each request arrived with."""

    def __init__(self) -> None:
        self.timeouts: list[dict[str, float | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.timeouts.append(dict(request.extensions["timeout"]))
        return httpx.Response(200, json={"ok": True})


def test_client_without_a_budget_uses_the_default_ceilings() -> None:
    # Given a client built outside Lambda (no remaining time)
    vendor = Recorder()
    client = build_client(BASE, transport=httpx.MockTransport(vendor))
    # When a request is sent
    send(client, "GET", "/ping", vendor="acme", action="ping")
    # Then it carries the ceilings from limits: connect 10 s, everything else 60 s
    assert vendor.timeouts == [{"connect": limits.CONNECT_TIMEOUT_SECONDS, "read": limits.READ_TIMEOUT_SECONDS,
                                "write": limits.READ_TIMEOUT_SECONDS, "pool": limits.READ_TIMEOUT_SECONDS}]


def test_client_budget_lowers_every_timeout_to_the_time_left_less_the_margin() -> None:
    # Given 20 s left in the invocation
    vendor = Recorder()
    client = build_client(BASE, transport=httpx.MockTransport(vendor), remaining=lambda: 20.0)
    # When a request is sent
    send(client, "GET", "/ping", vendor="acme", action="ping")
    # Then it must end 5 s before the invocation does; the shorter connect ceiling stays
    assert vendor.timeouts == [{"connect": 10.0, "read": 15.0, "write": 15.0, "pool": 15.0}]


def test_client_budget_follows_the_clock_request_by_request() -> None:
    # Given an invocation whose time runs out between two calls
    vendor = Recorder()
    left = iter([65.0, 12.5])
    client = build_client(BASE, transport=httpx.MockTransport(vendor), remaining=lambda: next(left))
    # When two requests are sent
    send(client, "GET", "/a", vendor="acme", action="a")
    send(client, "GET", "/b", vendor="acme", action="b")
    # Then the first keeps the ceilings and the second gets what is left
    assert [t["read"] for t in vendor.timeouts] == [60.0, 7.5]
    assert vendor.timeouts[1]["connect"] == 7.5


def test_client_with_no_time_left_sends_nothing_and_raises_vendor_unavailable() -> None:
    # Given 3 s left, less than the 5 s margin
    vendor = Recorder()
    client = build_client(BASE, transport=httpx.MockTransport(vendor), remaining=lambda: 3.0)
    # When a call is attempted
    with pytest.raises(VendorUnavailableError, match="acme get status: timed out"):
        send(client, "GET", "/status", vendor="acme", action="get status")
    # Then the vendor never heard of it (the state machine retries in a fresh invocation)
    assert vendor.timeouts == []


def test_streaming_download_with_no_time_left_raises_vendor_unavailable() -> None:
    # Given a ready Particle report and an invocation with time for the status call only
    seen: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        url = "https://storage.test/r/7.csv?X-Amz-Signature=sig"
        return httpx.Response(200, json={"data": {"id": "7", "attributes": {"state": "available",
                                                                              "download_url": url}}})

    left = iter([30.0])
    client = build_client("https://api.particle.test", transport=httpx.MockTransport(vendor),
                          remaining=lambda: next(left, 4.0))
    export = ParticleExport(name="particle-user", secret_name="s/particle")
    adapter = ParticleAdapter(export, client, {"access_token": SecretStr("t")}, VirtualClock(NOW))
    sink = MemorySink()
    # When downloaded / Then the download is not started, nothing is kept, and the error is transient
    with pytest.raises(VendorUnavailableError, match="particle download report 7: timed out"):
        adapter.download(plan_for(export), "7", sink)
    assert seen == ["/v1/user/usage_reports/7"]
    assert sink.objects == []


def test_retry_after_http_date_is_counted_from_the_callers_clock() -> None:
    # Given a virtual clock at 06:00 and a 429 asking to come back at 06:02 (an HTTP date)
    clock = VirtualClock(NOW)
    response = httpx.Response(429, headers={"Retry-After": "Tue, 03 Nov 2026 06:02:00 GMT"})
    # When the hint is read against the clock, and again after 90 s of virtual time
    first = retry_after_seconds(response, now=clock.now())
    clock.advance(90)
    second = retry_after_seconds(response, now=clock.now())
    # Then the waits are two minutes, then 30 s; a date already past means "now"
    assert (first, second) == (120.0, 30.0)
    clock.advance(3600)
    assert retry_after_seconds(response, now=clock.now()) == 0.0


def test_send_passes_the_clock_reading_to_the_throttle_hint() -> None:
    # Given a vendor throttling with an HTTP-date Retry-After 45 s after the virtual now
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "Tue, 03 Nov 2026 06:00:45 GMT"})

    client = build_client(BASE, transport=httpx.MockTransport(vendor))
    # When a call is sent with the clock's time / Then the hint is 45 s
    with pytest.raises(VendorThrottledError) as caught:
        send(client, "GET", "/x", vendor="acme", action="x", now=NOW)
    assert caught.value.retry_after == 45.0


def test_retry_after_that_is_neither_seconds_nor_a_date_is_no_hint() -> None:
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"}), now=NOW) is None


def test_unreadable_answer_preview_blanks_links_and_token_like_runs() -> None:
    # Given a 200 whose body is a proxy page quoting a signed link and a token
    body = (b"<p>Upstream said: token=AbCdEfGhIjKlMnOpQrStUv09 at "
            b"https://bucket.s3.amazonaws.com/k?X-Amz-Signature=0123 ok</p>")
    response = httpx.Response(200, content=body, headers={"Content-Type": "text/html; charset=utf-8"})
    # When read as JSON
    with pytest.raises(VendorUnavailableError) as caught:
        json_body(response, vendor="acme", action="list things")
    # Then the preview is short and keeps the harmless words only
    message = str(caught.value)
    assert "'<p>Upstream said: token=… at … ok</p>'" in message
    assert "AbCdEfGhIjKlMnOpQrStUv09" not in message and "amazonaws" not in message
    assert f"(HTTP 200, 'text/html; charset=utf-8', {len(body)} bytes)" in message


def test_unreadable_answer_preview_is_at_most_40_characters() -> None:
    response = httpx.Response(200, content=b"<!doctype html> " + b"word " * 1000)
    with pytest.raises(VendorUnavailableError) as caught:
        json_body(response, vendor="acme", action="x")
    preview = str(caught.value).split(" starting ", 1)[1]
    assert len(preview) <= 40 + 2  # the quotes
    assert preview.endswith("…'")

