"""boto3 clients, created on first use (never at import time) and cached per process.

Each client reports its every call to the invocation's usage meter (``report_exporter.usage``), which
the cost estimate of a run is built from. boto3 itself is imported on first use too (0.15-0.25 s): a
cold start pays it only in the invocation that needs AWS, and PlanRun never does.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from report_exporter import usage


def _count(model: Any, **_: Any) -> None:
    usage.count_call(str(model.service_model.endpoint_prefix), str(model.name))


def _client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    client = boto3.client(service, config=Config(retries={"max_attempts": 5, "mode": "standard"}))
    client.meta.events.register("before-call", _count)
    return client


@cache
def s3() -> Any:
    return _client("s3")


@cache
def dynamodb() -> Any:
    return _client("dynamodb")


@cache
def sns() -> Any:
    return _client("sns")


@cache
def secretsmanager() -> Any:
    return _client("secretsmanager")


def client_error() -> type[Exception]:
    """botocore's ``ClientError``, for ``except clients.client_error() as exc:``.

    An ``except`` clause's expression is evaluated only when an exception reaches it, by which time a client
    has imported botocore: a module that catches it does not import botocore itself.
    """
    from botocore.exceptions import ClientError

    error: type[Exception] = ClientError
    return error


def reset() -> None:
    """Forget cached clients (tests and the local runner call this when a moto mock starts)."""
    for getter in (s3, dynamodb, sns, secretsmanager):
        getter.cache_clear()
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]
    from aws_lambda_powertools.utilities.parameters import base

    base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]
    from report_exporter.aws import secrets

    secrets.provider.cache_clear()
