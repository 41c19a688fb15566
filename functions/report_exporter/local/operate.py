"""Operating a deployed stack: backfill past months, watch runs in the ledger and in Step Functions.

Talks to AWS with the caller's credentials (boto3 default chain). Names of the deployed resources
come from the outputs of the stage's stacks (named by ``report_exporter.stages``, as the CDK app names
them) unless given explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3

from report_exporter.aws.ledger import DynamoLedger
from report_exporter.errors import InvalidExportError
from report_exporter.logic.record_failure import console_link
from report_exporter.models.exports import ExportSpec, month_window, previous_period
from report_exporter.models.payloads import StartInput
from report_exporter.stages import PROD, stage_names

if TYPE_CHECKING:
    from report_exporter.models.manifest import RawManifest

DEFAULT_STAGE = PROD
STATE_MACHINE_OUTPUT = "StateMachineArn"
LEDGER_OUTPUT = "LedgerTableName"
RAW_BUCKET_OUTPUT = "RawBucketName"
WRITE_PARQUET_OUTPUT = "WriteParquetFunctionName"


def storage_stack(stage: str = DEFAULT_STAGE) -> str:
    """The name of ``stage``'s storage stack (the ledger's output)."""
    return stage_names(stage).storage_stack


def pipeline_stack(stage: str = DEFAULT_STAGE) -> str:
    """The name of ``stage``'s pipeline stack (the state machine's and WriteParquet's outputs)."""
    return stage_names(stage).pipeline_stack


def deployed_export(export: ExportSpec, stage: str = DEFAULT_STAGE) -> ExportSpec:
    """``export`` as ``stage`` runs it (its own secret name), exactly as the stage's schedules send it."""
    return stage_names(stage).export(export)


