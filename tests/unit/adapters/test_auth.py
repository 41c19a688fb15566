"""The httpx.Auth flows every vendor uses: the header each sets, the token cache, one retry after a 401,
and no secret in an error. Vendors are played by httpx.MockTransport, HERE's token endpoint by its
simulator (which checks signatures with oauthlib)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.auth import (
    BearerAuth,
    ClientCredentialsAuth,
    OAuth1Signer,
    OAuth1TokenAuth,
    RawKeyAuth,
    clear_token_cache,
)
from report_exporter.adapters.http_client import USER_AGENT, build_client, send
from report_exporter.clock import VirtualClock
from report_exporter.errors import (
    VendorAuthError,
    VendorContractError,
    VendorThrottledError,
    VendorUnavailableError,
)
from report_exporter.vendors.here.simulator import HereSimulator

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
BASE = "https://api.vendor.test"
TOKEN_URL = "https://auth.vendor.test/oauth/token"
CLIENT_ID = "client-4f1d2a"
CLIENT_SECRET = "s3cr3t-9bT2kQ"


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


class Vendor:
    """A token endpoint issuing tok-1, tok-2 ... and an API accepting the tokens in ``valid``."""

    def __init__(self, *, expires_in: Any = 600, api: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.token_calls: list[httpx.Request] = []
        self.api_calls: list[httpx.Request] = []
        self.api_auth: list[str] = []
        """The Authorization of each API call as it was sent (a retry resends the same request object)."""
        self.api = api

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.token_calls.append(request)
            token = f"tok-{len(self.issued) + 1}"
            self.issued.append(token)
            self.valid.add(token)
            body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return httpx.Response(200, json=body)
        self.api_calls.append(request)
        self.api_auth.append(request.headers.get("authorization", ""))
        if self.api is not None:
            return self.api(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid:
            return httpx.Response(401, json={"code": 20003, "message": "Authenticate"})
        return httpx.Response(200, json={"ok": True})


def client_for(vendor: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> httpx.Client:
    return build_client(BASE, transport=httpx.MockTransport(vendor), **kwargs)


def credentials_auth(clock: VirtualClock, *, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET,
                     margin: float = 60) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        vendor="acme", token_url=TOKEN_URL, client_id=SecretStr(client_id), client_secret=SecretStr(secret),
        clock=clock, action="get access token", margin=timedelta(seconds=margin),
        default_lifetime=timedelta(minutes=5), refusal="export 'acme-main': the token endpoint refused the client "
        "credentials in secret 'acme/main'",
    )


def get(client: httpx.Client, auth: httpx.Auth, path: str = "/v1/things") -> httpx.Response:
    return send(client, "GET", path, vendor="acme", action="list things", ok=(200, 401), auth=auth)


# Static credentials.


def test_bearer_auth_sends_the_token_as_a_bearer_and_nothing_else() -> None:
    # Given an API that records what it receives
    seen: list[httpx.Request] = []
    client = client_for(lambda request: seen.append(request) or httpx.Response(200))

    # When one request goes out with the auth and one without
    client.get("/a", auth=BearerAuth(SecretStr("pat-123")))
    client.get("/b")

    # Then only the first carries the token
    assert seen[0].headers["authorization"] == "Bearer pat-123"
    assert "authorization" not in seen[1].headers


def test_raw_key_auth_sends_the_key_without_a_scheme() -> None:
    # Given an API that records what it receives
    seen: list[httpx.Request] = []
    client = client_for(lambda request: seen.append(request) or httpx.Response(200))

    # When a request goes out with the raw key
    client.get("/a", auth=RawKeyAuth(SecretStr("KEY-abc")))

    # Then Authorization is the key itself
    assert seen[0].headers["authorization"] == "KEY-abc"


# OAuth2 client credentials.


def test_client_credentials_posts_the_form_then_sends_the_bearer() -> None:
    # Given a token endpoint and an API
    vendor = Vendor()
    client = client_for(vendor)

    # When a request needs a token
    response = get(client, credentials_auth(VirtualClock(NOW)))

    # Then the token request was the client-credentials form POST, through the same client
    (token_call,) = vendor.token_calls
    assert token_call.method == "POST"
    assert token_call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert token_call.headers["user-agent"] == USER_AGENT
    assert dict(parse_qsl(token_call.content.decode())) == {
        "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    # And the API call carried the token
    assert response.status_code == 200
    assert vendor.api_auth == ["Bearer tok-1"]


def test_token_is_cached_across_flows_of_the_same_client() -> None:
    # Given two flows for the same client (two Lambda invocations in one container)
    vendor = Vendor(expires_in=3600)
    clock = VirtualClock(NOW)
    client = client_for(vendor)
    first, second = credentials_auth(clock), credentials_auth(clock)

    # When each sends two requests, half an hour apart
    for auth in (first, second, first, second):
        get(client, auth)
        clock.advance(600)

    # Then one token served them all
    assert vendor.issued == ["tok-1"]
    assert set(vendor.api_auth) == {"Bearer tok-1"}


def test_another_client_gets_its_own_token() -> None:
    # Given flows for two client ids on the same token endpoint
    vendor = Vendor()
    clock = VirtualClock(NOW)
    client = client_for(vendor)

    # When each sends a request
    get(client, credentials_auth(clock, client_id="client-a"))
    get(client, credentials_auth(clock, client_id="client-b"))

    # Then each was issued its own token
    assert vendor.api_auth == ["Bearer tok-1", "Bearer tok-2"]


@pytest.mark.parametrize(("elapsed", "tokens"), [(539, 1), (540, 2)])
def test_token_is_renewed_a_margin_before_it_expires(elapsed: int, tokens: int) -> None:
    # Given a 600 s token (margin: 60 s, capped at a tenth of the lifetime)
    vendor = Vendor(expires_in=600)
    clock = VirtualClock(NOW)
    client = client_for(vendor)
    auth = credentials_auth(clock, margin=300)
    get(client, auth)

    # When time passes on the run's clock and another request goes out
    clock.advance(elapsed)
    get(client, auth)

    # Then the token is replaced only once inside the margin
    assert len(vendor.issued) == tokens


def test_a_token_without_expires_in_lives_the_default_lifetime() -> None:
    # Given a token endpoint that gives no lifetime (default 5 min, margin 30 s)
    vendor = Vendor(expires_in=None)
    clock = VirtualClock(NOW)
    client = client_for(vendor)
    auth = credentials_auth(clock)
    get(client, auth)

    # When 269 s, then 1 s more, pass
    clock.advance(269)
    get(client, auth)
    assert len(vendor.issued) == 1
    clock.advance(1)
    get(client, auth)

    # Then the second token was fetched at 270 s
    assert len(vendor.issued) == 2


def test_401_on_a_cached_token_fetches_another_and_resends_once() -> None:
    # Given a cached token that the vendor has since revoked
    vendor = Vendor()
    clock = VirtualClock(NOW)
    client = client_for(vendor)
    auth = credentials_auth(clock)
    get(client, auth)
    vendor.valid.clear()

    # When a POST with a body goes out
    response = send(client, "POST", "/v1/things", vendor="acme", action="create thing", auth=auth,
                    json={"name": "x"})

    # Then the refused call was sent again, body and all, with a new token, and succeeded
    assert response.status_code == 200
    assert vendor.api_auth[1:] == ["Bearer tok-1", "Bearer tok-2"]
    assert vendor.api_calls[-1].content == b'{"name":"x"}'


def test_401_again_after_the_refresh_is_the_callers_error() -> None:
    # Given a cached token and an API that refuses every token
    vendor = Vendor(api=lambda request: httpx.Response(401, json={"code": 20003, "message": "Authenticate"}))
    clock = VirtualClock(NOW)
    client = client_for(vendor)
    auth = credentials_auth(clock)
    get(client, auth)

    # When another request goes out
    with pytest.raises(VendorAuthError, match=r"acme list things: credentials refused \(HTTP 401\): 20003"):
        send(client, "GET", "/v1/things", vendor="acme", action="list things", auth=auth)

    # Then the cached token and one new token were tried, then no more
    assert vendor.api_auth[1:] == ["Bearer tok-1", "Bearer tok-2"]


def test_401_on_a_token_fetched_just_now_is_not_retried() -> None:
    # Given an API that refuses the tokens the endpoint issues
    vendor = Vendor(api=lambda request: httpx.Response(401))
    client = client_for(vendor)

    # When the first request goes out
    response = get(client, credentials_auth(VirtualClock(NOW)))

    # Then the 401 comes back after one call with one token
    assert response.status_code == 401
    assert len(vendor.api_calls) == 1 and vendor.issued == ["tok-1"]


def test_refused_credentials_raise_an_auth_error_without_any_secret() -> None:
    # Given a token endpoint refusing the client and echoing what it was sent
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client",
                                         "error_description": f"unknown {CLIENT_ID} / {CLIENT_SECRET}"})

    # When a request needs a token
    with pytest.raises(VendorAuthError) as raised:
        get(client_for(vendor), credentials_auth(VirtualClock(NOW)))

    # Then the error names the export, the secret, the status and the vendor's reason, and no secret or URL
    message = str(raised.value)
    assert message.startswith("acme get access token: export 'acme-main': the token endpoint refused the client "
                              "credentials in secret 'acme/main' (HTTP 401): invalid_client")
    for leak in (CLIENT_ID, CLIENT_SECRET, "tok-", "://"):
        assert leak not in message


def test_a_throttled_token_endpoint_keeps_its_hint_and_hides_echoed_secrets() -> None:
    # Given a token endpoint answering 429 with a hint and an echo of the secret
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "7"}, json={"message": f"slow down {CLIENT_SECRET}"})

    # When a request needs a token / Then the throttle is raised with the hint, the secret blanked
    with pytest.raises(VendorThrottledError) as raised:
        get(client_for(vendor), credentials_auth(VirtualClock(NOW)))
    assert raised.value.retry_after == 7
    assert CLIENT_SECRET not in str(raised.value) and "***" in str(raised.value)


@pytest.mark.parametrize(("answer", "said"), [
    ({"token_type": "Bearer"}, "no access_token"),
    ({"access_token": "t", "token_type": "mac"}, "token type 'mac', expected 'bearer'"),
    ({"access_token": "t", "expires_in": "soon"}, "expires_in 'soon' is not a number"),
    ({"access_token": "t", "expires_in": 0}, "expires_in 0 is not positive"),
])
def test_an_unusable_token_answer_is_a_contract_error(answer: dict[str, Any], said: str) -> None:
    # Given a token endpoint answering 200 with something that is not a usable token
    client = client_for(lambda request: httpx.Response(200, json=answer))

    # When a request needs a token / Then the error says what is wrong
    with pytest.raises(VendorContractError, match=said):
        get(client, credentials_auth(VirtualClock(NOW)))


def test_a_failed_token_request_caches_nothing() -> None:
    # Given a token endpoint that fails once, then works
    answers = iter([httpx.Response(503), httpx.Response(200, json={"access_token": "tok-ok"})])
    seen: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            return next(answers)
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    client = client_for(vendor)
    auth = credentials_auth(VirtualClock(NOW))

    # When the first request fails on the token, and the next is sent
    with pytest.raises(VendorUnavailableError, match="acme get access token: vendor error"):
        get(client, auth)
    get(client, auth)

    # Then the next one fetched a token and used it
    assert seen == ["Bearer tok-ok"]


def test_the_token_request_runs_on_the_invocations_call_budget() -> None:
    # Given a client whose invocation has no time left
    vendor = Vendor()
    client = client_for(vendor, remaining=lambda: 0.0)

    # When a request needs a token / Then it is refused before anything is sent
    with pytest.raises(VendorUnavailableError, match="acme list things: timed out"):
        get(client, credentials_auth(VirtualClock(NOW)))
    assert vendor.token_calls == [] and vendor.api_calls == []


def test_token_fetches_or_reuses_a_token_without_an_api_call() -> None:
    # Given a token endpoint
    vendor = Vendor()
    client = client_for(vendor)
    auth = credentials_auth(VirtualClock(NOW))

    # When the credentials are checked twice, then an API call goes out
    first, second = auth.token(client), auth.token(client)
    get(client, auth)

    # Then one token was fetched and reused, and no API call was needed to get it
    assert first.get_secret_value() == second.get_secret_value() == "tok-1"
    assert len(vendor.token_calls) == 1 and len(vendor.api_calls) == 1


def test_token_maps_a_dropped_connection_to_unavailable() -> None:
    # Given a token endpoint that cannot be reached
    def vendor(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    # When the credentials are checked / Then the error names the token request, not the URL
    with pytest.raises(VendorUnavailableError, match=r"^acme get access token: connection failed \(ConnectError\)$"):
        credentials_auth(VirtualClock(NOW)).token(client_for(vendor))


class Chunks(httpx.SyncByteStream):
    """Ten 10 kB chunks, counting how many were pulled."""

    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(10):
            self.pulled += 1
            yield b"x" * 10_000


def test_an_authorized_stream_is_left_unread_for_the_caller() -> None:
    # Given an API that answers a body sent in chunks
    body = Chunks()
    vendor = Vendor(api=lambda request: httpx.Response(200, stream=body))
    client = client_for(vendor)

    # When it is opened as a stream with a token flow
    with client.stream("GET", "/file", auth=credentials_auth(VirtualClock(NOW))) as response:
        # Then the flow read only the token answer; the body is still the caller's to stream
        assert body.pulled == 0
        assert sum(len(chunk) for chunk in response.iter_bytes()) == 100_000


def test_flows_side_by_side_share_one_token_request() -> None:
    # Given a token endpoint that, while answering the first flow, lets a second flow start
    vendor = Vendor()
    clock = VirtualClock(NOW)
    client = client_for(vendor)
    second: list[threading.Thread] = []

    def slow_vendor(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL and not second:
            thread = threading.Thread(target=get, args=(client, credentials_auth(clock)))
            second.append(thread)
            thread.start()
            thread.join(timeout=0.2)  # it waits for this token instead of asking for its own
        return vendor(request)

    client = client_for(slow_vendor)

    # When both flows need a token
    get(client, credentials_auth(clock))
    second[0].join()

    # Then one token was asked for, and both calls carried it
    assert vendor.issued == ["tok-1"]
    assert vendor.api_auth == ["Bearer tok-1", "Bearer tok-1"]


# OAuth 1.0a token exchange (HERE).


def test_signer_matches_rfc5849_known_answer() -> None:
    # Given a fixed nonce and timestamp, and a secret with characters that must be percent-encoded
    signer = OAuth1Signer(SecretStr("HKID0123456789"), SecretStr("s3cr+t/Key=="),
                          nonce=lambda: "n0nce-42_~x", timestamp=lambda: 1700000000)
    # And the RFC 5849 §3.4.1 base string and §3.4.2 key, written out by hand
    base_string = (
        "POST&https%3A%2F%2Faccount.api.here.com%2Foauth2%2Ftoken&grant_type%3Dclient_credentials"
        "%26oauth_consumer_key%3DHKID0123456789%26oauth_nonce%3Dn0nce-42_~x"
        "%26oauth_signature_method%3DHMAC-SHA256%26oauth_timestamp%3D1700000000%26oauth_version%3D1.0"
    )
    key = b"s3cr%2Bt%2FKey%3D%3D&"
    expected = base64.b64encode(hmac.new(key, base_string.encode(), hashlib.sha256).digest()).decode()
    # (the same value from `openssl dgst -sha256 -hmac`, pinned so the vector itself cannot drift)
    assert expected == "Dc1ltPU9Kx+t05foJxNFxHilXpmFp6torvpOaq0Mf/8="

    # When the header for HERE's token request is built
    header = signer.authorization("POST", "https://account.api.here.com/oauth2/token",
                                  {"grant_type": "client_credentials"})

    # Then it carries exactly the documented parameters, sorted, with the signature percent-encoded
    assert header == (
        'OAuth oauth_consumer_key="HKID0123456789", oauth_nonce="n0nce-42_~x", '
        'oauth_signature="Dc1ltPU9Kx%2Bt05foJxNFxHilXpmFp6torvpOaq0Mf%2F8%3D", '
        'oauth_signature_method="HMAC-SHA256", oauth_timestamp="1700000000", oauth_version="1.0"'
    )


def here_auth(sim: HereSimulator, *, key_secret: str | None = None, **kwargs: Any) -> OAuth1TokenAuth:
    return OAuth1TokenAuth(
        vendor="here", token_url=sim.url("/oauth2/token"), client_id=SecretStr(sim.access_key_id),
        key_secret=SecretStr(key_secret or sim.access_key_secret), clock=sim.clock,
        action="get access token for export 'here-main'", margin=timedelta(seconds=300),
        default_lifetime=timedelta(hours=1), **kwargs,
    )


def test_here_simulator_accepts_the_signers_token_request_as_checked_by_oauthlib() -> None:
    # Given the HERE simulator (its token endpoint verifies with oauthlib) and a signed token flow
    sim = HereSimulator()
    sim.clock = VirtualClock(NOW)
    client = build_client(sim.url("/"), transport=sim.transport())

    # When a token is fetched
    token = here_auth(sim).token(client)

    # Then the simulator accepted the signature and issued it
    assert sim.issued_tokens == [token.get_secret_value()]


def test_here_simulator_rejects_a_signature_made_with_another_secret() -> None:
    # Given a flow signing with the wrong access key secret
    sim = HereSimulator()
    sim.clock = VirtualClock(NOW)
    client = build_client(sim.url("/"), transport=sim.transport())

    # When a token is fetched / Then oauthlib's check fails and HERE's 401300 comes back, no secret in it
    with pytest.raises(VendorAuthError, match="401300; Signature mismatch") as raised:
        here_auth(sim, key_secret="not-the-secret").token(client)
    assert "not-the-secret" not in str(raised.value) and sim.access_key_secret not in str(raised.value)
    assert sim.issued_tokens == []


def test_here_simulator_rejects_a_signature_for_another_request() -> None:
    # Given a valid signature made for another grant type, sent with the real form
    sim = HereSimulator()
    sim.clock = VirtualClock(NOW)
    signer = OAuth1Signer(SecretStr(sim.access_key_id), SecretStr(sim.access_key_secret))
    header = signer.authorization("POST", sim.url("/oauth2/token"), {"grant_type": "password"})
    client = build_client(sim.url("/"), transport=sim.transport())

    # When it is posted
    response = client.post("/oauth2/token", content=b"grant_type=client_credentials",
                           headers={"Authorization": header, "Content-Type": "application/x-www-form-urlencoded"})

    # Then the body does not match what was signed: refused
    assert response.status_code == 401 and response.json()["errorCode"] == 401300
    assert sim.issued_tokens == []
