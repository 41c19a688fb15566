"""Vendor credentials as ``httpx.Auth`` flows: the one place a request gets its ``Authorization`` header.

* :class:`BearerAuth`: a long-lived token from the secret (Particle, Telnyx).
* :class:`RawKeyAuth`: the key itself, no scheme (Senet).
* :class:`OAuth1TokenAuth`: an access token fetched with an OAuth 1.0a-signed request (HERE), then bearer.
* :class:`ClientCredentialsAuth`: an OAuth2 client-credentials token (RFC 6749 §4.4; KORE), then bearer.

The two token flows share one process-wide cache (:data:`TOKENS`): a warm Lambda, or the executions the
local runner starts side by side, reuse a token until shortly before it expires, as read on the run's
clock. A 401 on a cached token (revoked, rotated, expired early on the vendor's side) drops it, fetches a
new one and sends the request once more; a 401 on a token fetched just now is the caller's to report.
Token requests go out through the client that sends the request being authorized (its transport, its
hooks, its call budget), so the simulators and a ``MockTransport`` see them like any other call.

Auth is given per request (``auth=``), never to the client: a download from a pre-signed link can then
never carry a vendor credential, and httpx drops ``Authorization`` on a redirect to another origin.
No secret (token, key, client secret, signature) ever goes into an error message or a log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
from pydantic import SecretStr

from report_exporter.adapters.http_client import (
    TIMEOUT,
    USER_AGENT,
    json_body,
    raise_for_status,
    transport_errors,
    vendor_detail,
)
from report_exporter.clock import Clock
from report_exporter.errors import ExporterError, VendorAuthError, VendorContractError

_FORM = "application/x-www-form-urlencoded"


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` with a token the secret holds."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request


class RawKeyAuth(httpx.Auth):
    """``Authorization: <key>``: the raw key, no scheme."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._key.get_secret_value()
        yield request


# Token cache.


@dataclass(frozen=True)
class Token:
    value: SecretStr
    renew_at: datetime
    """When to stop using it: its expiry less a margin, so a call never carries a token about to expire."""


