"""Each function's environment and IAM grants hold what its step uses, and nothing else.

Two tables, written out here rather than read from the infra code: the variables each handler reads
(checked against the handlers' source too) and every action and resource each function's role may use.
Resources are written with placeholders (``<ledger>``, ``<raw>/raw/*``) that the tests replace by
the logical ids of the construct tree; cross-stack imports are resolved back to the storage stack's
logical ids.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from pathlib import Path
from typing import Any

import pytest

from exporter_infra import names
from report_exporter.models.settings import ExporterEnv
from tests.infra.conftest import Synth
from tests.infra.support import as_list, cross_stack_exports, logical_id, resolved, resources, statements_of_role

POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"}

# What each handler reads from its environment (besides Powertools' own variables).
HANDLER_VARIABLES: dict[str, set[str]] = {
    names.PLAN_RUN: set(),
    names.REQUEST_REPORT: {"LEDGER_TABLE"},
    names.CHECK_REPORT: {"LEDGER_TABLE"},
    names.DOWNLOAD_REPORT: {"LEDGER_TABLE", "RAW_BUCKET"},
    names.WRITE_PARQUET: {"LEDGER_TABLE", "RAW_BUCKET", "CURATED_BUCKET"},
    names.RECORD_FAILURE: {"LEDGER_TABLE", "ALERT_TOPIC_ARN"},
    names.END_RUN: {"LEDGER_TABLE", "ALERT_TOPIC_ARN"},
    names.WATCH_RUNS: {"LEDGER_TABLE", "ALERT_TOPIC_ARN"},
}

# Every role: its own log group, and X-Ray (which has no resource-level permissions).
_BASE = {
    "logs:CreateLogStream": {"<logs>"},
    "logs:PutLogEvents": {"<logs>"},
    "xray:PutTraceSegments": {"*"},
    "xray:PutTelemetryRecords": {"*"},
}
# Single items of the ledger: what aws/ledger.py calls (see the test below), no Scan, Query, batch or delete.
_LEDGER = {
    "dynamodb:GetItem": {"<ledger>"},
    "dynamodb:PutItem": {"<ledger>"},
    "dynamodb:UpdateItem": {"<ledger>"},
}
# Every configured export's secret, by exact name (one function serves every export).
_SECRETS = {"secretsmanager:GetSecretValue": {"<secrets>"}}
_ALERTS = {
    "sns:Publish": {"<topic>"},
    "kms:Decrypt": {"<topic key>"},
    "kms:GenerateDataKey*": {"<topic key>"},
}
_PUT = ("s3:PutObject", "s3:PutObjectLegalHold", "s3:PutObjectRetention", "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging", "s3:Abort*")
_READ = ("s3:GetObject*", "s3:GetBucket*", "s3:List*")

PERMISSIONS: dict[str, dict[str, set[str]]] = {
    names.PLAN_RUN: _BASE,
    names.REQUEST_REPORT: _BASE | _LEDGER | _SECRETS,
    names.CHECK_REPORT: _BASE | _LEDGER | _SECRETS,
    names.DOWNLOAD_REPORT: _BASE | _LEDGER | _SECRETS | {action: {"<raw>/raw/*"} for action in _PUT}
    # Resuming an upload: the parts it kept, and the completed object read back once for its sha256.
    | {action: {"<raw>/raw/*"} for action in ("s3:ListMultipartUploadParts", "s3:GetObject")},
    names.WRITE_PARQUET: _BASE | _LEDGER
    | {action: {"<raw>", "<raw>/raw/*", "<curated>", "<curated>/curated/*"} for action in _READ}
    | {action: {"<curated>/curated/*"} for action in _PUT}
    # Only its own staged copy, never an object version: not DeleteObject*, not all of curated/.
    | {"s3:DeleteObject": {"<curated>/curated/_staging/*"}},
    names.RECORD_FAILURE: _BASE | _LEDGER | _ALERTS,
    # Lambda sends EndRun's failed asynchronous invocations to the cleanup queue under EndRun's role.
    names.END_RUN: _BASE | _LEDGER | _ALERTS
    | {action: {"<cleanup queue>"} for action in ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")},
    # Reads the ledger (GetItem only: it never writes) and alerts what it finds.
    names.WATCH_RUNS: _BASE | {"dynamodb:GetItem": {"<ledger>"}} | _ALERTS,
}


def _function_resources(synth: Synth) -> dict[str, dict[str, Any]]:
    by_handler = {handler: state for state, handler in names.HANDLERS.items()}
    return {
        by_handler[fn["Properties"]["Handler"]]: fn
        for fn in resources(synth.pipeline, "AWS::Lambda::Function")
        if fn["Properties"]["Handler"] in by_handler
    }


def _placeholders(synth: Synth, state: str) -> dict[str, set[str]]:
    storage, pipeline = synth.built.storage, synth.built.pipeline
    fn = pipeline.functions.by_name[state]
    assert fn.log_group is not None
    (topic,) = resources(synth.pipeline, "AWS::SNS::Topic")
    return {
        "<logs>": {f"{{{logical_id(fn.log_group)}.Arn}}"},
        "<ledger>": {f"{{{logical_id(storage.ledger)}.Arn}}"},
        "<raw>": {f"{{{logical_id(storage.raw_bucket)}.Arn}}"},
        "<curated>": {f"{{{logical_id(storage.curated_bucket)}.Arn}}"},
        "<topic>": {f"{{{logical_id(pipeline.alerts)}}}"},
        "<topic key>": {f"{{{topic['Properties']['KmsMasterKeyId']['Fn::GetAtt'][0]}.Arn}}"},
        "<cleanup queue>": {f"{{{logical_id(pipeline.cleanup.dead_letter_queue)}.Arn}}"},
        "<secrets>": {
            f"arn:{{AWS::Partition}}:secretsmanager:{{AWS::Region}}:{{AWS::AccountId}}:secret:{name}-??????"
            for name in {e.secret_name for e in synth.config.deployed_exports.exports}
        },
    }


def _expected(synth: Synth, state: str) -> dict[str, set[str]]:
    placeholders = _placeholders(synth, state)
    expected: dict[str, set[str]] = {}
    for action, patterns in PERMISSIONS[state].items():
        for pattern in patterns:
            placeholder = pattern.split("/", 1)[0]
            for value in placeholders.get(placeholder, {placeholder}):
                expected.setdefault(action, set()).add(value + pattern.removeprefix(placeholder))
    return expected


def _granted(synth: Synth, state: str) -> dict[str, set[str]]:
    exports = cross_stack_exports(synth.storage)
    role = _function_resources(synth)[state]["Properties"]["Role"]["Fn::GetAtt"][0]
    granted: dict[str, set[str]] = {}
    for statement in statements_of_role(synth.pipeline, role):
        assert statement["Effect"] == "Allow", (state, statement)
        assert "Condition" not in statement and "NotAction" not in statement and "NotResource" not in statement
        for action in as_list(statement["Action"]):
            granted.setdefault(action, set()).update(resolved(r, exports) for r in as_list(statement["Resource"]))
    return granted


def test_the_permission_table_covers_every_function() -> None:
    assert set(PERMISSIONS) == set(names.HANDLERS) == set(HANDLER_VARIABLES)


@pytest.mark.parametrize("state", list(names.HANDLERS))
def test_each_function_is_granted_exactly_its_row_of_the_table(synth: Synth, state: str) -> None:
    assert _granted(synth, state) == _expected(synth, state)


def test_plan_run_may_only_log_and_trace(synth: Synth) -> None:
    assert {action.split(":")[0] for action in _granted(synth, names.PLAN_RUN)} == {"logs", "xray"}


def test_write_parquet_deletes_only_staged_objects_and_never_versions(synth: Synth) -> None:
    from report_exporter.aws.s3 import STAGING_PREFIX, staging_key

    deletes = {a: r for a, r in _granted(synth, names.WRITE_PARQUET).items() if a.startswith("s3:Delete")}
    assert list(deletes) == ["s3:DeleteObject"]
    (resource,) = deletes["s3:DeleteObject"]
    assert resource.endswith(f"/{STAGING_PREFIX}*")
    # The prefix is where WriteParquet stages (aws/s3.py), and nothing a table reads lies under it.
    assert staging_key("kore_usage_records", "kore-account", "2026-01", "run-1").startswith(STAGING_PREFIX)
    for state in set(names.HANDLERS) - {names.WRITE_PARQUET}:
        assert not any(a.startswith("s3:Delete") for a in _granted(synth, state)), state


def test_no_function_may_delete_object_versions_or_scan_the_ledger(synth: Synth) -> None:
    for state in names.HANDLERS:
        actions = set(_granted(synth, state))
        assert not {a for a in actions if a.startswith(("s3:DeleteObjectVersion", "s3:DeleteObject*"))}, state
        assert not actions & {"dynamodb:Scan", "dynamodb:Query", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def test_the_ledger_grant_covers_every_call_the_ledger_makes() -> None:
    """aws/ledger.py is the only Lambda code that talks to DynamoDB; its calls must be in the table's grant."""
    package = Path(importlib.import_module("report_exporter").__file__ or "").parent
    calls: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        if "local" in path.relative_to(package).parts:
            continue  # the operator CLI and the local runner run with the operator's credentials
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Attribute)
                    and node.func.value.func.attr == "dynamodb"):
                action = "dynamodb:" + "".join(part.title() for part in node.func.attr.split("_"))
                calls.setdefault(action, set()).add(path.name)
    assert calls, "no DynamoDB call found: has the ledger moved?"
    assert set(calls) <= set(_LEDGER), calls


