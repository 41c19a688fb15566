"""The process-wide token cache as flows side by side see it: one token per token endpoint and client, one
new token after a revocation however many flows were refused, and no waiting on another client's token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters import auth
from report_exporter.adapters.auth import ClientCredentialsAuth, TokenCache
from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from tests.unit.adapters.test_auth import BASE, CLIENT_ID, NOW, TOKEN_URL


@pytest.fixture(autouse=True)
def _new_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Each test is a cold Lambda container: a token cache of its own.
    monkeypatch.setattr(auth, "TOKENS", TokenCache())
    yield


def credentials_auth(clock: VirtualClock, *, token_url: str = TOKEN_URL,
                     client_id: str = CLIENT_ID) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        vendor="acme", token_url=token_url, client_id=SecretStr(client_id), client_secret=SecretStr("s3cr3t"),
        clock=clock, action="get access token", margin=timedelta(seconds=60),
        default_lifetime=timedelta(minutes=5), refusal="the token endpoint refused the client credentials",
    )


def test_the_same_client_id_at_two_token_endpoints_gets_a_token_from_each() -> None:
    # Given one client id registered at two token endpoints (say a sandbox and a production realm)
    token_calls: list[str] = []
    api_auth: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            token_calls.append(request.url.host)
            return httpx.Response(200, json={"access_token": f"{request.url.host}-tok", "expires_in": 3600})
        api_auth.append(request.headers["authorization"])
        return httpx.Response(200)

    client = build_client(BASE, transport=httpx.MockTransport(vendor))
    clock = VirtualClock(NOW)

    # When a call goes out with each
    client.get("/v1/things", auth=credentials_auth(clock, token_url="https://sandbox.vendor.test/oauth/token"))
    client.get("/v1/things", auth=credentials_auth(clock, token_url="https://auth.vendor.test/oauth/token"))

    # Then each endpoint was asked, and each call carried its own endpoint's token
    assert token_calls == ["sandbox.vendor.test", "auth.vendor.test"]
    assert api_auth == ["Bearer sandbox.vendor.test-tok", "Bearer auth.vendor.test-tok"]


def test_flows_refused_the_same_revoked_token_share_one_new_token() -> None:
    # Given a cached token that the vendor revokes, and two executions using it at the same moment
    issued: list[str] = []
    valid: set[str] = set()
    other_started: list[bool] = []
    other_status: list[int] = []
    clock = VirtualClock(NOW)

    def vendor(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            issued.append(f"tok-{len(issued) + 1}")
            valid.add(issued[-1])
            return httpx.Response(200, json={"access_token": issued[-1], "expires_in": 3600})
        if request.headers["authorization"].removeprefix("Bearer ") in valid:
            return httpx.Response(200)
        if not other_started:
            # Before this refusal reaches the first execution, the other one is refused too and replaces the token
            other_started.append(True)
            other_status.append(client.get("/v1/other", auth=credentials_auth(clock)).status_code)
        return httpx.Response(401)

    client = build_client(BASE, transport=httpx.MockTransport(vendor))
    client.get("/v1/things", auth=credentials_auth(clock))
    valid.clear()

    # When the first execution's call is refused after the other has already replaced the token
    response = client.get("/v1/things", auth=credentials_auth(clock))

    # Then it resent with the replacement: one new token for both, not one each
    assert [response.status_code, *other_status] == [200, 200]
    assert issued == ["tok-1", "tok-2"]


def test_a_slow_token_endpoint_for_one_client_does_not_hold_up_another_client() -> None:
    # Given a token endpoint that, while still answering client-a, lets a flow for client-b run to the end
    clock = VirtualClock(NOW)
    b_done = threading.Event()
    b_finished_first: list[bool] = []
    threads: list[threading.Thread] = []

    def flow_b() -> None:
        client.get("/v1/things", auth=credentials_auth(clock, client_id="client-b"))
        b_done.set()

    def vendor(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            client_id = dict(parse_qsl(request.content.decode()))["client_id"]
            if client_id == "client-a":
                threads.append(threading.Thread(target=flow_b))
                threads[0].start()
                # A bound for a lock held across clients; never reached otherwise
                b_finished_first.append(b_done.wait(timeout=120))
            return httpx.Response(200, json={"access_token": f"{client_id}-tok", "expires_in": 3600})
        return httpx.Response(200)

    client = build_client(BASE, transport=httpx.MockTransport(vendor))

    # When client-a's flow needs a token
    client.get("/v1/things", auth=credentials_auth(clock, client_id="client-a"))
    threads[0].join()

    # Then client-b got its token and made its call while client-a's token request was still open
    assert b_finished_first == [True]