def stack_output(stack: str, key: str, *, region: str | None = None) -> str:
    """An output of a deployed stack, or a clear error naming the stack and the output.

    Raises:
        StackNotFoundError: no such stack in the account and region of the caller's credentials.
        botocore.exceptions.BotoCoreError, ClientError: no credentials, access denied, ... (see :func:`aws_problem`).
    """
    from botocore.exceptions import ClientError

    cloudformation = boto3.client("cloudformation", region_name=region)
    try:
        (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ValidationError":
            raise
        where = cloudformation.meta.region_name
        raise StackNotFoundError(f"stack {stack} not found in {where} (deployed? right --stage, --region and "
                                 "credentials?)") from None
    for output in described.get("Outputs", []):
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    raise InvalidExportError(f"stack {stack} has no output {key}; redeploy with this version")


def months(first: str, last: str) -> Iterator[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last``, both included."""
    if first > last:
        raise InvalidExportError(f"--from {first} is after --to {last}")
    period = last
    found = []
    while period >= first:
        found.append(period)
        period = previous_period(month_window(period, "UTC").start, "UTC")
    yield from reversed(found)


class StackNotFoundError(InvalidExportError):
    """The stage's stack is not deployed where the caller's credentials point."""


def aws_problem(exc: BaseException) -> str | None:
    """One line saying what went wrong talking to AWS, or None when ``exc`` is not an AWS error."""
    from botocore import exceptions as boto

    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return ("no AWS credentials found: configure them (aws configure, aws sso login, AWS_PROFILE, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and try again")
    if isinstance(exc, boto.NoRegionError):
        return "no AWS region configured: pass --region or set AWS_REGION (or a region in your AWS profile)"
    if isinstance(exc, boto.ProfileNotFound | boto.TokenRetrievalError | boto.SSOTokenLoadError
                  | boto.CredentialRetrievalError):
        return f"AWS credentials could not be loaded: {exc}"
    if isinstance(exc, boto.EndpointConnectionError | boto.ConnectTimeoutError):
        return f"AWS could not be reached: {exc}"
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "the call")
        return f"AWS refused {operation}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    if isinstance(exc, boto.BotoCoreError):
        return f"AWS error: {exc}"
    return None


@dataclass(frozen=True)
class Started:
    period: str
    name: str
    arn: str


def execution_input(export: ExportSpec, period: str) -> str:
    """Exactly what a schedule sends, with the period fixed."""
    return StartInput(export=export, period=period).model_dump_json()


def backfill(export: ExportSpec, periods: list[str], *, state_machine_arn: str, region: str | None = None,
             on_start: Callable[[Started], None] | None = None) -> list[Started]:
    """Start one execution per period, named ``<export>-<period>`` (``-2``, ``-3``, ... when reused);
    ``on_start`` hears of each one as it starts."""
    sfn = boto3.client("stepfunctions", region_name=region)
    taken = {e["name"] for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn)
             for e in page["executions"]}
    started = []
    for period in periods:
        base = f"{export.name}-{period}"
        name = next(n for n in (base, *(f"{base}-{i}" for i in range(2, 10_000))) if n not in taken)
        taken.add(name)
        arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name,
                                  input=execution_input(export, period))["executionArn"]
        started.append(Started(period=period, name=name, arn=arn))
        if on_start is not None:
            on_start(started[-1])
    return started


def ledger_rows(table: str, export: str | None = None, *, region: str | None = None) -> list[dict[str, Any]]:
    """Every run item of the ledger (optionally one export's), newest period first."""
    dynamodb = boto3.client("dynamodb", region_name=region)
    items: list[dict[str, Any]] = []
    ledger = DynamoLedger(table)
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, sk"):
        for key in page["Items"]:
            pk, sk = key["pk"]["S"], key["sk"]["S"]
            if not pk.startswith("EXPORT#") or (export and pk != f"EXPORT#{export}"):
                continue
            item = ledger.get(pk.removeprefix("EXPORT#"), sk.removeprefix("PERIOD#"))
            if item:
                items.append(item)
    return sorted(items, key=lambda i: (str(i.get("export")), str(i.get("period"))), reverse=True)


def run_record(item: dict[str, Any]) -> dict[str, Any]:
    """One ledger item as ``status --json`` shows it: the run, its metrics and its estimated cost."""
    raw = json.loads(str(item.get("raw") or "[]"))
    usage = {key.removeprefix("usage_"): item[key] for key in sorted(item) if key.startswith("usage_")}
    errors = {key.removeprefix("vendor_error_"): item[key] for key in sorted(item) if key.startswith("vendor_error_")}
    cost = item.get("cost_usd")
    return {
        "export": item.get("export"),
        "period": item.get("period"),
        "status": item.get("status"),
        "report_id": item.get("report_id"),
        "updated_at": item.get("updated_at"),
        "last_error": item.get("last_error"),
        "metrics": {
            "polls": item.get("polls"),
            "waited_seconds": item.get("waited_seconds"),
            "report_age_seconds": item.get("report_age_seconds"),
            "link_expires_at": item.get("link_expires_at"),
            "link_headroom_seconds": item.get("link_headroom_seconds"),
            "raw_bytes": item.get("raw_bytes", sum(o.get("bytes", 0) for o in raw) if raw else None),
            "parquet_bytes": item.get("parquet_bytes"),
            "rows": item.get("rows"),
            "rows_outside_period": item.get("rows_outside_period"),
            "run_seconds": item.get("run_seconds"),
            "vendor_errors": errors,
        },
        "cost": None if cost is None else {"usd": cost, "prices_region": item.get("cost_region"), "usage": usage},
    }


def _usd(value: Any) -> str:
    return "" if value is None else f"${float(value):.6f}"


def status_lines(items: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for item in items:
        record = run_record(item)
        metrics = record["metrics"]
        rows.append((
            str(item.get("export", "")), str(item.get("period", "")), str(item.get("status", "")),
            str(item.get("report_id", "") or ""), str(item.get("polls", "")), str(item.get("rows", "")),
            str(item.get("rows_outside_period", "")), str(metrics["raw_bytes"] or ""),
            _usd(item.get("cost_usd")), str(item.get("updated_at", ""))[:19],
            str(item.get("last_error", "") or "")[:80],
        ))
    return rows


STATUS_COLUMNS = ["export", "period", "status", "report", "polls", "rows", "outside period", "raw bytes",
                  "cost (est.)", "updated", "last error"]


def local_ledger(folder: str) -> list[dict[str, Any]]:
    """The ledger items a local run saved (``demo`` and ``run`` write ``ledger.json`` into their ``--out``)."""
    from pathlib import Path

    path = Path(folder)
    path = path / "ledger.json" if path.is_dir() else path
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidExportError(f"{path} does not exist: run `report-exporter demo` (or `run`) first") from None
    except json.JSONDecodeError as exc:
        raise InvalidExportError(f"{path} is not a saved ledger: {exc}") from None
    items: list[dict[str, Any]] = saved.get("ledger", []) if isinstance(saved, dict) else []
    return items


def link(arn: str) -> str:
    return console_link(arn)


def raw_manifests(bucket: str, export: str, period: str, *, region: str | None = None) -> list[RawManifest]:
    """Every manifest under ``raw/<vendor>/<export>/<period>/``, whatever the vendor (the config is not asked)."""
    from report_exporter.aws.s3 import RAW_PREFIX, raw_prefix
    from report_exporter.models.manifest import MANIFEST_SUFFIX, RawManifest

    s3 = boto3.client("s3", region_name=region)
    pages = s3.get_paginator("list_objects_v2")
    vendors = [p["Prefix"].removeprefix(RAW_PREFIX).rstrip("/")
               for page in pages.paginate(Bucket=bucket, Prefix=RAW_PREFIX, Delimiter="/")
               for p in page.get("CommonPrefixes", [])]
    found: list[RawManifest] = []
    for vendor in vendors:
        for page in pages.paginate(Bucket=bucket, Prefix=raw_prefix(vendor, export, period)):
            for item in page.get("Contents", []):
                if str(item["Key"]).endswith(MANIFEST_SUFFIX):
                    body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                    try:
                        found.append(RawManifest.from_json(body))
                    except ValueError as exc:
                        raise InvalidExportError(f"{item['Key']}: not a raw-file manifest "
                                                 f"({str(exc).splitlines()[0][:200]})") from None
    return found


def _replayed(export: str, period: str, manifests: list[RawManifest],
              item: dict[str, Any] | None) -> list[RawManifest]:
    """The raw files of the report to rebuild from: those the ledger says were published, else the newest
    download's (a month downloaded twice keeps both reports under its prefix)."""
    if item and item.get("raw"):
        recorded = [str(o["key"]) for o in json.loads(str(item["raw"]))]
        by_key = {m.key: m for m in manifests}
        missing = [key for key in recorded if key not in by_key]
        if missing:
            raise InvalidExportError(f"export {export!r} {period}: no manifest for the recorded raw file(s) "
                                     f"{', '.join(missing)}")
        return [by_key[key] for key in recorded]
    groups: dict[tuple[str | None, str], list[RawManifest]] = {}
    for manifest in manifests:
        groups.setdefault((manifest.job, manifest.execution_id), []).append(manifest)
    return max(groups.values(), key=lambda group: max(m.exported_at for m in group))


def replay_input(manifests: list[RawManifest], *, now: datetime) -> dict[str, Any]:
    """WriteParquet's input rebuilt from the raw files' manifests alone (no config, no vendor call)."""
    from report_exporter.models.payloads import JobStatus, ParquetInput, RawReport, ReportJob, RunPlan

    first = manifests[0]
    for other in manifests[1:]:
        if (other.request, other.window, other.job) != (first.request, first.window, first.job):
            raise InvalidExportError(f"{first.key} and {other.key}: their manifests answer different requests")
    export, period = first.request, first.period
    plan = RunPlan(export=export, window=first.window,
                   execution_id=f"replay:{export.name}-{period}-{now:%Y%m%dT%H%M%S}", started_at=now, deadline=now)
    job = ReportJob(job=first.job or f"replay:{export.name}-{period}", report_id=first.report_id,
                    status=JobStatus.READY, requested_at=now)
    raw = RawReport(objects=tuple(m.raw_object for m in manifests))
    return ParquetInput(plan=plan, job=job, raw=raw, replay=True).model_dump(mode="json")


def replay(export: str, period: str, *, raw_bucket: str, table: str, function_name: str, now: datetime,
           region: str | None = None) -> dict[str, Any]:
    """Invoke WriteParquet on the kept raw files of ``export`` and ``period``; returns its answer.

    What to rebuild comes from the raw prefix alone: each raw file's manifest says what it answers (the
    export as it was requested, the window, the report), so an export since changed or removed from the
    config replays as it was downloaded. The ledger, when it has the month, says which report was published.

    Raises:
        InvalidExportError: no raw file with a manifest for that month, or the function failed (its error named).
    """
    item = DynamoLedger(table).get(export, period)
    manifests = raw_manifests(raw_bucket, export, period, region=region)
    if not manifests:
        recorded = "recorded in the ledger" if item else "no run recorded in the ledger"
        raise InvalidExportError(f"export {export!r} {period}: {recorded}, and no raw file with a manifest under "
                                 f"s3://{raw_bucket}/raw/<vendor>/{export}/{period}/")
    payload = replay_input(_replayed(export, period, manifests, item), now=now)
    answer = boto3.client("lambda", region_name=region).invoke(
        FunctionName=function_name, Payload=json.dumps(payload).encode())
    body = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        error = body.get("errorType", "Error") if isinstance(body, dict) else "Error"
        message = body.get("errorMessage", "") if isinstance(body, dict) else ""
        raise InvalidExportError(f"replay of {export!r} {period} failed: {error}: {message}")
    result: dict[str, Any] = body
    return result
