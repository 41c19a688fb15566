"""Environment of the Lambdas, read when needed (never at import time) and validated once per call."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field


class ExporterEnv(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    RAW_BUCKET: str = Field(min_length=3)
    CURATED_BUCKET: str = Field(min_length=3)
    LEDGER_TABLE: str = ""
    ALERT_TOPIC_ARN: str = ""
    AWS_REGION: str = "us-east-1"


def settings() -> ExporterEnv:
    """The Lambda's configuration from its environment variables."""
    return ExporterEnv.model_validate(dict(os.environ))
