"""boto3 clients, created on first use (never at import time) and cached per process."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"})


@cache
def s3() -> Any:
    return boto3.client("s3", config=_CONFIG)


@cache
def dynamodb() -> Any:
    return boto3.client("dynamodb", config=_CONFIG)


@cache
def sns() -> Any:
    return boto3.client("sns", config=_CONFIG)


def reset() -> None:
    """Forget cached clients (tests and the local runner call this when a moto mock starts)."""
    for getter in (s3, dynamodb, sns):
        getter.cache_clear()
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]
    from aws_lambda_powertools.utilities.parameters import base

    base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]
