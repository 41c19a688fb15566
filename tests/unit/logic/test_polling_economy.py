"""What waiting for a report costs with each async vendor's cadence: polls, how late a ready report is
found, escalation, throttling and the deadline (the real RequestReport/CheckReport logic, virtual time)."""

from __future__ import annotations

import pytest

from report_exporter.local.polling import wait_for
from report_exporter.logic.check_report import MAX_WAIT_SECONDS
from report_exporter.models.exports import ExportSpec, HereExport, ParticleExport
from report_exporter.vendors.base import Cadence
from report_exporter.vendors.here import adapter as here
from report_exporter.vendors.particle import adapter as particle

DAY = 24 * 60
VENDORS = {
    "particle": (ParticleExport(name="particle-demo", secret_name="s"), particle.CADENCE),
    "here": (HereExport(name="here-demo", secret_name="s", realm="org123456789", detail_level="day"), here.CADENCE),
}


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> tuple[ExportSpec, Cadence]:
    return VENDORS[request.param]


def test_a_report_ready_within_ten_minutes_is_found_within_a_minute_in_at_most_14_polls(
    vendor: tuple[ExportSpec, Cadence],
) -> None:
    export, cadence = vendor
    for ready_after in range(0, 601, 5):
        # Given a report that is ready `ready_after` seconds after it was requested
        waited = wait_for(export, cadence, ready_after=ready_after, deadline_minutes=DAY)
        # Then a poll sees it at most 60 s later, and it took at most 14 polls
        assert 0 <= waited.found_late(ready_after) <= 60, ready_after
        assert waited.polls <= 14, ready_after


def test_a_report_pending_a_day_costs_at_most_150_polls(vendor: tuple[ExportSpec, Cadence]) -> None:
    export, cadence = vendor
    ready = wait_for(export, cadence, ready_after=DAY * 60, deadline_minutes=DAY)
    never = wait_for(export, cadence, ready_after=None, deadline_minutes=DAY)
    assert ready.found_at == DAY * 60 and ready.polls <= 150
    assert never.timed_out and never.polls <= 150


def test_waits_keep_escalating_past_the_first_hour_up_to_the_cap(vendor: tuple[ExportSpec, Cadence]) -> None:
    export, cadence = vendor
    waited = wait_for(export, cadence, ready_after=None, deadline_minutes=DAY)
    # Each poll's planned wait, by the report's age at that poll
    planned = list(zip(waited.poll_times, waited.waits[1:], strict=False))
    later = [wait for age, wait in planned if age > 3600 and age + wait < DAY * 60]
    # Then after the first hour every wait is longer than the one before, until it reaches the cap
    assert later and later[0] > max(wait for age, wait in planned if age <= 3600)
    growing = [wait for wait in later if wait < cadence.cap]
    assert growing == sorted(set(growing)) and len(growing) >= 5
    assert later[-1] == cadence.cap
    # And no wait is shorter than the vendor's guidance or longer than the cap
    assert min(waited.waits[len(cadence.steps):-1]) >= cadence.steps[-1]
    assert max(waited.waits) <= cadence.cap


def test_the_last_wait_stops_at_the_deadline(vendor: tuple[ExportSpec, Cadence]) -> None:
    export, cadence = vendor
    waited = wait_for(export, cadence, ready_after=None, deadline_minutes=360)
    # The six hours are waited out exactly, the last wait cut short, then the run times out
    assert waited.timed_out and sum(waited.waits) == 360 * 60
    assert waited.poll_times[-1] == 360 * 60


@pytest.mark.parametrize("retry_after", [None, 30.0, 3000.0])
def test_a_throttled_poll_still_lengthens_the_next_wait_once_escalated(
    vendor: tuple[ExportSpec, Cadence], retry_after: float | None
) -> None:
    export, cadence = vendor
    # Given the same day-long report, once unthrottled and once with poll 30 (hours in) answering 429
    plain = wait_for(export, cadence, ready_after=None, deadline_minutes=DAY)
    throttled = wait_for(export, cadence, ready_after=None, deadline_minutes=DAY,
                         throttle_polls=frozenset({30}), retry_after=retry_after)
    assert plain.poll_times[29] > 3600
    # Then the waits up to that poll are the same, and the wait after it is the vendor's hint or twice the
    # cadence, whichever is longer (never more than an hour)
    assert throttled.waits[:30] == plain.waits[:30]
    normal = plain.waits[30]
    assert throttled.waits[30] == min(MAX_WAIT_SECONDS, max(int(retry_after or 0), 2 * normal)) > normal
    # And the throttled run does not poll more often afterwards
    assert throttled.polls <= plain.polls


def test_a_cadence_without_growth_holds_its_last_step() -> None:
    cadence = Cadence(steps=(900, 1800, 3600))
    assert [cadence.wait(polls, polls * 3600) for polls in range(6)] == [900, 1800, 3600, 3600, 3600, 3600]


@pytest.mark.parametrize("bad", [{"steps": ()}, {"steps": (0,)}, {"steps": (60,), "growth": -1},
                                 {"steps": (60, 120), "cap": 100}])
def test_a_cadence_refuses_impossible_settings(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="invalid cadence"):
        Cadence(**bad)  # type: ignore[arg-type]