class TokenCache:
    """Access tokens per token endpoint and client, shared by every flow in the process.

    Keys are hashes of the token URL and the client (or access key) id; values are ``SecretStr`` only.
    Each key has its own lock, held while its token is fetched, so flows running side by side for the
    same client share one token instead of each asking for its own.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: str, now: datetime) -> SecretStr | None:
        """The token for ``key`` if it is still good at ``now``."""
        with self._guard:
            token = self._tokens.get(key)
        return token.value if token is not None and now < token.renew_at else None

    def put(self, key: str, token: Token) -> None:
        with self._guard:
            self._tokens[key] = token

    def drop(self, key: str, value: SecretStr) -> None:
        """Forget ``value`` if it is still the token for ``key`` (another flow may have replaced it already)."""
        with self._guard:
            cached = self._tokens.get(key)
            if cached is not None and cached.value.get_secret_value() == value.get_secret_value():
                del self._tokens[key]

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()


TOKENS = TokenCache()


def clear_token_cache() -> None:
    """Forget every cached access token (tests; a rotated secret needs nothing: a refused token is dropped)."""
    TOKENS.clear()


def cache_key(token_url: str, client_id: SecretStr) -> str:
    return hashlib.sha256(f"{token_url}\n{client_id.get_secret_value()}".encode()).hexdigest()


TokenFlow = Generator[httpx.Request, httpx.Response, tuple[SecretStr, bool]]


class TokenAuth(httpx.Auth):
    """A bearer token from a token endpoint, cached in :data:`TOKENS`, replaced once after a 401.

    Subclasses say how the token request is made (:meth:`token_request`) and which of their values
    must never appear in an error (:meth:`secrets`).
    """

    requires_request_body = True  # the request may be sent twice (after a 401)

    def __init__(
        self,
        *,
        vendor: str,
        token_url: str,
        client_id: SecretStr,
        clock: Clock,
        action: str,
        margin: timedelta,
        default_lifetime: timedelta,
    ) -> None:
        """
        Args:
            vendor: Names the vendor in error messages.
            token_url: The absolute URL of the token endpoint.
            client_id: Which client the token is for (part of the cache key).
            clock: The run's clock: token lifetimes are counted on it.
            action: What a token request is called in error messages.
            margin: A token is used until this long before it expires (at most a tenth of its lifetime).
            default_lifetime: Assumed when the answer has no ``expires_in``.
        """
        self.vendor = vendor
        self.token_url = token_url
        self.action = action
        self._clock = clock
        self._key = cache_key(token_url, client_id)
        self._margin = margin
        self._default_lifetime = default_lifetime

    # What subclasses say.

    def token_request(self) -> tuple[dict[str, str], bytes]:
        """Headers and form body of a ``POST`` to the token endpoint."""
        raise NotImplementedError

    def secrets(self) -> Iterable[SecretStr]:
        """Values to blank in vendor error text, in case the vendor echoes them."""
        return ()

    def refused(self, response: httpx.Response) -> None:
        """Raise the error for a token answer that is not 200."""
        raise_for_status(response, vendor=self.vendor, action=self.action, ok=(200,), now=self._clock.now())

    # The flow.

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token, fresh = yield from self._current(request)
        request.headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        response = yield request
        if response.status_code == 401 and not fresh:
            # Revoked or rotated behind our back: nothing was done, so one retry is safe even for a POST.
            TOKENS.drop(self._key, token)
            token, _ = yield from self._current(request)
            request.headers["Authorization"] = f"Bearer {token.get_secret_value()}"
            yield request

    def token(self, client: httpx.Client) -> SecretStr:
        """The cached token, or a new one fetched through ``client`` now (to check the credentials early).

        Raises:
            VendorAuthError: the token endpoint refused the credentials.
            VendorUnavailableError: it failed or could not be reached.
        """
        flow = self._current(client.build_request("POST", self.token_url))
        try:
            request = next(flow)
            while True:
                with transport_errors(self.vendor, self.action):
                    response = client.send(request)
                request = flow.send(response)
        except StopIteration as done:
            value: SecretStr = done.value[0]
            return value
        finally:
            flow.close()

    def _current(self, like: httpx.Request) -> TokenFlow:
        """The cached token and False, or a fetched one and True; ``like`` lends its timeouts and User-Agent."""
        with TOKENS.lock(self._key):
            cached = TOKENS.get(self._key, self._clock.now())
            if cached is not None:
                return cached, False
            headers, body = self.token_request()
            asked_at = self._clock.now()
            response = yield httpx.Request(
                "POST", self.token_url, content=body,
                headers={"User-Agent": like.headers.get("user-agent", USER_AGENT), **headers},
                extensions={"timeout": like.extensions.get("timeout") or TIMEOUT.as_dict()},
            )
            response.read()  # only the token answer: the authorized request's own body is left to stream
            token = self._read(response, asked_at)
            TOKENS.put(self._key, token)
            return token.value, True

    def _read(self, response: httpx.Response, asked_at: datetime) -> Token:
        action, vendor = self.action, self.vendor
        if response.status_code != 200:
            try:
                self.refused(response)
            except ExporterError as exc:
                exc.args = (self._scrub(str(exc)),)  # the vendor's detail may echo what was sent
                raise
        body = json_body(response, vendor=vendor, action=action)
        if not isinstance(body, dict):
            raise VendorContractError(f"{vendor} {action}: the answer is not a JSON object")
        # Form requests get snake_case fields; some servers answer camelCase (HERE does to JSON requests).
        value = body.get("access_token", body.get("accessToken"))
        if not isinstance(value, str) or not value:
            raise VendorContractError(f"{vendor} {action}: no access_token in the answer")
        token_type = body.get("token_type", body.get("tokenType", "bearer"))
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise VendorContractError(f"{vendor} {action}: token type {token_type!r}, expected 'bearer'")
        lifetime: Any = body.get("expires_in", body.get("expiresIn"))
        if lifetime is None:
            seconds = self._default_lifetime.total_seconds()
        else:
            try:
                seconds = float(lifetime)
            except (TypeError, ValueError):
                raise VendorContractError(f"{vendor} {action}: expires_in {lifetime!r} is not a number") from None
            if not 0 < seconds < float("inf"):
                raise VendorContractError(f"{vendor} {action}: expires_in {lifetime!r} is not positive")
        margin = min(self._margin.total_seconds(), seconds / 10)
        return Token(SecretStr(value), asked_at + timedelta(seconds=seconds - margin))

    def _scrub(self, text: str) -> str:
        for secret in self.secrets():
            value = secret.get_secret_value()
            if value:
                text = text.replace(value, "***")
        return text


class ClientCredentialsAuth(TokenAuth):
    """OAuth2 client credentials (RFC 6749 §4.4): ``client_id`` and ``client_secret`` in the form body."""

    def __init__(
        self,
        *,
        client_secret: SecretStr,
        refusal: str,
        refused_statuses: tuple[int, ...] = (400, 401, 403),
        **kwargs: Any,
    ) -> None:
        """
        Args:
            client_secret: The client's secret.
            refusal: What a refusal of the credentials means to the operator (the export, the secret).
            refused_statuses: The answers that mean the credentials are wrong: 401, and 400
                ``invalid_client`` (RFC 6749 §5.2), 403.
            kwargs: See :class:`TokenAuth`.
        """
        super().__init__(**kwargs)
        self._client_id: SecretStr = kwargs["client_id"]
        self._client_secret = client_secret
        self._refusal = refusal
        self._refused_statuses = refused_statuses

    def token_request(self) -> tuple[dict[str, str], bytes]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id.get_secret_value(),
            "client_secret": self._client_secret.get_secret_value(),
        }
        return {"Accept": "application/json", "Content-Type": _FORM}, urlencode(form).encode()

    def secrets(self) -> Iterable[SecretStr]:
        return (self._client_id, self._client_secret)

    def refused(self, response: httpx.Response) -> None:
        if response.status_code in self._refused_statuses:
            detail = vendor_detail(response)
            suffix = f": {detail}" if detail else ""
            raise VendorAuthError(
                f"{self.vendor} {self.action}: {self._refusal} (HTTP {response.status_code}){suffix}"
            )
        super().refused(response)


# OAuth 1.0a (RFC 5849), HMAC-SHA256, no token: what HERE's token endpoint takes.


def percent_encode(value: str) -> str:
    """RFC 5849 §3.6: UTF-8, then percent-encode everything but ``ALPHA DIGIT - . _ ~``."""
    return quote(value, safe="~")


def base_string_uri(url: str) -> str:
    """RFC 5849 §3.4.1.2: lower-case scheme and host, default port dropped, no query or fragment."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    netloc = host if port is None or default else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def signature_base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1: method, base string URI and the normalized, sorted parameters, each encoded."""
    pairs = sorted((percent_encode(name), percent_encode(value)) for name, value in params)
    normalized = "&".join(f"{name}={value}" for name, value in pairs)
    return "&".join((method.upper(), percent_encode(base_string_uri(url)), percent_encode(normalized)))


