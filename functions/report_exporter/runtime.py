"""What the process runs on: its clock, its environment variables, where its metrics go, for vendor
calls its HTTP transport, and the ports the steps are given (the composition root of ``ports.py``).

Each handler builds its ports first thing, from its function's environment: :func:`ledger` (or
:func:`ledger_reader`), :func:`raw_store`, :func:`curated_store`, :func:`notifier`. A variable the function
needs that is missing or empty fails the invocation at once, before any vendor or AWS call, naming the
variable (a deployment error: no step may run without the ledger's adoption, cap and publish-once).
The AWS implementations are imported on first use: a cold start pays boto3 only where it calls AWS.

In Lambda they are the real ones. The local runner swaps them for the duration of a local environment
(a virtual clock in the demo and the tests; a transport that routes simulated vendors in process and
injects faults; each invoked function's own variables, as the template gives them), so handlers,
adapters and simulators all see the same time and each function sees only its own configuration.
Kept free of heavy imports: every handler reads its clock here.
"""

from __future__ import annotations

import contextvars
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from report_exporter.clock import SYSTEM, Clock

if TYPE_CHECKING:
    from report_exporter.ports import CuratedStore, Ledger, LedgerReader, Notify, RawStore

_clock: Clock = SYSTEM
_transport: Any = None
MetricsSink = Callable[[dict[str, Any]], None]
_metrics_sink: MetricsSink | None = None
_environ: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("environ", default=None)


def clock() -> Clock:
    """The process's clock (the system clock in Lambda)."""
    return _clock


def transport() -> Any:
    """The ``httpx.BaseTransport`` vendor clients use, or None for httpx's own (Lambda)."""
    return _transport


def environ() -> Mapping[str, str]:
    """The function's environment variables: the process's in Lambda, the invoked function's own locally."""
    scoped = _environ.get()
    return os.environ if scoped is None else scoped


def ledger() -> Ledger:
    """The job ledger: the DynamoDB table named by ``LEDGER_TABLE``.

    Raises:
        ValueError: ``LEDGER_TABLE`` is missing or empty in the function's environment.
    """
    from report_exporter.aws.ledger import DynamoLedger
    from report_exporter.models.settings import settings

    return DynamoLedger(settings().need("LEDGER_TABLE"))


def ledger_reader() -> LedgerReader:
    """The job ledger read only (WatchRuns): the DynamoDB table named by ``LEDGER_TABLE``.

    Raises:
        ValueError: ``LEDGER_TABLE`` is missing or empty in the function's environment.
    """
    from report_exporter.aws.ledger import DynamoLedger
    from report_exporter.models.settings import settings

    return DynamoLedger(settings().need("LEDGER_TABLE"))


def raw_store() -> RawStore:
    """The raw store: the bucket named by ``RAW_BUCKET``.

    Raises:
        ValueError: ``RAW_BUCKET`` is missing or empty in the function's environment.
    """
    from report_exporter.aws.s3 import S3RawStore
    from report_exporter.models.settings import settings

    return S3RawStore(settings().need("RAW_BUCKET"))


def curated_store() -> CuratedStore:
    """The curated store: the bucket named by ``CURATED_BUCKET``.

    Raises:
        ValueError: ``CURATED_BUCKET`` is missing or empty in the function's environment.
    """
    from report_exporter.aws.s3 import S3CuratedStore
    from report_exporter.models.settings import settings

    return S3CuratedStore(settings().need("CURATED_BUCKET"))


def notifier() -> Notify | None:
    """The alert publisher to the SNS topic named by ``ALERT_TOPIC_ARN``, or None when there is none."""
    from report_exporter.aws.notify import sns_notifier
    from report_exporter.models.settings import settings

    return sns_notifier(settings().ALERT_TOPIC_ARN)


def emit_metrics(blob: dict[str, Any]) -> None:
    """Publish one CloudWatch EMF document: a line on stdout in Lambda (CloudWatch Logs turns it into
    metrics); the local runner records it instead."""
    if _metrics_sink is None:
        print(json.dumps(blob, separators=(",", ":"), default=str), flush=True)
    else:
        _metrics_sink(blob)


@contextmanager
def function_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Run the block with exactly ``variables`` as the function's environment (the local runner's sandbox)."""
    token = _environ.set(dict(variables))
    try:
        yield
    finally:
        _environ.reset(token)


@contextmanager
def override(*, clock: Clock | None = None, transport: Any = None,
             metrics: MetricsSink | None = None) -> Iterator[None]:
    """Run on another clock and transport, and send EMF documents to ``metrics``, until the block ends
    (the local runner)."""
    global _clock, _transport, _metrics_sink
    saved = _clock, _transport, _metrics_sink
    _clock = clock or _clock
    _transport = transport if transport is not None else _transport
    _metrics_sink = metrics if metrics is not None else _metrics_sink
    try:
        yield
    finally:
        _clock, _transport, _metrics_sink = saved
