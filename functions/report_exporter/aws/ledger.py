"""The job ledger: one DynamoDB item per (export, period), and one outstanding-request item per vendor account.

It is what makes runs safe to repeat: a rerun, a Step Functions retry or a second schedule firing
*adopts* the open vendor report instead of requesting another; a vendor account never has more
reports in flight than the vendor allows, across executions; a vendor report is downloaded and
published once, and no execution ends SUCCEEDED without its partition published.

Lifecycle of a run item (``status``), every transition a conditional write in this module::

                 claim                requested             polled(ready)
    (none) ───────────────► REQUESTING ─────────► PENDING ───────────────► READY
    FAILED ──┘ (new request)    │ requested(sync)                           │
    PUBLISHED┘                  └───────────────────────────► READY ◄───────┘
                                                                 │ begin_download
                                                                 ▼
         PUBLISHED ◄── published ── PUBLISHING ◄── begin_publish ── DOWNLOADED ◄── downloaded ── DOWNLOADING

    any open status ── failed / ended (lease holder, or anyone once the lease expired) ──► FAILED

Claims are leases. The item's ``lease_owner`` (an execution ARN) is the one execution that may move it
on and that answers for it; ``lease_expires`` (epoch milliseconds) is tied to the work the lease covers:
the requester's report deadline while the report is pending, the function's timeout while a
download or a publish runs (``limits.py``). An execution that finds a live lease held by another
one *follows* it (adopts the report, reuses the raw file, waits for the publish and reports its
result: ``ReportBusyError`` is retried by the state machine); one that finds an expired lease takes
it over. Only the lease holder, or anyone once the lease has expired, may fail the item: a failing
adopter leaves the owner's run alone and only notes ``last_failure``.

While DOWNLOADING, the item also holds the download's resume cursor (``download_cursor``, JSON): the raw
key, the open multipart upload, the parts uploaded so far with their ETags and byte count, and the
adapter's own cursor (next page, byte offset, the file's ETag; never a URL with a signature or a
secret). The lease holder rewrites it after every part, so a retried DownloadReport of the same
execution, or an execution that takes over the expired lease, continues the upload instead of starting
over; ``downloaded`` removes it.

The slot item (pk ``ACCOUNT#<account>``) holds one lease per execution that has a report outstanding
at the vendor (``holders``: execution ARN -> export, period, expiry at the run's deadline); expired
holders do not count and are dropped on the next write. An execution that ends without its Catch
(stopped, timed out) releases its slot and fails its item through the ``EndRun`` rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from report_exporter import limits
from report_exporter.aws import clients
from report_exporter.errors import OutstandingReportCapError, ReportBusyError, ReportSupersededError, RunEndedError
from report_exporter.models.payloads import CuratedObject, RawObject, RunPlan
from report_exporter.ports import Claim, RunStatus

# What a run records about itself beside the lifecycle (``record_run``): telemetry.py's figures, its AWS usage
# (``usage_<unit>``), its estimated cost and the vendor errors it met (``vendor_error_<name>``).
RUN_FIELDS = frozenset({"waited_seconds", "report_age_seconds", "link_headroom_seconds", "parquet_bytes",
                        "run_seconds", "cost_usd", "cost_region"})
RUN_FIELD_PREFIXES = ("usage_", "vendor_error_")

# A report in one of these states can be adopted by another execution of the same export and period.
ADOPTABLE = frozenset({RunStatus.PENDING, RunStatus.READY, RunStatus.DOWNLOADING, RunStatus.DOWNLOADED,
                       RunStatus.PUBLISHING})


@cache
def _codec() -> tuple[Any, Any]:
    """boto3's DynamoDB (serializer, deserializer), imported on first use (see aws/clients.py)."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def _ser(value: Any) -> Any:
    return _codec()[0].serialize(value)


def _des(value: Any) -> Any:
    return _codec()[1].deserialize(value)


