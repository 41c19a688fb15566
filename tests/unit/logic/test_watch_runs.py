"""WatchRuns: a ready report whose vendor link is about to expire, a month not published by its day; each
alerted once, by the first hourly check that sees it, with the export, the month and a console link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from report_exporter.logic.watch_runs import watch_runs
from report_exporter.models.exports import ParticleExport
from report_exporter.models.exports.base import late_from
from report_exporter.models.payloads import WatchedExport, WatchInput

NOW = datetime(2026, 11, 4, 9, 30, tzinfo=UTC)
OWNER = "arn:aws:states:eu-west-1:123456789012:execution:report-exporter:particle-fleet-2026-10"
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:report-exporter"
FLEET = WatchedExport(name="particle-fleet", vendor="particle", publish_by_day=5)


class Ledger:
    def __init__(self, items: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.items = items
        self.reads: list[tuple[str, str]] = []

    def get(self, export: str, period: str) -> dict[str, Any] | None:
        self.reads.append((export, period))
        return self.items.get((export, period))


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


def ready(expires_in: timedelta, *, ready_for: timedelta = timedelta(days=2), **extra: Any) -> dict[str, Any]:
    return {"status": "READY", "requested_at": (NOW - ready_for - timedelta(minutes=5)).isoformat(),
            "ready_at": (NOW - ready_for).isoformat(), "link_expires_at": (NOW + expires_in).isoformat(),
            "lease_owner": OWNER, "lease_expires": 0, **extra}


def watch(items: dict[tuple[str, str], dict[str, Any]], *exports: WatchedExport, now: datetime = NOW,
          ) -> tuple[Any, Alerts]:
    alerts = Alerts()
    event = WatchInput(exports=exports or (FLEET,), state_machine_arn=MACHINE)
    return watch_runs(event, ledger=Ledger(items), notify=alerts, now=now), alerts


def test_a_ready_report_crossing_the_margin_is_alerted_once_with_export_month_and_link() -> None:
    # Given a ready report whose link expires in 23.5 h (the margin is 24 h): this hour's check crossed it
    report, alerts = watch({("particle-fleet", "2026-10"): ready(timedelta(hours=23, minutes=30))})
    # Then one finding, alerted now, naming the export, the month and the execution's console page
    (finding,) = report.findings
    assert (finding.kind, finding.export, finding.period, finding.alerted) == (
        "link_expiring", "particle-fleet", "2026-10", True)
    ((subject, message),) = alerts.sent
    assert "particle-fleet 2026-10" in subject and "link expires in 24 h" in subject
    assert "Export:    particle-fleet" in message and "Period:    2026-10" in message
    assert f"https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{OWNER}" \
        in message
    assert report.links_at_risk == 1 and report.link_headroom_seconds == {"particle-fleet": 84600}
    # And an hour later the same finding is counted (the alarm stays in ALARM) but not alerted again
    later, alerts = watch({("particle-fleet", "2026-10"): ready(timedelta(hours=22, minutes=30))})
    assert later.links_at_risk == 1 and not later.findings[0].alerted and alerts.sent == []


def test_a_report_that_turns_ready_inside_the_margin_is_alerted_at_once() -> None:
    report, alerts = watch({("particle-fleet", "2026-10"): ready(timedelta(hours=3), ready_for=timedelta(minutes=20))})
    assert report.findings[0].alerted and len(alerts.sent) == 1


@pytest.mark.parametrize("item", [
    ready(timedelta(days=3)),  # plenty of time left
    ready(timedelta(hours=2), status="DOWNLOADING",
          lease_expires=int((NOW + timedelta(minutes=10)).timestamp() * 1000)),
    ready(timedelta(hours=2), status="DOWNLOADED"),
    ready(timedelta(hours=2), status="PUBLISHED"),
    {"status": "PENDING", "requested_at": NOW.isoformat()},  # no link yet
], ids=["far", "downloading", "downloaded", "published", "pending"])
def test_no_link_alert_when_the_report_is_safe_or_being_downloaded(item: dict[str, Any]) -> None:
    report, alerts = watch({("particle-fleet", "2026-10"): item})
    assert report.links_at_risk == 0 and alerts.sent == []


def test_a_download_whose_worker_died_counts_as_waiting() -> None:
    item = ready(timedelta(hours=2), status="DOWNLOADING", lease_expires=int((NOW - timedelta(minutes=1)).timestamp()
                                                                             * 1000))
    report, _ = watch({("particle-fleet", "2026-10"): item})
    assert report.links_at_risk == 1


def test_older_months_are_watched_too_backfills_included() -> None:
    report, alerts = watch({("particle-fleet", "2026-06"): ready(timedelta(hours=23, minutes=45))})
    assert [f.period for f in report.findings] == ["2026-06"] and len(alerts.sent) == 1
    assert report.open_reports == {"particle-fleet": 1}


def test_a_month_not_published_by_its_day_is_alerted_once() -> None:
    # Given no run at all for October, at 00:10 on the 5th (late from 00:00)
    at = datetime(2026, 11, 5, 0, 10, tzinfo=UTC)
    report, alerts = watch({}, now=at)
    (finding,) = report.findings
    assert (finding.kind, finding.export, finding.period, finding.alerted) == ("month_late", "particle-fleet",
                                                                               "2026-10", True)
    ((subject, message),) = alerts.sent
    assert "particle-fleet 2026-10: not published by day 5" in subject
    assert "none (no run recorded)" in message
    assert f"#/statemachines/view/{MACHINE}" in message  # no execution to point at: the state machine's page
    assert "backfill --export particle-fleet --from 2026-10 --to 2026-10" in message
    # And the next hour it is still late (counted) but not alerted again
    again, alerts = watch({}, now=at + timedelta(hours=1))
    assert again.months_late == 1 and alerts.sent == []


def test_a_published_month_or_one_before_its_day_is_not_late() -> None:
    published = {("particle-fleet", "2026-10"): {"status": "PUBLISHED"}}
    assert watch(published, now=NOW + timedelta(days=3))[0].findings == ()
    assert watch({}, now=datetime(2026, 11, 4, 23, 59, tzinfo=UTC))[0].findings == ()


def test_a_failed_month_is_late_and_links_to_its_execution() -> None:
    at = datetime(2026, 11, 5, 0, 30, tzinfo=UTC)
    report, alerts = watch({("particle-fleet", "2026-10"): {"status": "FAILED", "requested_by": OWNER}}, now=at)
    assert report.months_late == 1
    assert "status FAILED" in alerts.sent[0][1] and OWNER in alerts.sent[0][1]


def test_an_unscheduled_export_is_never_late() -> None:
    manual = WatchedExport(name="particle-sandbox", vendor="particle", publish_by_day=None)
    assert watch({}, manual, now=NOW + timedelta(days=20))[0].findings == ()


def test_open_reports_and_their_age_per_export() -> None:
    items = {("particle-fleet", "2026-10"): {"status": "PENDING",
                                             "requested_at": (NOW - timedelta(hours=3)).isoformat()},
             ("particle-fleet", "2026-09"): {"status": "PUBLISHED"}}
    report, _ = watch(items)
    assert report.open_reports == {"particle-fleet": 1}
    assert report.oldest_open_seconds == {"particle-fleet": 3 * 3600}


def test_only_recent_months_are_read_one_item_each() -> None:
    ledger = Ledger({})
    watch_runs(WatchInput(exports=(FLEET,), lookback_months=3), ledger=ledger, notify=None, now=NOW)
    assert ledger.reads == [("particle-fleet", p) for p in ("2026-10", "2026-09", "2026-08")]


def test_late_from_is_midnight_of_the_day_in_the_schedule_zone_clamped_to_short_months() -> None:
    assert late_from("2026-10", 5, "Europe/Berlin") == datetime(2026, 11, 5, tzinfo=late_from(
        "2026-10", 5, "Europe/Berlin").tzinfo)  # type: ignore[union-attr]
    assert late_from("2027-01", 31, "UTC") == datetime(2027, 2, 28, tzinfo=UTC)
    assert late_from("2026-10", None, "UTC") is None
    export = ParticleExport(name="particle-fleet", secret_name="s", schedule={"day_of_month": 4})
    assert export.publish_by() == 6
    assert ParticleExport(name="p1", secret_name="s", schedule={"enabled": False}).publish_by() is None
    with pytest.raises(ValueError, match=r"must be after schedule\.day_of_month"):
        ParticleExport(name="p1", secret_name="s", publish_by_day=4, schedule={"day_of_month": 4})
