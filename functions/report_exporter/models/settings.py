"""Environment of the Lambdas, read when needed (never at import time) and validated once per call.

Each function is given only the variables it uses (least privilege): a handler asks for what it needs
with :meth:`ExporterEnv.need`, which fails at once, naming the variable, when it is missing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from report_exporter import runtime


class ExporterEnv(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    RAW_BUCKET: str = ""
    CURATED_BUCKET: str = ""
    LEDGER_TABLE: str = ""
    ALERT_TOPIC_ARN: str = ""
    AWS_REGION: str = "us-east-1"

    def need(self, name: str) -> str:
        """A variable this function cannot work without.

        Raises:
            ValueError: it is not set (a deployment error: the function's environment lacks it).
        """
        value = str(getattr(self, name, "") or "")
        if not value:
            raise ValueError(f"{name} is not set in this function's environment; redeploy the stack")
        return value


def settings() -> ExporterEnv:
    """The Lambda's configuration from its environment variables."""
    return ExporterEnv.model_validate(dict(runtime.environ()))
