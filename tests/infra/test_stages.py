"""Stages deploy side by side in one account: prod and dev share no physical name; only prod is protected."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exporter_infra.app_builder import ExporterApp, build_app
from report_exporter.local import operate
from report_exporter.stages import StageNames, check_stage
from tests.infra.support import infra_config, infra_exports

# Resource type -> its physical name, qualified by what it is unique within (a Glue table within its database,
# a schedule within its group, a saved query within its workgroup). ``refs`` resolves a Ref to a name.
Identity = Callable[[dict[str, Any], Callable[[Any], str]], tuple[str, ...]]
NAMED: dict[str, Identity] = {
    "AWS::SecretsManager::Secret": lambda p, refs: (p["Name"],),
    "AWS::Glue::Database": lambda p, refs: (p["DatabaseInput"]["Name"],),
    "AWS::Glue::Table": lambda p, refs: (refs(p["DatabaseName"]), p["TableInput"]["Name"]),
    "AWS::Athena::WorkGroup": lambda p, refs: (p["Name"],),
    "AWS::Athena::NamedQuery": lambda p, refs: (refs(p["WorkGroup"]), p["Name"]),
    "AWS::Scheduler::ScheduleGroup": lambda p, refs: (p["Name"],),
    "AWS::Scheduler::Schedule": lambda p, refs: (refs(p["GroupName"]), p["Name"]),
    "AWS::CloudWatch::Dashboard": lambda p, refs: (p["DashboardName"],),
}
# ``*Name`` properties that are no physical name: labels, metrics, references, names local to their parent.
NOT_NAMES = {
    ("AWS::SNS::Topic", "DisplayName"),
    ("AWS::CloudWatch::Alarm", "MetricName"),
    ("AWS::IAM::Policy", "PolicyName"),  # an inline policy's name is unique within its role only
    ("AWS::Glue::Table", "DatabaseName"),
    ("AWS::Lambda::Permission", "FunctionName"),
    ("AWS::Lambda::EventInvokeConfig", "FunctionName"),
}


@dataclass(frozen=True)
class Deployed:
    built: ExporterApp
    templates: dict[str, dict[str, Any]]
    termination_protection: dict[str, bool]

    @property
    def storage(self) -> dict[str, Any]:
        return self.templates[self.built.storage.stack_name]

    @property
    def pipeline(self) -> dict[str, Any]:
        return self.templates[self.built.pipeline.stack_name]


def _synth(outdir: Path, **config: Any) -> Deployed:
    built = build_app(infra_config(**config), outdir=str(outdir))
    assembly = built.app.synth()
    stacks = [assembly.get_stack_by_name(stack.stack_name) for stack in (built.storage, built.pipeline)]
    return Deployed(built=built, templates={s.stack_name: dict(s.template) for s in stacks},
                    termination_protection={s.stack_name: bool(s.termination_protection) for s in stacks})


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    return _synth(tmp_path_factory.mktemp("prod"), stage="prod", alarm_email="ops@example.com")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    return _synth(tmp_path_factory.mktemp("dev"), stage="dev", alerts="off")


def _physical_names(deployed: Deployed) -> set[tuple[str, ...]]:
    """Every name the stage claims in the account: stack names, explicit resource names, export names."""
    found: set[tuple[str, ...]] = {("AWS::CloudFormation::Stack", name) for name in deployed.templates}
    for template in deployed.templates.values():
        named = {
            logical: NAMED[r["Type"]](r["Properties"], lambda v: v)
            for logical, r in template["Resources"].items() if r["Type"] in NAMED
        }

        def refs(value: Any, named: dict[str, tuple[str, ...]] = named) -> str:
            return named[value["Ref"]][-1] if isinstance(value, dict) and "Ref" in value else str(value)

        for resource in template["Resources"].values():
            kind, props = resource["Type"], resource.get("Properties") or {}
            unexplained = [key for key in props if key.endswith("Name") and (kind, key) not in NOT_NAMES]
            assert not unexplained or kind in NAMED, f"{kind} has {unexplained}: add it to NAMED or NOT_NAMES"
            if kind in NAMED:
                found.add((kind, *NAMED[kind](props, refs)))
        found |= {("Export", str(o["Export"]["Name"])) for o in template.get("Outputs", {}).values() if "Export" in o}
    return found


def test_prod_and_dev_share_no_physical_name(prod: Deployed, dev: Deployed) -> None:
    prod_names, dev_names = _physical_names(prod), _physical_names(dev)
    # Every kind of named resource is there in both, so the comparison means something.
    kinds = {name[0] for name in prod_names}
    assert kinds >= set(NAMED) | {"AWS::CloudFormation::Stack", "Export"}
    assert {name[0] for name in dev_names} == kinds
    assert prod_names & dev_names == set()


def test_only_prod_is_termination_protected(prod: Deployed, dev: Deployed) -> None:
    assert prod.termination_protection[prod.built.storage.stack_name] is True
    assert dev.termination_protection[dev.built.storage.stack_name] is False


def test_prod_keeps_the_names_it_was_deployed_with(prod: Deployed) -> None:
    assert set(prod.templates) == {"ReportExporterStorage", "ReportExporterPipeline"}
    (database,) = [r for r in prod.storage["Resources"].values() if r["Type"] == "AWS::Glue::Database"]
    assert database["Properties"]["DatabaseInput"]["Name"] == "report_exporter"
    (workgroup,) = [r for r in prod.storage["Resources"].values() if r["Type"] == "AWS::Athena::WorkGroup"]
    assert workgroup["Properties"]["Name"] == "report-exporter-prod"
    secrets = {r["Properties"]["Name"] for r in prod.storage["Resources"].values()
               if r["Type"] == "AWS::SecretsManager::Secret"}
    assert secrets == {"report-exporter/particle-fleet", "report-exporter/kore-account"}


def test_dev_names_carry_the_stage(dev: Deployed) -> None:
    assert set(dev.templates) == {"ReportExporterStorage-dev", "ReportExporterPipeline-dev"}
    resources = dev.storage["Resources"]
    (database_id,) = [logical for logical, r in resources.items() if r["Type"] == "AWS::Glue::Database"]
    assert resources[database_id]["Properties"]["DatabaseInput"]["Name"] == "report_exporter_dev"
    # The saved queries run in the stage's workgroup, against the stage's database.
    queries = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Athena::NamedQuery"]
    assert queries
    assert all(q["Database"] == {"Ref": database_id} and q["WorkGroup"] == "report-exporter-dev" for q in queries)
    secrets = {r["Properties"]["Name"] for r in resources.values() if r["Type"] == "AWS::SecretsManager::Secret"}
    assert secrets == {"dev/report-exporter/particle-fleet", "dev/report-exporter/kore-account"}
    groups = {r["Properties"]["Name"] for r in dev.pipeline["Resources"].values()
              if r["Type"] == "AWS::Scheduler::ScheduleGroup"}
    assert groups == {"report-exporter-dev"}


def test_dev_runs_and_may_read_only_its_own_secrets(dev: Deployed) -> None:
    schedules = [r["Properties"] for r in dev.pipeline["Resources"].values() if r["Type"] == "AWS::Scheduler::Schedule"]
    sent = {json.loads(s["Target"]["Input"])["export"]["secret_name"] for s in schedules}
    assert sent == {"dev/report-exporter/particle-fleet", "dev/report-exporter/kore-account"}
    # A secret managed elsewhere (create_secret = false) keeps its name; prod's own secrets are out of reach.
    policies = json.dumps([r for r in dev.pipeline["Resources"].values() if r["Type"] == "AWS::IAM::Policy"])
    assert ":secret:dev/report-exporter/kore-account-??????" in policies
    assert ":secret:shared/particle-sandbox-??????" in policies
    assert ":secret:report-exporter/" not in policies


@pytest.mark.parametrize("stage", ["prod", "dev"])
def test_the_cli_looks_up_the_stacks_the_app_deploys(stage: str, prod: Deployed, dev: Deployed) -> None:
    deployed = {"prod": prod, "dev": dev}[stage]
    assert operate.storage_stack(stage) == deployed.built.storage.stack_name
    assert operate.pipeline_stack(stage) == deployed.built.pipeline.stack_name
    assert {operate.LEDGER_OUTPUT, operate.RAW_BUCKET_OUTPUT} <= set(deployed.storage["Outputs"])
    assert {operate.STATE_MACHINE_OUTPUT, operate.WRITE_PARQUET_OUTPUT} <= set(deployed.pipeline["Outputs"])
    # backfill sends what the stage's schedules send.
    export = infra_exports().get("kore-account")
    (schedule,) = [r["Properties"] for r in deployed.pipeline["Resources"].values()
                   if r["Type"] == "AWS::Scheduler::Schedule" and r["Properties"]["Name"] == "kore-account"]
    assert json.loads(schedule["Target"]["Input"])["export"] == operate.deployed_export(export, stage).model_dump(
        mode="json")


@pytest.mark.parametrize("stage", ["", "Prod", "dev-1", "a", "x" * 17, "1dev"])
def test_a_stage_name_that_cannot_name_everything_is_refused(stage: str) -> None:
    with pytest.raises(ValueError, match="not a valid stage name"):
        check_stage(stage)
    with pytest.raises(ValueError, match="not a valid stage name"):
        infra_config(stage=stage)


def test_prod_names_are_unsuffixed_and_other_stages_suffixed() -> None:
    prod, dev = StageNames("prod"), StageNames("dev")
    assert (prod.storage_stack, prod.pipeline_stack, prod.glue_database) == (
        "ReportExporterStorage", "ReportExporterPipeline", "report_exporter")
    assert (dev.storage_stack, dev.pipeline_stack, dev.glue_database) == (
        "ReportExporterStorage-dev", "ReportExporterPipeline-dev", "report_exporter_dev")
    assert prod.secret_name("a/b") == "a/b" and dev.secret_name("a/b") == "dev/a/b"
