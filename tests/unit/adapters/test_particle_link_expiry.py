"""Particle's ``expires_at``: when a ready report's download link stops working reaches the job (and the ledger).

Reports can be downloaded for 7 days at most; CheckReport keeps the time so that a download is never tried
on a dead link and operators see how long is left.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from report_exporter.models.payloads import JobStatus
from tests.fakes import plan_for
from tests.unit.adapters.test_particle import STATUS_7, USER, FakeParticle, status_7


def poll(**attributes: object) -> tuple[JobStatus, datetime | None]:
    result = FakeParticle({STATUS_7: status_7(**attributes)}).adapter().poll(plan_for(USER), "7")
    return result.status, result.expires_at


@pytest.mark.parametrize(("expires_at", "expected"), [
    ("2026-11-10T06:00:00Z", datetime(2026, 11, 10, 6, tzinfo=UTC)),
    ("2026-11-10T06:00:00.250Z", datetime(2026, 11, 10, 6, 0, 0, 250_000, tzinfo=UTC)),
    ("2026-11-10T07:00:00+01:00", datetime(2026, 11, 10, 7, tzinfo=timezone(timedelta(hours=1)))),
    ("2026-11-10T06:00:00", datetime(2026, 11, 10, 6, tzinfo=UTC)),  # no offset: UTC, as the API writes times
])
def test_a_ready_report_carries_its_link_expiry_as_an_aware_time(expires_at: str, expected: datetime) -> None:
    status, expiry = poll(state="available", download_url="https://files.test/r.csv", expires_at=expires_at)
    assert status is JobStatus.READY
    assert expiry == expected and expiry is not None and expiry.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("expires_at", ["", "soon", 1_760_000_000, None])
def test_an_absent_or_unreadable_expiry_is_none_not_an_error(expires_at: object) -> None:
    assert poll(state="available", download_url="https://files.test/r.csv", expires_at=expires_at) == (
        JobStatus.READY, None)


def test_a_pending_report_has_no_link_expiry_even_if_the_answer_names_one() -> None:
    assert poll(state="pending", expires_at="2026-11-10T06:00:00Z") == (JobStatus.PENDING, None)