def _variables_in(tree: ast.AST) -> set[str]:
    fields = set(ExporterEnv.model_fields) - {"AWS_REGION"}  # AWS_REGION is set by Lambda itself
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in fields:
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and node.value in fields:
            found.add(str(node.value))
    return found


def _variables_read_by(handler: str) -> set[str]:
    """The env variables named in the handler module and in the functions of ours it calls (one level down)."""
    module = importlib.import_module(handler.rsplit(".", 1)[0])
    tree = ast.parse(inspect.getsource(module))
    found = _variables_in(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            target = getattr(module, node.func.id, None)
            if inspect.isfunction(target) and target.__module__.startswith("report_exporter."):
                found |= _variables_in(ast.parse(textwrap.dedent(inspect.getsource(target))))
    return found


@pytest.mark.parametrize("state", list(names.HANDLERS))
def test_the_variable_table_is_what_each_handler_reads(state: str) -> None:
    assert _variables_read_by(names.HANDLERS[state]) == HANDLER_VARIABLES[state]


@pytest.mark.parametrize("state", list(names.HANDLERS))
def test_each_function_gets_exactly_the_variables_its_handler_reads(synth: Synth, state: str) -> None:
    variables = _function_resources(synth)[state]["Properties"].get("Environment", {}).get("Variables", {})
    assert set(variables) == HANDLER_VARIABLES[state] | POWERTOOLS
    storage, pipeline = synth.built.storage, synth.built.pipeline
    exports = cross_stack_exports(synth.storage)
    points_at = {
        "LEDGER_TABLE": f"{{{logical_id(storage.ledger)}}}",
        "RAW_BUCKET": f"{{{logical_id(storage.raw_bucket)}}}",
        "CURATED_BUCKET": f"{{{logical_id(storage.curated_bucket)}}}",
        "ALERT_TOPIC_ARN": f"{{{logical_id(pipeline.alerts)}}}",
    }
    for name in HANDLER_VARIABLES[state]:
        assert resolved(variables[name], exports) == points_at[name], (state, name)
    assert not any("secret" in key.lower() or "token" in key.lower() for key in variables)
