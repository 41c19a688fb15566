"""How the token flows read what a token endpoint answers: which answers give a token and for how long on
the run's clock, and which are errors naming the vendor and what failed, without any secret."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters import auth
from report_exporter.adapters.auth import ClientCredentialsAuth, TokenCache
from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from report_exporter.errors import (
    VendorAuthError,
    VendorContractError,
    VendorRequestError,
    VendorThrottledError,
    VendorUnavailableError,
)
from tests.unit.adapters.test_auth import BASE, CLIENT_ID, CLIENT_SECRET, NOW, TOKEN_URL

REFUSAL = "export 'acme-main': the token endpoint refused the client credentials in secret 'acme/main'"


@pytest.fixture(autouse=True)
def _new_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Each test is a cold Lambda container: a token cache of its own.
    monkeypatch.setattr(auth, "TOKENS", TokenCache())
    yield


class Vendor:
    """A token endpoint giving ``answer()`` each time, and an API accepting anything, recording its calls."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.token_calls = 0
        self.api_auth: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.token_calls += 1
            response: httpx.Response = self.answer() if callable(self.answer) else self.answer
            return response
        self.api_auth.append(request.headers.get("authorization", ""))
        return httpx.Response(200, json={"ok": True})


def credentials_auth(clock: VirtualClock) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        vendor="acme", token_url=TOKEN_URL, client_id=SecretStr(CLIENT_ID), client_secret=SecretStr(CLIENT_SECRET),
        clock=clock, action="get access token", margin=timedelta(seconds=60),
        default_lifetime=timedelta(minutes=5), refusal=REFUSAL,
    )


def call(vendor: Vendor, clock: VirtualClock) -> httpx.Response:
    client = build_client(BASE, transport=httpx.MockTransport(vendor))
    return client.get("/v1/things", auth=credentials_auth(clock))


# Answers that give a token.


def test_a_camel_case_answer_gives_a_token_for_its_own_lifetime() -> None:
    # Given a token endpoint answering in camelCase (as HERE does to JSON requests), two hours, no default used
    vendor = Vendor(lambda: httpx.Response(200, json={"accessToken": "tok-camel", "tokenType": "Bearer",
                                                      "expiresIn": 7200}))
    clock = VirtualClock(NOW)

    # When calls go out an hour apart, then just before and at the renewal point (7200 s less the 60 s margin)
    call(vendor, clock)
    clock.advance(3600)
    call(vendor, clock)
    clock.advance(3539)
    call(vendor, clock)
    assert vendor.token_calls == 1
    clock.advance(1)
    call(vendor, clock)

    # Then the token was sent as a bearer and replaced only at 7140 s
    assert vendor.api_auth == ["Bearer tok-camel"] * 4
    assert vendor.token_calls == 2


def test_a_one_second_token_is_used_then_renewed_a_tenth_of_its_life_early() -> None:
    # Given tokens that live one second (the margin shrinks to a tenth of that)
    vendor = Vendor(lambda: httpx.Response(200, json={"access_token": "tok-short", "expires_in": 1}))
    clock = VirtualClock(NOW)

    # When calls go out at 0 s, 0.8 s and 0.9 s
    call(vendor, clock)
    clock.advance(0.8)
    call(vendor, clock)
    assert vendor.token_calls == 1
    clock.advance(0.1)
    call(vendor, clock)

    # Then the token served the first two and was renewed for the third
    assert vendor.token_calls == 2


# Answers that are errors.


@pytest.mark.parametrize(("content", "said"), [
    (b"[]", "acme get access token: the answer is not a JSON object"),
    (b'{"access_token": 12345, "token_type": "bearer"}', "acme get access token: no access_token in the answer"),
    (b'{"accessToken": "t", "tokenType": "MAC"}', "acme get access token: token type 'MAC', expected 'bearer'"),
    (b'{"access_token": "t", "expires_in": 1e999}', "acme get access token: expires_in inf is not positive"),
])
def test_an_unusable_token_answer_is_a_contract_error_naming_the_vendor(content: bytes, said: str) -> None:
    # Given a token endpoint answering 200 with JSON that holds no usable token
    vendor = Vendor(httpx.Response(200, content=content, headers={"Content-Type": "application/json"}))

    # When a call needs a token / Then the error names the vendor, the request and what is wrong
    with pytest.raises(VendorContractError) as raised:
        call(vendor, VirtualClock(NOW))
    assert str(raised.value) == said
    # And the API was never called with it
    assert vendor.api_auth == []


def test_a_non_json_token_answer_is_unavailable_naming_the_vendor() -> None:
    # Given a gateway answering the token request with an HTML page and a 200
    vendor = Vendor(httpx.Response(200, text="<html>maintenance</html>", headers={"Content-Type": "text/html"}))

    # When a call needs a token / Then the retryable error names the vendor and the request
    with pytest.raises(VendorUnavailableError, match=r"^acme get access token: expected JSON, got an unreadable"):
        call(vendor, VirtualClock(NOW))


def test_only_a_200_answer_carries_a_token() -> None:
    # Given a token endpoint answering 201 with what looks like a token (RFC 6749 §5.1 says 200)
    vendor = Vendor(httpx.Response(201, json={"access_token": "tok-201", "token_type": "bearer"}))

    # When a call needs a token / Then it is refused, and nothing reaches the API
    with pytest.raises(VendorRequestError) as raised:
        call(vendor, VirtualClock(NOW))
    assert str(raised.value) == "acme get access token: request refused (HTTP 201)"
    assert vendor.api_auth == []


def test_a_throttled_token_endpoint_date_hint_is_counted_on_the_runs_clock() -> None:
    # Given a token endpoint throttling until 30 s after the run's (virtual) now, as an HTTP date
    vendor = Vendor(httpx.Response(429, headers={"Retry-After": "Tue, 03 Nov 2026 06:00:30 GMT"}))

    # When a call needs a token / Then the wait asked for is 30 s on the run's clock, not on the wall clock
    with pytest.raises(VendorThrottledError) as raised:
        call(vendor, VirtualClock(NOW))
    assert raised.value.retry_after == 30


def test_refused_credentials_without_a_vendor_reason_end_at_the_status() -> None:
    # Given a token endpoint refusing the client with an empty body
    vendor = Vendor(httpx.Response(401))

    # When a call needs a token / Then the error says who refused what, and stops at the status
    with pytest.raises(VendorAuthError) as raised:
        call(vendor, VirtualClock(NOW))
    assert str(raised.value) == f"acme get access token: {REFUSAL} (HTTP 401)"


@pytest.mark.parametrize(("answer", "error", "message"), [
    (httpx.Response(429, json={"message": f"slow down {CLIENT_SECRET}"}), VendorThrottledError,
     "acme get access token: throttled (HTTP 429): slow down ***"),
    (httpx.Response(400, json={"error": "invalid_client", "error_description": f"{CLIENT_ID} / {CLIENT_SECRET}"}),
     VendorAuthError, f"acme get access token: {REFUSAL} (HTTP 400): invalid_client; *** / ***"),
])
def test_echoed_credentials_are_blanked_out_of_the_error(answer: httpx.Response, error: type[Exception],
                                                         message: str) -> None:
    # Given a token endpoint echoing the client id and secret it was sent
    vendor = Vendor(answer)

    # When a call needs a token / Then the error reads exactly as the vendor said it, each echoed value blanked
    with pytest.raises(error) as raised:
        call(vendor, VirtualClock(NOW))
    assert str(raised.value) == message
