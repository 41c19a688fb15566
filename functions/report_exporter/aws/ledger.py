"""The job ledger: one DynamoDB item per (export, period), plus one outstanding-request item per vendor account.

It is what makes runs safe to repeat: a rerun, a Step Functions retry or a second schedule firing
*adopts* the open vendor report instead of requesting another; a vendor account never has more
reports in flight than the vendor allows, across executions; a vendor report is published once.
Writes are conditional: the run item carries a version number (optimistic concurrency), the slot
item is a string set whose size is checked in the same write that adds to it.

Run item (pk ``EXPORT#<export>``, sk ``PERIOD#<period>``): status, report_id, execution (owner),
requested_at, polls, raw (JSON: key, bytes, sha256 per object), rows, parquet keys, last_error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from report_exporter.aws import clients
from report_exporter.errors import OutstandingReportCapError, ReportBusyError
from report_exporter.models.payloads import CuratedObject, RawObject, RunPlan

REQUESTING = "REQUESTING"
PENDING = "PENDING"
READY = "READY"
DOWNLOADED = "DOWNLOADED"
PUBLISHING = "PUBLISHING"
PUBLISHED = "PUBLISHED"
FAILED = "FAILED"
OPEN = {PENDING, READY, DOWNLOADED, PUBLISHING}
# A claim or publish older than this is from an execution that died: it may be taken over.
STALE_AFTER = timedelta(minutes=20)

_SER = TypeSerializer()
_DES = TypeDeserializer()


@dataclass(frozen=True)
class Claim:
    """What RequestReport may do: request a new report, or adopt the open one."""

    adopt: bool
    report_id: str | None = None
    status: str | None = None
    polls: int = 0


class Ledger(Protocol):
    def claim(self, plan: RunPlan, *, now: datetime) -> Claim: ...
    def acquire_slot(self, plan: RunPlan, cap: int) -> None: ...
    def release_slot(self, plan: RunPlan) -> None: ...
    def requested(self, plan: RunPlan, report_id: str | None, status: str, *, now: datetime) -> None: ...
    def polled(self, plan: RunPlan, polls: int, status: str, *, now: datetime) -> None: ...
    def begin_download(self, plan: RunPlan, report_id: str, *, now: datetime) -> list[RawObject] | None: ...
    def downloaded(self, plan: RunPlan, report_id: str | None, objects: list[RawObject], *, now: datetime) -> None: ...
    def begin_publish(self, plan: RunPlan, report_id: str | None, *, now: datetime) -> list[CuratedObject] | None: ...
    def published(self, plan: RunPlan, report_id: str | None, objects: list[CuratedObject], *,
                  now: datetime) -> None: ...
    def failed(self, plan: RunPlan | None, export: str, period: str | None, execution: str, error: str,
               message: str, *, now: datetime) -> None: ...


class NullLedger:
    """No ledger (unit tests of logic, tools): every run requests, nothing is shared."""

    def claim(self, plan: RunPlan, *, now: datetime) -> Claim:
        return Claim(adopt=False)

    def acquire_slot(self, plan: RunPlan, cap: int) -> None:
        return None

    def release_slot(self, plan: RunPlan) -> None:
        return None

    def requested(self, plan: RunPlan, report_id: str | None, status: str, *, now: datetime) -> None:
        return None

    def polled(self, plan: RunPlan, polls: int, status: str, *, now: datetime) -> None:
        return None

    def begin_download(self, plan: RunPlan, report_id: str, *, now: datetime) -> list[RawObject] | None:
        return None

    def downloaded(self, plan: RunPlan, report_id: str | None, objects: list[RawObject], *, now: datetime) -> None:
        return None

    def begin_publish(self, plan: RunPlan, report_id: str | None, *, now: datetime) -> list[CuratedObject] | None:
        return None

    def published(self, plan: RunPlan, report_id: str | None, objects: list[CuratedObject], *,
                  now: datetime) -> None:
        return None

    def failed(self, plan: RunPlan | None, export: str, period: str | None, execution: str, error: str,
               message: str, *, now: datetime) -> None:
        return None


def _key(export: str, period: str) -> dict[str, Any]:
    return {"pk": {"S": f"EXPORT#{export}"}, "sk": {"S": f"PERIOD#{period}"}}


def _slot_key(account: str) -> dict[str, Any]:
    return {"pk": {"S": f"ACCOUNT#{account}"}, "sk": {"S": "OUTSTANDING"}}


def _member(plan: RunPlan) -> str:
    return f"{plan.export.name}/{plan.period}"


def _conditional_failed(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class DynamoLedger:
    """The ledger in the stack's DynamoDB table (on-demand, point-in-time recovery, encrypted)."""

    def __init__(self, table: str) -> None:
        self._table = table

    def _get(self, export: str, period: str) -> dict[str, Any] | None:
        item = clients.dynamodb().get_item(TableName=self._table, Key=_key(export, period), ConsistentRead=True)
        raw = item.get("Item")
        return {k: _DES.deserialize(v) for k, v in raw.items()} if raw else None

    def get(self, export: str, period: str) -> dict[str, Any] | None:
        """The run item as plain values (the operator's view)."""
        return self._get(export, period)

    def _update(self, export: str, period: str, values: dict[str, Any], *, condition: str | None = None,
                condition_values: dict[str, Any] | None = None, remove: tuple[str, ...] = ()) -> bool:
        names = {f"#{k}": k for k in values} | {f"#{k}": k for k in remove}
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in values)
        if remove:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
        attribute_values = {f":{k}": _SER.serialize(v) for k, v in values.items()}
        kwargs: dict[str, Any] = {}
        if condition:
            kwargs["ConditionExpression"] = condition
            names |= {f"#{word}": word for word in re.findall(r"#(\w+)", condition)}
            for k, v in (condition_values or {}).items():
                attribute_values[f":{k}"] = _SER.serialize(v)
        try:
            clients.dynamodb().update_item(
                TableName=self._table, Key=_key(export, period), UpdateExpression=expression,
                ExpressionAttributeNames=names, ExpressionAttributeValues=attribute_values, **kwargs,
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def claim(self, plan: RunPlan, *, now: datetime) -> Claim:
        """Adopt the open report of this export and period, or take the right to request a new one.

        Raises:
            ReportBusyError: another live execution is requesting it right now (retried).
        """
        me = plan.execution_id
        for _ in range(5):
            item = self._get(plan.export.name, plan.period)
            if item and item.get("report_id") and item.get("status") in OPEN:
                return Claim(adopt=True, report_id=str(item["report_id"]), status=str(item["status"]),
                             polls=int(item.get("polls", 0)))
            if item and item.get("status") == REQUESTING and item.get("execution") != me:
                claimed = datetime.fromisoformat(str(item.get("claimed_at")))
                if now - claimed < STALE_AFTER:
                    raise ReportBusyError(
                        f"export {plan.export.name!r} {plan.period}: execution "
                        f"{str(item.get('execution')).rsplit(':', 1)[-1]} "
                        "is requesting this report right now; this run will adopt it"
                    )
            version = int(item.get("version", 0)) if item else 0
            values = {"status": REQUESTING, "execution": me, "claimed_at": now.isoformat(), "version": version + 1,
                      "export": plan.export.name, "period": plan.period, "vendor": plan.export.vendor_name.value}
            condition = "attribute_not_exists(pk)" if item is None else "#version = :expected"
            expected = {"expected": version} if item is not None else {}
            # A new request starts clean: nothing of the previous report may be reused for it.
            stale_fields = ("report_id", "raw", "raw_report", "downloading") if item else ()
            if self._update(plan.export.name, plan.period, values, condition=condition,
                            condition_values=expected, remove=stale_fields):
                return Claim(adopt=False)
        raise ReportBusyError(f"export {plan.export.name!r} {plan.period}: ledger kept changing")

    def acquire_slot(self, plan: RunPlan, cap: int) -> None:
        """Take one of the vendor account's ``cap`` outstanding-request slots (idempotent per run).

        Raises:
            OutstandingReportCapError: all slots are taken; Step Functions retries later.
        """
        member = _member(plan)
        try:
            clients.dynamodb().update_item(
                TableName=self._table, Key=_slot_key(plan.export.account_key()), UpdateExpression="ADD #slots :m",
                ConditionExpression="attribute_not_exists(#slots) OR size(#slots) < :cap OR contains(#slots, :one)",
                ExpressionAttributeNames={"#slots": "slots"},
                ExpressionAttributeValues={":m": {"SS": [member]}, ":cap": {"N": str(cap)}, ":one": {"S": member}},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise OutstandingReportCapError(
                    f"{plan.export.vendor_name.value} account of export {plan.export.name!r} already has {cap} "
                    "reports outstanding; waiting for one to finish"
                ) from None
            raise

    def release_slot(self, plan: RunPlan) -> None:
        if plan.export.max_outstanding_reports() is None:
            return
        clients.dynamodb().update_item(
            TableName=self._table, Key=_slot_key(plan.export.account_key()), UpdateExpression="DELETE #slots :m",
            ExpressionAttributeNames={"#slots": "slots"}, ExpressionAttributeValues={":m": {"SS": [_member(plan)]}},
        )

    def requested(self, plan: RunPlan, report_id: str | None, status: str, *, now: datetime) -> None:
        values: dict[str, Any] = {"status": status, "requested_at": now.isoformat(), "polls": 0,
                                  "updated_at": now.isoformat()}
        if report_id is not None:
            values["report_id"] = report_id
        self._update(plan.export.name, plan.period, values)

    def polled(self, plan: RunPlan, polls: int, status: str, *, now: datetime) -> None:
        self._update(plan.export.name, plan.period, {"polls": polls, "last_polled_at": now.isoformat(),
                                                     "status": status, "updated_at": now.isoformat()},
                     condition="#status IN (:pending, :ready)", condition_values={"pending": PENDING, "ready": READY})

    def begin_download(self, plan: RunPlan, report_id: str, *, now: datetime) -> list[RawObject] | None:
        """Take the right to download this vendor report, or get the raw objects another run already kept.

        Raises:
            ReportBusyError: another live execution is downloading it right now (retried, then reused).
        """
        stale = (now - STALE_AFTER).isoformat()
        if self._update(
            plan.export.name, plan.period,
            {"downloading": report_id, "downloader": plan.execution_id, "downloading_at": now.isoformat()},
            condition="NOT (#raw_report = :r) AND (NOT (#downloading = :r) OR #downloader = :me "
                      "OR #downloading_at < :stale)",
            condition_values={"r": report_id, "me": plan.execution_id, "stale": stale},
        ):
            return None
        item = self._get(plan.export.name, plan.period) or {}
        if item.get("raw_report") == report_id and item.get("raw"):
            return [RawObject.model_validate(o) for o in json.loads(str(item["raw"]))]
        raise ReportBusyError(
            f"export {plan.export.name!r} {plan.period}: execution {str(item.get('downloader')).rsplit(':', 1)[-1]} "
            f"is downloading report {report_id} right now; this run will reuse its raw file"
        )

    def downloaded(self, plan: RunPlan, report_id: str | None, objects: list[RawObject], *, now: datetime) -> None:
        values: dict[str, Any] = {"status": DOWNLOADED, "updated_at": now.isoformat(),
                                  "raw": json.dumps([o.model_dump(mode="json") for o in objects]),
                                  "raw_bytes": sum(o.bytes for o in objects)}
        if report_id is not None:
            values["raw_report"] = report_id
        self._update(plan.export.name, plan.period, values)

    def begin_publish(self, plan: RunPlan, report_id: str | None, *, now: datetime) -> list[CuratedObject] | None:
        """Take the right to publish this vendor report; returns what was published if another run did it."""
        if report_id is None:
            return None
        stale = (now - STALE_AFTER).isoformat()
        if self._update(
            plan.export.name, plan.period,
            {"status": PUBLISHING, "publisher": plan.execution_id, "publishing_at": now.isoformat()},
            condition="NOT (#published_report = :r) AND (NOT (#status = :publishing) OR #publisher = :me "
                      "OR #publishing_at < :stale)",
            condition_values={"r": report_id, "publishing": PUBLISHING, "me": plan.execution_id, "stale": stale},
        ):
            return None
        item = self._get(plan.export.name, plan.period) or {}
        return [CuratedObject.model_validate(o) for o in json.loads(str(item.get("curated", "[]")))]

    def published(self, plan: RunPlan, report_id: str | None, objects: list[CuratedObject], *,
                  now: datetime) -> None:
        values: dict[str, Any] = {
            "status": PUBLISHED, "published_at": now.isoformat(), "updated_at": now.isoformat(),
            "rows": sum(o.rows for o in objects), "curated": json.dumps([o.model_dump(mode="json") for o in objects]),
            "published_by": plan.execution_id,
        }
        if report_id is not None:
            values["published_report"] = report_id
        self._update(plan.export.name, plan.period, values)

    def failed(self, plan: RunPlan | None, export: str, period: str | None, execution: str, error: str,
               message: str, *, now: datetime) -> None:
        """Mark the run failed, unless the item belongs to another execution (an adopter's failure)."""
        if period is None:
            return
        self._update(export, period, {"status": FAILED, "last_error": f"{error}: {message}"[:1000],
                                      "failed_at": now.isoformat(), "updated_at": now.isoformat()},
                     condition="attribute_not_exists(pk) OR #execution = :me OR NOT (#status IN (:p1, :p2))",
                     condition_values={"me": execution, "p1": PUBLISHED, "p2": PUBLISHING})
        if plan is not None:
            item = self._get(export, period) or {}
            if item.get("execution") == execution:
                self.release_slot(plan)


def ledger_from_env(table: str) -> Ledger:
    return DynamoLedger(table) if table else NullLedger()


def ledger() -> Ledger:
    """The job ledger named by the Lambda's environment (none when LEDGER_TABLE is empty)."""
    from report_exporter.models.settings import settings

    return ledger_from_env(settings().LEDGER_TABLE)
