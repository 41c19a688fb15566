"""Turns a run's execution history into the lines a person wants to read."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `status` prints tables with this module where only the operator commands are installed
    from report_exporter.local.runner import RunResult


def _size(n: int) -> str:
    """Bytes for people: 512 B, 118.0 KiB, 3.2 MiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{n:,} B" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"


def describe(result: RunResult, item: dict[str, Any] | None = None) -> list[str]:
    """One line per step: planning, the request, each wait and poll, the raw file, the Parquet rows; with the
    month's ledger ``item``, the run's estimated AWS cost."""
    lines: list[str] = []
    waits = iter(result.waits)
    current: str | None = None
    pending_wait = None
    for event in result.history:
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
            if current == "WaitForReport":
                pending_wait = next(waits, None)
                lines.append(f"  WaitForReport   {pending_wait} s" if pending_wait is not None else "  WaitForReport")
            continue
        if event["type"] == "LambdaFunctionFailed":
            details = event.get("lambdaFunctionFailedEventDetails", {})
            lines.append(f"  {current:<15} failed: {details.get('error')}")
        if event["type"] != "LambdaFunctionSucceeded":
            continue
        out: Any = json.loads(event["lambdaFunctionSucceededEventDetails"]["output"])
        if current == "PlanRun":
            plan = out["plan"]
            window = plan["window"]
            lines.append(f"  PlanRun         period {window['period']}: {window['start'][:10]} to {window['end'][:10]} "
                         f"(end exclusive), deadline {plan['export']['report_deadline_minutes']} min")
        elif current == "RequestReport":
            if out["status"] == "READY":
                lines.append("  RequestReport   synchronous vendor: ready at once, no wait loop")
            else:
                lines.append(f"  RequestReport   vendor report {out['report_id']} requested")
        elif current == "CheckReport":
            state = "ready" if out["status"] == "READY" else f"pending, next wait {out['wait_seconds']} s"
            lines.append(f"  CheckReport     poll {out['polls']}: {state}")
        elif current == "DownloadReport":
            for obj in out["objects"]:
                lines.append(f"  DownloadReport  {obj['key']}  {_size(obj['bytes'])}  sha256 {obj['sha256'][:12]}")
        elif current == "WriteParquet":
            for obj in out["objects"]:
                outside = obj.get("rows_outside_period") or 0
                note = f" ({outside:,} dated outside the period, kept)" if outside else ""
                lines.append(f"  WriteParquet    {obj['key']}  {obj['rows']:,} rows{note}  {_size(obj['bytes'])}")
        elif current == "RecordFailure":
            lines.append(f"  RecordFailure   {out['error']}: {out['message']}")
    for ended in result.ended:
        if "error" in ended:
            lines.append(f"  EndRun          failed: {ended['error'].get('errorType')}")
        else:
            freed = "lease and slot released" if ended.get("ledger_updated") else "nothing left to release"
            lines.append(f"  EndRun          execution {ended.get('status')}: {freed}")
    elapsed = result.elapsed.total_seconds()
    verdict = "Published" if result.succeeded else f"{result.status}: {result.error}"
    if elapsed > result.seconds + 1:
        lines.append(f"  {verdict} after {elapsed:,.0f} s of virtual time ({result.seconds:.1f} s wall)")
    else:
        lines.append(f"  {verdict} in {result.seconds:.1f} s wall")
    if item and item.get("cost_usd") is not None:
        lines.append(f"  Estimated AWS cost ${float(item['cost_usd']):.6f} at {item.get('cost_region')} prices: "
                     f"{cost_summary(item)}")
    return lines


def cost_summary(item: dict[str, Any]) -> str:
    """The usage a ledger item recorded, in the units AWS bills."""
    def n(name: str) -> float:
        return float(item.get(f"usage_{name}") or 0)

    s3 = n("s3_write_requests") + n("s3_read_requests")
    dynamodb = n("dynamodb_read_units") + n("dynamodb_write_units")
    parts = [f"{n('state_transitions'):.0f} state transitions", f"{n('lambda_requests'):.0f} Lambda requests",
             f"{n('lambda_gb_seconds'):.2f} GB-s", f"{s3:.0f} S3 requests", f"{dynamodb:.0f} DynamoDB units",
             f"{n('secrets_api_calls'):.0f} secret reads"]
    return ", ".join(parts)


def table(columns: list[str], rows: list[tuple[Any, ...]], limit: int = 10) -> list[str]:
    shown = [tuple("" if v is None else str(v) for v in row) for row in rows[:limit]]
    widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(columns)]
    out = ["  " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    out.append("  " + "-+-".join("-" * w for w in widths))
    out += ["  " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in shown]
    if len(rows) > limit:
        out.append(f"  ... {len(rows) - limit} more rows")
    return out