def hmac_sha256_signature(base_string: str, consumer_secret: str, token_secret: str = "") -> str:
    """RFC 5849 §3.4.2 with SHA-256: key ``secret&token_secret``, base64 digest."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, base_string.encode(), hashlib.sha256).digest()).decode()


def new_nonce() -> str:
    """A fresh random nonce; servers refuse one they have seen before."""
    return secrets.token_hex(16)


def wall_clock_seconds() -> int:
    """Seconds since the epoch for ``oauth_timestamp``."""
    # The server checks the timestamp against its own clock, so this is real time, never the local
    # runner's virtual clock.
    return int(time.time())


@dataclass(frozen=True)
class OAuth1Signer:
    """Builds the ``Authorization: OAuth ...`` header of a signed request (HMAC-SHA256, no token)."""

    key_id: SecretStr
    key_secret: SecretStr
    nonce: Callable[[], str] = new_nonce
    timestamp: Callable[[], int] = wall_clock_seconds

    def authorization(self, method: str, url: str, form: Mapping[str, str]) -> str:
        """The header value for ``method url`` with the form-encoded body ``form``.

        Args:
            method: HTTP method.
            url: Absolute URL; query parameters in it are signed too.
            form: The ``application/x-www-form-urlencoded`` body parameters (signed, RFC 5849 §3.4.1.3.1).

        Returns:
            ``OAuth oauth_consumer_key="...", ...`` with every value percent-encoded.
        """
        oauth = {
            "oauth_consumer_key": self.key_id.get_secret_value(),
            "oauth_nonce": self.nonce(),
            "oauth_signature_method": "HMAC-SHA256",
            "oauth_timestamp": str(self.timestamp()),
            "oauth_version": "1.0",
        }
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
        base = signature_base_string(method, url, [*oauth.items(), *form.items(), *query])
        oauth["oauth_signature"] = hmac_sha256_signature(base, self.key_secret.get_secret_value())
        return "OAuth " + ", ".join(f'{percent_encode(k)}="{percent_encode(v)}"' for k, v in sorted(oauth.items()))


class OAuth1TokenAuth(TokenAuth):
    """A client-credentials token asked for with an OAuth 1.0a-signed form POST, then used as a bearer."""

    def __init__(
        self,
        *,
        key_secret: SecretStr,
        nonce: Callable[[], str] = new_nonce,
        timestamp: Callable[[], int] = wall_clock_seconds,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            key_secret: The access key secret; the access key id is ``client_id``.
            nonce, timestamp: For ``oauth_nonce`` and ``oauth_timestamp`` (fixed in known-answer tests).
            kwargs: See :class:`TokenAuth`.
        """
        super().__init__(**kwargs)
        self._signer = OAuth1Signer(kwargs["client_id"], key_secret, nonce, timestamp)

    def token_request(self) -> tuple[dict[str, str], bytes]:
        form = {"grant_type": "client_credentials"}
        headers = {
            "Authorization": self._signer.authorization("POST", self.token_url, form),
            "Content-Type": _FORM,
            "Accept": "application/json",
        }
        # The body is encoded here, not by httpx, so that what is sent is exactly what was signed.
        return headers, urlencode(form).encode()

    def secrets(self) -> Iterable[SecretStr]:
        return (self._signer.key_secret,)
