"""WatchRuns: the two failures nobody sees by themselves, checked every hour against the ledger.

* A vendor link about to expire: a report is READY (or its downloader died) but not downloaded, and its
  link (Particle's ``expires_at``) expires within the margin. After that the vendor deletes the report
  and the month has to be requested again, if the vendor still serves it.
* A month not published by its day: the export's last month is not PUBLISHED at 00:00 of its
  ``publish_by_day`` (a run that never started, failed without anyone acting, or is still waiting).

Each finding is published to the alert topic once, by the first check that sees it (the one within
``interval_minutes`` of the link's margin being crossed, of the report turning ready, or of the day
starting), with the export, the month and a console link. The counts go to CloudWatch too, where two
alarms stay in ALARM while any finding lasts (constructs/monitoring.py): the message says what, the
alarm that something still is.

Only ``GetItem`` on the ledger: the months to look at follow from the configured exports and the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from report_exporter.logic.record_failure import console_link
from report_exporter.models.exports.base import late_from, month_window, previous_period
from report_exporter.models.payloads import WatchedExport, WatchFinding, WatchInput, WatchReport
from report_exporter.ports import LedgerReader, Notify, RunStatus, lease_expired

OPEN = frozenset({RunStatus.REQUESTING, RunStatus.PENDING, RunStatus.READY, RunStatus.DOWNLOADING,
                  RunStatus.DOWNLOADED, RunStatus.PUBLISHING})


def _periods(export: WatchedExport, now: datetime, months: int) -> list[str]:
    """The export's last ``months`` ended months, newest first."""
    periods = [previous_period(now, export.timezone)]
    while len(periods) < months:
        periods.append(previous_period(month_window(periods[-1], export.timezone).start, export.timezone))
    return periods


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def state_machine_link(arn: str) -> str:
    """The Step Functions console page of a state machine (its executions)."""
    region = arn.split(":")[3] if arn.count(":") >= 3 and arn.split(":")[3] else "us-east-1"
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/statemachines/view/{arn}"


def watch_runs(event: WatchInput, *, ledger: LedgerReader, notify: Notify | None, now: datetime) -> WatchReport:
    """Check every configured export's recent months; alert what is new.

    Args:
        event: The exports to watch and the thresholds (from the hourly rule's input).
        ledger: The job ledger (read only).
        notify: Publisher to the alert topic, or None when there is none.
        now: The current time.

    Returns:
        What is open and at risk, per export, and every finding (``alerted`` when published now).
    """
    interval = timedelta(minutes=event.interval_minutes)
    margin = timedelta(hours=event.link_margin_hours)
    open_reports: dict[str, int] = {}
    oldest: dict[str, int] = {}
    headroom: dict[str, int] = {}
    findings: list[WatchFinding] = []

    def execution_link(item: dict[str, Any] | None) -> str:
        execution = (item or {}).get("lease_owner") or (item or {}).get("requested_by")
        return console_link(str(execution)) if execution else state_machine_link(event.state_machine_arn)

    def found(kind: str, export: str, period: str, detail: str, item: dict[str, Any] | None, new: bool) -> None:
        link = execution_link(item)
        alerted = new and notify is not None
        if alerted and notify is not None:
            subject = f"report-exporter: {export} {period}: {detail}"[:100]
            notify(subject, "\n".join([
                f"Export:    {export}",
                f"Period:    {period}",
                f"Problem:   {detail}",
                f"Ledger:    status {(item or {}).get('status', 'none (no run recorded)')}",
                f"Execution: {link}",
                "Act:       report-exporter status --export " + export + "; rerun with report-exporter backfill "
                f"--export {export} --from {period} --to {period}",
            ]))
        findings.append(WatchFinding(kind=kind, export=export, period=period, detail=detail, link=link,
                                     alerted=alerted))

    for export in event.exports:
        periods = _periods(export, now, event.lookback_months)
        items = {period: ledger.get(export.name, period) for period in periods}
        for period, item in items.items():
            if not item or item.get("status") not in OPEN:
                continue
            open_reports[export.name] = open_reports.get(export.name, 0) + 1
            since = _when(item.get("requested_at") or item.get("claimed_at"))
            if since is not None:
                age = int((now - since).total_seconds())
                oldest[export.name] = max(oldest.get(export.name, 0), age)
            expires = _when(item.get("link_expires_at"))
            waiting = item.get("status") == RunStatus.READY or (
                item.get("status") == RunStatus.DOWNLOADING and lease_expired(item, now))
            if expires is None or not waiting:
                continue
            left = expires - now
            headroom[export.name] = min(headroom.get(export.name, int(left.total_seconds())), int(left.total_seconds()))
            if left <= margin:
                ready_at = _when(item.get("ready_at"))
                new = left > margin - interval or (ready_at is not None and now - ready_at < interval)
                hours = max(0.0, left.total_seconds() / 3600)
                found("link_expiring", export.name, period,
                      f"vendor link expires in {hours:.0f} h ({expires:%Y-%m-%d %H:%M} UTC), report not downloaded",
                      item, new)
        last = periods[0]
        due = late_from(last, export.publish_by_day, export.schedule_timezone)
        item = items[last]
        if due is not None and now >= due and (not item or item.get("status") != RunStatus.PUBLISHED):
            found("month_late", export.name, last,
                  f"not published by day {export.publish_by_day} ({due:%Y-%m-%d %H:%M %Z})", item,
                  now - due < interval)
    return WatchReport(checked_at=now, open_reports=open_reports, oldest_open_seconds=oldest,
                       link_headroom_seconds=headroom, findings=tuple(findings))