def _key(export: str, period: str) -> dict[str, Any]:
    return {"pk": {"S": f"EXPORT#{export}"}, "sk": {"S": f"PERIOD#{period}"}}


def _slot_key(account: str) -> dict[str, Any]:
    return {"pk": {"S": f"ACCOUNT#{account}"}, "sk": {"S": "OUTSTANDING"}}


def _epoch(moment: datetime) -> int:
    """Lease expiries are epoch milliseconds: numbers compare exactly in a condition expression."""
    return int(moment.timestamp() * 1000)


def _short(execution: str) -> str:
    return execution.rsplit(":", 1)[-1]


def _conditional_failed(exc: Any) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: integers become int, the rest float."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


class DynamoLedger:
    """The job ledger (``ports.Ledger``) in the stack's DynamoDB table (on-demand, point-in-time recovery,
    encrypted)."""

    def __init__(self, table: str) -> None:
        if not table:
            raise ValueError("the ledger needs a DynamoDB table name (LEDGER_TABLE)")
        self._table = table

    # Reading.
    def get(self, export: str, period: str) -> dict[str, Any] | None:
        """The run item as plain values (the operator's view)."""
        return self._get(_key(export, period))

    def slots(self, account: str) -> dict[str, dict[str, Any]]:
        """The account's outstanding-request holders: execution ARN -> export, period, expiry."""
        item = self._get(_slot_key(account)) or {}
        holders: dict[str, dict[str, Any]] = item.get("holders") or {}
        return holders

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item = clients.dynamodb().get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        return {k: _plain(_des(v)) for k, v in item.items()} if item else None

    # Writing.
    def _update(self, key: dict[str, Any], values: dict[str, Any], *, condition: str | None = None,
                condition_values: dict[str, Any] | None = None, remove: tuple[str, ...] = ()) -> bool:
        """SET ``values``, REMOVE ``remove``, bump ``version``; False when ``condition`` did not hold."""
        names = {f"#{k}": k for k in (*values, *remove, "version")}
        expression = ("SET " + ", ".join(f"#{k} = :{k}" for k in values) + " " if values else "") + "ADD #version :one"
        if remove:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
        attribute_values = {f":{k}": _ser(v) for k, v in values.items()} | {":one": {"N": "1"}}
        kwargs: dict[str, Any] = {}
        if condition:
            import re

            kwargs["ConditionExpression"] = condition
            names |= {f"#{word}": word for word in re.findall(r"#(\w+)", condition)}
            attribute_values |= {f":{k}": _ser(v) for k, v in (condition_values or {}).items()}
        try:
            clients.dynamodb().update_item(
                TableName=self._table, Key=key, UpdateExpression=expression,
                ExpressionAttributeNames=names, ExpressionAttributeValues=attribute_values, **kwargs,
            )
        except clients.client_error() as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def _run(self, plan: RunPlan, values: dict[str, Any], *, condition: str | None = None,
             condition_values: dict[str, Any] | None = None, remove: tuple[str, ...] = ()) -> bool:
        if "lease_owner" in values:
            # An execution that has ended (EndRun marked it) takes no lease, even from a Lambda still running.
            ended = "NOT contains(#ended, :ended_me)"
            condition = f"({condition}) AND {ended}" if condition else ended
            condition_values = {**(condition_values or {}), "ended_me": plan.execution_id}
        return self._update(_key(plan.export.name, plan.period), values, condition=condition,
                            condition_values=condition_values, remove=remove)

    @staticmethod
    def _lease(plan: RunPlan, until: datetime, now: datetime) -> dict[str, Any]:
        return {"lease_owner": plan.execution_id, "lease_expires": _epoch(until), "updated_at": now.isoformat()}

    @staticmethod
    def _live_lease_of_other(item: dict[str, Any], me: str, now: datetime) -> bool:
        owner = item.get("lease_owner")
        return bool(owner) and owner != me and float(item.get("lease_expires", 0)) > _epoch(now)

    # The run item's transitions.
    def claim(self, plan: RunPlan, *, now: datetime) -> Claim:
        """Adopt the open report of this export and period, or take the right to request a new one.

        Raises:
            ReportBusyError: another live execution is requesting it right now (retried, then adopted).
        """
        me = plan.execution_id
        for _ in range(5):
            item = self.get(plan.export.name, plan.period)
            if item:
                self._check_not_ended(plan, item)
            version = int(item.get("version", 0)) if item else 0
            expected = {"expected": version}
            status = item.get("status") if item else None
            if item and status in ADOPTABLE and item.get("job"):
                # The requester is gone (its lease expired): this execution answers for the report now.
                take_over = status in (RunStatus.PENDING, RunStatus.READY) and not self._live_lease_of_other(
                    item, me, now)
                if take_over and not self._run(plan, self._lease(plan, plan.deadline + limits.LEASE_GRACE, now),
                                               condition="#version = :expected", condition_values=expected):
                    continue
                return Claim(adopt=True, job=str(item["job"]), report_id=item.get("report_id"))
            if item and status == RunStatus.REQUESTING and self._live_lease_of_other(item, me, now):
                raise ReportBusyError(
                    f"export {plan.export.name!r} {plan.period}: execution {_short(str(item['lease_owner']))} "
                    "is requesting this report right now; this run will adopt it"
                )
            values = {"status": RunStatus.REQUESTING.value, "export": plan.export.name, "period": plan.period,
                      "vendor": plan.export.vendor_name.value, "claimed_at": now.isoformat(),
                      **self._lease(plan, now + limits.REQUEST_LEASE, now)}
            condition = "attribute_not_exists(pk)" if item is None else "#version = :expected"
            # A new request starts clean: nothing of the previous report may be reused for it, and the new run
            # counts its own metrics and cost.
            stale = ("job", "report_id", "polls", "requested_at", "last_polled_at", "ready_at", "link_expires_at",
                     "download_cursor",
                     *(k for k in item if k in RUN_FIELDS or k.startswith(RUN_FIELD_PREFIXES))) if item else ()
            if self._run(plan, values, condition=condition, condition_values={} if item is None else expected,
                         remove=stale):
                return Claim(adopt=False)
        raise ReportBusyError(f"export {plan.export.name!r} {plan.period}: the ledger kept changing; retrying")

    def requested(self, plan: RunPlan, *, job: str, report_id: str | None, ready: bool, now: datetime) -> None:
        """The vendor accepted the request (async) or can be read at once (sync).

        Raises:
            ReportBusyError: this execution's request lease was taken over meanwhile (retried, then adopted).
        """
        until = now + limits.DOWNLOAD_LEASE if ready else plan.deadline + limits.LEASE_GRACE
        values: dict[str, Any] = {
            "status": (RunStatus.READY if ready else RunStatus.PENDING).value, "job": job,
            "requested_at": now.isoformat(), "requested_by": plan.execution_id, "polls": 0,
            **self._lease(plan, until, now),
        }
        if report_id is not None:
            values["report_id"] = report_id
        if not self._run(plan, values, condition="#status = :requesting AND #lease_owner = :me",
                         condition_values={"requesting": RunStatus.REQUESTING.value, "me": plan.execution_id}):
            self._check_not_ended(plan, self.get(plan.export.name, plan.period) or {})
            raise ReportBusyError(
                f"export {plan.export.name!r} {plan.period}: another execution took over while this one was "
                "requesting; this run will adopt its report"
            )

    def polled(self, plan: RunPlan, *, job: str, polls: int, ready: bool, now: datetime,
               link_expires_at: datetime | None = None) -> None:
        values: dict[str, Any] = {"polls": polls, "last_polled_at": now.isoformat(), "updated_at": now.isoformat()}
        if ready:
            values["status"] = RunStatus.READY.value
            values["ready_at"] = now.isoformat()
            if link_expires_at is not None:
                # WatchRuns alerts when a ready report is still not downloaded close to this.
                values["link_expires_at"] = link_expires_at.isoformat()
        self._run(plan, values, condition="#job = :job AND #status IN (:pending, :ready)",
                  condition_values={"job": job, "pending": RunStatus.PENDING.value, "ready": RunStatus.READY.value})

    def begin_download(self, plan: RunPlan, *, job: str, now: datetime) -> list[RawObject] | None:
        """Take the download lease of this report, or get the raw objects another execution already kept.

        Raises:
            ReportBusyError: another live execution is downloading it right now (retried, then reused).
            ReportSupersededError: a newer request replaced this report.
        """
        if self._run(
            plan, {"status": RunStatus.DOWNLOADING.value, **self._lease(plan, now + limits.DOWNLOAD_LEASE, now)},
            condition="#job = :job AND NOT (#raw_job = :job) AND (#status IN (:pending, :ready, :failed) OR "
                      "(#status = :downloading AND (#lease_owner = :me OR #lease_expires < :now)))",
            condition_values={"job": job, "pending": RunStatus.PENDING.value, "ready": RunStatus.READY.value,
                              "failed": RunStatus.FAILED.value, "downloading": RunStatus.DOWNLOADING.value,
                              "me": plan.execution_id, "now": _epoch(now)},
        ):
            return None
        item = self.get(plan.export.name, plan.period) or {}
        if item.get("raw_job") == job and item.get("raw"):
            return [RawObject.model_validate(o) for o in json.loads(str(item["raw"]))]
        self._check_current(plan, item, job)
        raise ReportBusyError(
            f"export {plan.export.name!r} {plan.period}: execution {_short(str(item.get('lease_owner')))} is "
            f"downloading this report right now; this run will reuse its raw file"
        )

    def downloaded(self, plan: RunPlan, *, job: str, objects: list[RawObject], now: datetime) -> list[RawObject]:
        """Record the raw objects; returns the objects the ledger keeps for this report.

        Raises:
            ReportBusyError: the download lease was taken over and the other download has not ended.
        """
        values: dict[str, Any] = {
            "status": RunStatus.DOWNLOADED.value, "raw": json.dumps([o.model_dump(mode="json") for o in objects]),
            "raw_job": job, "raw_bytes": sum(o.bytes for o in objects), "downloaded_at": now.isoformat(),
            **self._lease(plan, now + limits.PUBLISH_LEASE, now),
        }
        if self._run(plan, values, condition="#job = :job AND #status = :downloading AND #lease_owner = :me",
                     condition_values={"job": job, "downloading": RunStatus.DOWNLOADING.value,
                                       "me": plan.execution_id}, remove=("download_cursor",)):
            return objects
        item = self.get(plan.export.name, plan.period) or {}
        if item.get("raw_job") == job and item.get("raw"):
            return [RawObject.model_validate(o) for o in json.loads(str(item["raw"]))]
        self._check_current(plan, item, job)
        raise ReportBusyError(f"export {plan.export.name!r} {plan.period}: the download lease was taken over")

    # The download's resume cursor: kept on the run item, written only by the download lease's holder.
    def download_cursor(self, plan: RunPlan, *, job: str) -> dict[str, Any] | None:
        """Where an earlier attempt's download of ``job`` stopped (its kept parts), or None.

        A cursor left by another report (one that failed for good) is not returned: its multipart upload is
        dropped by the raw bucket's lifecycle rule, and the first save of this download replaces it.
        """
        item = self.get(plan.export.name, plan.period) or {}
        text = item.get("download_cursor")
        if not text:
            return None
        cursor = json.loads(str(text))
        return cursor if isinstance(cursor, dict) and cursor.get("job") == job else None

    def save_download_cursor(self, plan: RunPlan, *, job: str, cursor: dict[str, Any]) -> None:
        """Keep the cursor of the parts uploaded so far (after each part: a few hundred bytes of JSON).

        Raises:
            ReportBusyError: this execution no longer holds the download lease (another one took it over).
        """
        if self._run(plan, {"download_cursor": json.dumps({**cursor, "job": job}, separators=(",", ":"))},
                     condition="#job = :job AND #status = :downloading AND #lease_owner = :me",
                     condition_values={"job": job, "downloading": RunStatus.DOWNLOADING.value,
                                       "me": plan.execution_id}):
            return
        item = self.get(plan.export.name, plan.period) or {}
        self._check_current(plan, item, job)
        raise ReportBusyError(f"export {plan.export.name!r} {plan.period}: the download lease was taken over")

    def clear_download_cursor(self, plan: RunPlan, *, job: str) -> None:
        """Drop the cursor (its upload was aborted, or cannot be resumed); nothing if the lease is another's."""
        self._run(plan, {}, condition="#job = :job AND #lease_owner = :me",
                  condition_values={"job": job, "me": plan.execution_id}, remove=("download_cursor",))

    def begin_publish(self, plan: RunPlan, *, job: str, now: datetime) -> list[CuratedObject] | None:
        """Take the publish lease; returns what was published if another execution published this report.

        Raises:
            ReportBusyError: another live execution is publishing it right now (retried: this run then reports
                its result, or takes over if it died).
            ReportSupersededError: a newer request replaced this report.
        """
        if self._run(
            plan, {"status": RunStatus.PUBLISHING.value, **self._lease(plan, now + limits.PUBLISH_LEASE, now)},
            condition="#job = :job AND #raw_job = :job AND NOT (#published_job = :job) AND "
                      "(#status IN (:downloaded, :failed) OR "
                      "(#status = :publishing AND (#lease_owner = :me OR #lease_expires < :now)))",
            condition_values={"job": job, "downloaded": RunStatus.DOWNLOADED.value,
                              "failed": RunStatus.FAILED.value, "publishing": RunStatus.PUBLISHING.value,
                              "me": plan.execution_id, "now": _epoch(now)},
        ):
            return None
        item = self.get(plan.export.name, plan.period) or {}
        if item.get("published_job") == job:
            return [CuratedObject.model_validate(o) for o in json.loads(str(item.get("curated") or "[]"))]
        self._check_current(plan, item, job)
        holder = _short(str(item.get("lease_owner") or "another execution"))
        raise ReportBusyError(
            f"export {plan.export.name!r} {plan.period}: execution {holder} is publishing this report right now "
            f"(status {item.get('status')}); this run will report its result"
        )

    def published(self, plan: RunPlan, *, job: str, objects: list[CuratedObject], now: datetime) -> None:
        values: dict[str, Any] = {
            "status": RunStatus.PUBLISHED.value, "published_at": now.isoformat(), "updated_at": now.isoformat(),
            "rows": sum(o.rows for o in objects), "curated": json.dumps([o.model_dump(mode="json") for o in objects]),
            "rows_outside_period": sum(o.rows_outside_period for o in objects),
            "published_by": plan.execution_id, "published_job": job,
        }
        # A newer request may have replaced this report meanwhile: its run owns the item then.
        self._run(plan, values, condition="#job = :job", condition_values={"job": job},
                  remove=("lease_owner", "lease_expires"))

    def record_replay(self, plan: RunPlan, objects: list[CuratedObject], *, now: datetime) -> None:
        """``replay`` rebuilt the partition from the kept raw files: note the new row count."""
        self._run(plan, {"rows": sum(o.rows for o in objects), "replayed_at": now.isoformat(),
                         "curated": json.dumps([o.model_dump(mode="json") for o in objects])})

    def failed(self, *, export: str, period: str, execution: str, error: str, message: str, now: datetime,
               only_if_owner: bool = False) -> bool:
        """Mark the run FAILED if this execution holds its lease (or the lease expired); True when it did.

        A published month is never marked failed, and an adopter's failure leaves the owner's run alone.
        Every failure is noted in ``last_failure`` either way. ``only_if_owner`` (EndRun): act only on a
        lease this execution still holds, so a failure RecordFailure already recorded keeps its own error.
        """
        text = f"{error}: {message}"[:1000]
        key = _key(export, period)
        condition = ("attribute_not_exists(pk) OR (NOT (#status = :published) AND (#lease_owner = :me OR "
                     "attribute_not_exists(#lease_owner) OR #lease_expires < :now))")
        values: dict[str, Any] = {"published": RunStatus.PUBLISHED.value, "me": execution, "now": _epoch(now)}
        if only_if_owner:
            condition = "NOT (#status = :published) AND #lease_owner = :me"
            del values["now"]
        recorded = self._update(
            key,
            {"status": RunStatus.FAILED.value, "last_error": text, "failed_at": now.isoformat(),
             "failed_by": execution, "updated_at": now.isoformat(), "export": export, "period": period},
            condition=condition, condition_values=values, remove=("lease_owner", "lease_expires"),
        )
        if recorded or not only_if_owner:
            self._update(key, {"last_failure": f"{text} (execution {_short(execution)}, {now.isoformat()})"[:1200]},
                         condition="attribute_exists(pk)")
        return recorded

    def record_run(self, *, export: str, period: str, add: Mapping[str, int | Decimal], values: Mapping[str, Any],
                   ) -> bool:
        """Add an invocation's usage, cost and counters (``add``) and set its figures (``values``) on the month's
        item; False when there is no item (nothing is created). Statuses, leases and the item's version are
        left alone: this is bookkeeping beside the lifecycle, and no transition waits for it.
        """
        add = {k: v for k, v in add.items() if v}
        names = {f"#{i}": name for i, name in enumerate([*add, *values])}
        by_name = {name: key for key, name in names.items()}
        clauses = []
        if values:
            clauses.append("SET " + ", ".join(f"{by_name[k]} = :{by_name[k][1:]}" for k in values))
        if add:
            clauses.append("ADD " + ", ".join(f"{by_name[k]} :{by_name[k][1:]}" for k in add))
        if not clauses:
            return True
        attribute_values = {f":{by_name[k][1:]}": _ser(v) for k, v in {**add, **values}.items()}
        try:
            clients.dynamodb().update_item(
                TableName=self._table, Key=_key(export, period), UpdateExpression=" ".join(clauses),
                ConditionExpression="attribute_exists(pk)", ExpressionAttributeNames=names,
                ExpressionAttributeValues=attribute_values,
            )
        except clients.client_error() as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def ended(self, *, export: str, period: str, account: str | None, execution: str, now: datetime) -> None:
        """EndRun: ``execution`` has ended without its Catch. Free its slot and make sure that none of its
        Lambdas still running (AWS lets them finish after StopExecution) can take a slot or a lease later.

        The marks on the run item stay (a handful per month); the slot item's expire after the longest a
        Lambda can run.
        """
        clients.dynamodb().update_item(
            TableName=self._table, Key=_key(export, period), UpdateExpression="ADD #ended :me, #version :one",
            ExpressionAttributeNames={"#ended": "ended", "#version": "version"},
            ExpressionAttributeValues={":me": {"SS": [execution]}, ":one": {"N": "1"}},
        )
        if account is None:
            return
        until = _epoch(now + limits.DOWNLOAD_LEASE)

        def end(holders: dict[str, Any], tombstones: dict[str, Any]) -> None:
            holders.pop(execution, None)
            tombstones[execution] = until

        if not self._change_slots(account, now, end):
            raise ReportBusyError(f"{account}: the slot item kept changing; retrying")

    @staticmethod
    def _check_not_ended(plan: RunPlan, item: dict[str, Any]) -> None:
        if plan.execution_id in (item.get("ended") or ()):
            raise RunEndedError(
                f"export {plan.export.name!r} {plan.period}: execution {_short(plan.execution_id)} has ended "
                "(stopped or timed out); this late invocation takes nothing"
            )

    def _check_current(self, plan: RunPlan, item: dict[str, Any], job: str) -> None:
        self._check_not_ended(plan, item)
        if not item.get("job"):
            raise ReportSupersededError(
                f"export {plan.export.name!r} {plan.period}: the ledger holds no request for report {job} "
                f"(status {item.get('status', 'none')}); RequestReport records one before any download or publish"
            )
        if item.get("job") != job:
            raise ReportSupersededError(
                f"export {plan.export.name!r} {plan.period}: report {job} was replaced by a newer request "
                f"(execution {_short(str(item.get('lease_owner') or item.get('requested_by') or '?'))}); "
                "this run stops"
            )

    # The account's outstanding-request slots.
    def acquire_slot(self, plan: RunPlan, cap: int, *, now: datetime) -> None:
        """Take one of the vendor account's ``cap`` outstanding-request slots for this execution (idempotent).

        Raises:
            OutstandingReportCapError: all slots are held by live executions; Step Functions retries later.
            RunEndedError: the execution has ended (a late Lambda of a stopped run).
        """
        me = plan.execution_id

        def take(holders: dict[str, Any], tombstones: dict[str, Any]) -> None:
            if me in tombstones:
                raise RunEndedError(f"execution {_short(me)} has ended; this late invocation takes no report slot")
            if me not in holders and len(holders) >= cap:
                held = ", ".join(sorted(f"{v.get('export')} {v.get('period')}" for v in holders.values()))
                raise OutstandingReportCapError(
                    f"{plan.export.vendor_name.value} account of export {plan.export.name!r} already has {cap} "
                    f"reports outstanding ({held}); waiting for one to finish"
                )
            holders[me] = {"export": plan.export.name, "period": plan.period,
                           "expires": _epoch(plan.deadline + limits.LEASE_GRACE)}

        if not self._change_slots(plan.export.account_key(), now, take, keep=me):
            raise OutstandingReportCapError(f"{plan.export.vendor_name.value}: the slot item kept changing; retrying")

    def _change_slots(self, account: str, now: datetime, change: Callable[[dict[str, Any], dict[str, Any]], None],
                      *, keep: str | None = None) -> bool:
        """Read the slot item, drop expired holders and tombstones, apply ``change``, write it back if unchanged."""
        for _ in range(8):
            item = self._get(_slot_key(account)) or {}
            version = int(item.get("version", 0))
            holders = {k: v for k, v in (item.get("holders") or {}).items()
                       if float(v.get("expires", 0)) > _epoch(now) or k == keep}
            tombstones = {k: v for k, v in (item.get("ended") or {}).items() if float(v) > _epoch(now)}
            change(holders, tombstones)
            try:
                clients.dynamodb().put_item(
                    TableName=self._table,
                    Item={**_slot_key(account), "holders": _ser(holders),
                          "ended": _ser(tombstones), "version": {"N": str(version + 1)},
                          "updated_at": {"S": now.isoformat()}},
                    ConditionExpression="attribute_not_exists(pk) OR #version = :expected",
                    ExpressionAttributeNames={"#version": "version"},
                    ExpressionAttributeValues={":expected": {"N": str(version)}},
                )
            except clients.client_error() as exc:
                if _conditional_failed(exc):
                    continue
                raise
            return True
        return False

    def release_slot(self, account: str, execution: str) -> None:
        """Free ``execution``'s slot, if it holds one (idempotent)."""
        try:
            clients.dynamodb().update_item(
                TableName=self._table, Key=_slot_key(account),
                UpdateExpression="REMOVE #holders.#me ADD #version :one",
                ConditionExpression="attribute_exists(#holders.#me)",
                ExpressionAttributeNames={"#holders": "holders", "#me": execution, "#version": "version"},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except clients.client_error() as exc:
            if not _conditional_failed(exc):
                raise
