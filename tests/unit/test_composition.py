"""The composition root (runtime.py): each handler builds its ports from its function's environment first thing,
and a variable it needs that is missing or empty fails the invocation at once, naming the variable, before its step
runs or its vendor adapter (and the secret) is built."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from report_exporter import runtime
from report_exporter.aws.ledger import DynamoLedger
from report_exporter.aws.s3 import S3CuratedStore, S3RawStore
from tests.conftest import FakeContext

WATCH_EVENT = {"exports": [{"name": "particle-demo", "vendor": "particle", "publish_by_day": 5}]}
# handler module -> (its sample event, the variables it cannot work without)
HANDLERS: dict[str, tuple[str | dict[str, Any], tuple[str, ...]]] = {
    "request_report": ("request_report/particle.json", ("LEDGER_TABLE",)),
    "check_report": ("check_report/particle_pending.json", ("LEDGER_TABLE",)),
    "download_report": ("download_report/particle.json", ("LEDGER_TABLE", "RAW_BUCKET")),
    "write_parquet": ("write_parquet/particle.json", ("LEDGER_TABLE", "RAW_BUCKET", "CURATED_BUCKET")),
    "record_failure": ("record_failure/particle_vendor_auth.json", ("LEDGER_TABLE",)),
    "end_run": ("end_run/particle_timed_out.json", ("LEDGER_TABLE",)),
    "watch_runs": (WATCH_EVENT, ("LEDGER_TABLE",)),
}
CASES = [(handler, variable) for handler, (_, variables) in HANDLERS.items() for variable in variables]


@pytest.mark.parametrize(("handler", "missing"), CASES, ids=[f"{h}-{v}" for h, v in CASES])
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_a_handler_without_a_variable_it_needs_fails_first_naming_it(
        handler: str, missing: str, value: str | None, load_event: Callable[[str], dict[str, Any]],
        lambda_context: FakeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the function's environment has every variable it needs but one (absent, or empty)
    sample, variables = HANDLERS[handler]
    event = load_event(sample) if isinstance(sample, str) else sample
    environment = {name: f"test-{name.lower()}" for name in variables if name != missing}
    if value is not None:
        environment[missing] = value
    module = importlib.import_module(f"report_exporter.handlers.{handler}")
    called: list[str] = []
    for name in (handler, "adapter_for"):  # the step's logic, and the vendor adapter (with its secret)
        if hasattr(module, name):
            monkeypatch.setattr(module, name, lambda *args, name=name, **kwargs: called.append(name))
    # When invoked
    with runtime.function_environment(environment), pytest.raises(ValueError) as raised:
        module.lambda_handler(event, lambda_context)
    # Then it fails with the variable's name and what to do, before the step or the vendor adapter
    assert str(raised.value) == f"{missing} is not set in this function's environment; redeploy the stack"
    assert called == []


def test_the_ports_are_the_aws_ones_over_the_configured_table_and_buckets() -> None:
    environment = {"LEDGER_TABLE": "ledger-t", "RAW_BUCKET": "raw-b", "CURATED_BUCKET": "curated-b"}
    with runtime.function_environment(environment):
        ledger, reader, raw, curated = (runtime.ledger(), runtime.ledger_reader(), runtime.raw_store(),
                                        runtime.curated_store())
        alerts = runtime.notifier()
    assert isinstance(ledger, DynamoLedger) and isinstance(reader, DynamoLedger)
    assert isinstance(raw, S3RawStore) and isinstance(curated, S3CuratedStore) and curated.bucket == "curated-b"
    assert json.dumps(vars(ledger)) == json.dumps({"_table": "ledger-t"})
    assert json.dumps(vars(raw)) == json.dumps({"_bucket": "raw-b"})
    # And without a topic there is no alert publisher
    assert alerts is None
