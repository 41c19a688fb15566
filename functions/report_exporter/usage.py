"""What one Lambda invocation used of AWS, counted as it happens, and what that costs.

Every AWS client of ours (``aws/clients.py``) reports each call to :func:`count_call`, which adds it to
the meter of the invocation running in this context (``telemetry.instrument`` opens one per handler
call; threads a handler starts copy its context, so their calls count too). Outside a meter nothing
is counted: the operator CLI and the local runner's own calls are no run's cost.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal

from report_exporter.prices import Prices

# S3 request classes (pricing page): DELETE and abort are free; PUT, COPY, POST and LIST cost the
# most; everything else is billed as a GET.
_S3_FREE = ("Delete", "AbortMultipartUpload")
_S3_WRITE = ("Put", "Copy", "Create", "Upload", "Complete", "List")
_DYNAMODB_WRITE = ("Put", "Update", "Delete", "BatchWrite", "TransactWrite")
COST_QUANTUM = Decimal("0.000000001")
"""Estimates are kept to a billionth of a dollar (DynamoDB numbers are exact decimals)."""


@dataclass
class Usage:
    """Billable units, as the pricing pages count them. Field names are the ledger's (``usage_<field>``)."""

    state_transitions: int = 0
    lambda_requests: int = 0
    lambda_gb_seconds: Decimal = Decimal(0)
    s3_write_requests: int = 0
    s3_read_requests: int = 0
    s3_stored_bytes: int = 0
    """Bytes of the objects the run keeps (raw and Parquet), charged here for one month of storage."""
    secrets_api_calls: int = 0
    dynamodb_read_units: int = 0
    dynamodb_write_units: int = 0
    sns_publishes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **units: int | Decimal) -> None:
        with self._lock:
            for name, value in units.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int | Decimal]:
        """The counters, without empty ones."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        return {name: value for name, value in values.items() if value}

    def cost(self, prices: Prices) -> dict[str, Decimal]:
        """USD per service (Step Functions, Lambda, S3, Secrets Manager, DynamoDB, SNS), at ``prices``."""
        gigabytes = Decimal(self.s3_stored_bytes) / Decimal(1024**3)
        parts = {
            "stepfunctions": self.state_transitions * prices.state_transition,
            "lambda": self.lambda_requests * prices.lambda_request + self.lambda_gb_seconds * prices.lambda_gb_second,
            "s3": self.s3_write_requests * prices.s3_write_request + self.s3_read_requests * prices.s3_read_request
            + gigabytes * prices.s3_gb_month,
            "secretsmanager": self.secrets_api_calls * prices.secrets_api_call,
            "dynamodb": self.dynamodb_read_units * prices.dynamodb_read_unit
            + self.dynamodb_write_units * prices.dynamodb_write_unit,
            "sns": self.sns_publishes * prices.sns_publish,
        }
        return {name: value.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP) for name, value in parts.items()}


_METER: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("usage_meter", default=None)


@contextmanager
def metering() -> Iterator[Usage]:
    """Count the AWS calls made in this context (and in threads that copy it) until the block ends."""
    usage = Usage()
    token = _METER.set(usage)
    try:
        yield usage
    finally:
        _METER.reset(token)


def count_call(service: str, operation: str) -> None:
    """One AWS API call (``s3``, ``PutObject``), added to the current invocation's meter if there is one."""
    usage = _METER.get()
    if usage is None:
        return
    if service == "s3":
        if operation.startswith(_S3_FREE):
            return
        usage.add(**{"s3_write_requests" if operation.startswith(_S3_WRITE) else "s3_read_requests": 1})
    elif service == "dynamodb":
        # One unit per call: a lower bound (a write of an item over 1 KB, a read over 4 KB, takes more).
        usage.add(**{"dynamodb_write_units" if operation.startswith(_DYNAMODB_WRITE) else "dynamodb_read_units": 1})
    elif service == "secretsmanager":
        usage.add(secrets_api_calls=1)
    elif service == "sns" and operation == "Publish":
        usage.add(sns_publishes=1)
