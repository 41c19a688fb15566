"""What the ports module decides itself: when a lease's holder counts as gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from report_exporter.ports import lease_expired

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def test_a_lease_is_expired_from_the_very_millisecond_it_ends() -> None:
    # Given a lease held until exactly now / one millisecond from now
    assert lease_expired({"lease_owner": "exec-1", "lease_expires": NOW_MS}, NOW) is True
    assert lease_expired({"lease_owner": "exec-1", "lease_expires": NOW_MS + 1}, NOW) is False
    # And a lease that ended a while ago, stored as DynamoDB's Decimal-like number text
    assert lease_expired({"lease_owner": "exec-1", "lease_expires": str(NOW_MS - 60_000)}, NOW) is True


def test_an_owner_without_an_end_time_holds_nothing_and_no_owner_means_no_lease() -> None:
    # An item claimed without an end time (written before leases had one) is free to take over...
    assert lease_expired({"lease_owner": "exec-1"}, NOW) is True
    # ...and an item nobody holds has no lease to expire, whatever its end time says
    assert lease_expired({"lease_expires": NOW_MS - 1}, NOW) is False
    assert lease_expired({"lease_owner": "", "lease_expires": NOW_MS - 1}, NOW + timedelta(days=1)) is False
