"""boto3 clients, created on first use (never at import time) and cached per process.

boto3 itself is imported on first use too (0.15-0.25 s): a cold start pays it only in the invocation that
needs AWS, and PlanRun never does.
"""

from __future__ import annotations

from functools import cache
from typing import Any


def _client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(retries={"max_attempts": 5, "mode": "standard"}))


@cache
def s3() -> Any:
    return _client("s3")


@cache
def dynamodb() -> Any:
    return _client("dynamodb")


@cache
def sns() -> Any:
    return _client("sns")


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
    for getter in (s3, dynamodb, sns):
        getter.cache_clear()
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]
    from aws_lambda_powertools.utilities.parameters import base

    base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]
