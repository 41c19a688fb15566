"""What the vendors' token endpoints receive: the exact OAuth2 client-credentials form POST (KORE) and the
OAuth 1.0a-signed one (HERE), sent on the timeouts and User-Agent of the call they authorize. Signatures are
checked with oauthlib, an implementation independent of the adapter's signer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature as oauth1
from pydantic import SecretStr

from report_exporter.adapters import auth
from report_exporter.adapters.auth import (
    ClientCredentialsAuth,
    OAuth1TokenAuth,
    TokenCache,
    base_string_uri,
    clear_token_cache,
)
from report_exporter.adapters.http_client import TIMEOUT, USER_AGENT, build_client
from report_exporter.clock import VirtualClock
from tests.unit.adapters.test_auth import BASE, CLIENT_ID, CLIENT_SECRET, NOW, TOKEN_URL

HERE_TOKEN_URL = "https://account.api.here.com/oauth2/token"
KEY_ID = "HKID0123456789"
KEY_SECRET = "s3cr+t/Key=="


@pytest.fixture(autouse=True)
def _new_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Each test is a cold Lambda container: a token cache of its own.
    monkeypatch.setattr(auth, "TOKENS", TokenCache())
    yield


class Recorder:
    """Every token endpoint (any path ending in ``/token``) issues a token; the API answers 200."""

    def __init__(self) -> None:
        self.token_calls: list[httpx.Request] = []
        self.api_calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            self.token_calls.append(request)
            return httpx.Response(200, json={"access_token": f"tok-{len(self.token_calls)}", "token_type": "bearer",
                                             "expires_in": 3600})
        self.api_calls.append(request)
        return httpx.Response(200, json={"ok": True})


def credentials_auth(*, client_id: str = CLIENT_ID) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        vendor="kore", token_url=TOKEN_URL, client_id=SecretStr(client_id), client_secret=SecretStr(CLIENT_SECRET),
        clock=VirtualClock(NOW), action="get access token", margin=timedelta(seconds=60),
        default_lifetime=timedelta(minutes=5), refusal="the token endpoint refused the client credentials",
    )


def here_auth(token_url: str = HERE_TOKEN_URL, **kwargs: Any) -> OAuth1TokenAuth:
    return OAuth1TokenAuth(
        vendor="here", token_url=token_url, client_id=SecretStr(KEY_ID), key_secret=SecretStr(KEY_SECRET),
        clock=VirtualClock(NOW), action="get access token", margin=timedelta(seconds=300),
        default_lifetime=timedelta(hours=1), **kwargs,
    )


def oauthlib_accepts(request: httpx.Request, key_secret: str) -> bool:
    """RFC 5849 §3.4 checked by oauthlib on the request as sent: method, URL, query, form and oauth params."""
    header = request.headers["authorization"]
    body = request.content.decode()
    received = OAuthRequest(str(request.url), http_method=request.method, body=body,
                            headers={"Authorization": header})
    received.params = oauth1.collect_parameters(uri_query=request.url.query.decode(), body=body,
                                                headers={"Authorization": header}, exclude_oauth_signature=True)
    received.signature = dict(oauth1.collect_parameters(headers={"Authorization": header},
                                                         exclude_oauth_signature=False))["oauth_signature"]
    return bool(oauth1.verify_hmac_sha256(received, client_secret=key_secret))


# OAuth2 client credentials (KORE).


def test_client_credentials_token_request_is_exactly_the_form_post_asking_for_json() -> None:
    # Given a token endpoint and an API
    vendor = Recorder()
    client = build_client(BASE, transport=httpx.MockTransport(vendor))

    # When a call needs a token
    client.get("/v1/things", auth=credentials_auth())

    # Then the token endpoint received the RFC 6749 §4.4 form, asking for JSON, with no Authorization header
    (call,) = vendor.token_calls
    assert (call.method, str(call.url)) == ("POST", TOKEN_URL)
    assert call.headers["accept"] == "application/json"
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert call.content == f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}".encode()
    assert "authorization" not in call.headers


def test_the_token_request_goes_out_on_the_timeouts_and_user_agent_of_the_call_it_authorizes() -> None:
    # Given a call with a short timeout of its own and its own User-Agent
    vendor = Recorder()
    client = build_client(BASE, transport=httpx.MockTransport(vendor))

    # When it needs a token
    client.get("/v1/things", auth=credentials_auth(), timeout=httpx.Timeout(2.5),
               headers={"User-Agent": "report-exporter/test (run r-7)"})

    # Then a hanging token endpoint is given up on as soon as the call itself would be, and names the same client
    (call,) = vendor.token_calls
    assert call.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    assert call.headers["user-agent"] == "report-exporter/test (run r-7)"


def test_a_hand_built_request_still_gets_default_timeouts_and_our_user_agent_on_its_token_request() -> None:
    # Given a request built without the client's defaults (no timeouts, no User-Agent)
    vendor = Recorder()
    client = build_client(BASE, transport=httpx.MockTransport(vendor))

    # When it is sent with a token flow
    response = client.send(httpx.Request("GET", f"{BASE}/v1/things"), auth=credentials_auth())

    # Then the token request is still bounded by the exporter's timeouts and says who is asking
    (call,) = vendor.token_calls
    assert call.extensions["timeout"] == TIMEOUT.as_dict()
    assert call.headers["user-agent"] == USER_AGENT
    assert response.status_code == 200


# OAuth 1.0a-signed token request (HERE).


def test_here_token_request_is_exactly_the_signed_form_post() -> None:
    # Given a fixed nonce and timestamp (the known-answer vector of test_auth.py)
    vendor = Recorder()
    client = build_client("https://usage.bam.api.here.com", transport=httpx.MockTransport(vendor))

    # When a call needs a token
    client.get("/v1/things", auth=here_auth(nonce=lambda: "n0nce-42_~x", timestamp=lambda: 1700000000))

    # Then HERE received the signed form POST asking for JSON, the body being exactly what was signed
    (call,) = vendor.token_calls
    assert (call.method, str(call.url)) == ("POST", HERE_TOKEN_URL)
    assert call.headers["authorization"] == (
        'OAuth oauth_consumer_key="HKID0123456789", oauth_nonce="n0nce-42_~x", '
        'oauth_signature="Dc1ltPU9Kx%2Bt05foJxNFxHilXpmFp6torvpOaq0Mf%2F8%3D", '
        'oauth_signature_method="HMAC-SHA256", oauth_timestamp="1700000000", oauth_version="1.0"'
    )
    assert call.headers["accept"] == "application/json"
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert call.content == b"grant_type=client_credentials"
    assert oauthlib_accepts(call, KEY_SECRET)


@pytest.mark.parametrize("token_url", [
    "https://Account.API.Here.COM/oauth2/token",
    "https://account.api.here.com:443/oauth2/token",
    "https://account.api.here.com:8443/oauth2/token",
    "http://127.0.0.1:8080/oauth2/token",
    "http://127.0.0.1:80/oauth2/token",
    "https://account.api.here.com/oauth2/token?realm=org123&trace=",
])
def test_here_token_request_signature_holds_for_any_token_url(token_url: str) -> None:
    # Given a token URL with an upper-case host, an explicit port, or query parameters (one of them blank)
    vendor = Recorder()
    client = build_client("https://usage.bam.api.here.com", transport=httpx.MockTransport(vendor))

    # When a call needs a token
    client.get("/v1/things", auth=here_auth(token_url))

    # Then oauthlib accepts the signature of what was sent (the port and every query parameter signed)
    (call,) = vendor.token_calls
    assert oauthlib_accepts(call, KEY_SECRET)


def test_every_here_token_request_carries_a_fresh_128_bit_nonce() -> None:
    # Given the default nonce source
    vendor = Recorder()
    client = build_client("https://usage.bam.api.here.com", transport=httpx.MockTransport(vendor))

    # When two token requests go out (the cache forgotten in between, as after a cold start)
    client.get("/v1/things", auth=here_auth())
    clear_token_cache()
    client.get("/v1/things", auth=here_auth())

    # Then each nonce is 16 random bytes as 32 hex digits, never repeated (HERE refuses a nonce seen before)
    nonces = [dict(oauth1.collect_parameters(headers={"Authorization": call.headers["authorization"]}))["oauth_nonce"]
              for call in vendor.token_calls]
    assert all(re.fullmatch(r"[0-9a-f]{32}", nonce) for nonce in nonces)
    assert nonces[0] != nonces[1]


@pytest.mark.parametrize(("url", "expected"), [
    ("HTTPS://Account.API.Here.COM/oauth2/token", "https://account.api.here.com/oauth2/token"),
    ("https://h.test:443/t", "https://h.test/t"),
    ("https://h.test:8443/t", "https://h.test:8443/t"),
    ("https://h.test:80/t", "https://h.test:80/t"),
    ("http://h.test:80/t", "http://h.test/t"),
    ("http://h.test:443/t", "http://h.test:443/t"),
    ("http://127.0.0.1:8080/t", "http://127.0.0.1:8080/t"),
    ("https://h.test", "https://h.test/"),
    ("https://h.test/t?a=1#frag", "https://h.test/t"),
])
def test_base_string_uri_follows_rfc5849_as_oauthlib_does(url: str, expected: str) -> None:
    # Given a URL / When its RFC 5849 §3.4.1.2 base string URI is built
    # Then only the default port of its own scheme is dropped, as in oauthlib (which HERE-compatible servers use)
    assert base_string_uri(url) == expected == oauth1.base_string_uri(url)
