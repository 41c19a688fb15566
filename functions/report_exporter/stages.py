"""Physical names of a deployed stage, shared by the CDK app (``infra/``) and the operator CLI.

Several stages deploy side by side in one account and region. ``prod`` keeps the names it was first
deployed with (renaming a stateful stack would orphan its retained buckets and ledger); every other
stage adds its name to each one:

=====================  ==============================  ======================================
resource               prod                            stage ``dev``
=====================  ==============================  ======================================
storage stack          ``ReportExporterStorage``       ``ReportExporterStorage-dev``
pipeline stack         ``ReportExporterPipeline``      ``ReportExporterPipeline-dev``
Glue database          ``report_exporter``             ``report_exporter_dev``
Athena workgroup       ``report-exporter-prod``        ``report-exporter-dev``
schedule group         ``report-exporter-prod``        ``report-exporter-dev``
metrics namespace      ``ReportExporter``              ``ReportExporter/dev``
dashboard              ``report-exporter-prod``        ``report-exporter-dev``
created secrets        ``<secret_name>``               ``dev/<secret_name>``
=====================  ==============================  ======================================

Everything else (functions, log groups, the ledger table, the alert topic, alarms, queues, the EndRun
rule, roles, buckets) is named by CloudFormation after its stack, so it follows the stack's name.
A secret the config says is managed elsewhere (``create_secret = false``) keeps its name in every stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from report_exporter.models.exports import ExportsFile, ExportSpec

PROD = "prod"
# Lower-case letters and digits only: the stage goes into stack, Glue, Athena and secret names alike.
STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,15}$")


def check_stage(stage: str) -> str:
    """``stage`` if it can be part of every physical name.

    Raises:
        ValueError: naming the stage and the rule.
    """
    if not STAGE_PATTERN.match(stage):
        raise ValueError(f"stage {stage!r} is not a valid stage name: use 2-16 lower-case letters and digits, "
                         "starting with a letter (e.g. prod, dev, test2)")
    return stage


@dataclass(frozen=True)
class StageNames:
    """The physical names of one stage (see the module docstring for the scheme)."""

    stage: str

    def __post_init__(self) -> None:
        check_stage(self.stage)

    @property
    def is_prod(self) -> bool:
        return self.stage == PROD

    def _suffixed(self, base: str, separator: str) -> str:
        return base if self.is_prod else f"{base}{separator}{self.stage}"

    @property
    def storage_stack(self) -> str:
        return self._suffixed("ReportExporterStorage", "-")

    @property
    def pipeline_stack(self) -> str:
        return self._suffixed("ReportExporterPipeline", "-")

    @property
    def glue_database(self) -> str:
        return self._suffixed("report_exporter", "_")

    @property
    def athena_workgroup(self) -> str:
        return f"report-exporter-{self.stage}"

    @property
    def schedule_group(self) -> str:
        return f"report-exporter-{self.stage}"

    @property
    def metrics_namespace(self) -> str:
        """CloudWatch namespace of the run metrics (``report_exporter.telemetry``) and the dashboard."""
        return self._suffixed("ReportExporter", "/")

    @property
    def dashboard(self) -> str:
        return f"report-exporter-{self.stage}"

    def secret_name(self, configured: str) -> str:
        """The name of a secret the stack creates for an export whose config says ``configured``."""
        return configured if self.is_prod else f"{self.stage}/{configured}"

    def export(self, export: ExportSpec) -> ExportSpec:
        """The export as this stage runs it: the execution input names the stage's own secret."""
        if not export.create_secret:
            return export
        return export.model_copy(update={"secret_name": self.secret_name(export.secret_name)})

    def exports(self, exports: ExportsFile) -> ExportsFile:
        return exports.model_copy(update={"exports": tuple(self.export(e) for e in exports.exports)})


def stage_names(stage: str) -> StageNames:
    return StageNames(stage)
