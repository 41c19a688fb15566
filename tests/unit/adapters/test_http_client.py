"""The shared HTTP client: call budget, timeouts, retry hints and unreadable answers, through httpx.MockTransport."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from report_exporter import limits
from report_exporter.adapters.http_client import (
    build_client,
    json_body,
    raise_for_status,
    retry_after_seconds,
    send,
    stream,
)
from report_exporter.clock import VirtualClock
from report_exporter.errors import (
    VendorAuthError,
    VendorRequestError,
    VendorThrottledError,
    VendorUnavailableError,
)
from report_exporter.models.exports import ParticleExport
from report_exporter.vendors.particle.adapter import ParticleAdapter
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



def test_client_budget_at_exactly_the_margin_sends_nothing() -> None:
    vendor = Recorder()
    client = build_client(BASE, transport=httpx.MockTransport(vendor), remaining=lambda: limits.CALL_MARGIN_SECONDS)
    with pytest.raises(VendorUnavailableError, match="acme ping: timed out"):
        send(client, "GET", "/ping", vendor="acme", action="ping")
    assert vendor.timeouts == []


def test_client_budget_under_a_second_past_the_margin_still_sends_with_what_is_left() -> None:
    vendor = Recorder()
    client = build_client(BASE, transport=httpx.MockTransport(vendor), remaining=lambda: 5.5)
    send(client, "GET", "/ping", vendor="acme", action="ping")
    assert vendor.timeouts == [{"connect": 0.5, "read": 0.5, "write": 0.5, "pool": 0.5}]


def test_client_budget_bounds_a_request_sent_without_timeouts() -> None:
    # Given a call that turns httpx's timeouts off, 25 s left in the invocation
    vendor = Recorder()
    client = build_client(BASE, transport=httpx.MockTransport(vendor), remaining=lambda: 25.0)
    # When sent / Then every timeout is still the time left less the margin
    send(client, "GET", "/ping", vendor="acme", action="ping", timeout=None)
    assert vendor.timeouts == [{"connect": 20.0, "read": 20.0, "write": 20.0, "pool": 20.0}]


def test_client_names_itself_to_the_vendor_and_follows_redirects() -> None:
    # Given a vendor that redirects a download to storage
    seen: list[tuple[str, str]] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers["user-agent"]))
        if request.url.path == "/report":
            return httpx.Response(302, headers={"Location": "https://storage.test/r.csv"})
        return httpx.Response(200, text="a,b\n")

    client = build_client(BASE, transport=httpx.MockTransport(vendor))
    # When the first URL is fetched / Then the storage URL answered, and both heard who asked
    response = send(client, "GET", "/report", vendor="acme", action="download", ok=(200,))
    assert response.text == "a,b\n"
    assert seen == [("/report", "report-exporter/0.1.0"), ("/r.csv", "report-exporter/0.1.0")]


def failing(status: int, **kwargs: object) -> Exception:
    """The error ``send`` raises for a vendor answering ``status`` (with ``kwargs`` for the response)."""
    client = build_client(BASE, transport=httpx.MockTransport(lambda r: httpx.Response(status, **kwargs)))  # type: ignore[arg-type]
    with pytest.raises(Exception) as caught:
        send(client, "GET", "/x", vendor="acme", action="get x", now=NOW)
    return caught.value


@pytest.mark.parametrize(("status", "headers", "error", "said"), [
    (500, {}, VendorUnavailableError, "acme get x: vendor error (HTTP 500)"),
    (503, {}, VendorUnavailableError, "acme get x: vendor error (HTTP 503)"),
    (503, {"Retry-After": "7"}, VendorThrottledError, "acme get x: throttled (HTTP 503)"),
    (429, {}, VendorThrottledError, "acme get x: throttled (HTTP 429)"),
    (400, {"Retry-After": "7"}, VendorRequestError, "acme get x: request refused (HTTP 400)"),
    (404, {}, VendorRequestError, "acme get x: request refused (HTTP 404)"),
    (401, {}, VendorAuthError, "acme get x: credentials refused (HTTP 401)"),
    (403, {}, VendorAuthError, "acme get x: credentials refused (HTTP 403)"),
])
def test_send_maps_each_status_onto_the_error_vocabulary(status: int, headers: dict[str, str],
                                                         error: type[Exception], said: str) -> None:
    # Given an answer without a body / Then the right class, and a message with nothing after the status
    raised = failing(status, headers=headers)
    assert type(raised) is error and str(raised) == said


def test_send_503_with_a_hint_keeps_the_hint() -> None:
    raised = failing(503, headers={"Retry-After": "7"})
    assert isinstance(raised, VendorThrottledError) and raised.retry_after == 7


@pytest.mark.parametrize(("body", "detail"), [
    ({"error": "invalid_token", "error_description": "The token expired"}, "invalid_token; The token expired"),
    ({"message": "Slow down"}, "Slow down"),
    ({"detail": "No such report"}, "No such report"),
    ({"cause": "maintenance"}, "maintenance"),
    ({"code": 4711, "title": "Bad"}, "4711; Bad"),
    ({"errorCode": "E1"}, "E1"),
    ({"error": "same", "message": "same"}, "same"),
    ({"error": "", "message": None, "detail": ["x"], "cause": {"a": 1}, "title": "T"}, "T"),
    ({"errors": [{"code": "10001", "detail": "bad date"}, {"code": "2"}]}, "10001; bad date"),
    ({"error": {"code": 7, "message": "nested"}}, "7; nested"),
    ({"errors": []}, ""),
    ({"error": "see https://vendor.test/docs?sig=1  for  help"}, "see <url>  for  help"),
    (["not", "an", "object"], ""),
])
def test_error_messages_carry_the_vendors_own_words_without_links(body: object, detail: str) -> None:
    raised = failing(400, json=body)
    assert str(raised) == "acme get x: request refused (HTTP 400)" + (f": {detail}" if detail else "")


def test_error_message_without_a_json_body_has_no_detail() -> None:
    assert str(failing(502, text="<html>Bad gateway</html>")) == "acme get x: vendor error (HTTP 502)"


def test_error_of_a_streamed_answer_reads_its_body_for_the_detail() -> None:
    # Given a download that is refused with a JSON explanation, read as a stream
    client = build_client(BASE, transport=httpx.MockTransport(
        lambda r: httpx.Response(500, json={"message": "storage offline"})))
    # When its status is checked / Then the vendor's words are in the error
    with client.stream("GET", "/file") as response, pytest.raises(VendorUnavailableError) as caught:
        raise_for_status(response, vendor="acme", action="download", ok=(200,))
    assert str(caught.value) == "acme download: vendor error (HTTP 500): storage offline"


@pytest.mark.parametrize(("failure", "said"), [
    (httpx.ConnectError("refused"), "acme get x: connection failed (ConnectError)"),
    (httpx.ReadError("reset"), "acme get x: connection failed (ReadError)"),
    (httpx.ReadTimeout("slow"), "acme get x: timed out"),
])
def test_send_turns_transport_failures_into_vendor_unavailable(failure: Exception, said: str) -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        raise failure

    client = build_client(BASE, transport=httpx.MockTransport(vendor))
    with pytest.raises(VendorUnavailableError) as caught:
        send(client, "GET", "/x", vendor="acme", action="get x")
    assert str(caught.value) == said


@pytest.mark.parametrize(("headers", "hint"), [
    ({"Retry-After": "0.5"}, 0.5),
    ({"Retry-After": "-3"}, 0.0),
    ({"Retry-After": "Tue, 03 Nov 2026 06:02:00 -0000"}, 120.0),
    ({"Retry-After": "Tue, 03 Nov 2026 07:02:00 +0100"}, 120.0),
    ({"x-ratelimit-reset": "0.25"}, 0.25),
    ({"x-ratelimit-reset": "-1"}, 0.0),
    ({"x-ratelimit-reset": "later"}, None),
    ({"Retry-After": "", "x-ratelimit-reset": "9"}, 9.0),
    ({}, None),
])
def test_retry_hints_in_seconds_dates_or_rate_limit_resets(headers: dict[str, str], hint: float | None) -> None:
    assert retry_after_seconds(httpx.Response(429, headers=headers), now=NOW) == hint


def test_retry_after_date_without_a_clock_is_counted_from_real_time() -> None:
    # A date long past is "now" against any real clock
    response = httpx.Response(429, headers={"Retry-After": "Mon, 01 Jan 1990 00:00:00 GMT"})
    assert retry_after_seconds(response) == 0.0


@pytest.mark.parametrize(("headers", "shown"), [
    ({}, "'no content type'"),
    ({"Content-Type": "text/html; " + "x" * 100}, repr("text/html; " + "x" * 69)),
])
def test_unreadable_answer_names_its_content_type_cut_to_80_characters(headers: dict[str, str], shown: str) -> None:
    response = httpx.Response(200, content=b"<html>", headers=headers)
    with pytest.raises(VendorUnavailableError) as caught:
        json_body(response, vendor="acme", action="x")
    assert f"(HTTP 200, {shown}, 6 bytes)" in str(caught.value)


def preview_of(body: bytes) -> str:
    with pytest.raises(VendorUnavailableError) as caught:
        json_body(httpx.Response(200, content=body), vendor="acme", action="x")
    return str(caught.value).split(" starting ", 1)[1]


def test_unreadable_answer_preview_shows_control_bytes_and_bad_utf8_as_blanks_and_replacements() -> None:
    assert preview_of(b"<p>\x00\x07bad\xff\xfeend</p>") == repr("<p> bad\ufffd\ufffdend</p>")


def test_unreadable_answer_preview_of_exactly_40_characters_is_whole() -> None:
    forty = b"<p>" + b"ab " * 10 + b"ab.</p>"
    assert len(forty) == 40 and preview_of(forty) == repr(forty.decode())
    assert preview_of(forty + b"!") == repr(forty.decode()[:39] + "…")


def test_unreadable_answer_preview_blanks_the_last_word_only_when_the_body_was_cut() -> None:
    # The last word of a body longer than what is scanned may be the start of a secret
    long = b"ab cd " + b"<" * 5000
    assert preview_of(long) == repr("ab cd …")
    # A body of exactly the scanned size was not cut
    whole = b"ab cd " + b"<" * (4096 - 6)
    assert preview_of(whole) == repr("ab cd " + "<" * 33 + "…")


class _BreaksAfterOneChunk(httpx.SyncByteStream):
    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    def __iter__(self) -> Iterator[bytes]:
        yield b"first,chunk\n"
        raise self.failure


@pytest.mark.parametrize(("failure", "said"), [
    (httpx.ReadTimeout("read timed out"), "timed out"),
    (httpx.RemoteProtocolError("peer closed connection"), "connection failed (RemoteProtocolError)"),
])
def test_stream_maps_a_failure_while_reading_the_body(failure: Exception, said: str) -> None:
    # Given a vendor whose body breaks after the first chunk
    client = build_client("https://vendor.test", transport=httpx.MockTransport(
        lambda request: httpx.Response(200, stream=_BreaksAfterOneChunk(failure))))
    got: list[bytes] = []

    # When the body is streamed / Then the failure is a VendorUnavailableError naming no URL
    with pytest.raises(VendorUnavailableError) as raised, \
            stream(client, "GET", "/file?sig=abc", vendor="acme", action="download file") as response:
        for chunk in response.iter_bytes():
            got.append(chunk)
    assert str(raised.value) == f"acme download file: {said}"
    assert got == [b"first,chunk\n"]  # what came before the failure reached the caller


def test_stream_maps_a_failure_to_connect() -> None:
    # Given a vendor that cannot be reached
    def vendor(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("connect timed out", request=request)

    # When a stream is opened / Then the failure is a VendorUnavailableError
    with pytest.raises(VendorUnavailableError, match=r"^acme download file: timed out$"), \
            stream(build_client("https://vendor.test", transport=httpx.MockTransport(vendor)), "GET", "/file",
                   vendor="acme", action="download file"):
        pass
