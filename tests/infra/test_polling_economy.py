"""History events of the synthesized definition: what one poll costs, and a day of polling per vendor."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from exporter_infra import names
from report_exporter.local.polling import PollLoop, poll_loop, wait_for
from tests.infra.support import asl
from tests.unit.logic.test_polling_economy import DAY, VENDORS


@pytest.fixture(scope="module")
def loop(pipeline: Template) -> PollLoop:
    return poll_loop(asl(pipeline))


def test_one_poll_is_the_wait_the_check_and_the_choice_nine_events(loop: PollLoop) -> None:
    assert loop.before == (names.PLAN_RUN, names.REQUEST_REPORT, names.REPORT_READY)
    assert loop.poll == (names.WAIT_FOR_REPORT, names.CHECK_REPORT, names.REPORT_READY)
    assert loop.after == (names.DOWNLOAD_REPORT, names.WRITE_PARQUET, names.PUBLISHED)
    assert loop.events_per_poll == 2 + 5 + 2


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_report_pending_a_day_stays_under_2000_history_events(loop: PollLoop, vendor: str) -> None:
    export, cadence = VENDORS[vendor]
    waited = wait_for(export, cadence, ready_after=DAY * 60, deadline_minutes=DAY)
    assert loop.history_events(waited.polls) < 2000
    # (the cap Step Functions enforces is 25,000)
    assert loop.history_events(waited.polls) == 2 + 12 + 9 * waited.polls + 12
