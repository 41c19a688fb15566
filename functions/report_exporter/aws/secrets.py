"""Vendor credentials from Secrets Manager through Powertools Parameters (cached 5 minutes)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from report_exporter.aws import clients
from report_exporter.errors import SecretError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

CACHE_SECONDS = 300


@cache
def provider() -> SecretsProvider:
    """Powertools' secrets provider on our own client, so that its calls count in the run's usage."""
    from aws_lambda_powertools.utilities import parameters

    return parameters.SecretsProvider(boto3_client=clients.secretsmanager())


def export_credentials(secret_name: str) -> dict[str, SecretStr]:
    """The JSON object stored in ``secret_name``, every value wrapped in ``SecretStr``.

    Raises:
        SecretError: the secret is missing, unreadable or not a JSON object (never echoes its value).
    """
    # Powertools' parameters import boto3: on first use, not at the handler's import (see aws/clients.py).
    from aws_lambda_powertools.utilities import parameters

    try:
        raw: Any = provider().get(secret_name, transform="json", max_age=CACHE_SECONDS)
    except parameters.exceptions.TransformParameterError:
        raise SecretError(f"secret {secret_name!r} is not valid JSON (expected an object of fields)") from None
    except parameters.exceptions.GetParameterError:
        raise SecretError(f"secret {secret_name!r} could not be read (missing, or no access to it)") from None
    if not isinstance(raw, dict):
        raise SecretError(f"secret {secret_name!r} must hold a JSON object of fields")
    return {str(key): SecretStr(str(value)) for key, value in raw.items()}
