"""Time at the HTTP layer: a Retry-After date is read in UTC whatever the machine's zone; the invocation's
time left for vendor calls is never negative, and unbounded for a client without a budget."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from report_exporter import limits
from report_exporter.adapters.http_client import build_client, retry_after_seconds, time_left


@pytest.mark.usefixtures("new_york_machine")
@pytest.mark.parametrize("date", ["Tue, 03 Nov 2026 06:01:30 -0000", "Tue, 03 Nov 2026 06:01:30 GMT"])
def test_a_retry_after_date_is_utc_on_a_machine_in_another_zone(date: str) -> None:
    response = httpx.Response(503, headers={"Retry-After": date})
    assert retry_after_seconds(response, now=datetime(2026, 11, 3, 6, 0, tzinfo=UTC)) == 90


def test_time_left_is_never_negative_and_takes_the_call_margin_off() -> None:
    left = [limits.CALL_MARGIN_SECONDS + 0.5]
    client = build_client("http://v.test", transport=httpx.MockTransport(lambda r: httpx.Response(200)),
                          remaining=lambda: left[0])
    assert time_left(client) == pytest.approx(0.5)
    left[0] = limits.CALL_MARGIN_SECONDS / 2
    assert time_left(client) == 0.0


def test_a_plain_httpx_client_has_no_time_bound() -> None:
    with httpx.Client() as client:
        assert time_left(client) is None
    assert time_left(build_client("http://v.test")) is None
